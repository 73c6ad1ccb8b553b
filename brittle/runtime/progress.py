"""Progress of long work in the conventions people know: a tqdm bar on a terminal, a log line
every `every` seconds (and at the end) when output goes to a file; nothing with `progress=false`.

    with Progress(len(targets), "search", enabled=ex.progress) as bar:
        for ...: bar.update(models=..., note="support 12")
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("brittle.runtime.progress")


def on_terminal() -> bool:
    return sys.stderr.isatty()


class Progress:
    """Counts `total` units of `desc`; the ETA comes from the measured seconds per unit."""

    def __init__(self, total: int, desc: str, enabled: bool = True, unit: str = "it",
                 every: float = 30.0):
        self.total, self.desc, self.unit, self.every = int(total), desc, unit, float(every)
        self.enabled, self.done, self._bar = bool(enabled), 0, None
        self._start = self._last = time.perf_counter()

    def __enter__(self) -> Progress:
        if self.enabled and on_terminal():
            from tqdm import tqdm
            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=sys.stderr,
                             dynamic_ncols=True, leave=False)
        return self

    def update(self, n: int = 1, **postfix: Any) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            return
        now = time.perf_counter()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            extra = "".join(f", {k} {v}" for k, v in postfix.items())
            log.info("%s: %d/%d %s, %s elapsed, ~%s left%s", self.desc, self.done, self.total,
                     self.unit, clock(now - self._start), clock(self.eta(now)), extra)

    def eta(self, now: float | None = None) -> float:
        """Seconds left at the measured rate so far."""
        elapsed = (now or time.perf_counter()) - self._start
        return elapsed / max(self.done, 1) * max(self.total - self.done, 0)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def clock(seconds: float) -> str:
    """'m:ss' or 'h:mm:ss'."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"

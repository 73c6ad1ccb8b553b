"""Experiment tracking (`logger=csv|tensorboard|mlflow|wandb`, docs/tracking.md): a run's
composed config, its pretraining curves, each target's support and the run's headline numbers
also go to a tracker, through Lightning's loggers.

Tracking changes where results are also sent, never what is computed: `logger` is an execution
key (no cache key, run identity or run-directory name holds it), and nothing the run computes
depends on the tracker. The tracker is contacted when the run first has something to report, so
bad input that stops a run before any work leaves no tracking files. Any error of the tracker
(a server down, no network) costs one warning line, and the rest of the run goes untracked.
Credentials come from the tracker's own environment (WANDB_API_KEY, MLFLOW_TRACKING_TOKEN, ...):
a credential-like setting under `logger` is refused, and one elsewhere in the config is never
logged. This module imports no tracker (nor Lightning) until one is built.
"""
from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import os
import re
import socket
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from brittle.runtime.errors import BrittleError
from brittle.runtime.tracked_values import CREDENTIAL, flat_params, is_number, summary_metrics

log = logging.getLogger(__name__)

# Lightning's logger class -> the package it needs: also the name of the extra and the option
NEEDS = {"TensorBoardLogger": "tensorboard", "MLFlowLogger": "mlflow", "WandbLogger": "wandb"}
# seconds to wait for a tracking server to accept a connection before giving it up
CONNECT_SECONDS = 5.0
_OFFLINE_MODES = ("offline", "disabled", "dryrun")


def missing_extra(package: str | None) -> str | None:
    """One line naming the extra that brings a tracker's package (a value of NEEDS) when it is
    not installed, else None."""
    if package not in NEEDS.values() or importlib.util.find_spec(str(package)) is not None:
        return None
    return f"logger={package} needs the {package} package: pip install 'brittle[{package}]'"


class Tracker:
    """The run's tracker, built from the `logger` node on first use (no node: it does nothing).
    Every call into the tracker goes through one guard: its first error is one warning line and
    ends the tracking, never the run."""

    def __init__(self, node: Mapping[str, Any] | None, run_dir: Path,
                 params: Mapping[str, Any] | None = None):
        self.node = dict(node) if node and node.get("_target_") else None
        self.run_dir = Path(run_dir)
        self.params = dict(params or {})
        self._logger: Any = None
        self._stopped = False

    @classmethod
    def of(cls, cfg: DictConfig, run_dir: Path) -> Tracker:
        """The tracker of a composed config; a logger whose package is missing, or a credential
        in its settings, is a BrittleError now, before any work."""
        node = cfg.get("logger")
        if not node or node.get("_target_") is None:
            return cls(None, run_dir)
        container = OmegaConf.to_container(node, resolve=True)
        assert isinstance(container, dict)
        settings = {str(k): v for k, v in container.items()}
        secret = next((k for k in settings if CREDENTIAL.search(k)), None)
        if secret is not None:
            raise BrittleError(f"logger.{secret}: credentials come from the tracker's own "
                               "environment (e.g. WANDB_API_KEY, MLFLOW_TRACKING_TOKEN), never "
                               f"from the config; remove logger.{secret}")
        problem = missing_extra(NEEDS.get(str(settings["_target_"]).rsplit(".", 1)[-1]))
        if problem:
            raise BrittleError(problem)
        return cls(settings, run_dir, flat_params(cfg))

    @property
    def enabled(self) -> bool:
        """A tracker was chosen and has not failed."""
        return self.node is not None and not self._stopped

    @property
    def kind(self) -> str:
        return str((self.node or {}).get("_target_", "none")).rsplit(".", 1)[-1]

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        """Numbers at `step` (None and non-finite values are left out)."""
        values = {str(k): float(v) for k, v in metrics.items() if is_number(v)}
        if values:
            self._safely("logging", lambda logger: logger.log_metrics(values, step=int(step)))

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """The run's headline numbers at its end (step 0; `summary_metrics`). A logger that pairs
        hyperparameters with results (TensorBoard's HPARAMS tab) gets them with the config."""
        metrics = summary_metrics(summary)

        def send(logger: Any) -> None:
            if "metrics" in inspect.signature(logger.log_hyperparams).parameters:
                logger.log_hyperparams(self.params, metrics=metrics)   # logs them at step 0 too
            else:
                logger.log_metrics(metrics, step=0)

        if metrics:
            self._safely("logging", send)

    @contextlib.contextmanager
    def tracking(self) -> Iterator[Tracker]:
        """The run's span: its tracked run ends `success`, or `failed` when the run raised."""
        try:
            yield self
        except BaseException:
            self.finish("failed")
            raise
        self.finish("success")

    def finish(self, status: str) -> None:
        """Flush and close what was tracked (nothing when the tracker was never contacted)."""
        if self._logger is not None:
            self._safely("finishing", lambda logger: _finalize(logger, status))

    def _safely(self, what: str, call: Callable[[Any], None]) -> None:
        if not self.enabled:
            return
        try:
            if self._logger is None:
                self._logger = self._build()
            call(self._logger)
        except Exception as exc:  # a tracker's failure is never the run's
            self._stopped = True
            log.warning("tracker %s failed while %s (%s): the run goes on untracked", self.kind,
                        what, _one_line(exc))

    def _build(self) -> Any:
        """The Lightning logger, its paths under the run directory, the config logged first."""
        from hydra.utils import instantiate

        node = dict(self.node or {})
        if node.get("save_dir") is not None:
            node["save_dir"] = str(self.run_dir / Path(str(node["save_dir"])).expanduser())
        for key in ("name", "run_name"):   # the tracked run's name (a W&B or MLflow run)
            if key in node and node[key] is None:
                node[key] = self.run_dir.name
        if "tracking_uri" in node and not node["tracking_uri"]:
            node["tracking_uri"] = os.environ.get("MLFLOW_TRACKING_URI") or None
        if "tracking_uri" in node and urllib.parse.urlsplit(
                str(node["tracking_uri"] or "")).scheme in ("", "file"):
            # MLflow 3 refuses its file store unless opted in; brittle's local default is one
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        unreachable = _unreachable(_endpoint(node))
        if unreachable:
            raise ConnectionError(unreachable)
        with _quiet("pytorch_lightning.loggers"):   # "Experiment ... not found. Creating it."
            logger = instantiate(node, _convert_="all")
            logger.log_hyperparams(self.params)
        return logger


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """A library's logger at ERROR meanwhile (its news of a first use is no warning)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _finalize(logger: Any, status: str) -> None:
    logger.finalize(status)
    if type(logger).__name__ == "WandbLogger":
        # Lightning leaves W&B's run open (for its own later calls); the next job's is its own
        logger.experiment.finish(exit_code=0 if status == "success" else 1)


def _endpoint(node: Mapping[str, Any]) -> str | None:
    """The server a logger would contact: MLflow's tracking URI, W&B's base URL unless offline."""
    uri = node.get("tracking_uri")
    if uri:
        return str(uri)
    if str(node.get("_target_", "")).endswith("WandbLogger") and not node.get("offline") and \
            os.environ.get("WANDB_MODE", "") not in _OFFLINE_MODES:
        return os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    return None


def _unreachable(url: str | None) -> str | None:
    """Why an http(s) server does not accept a connection within CONNECT_SECONDS, else None.
    (A tracker's client would retry for minutes; the run should not wait on it.)"""
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        return f"{parts.hostname}:{port} cannot be reached: {exc.strerror or exc}"
    return None


def _one_line(exc: BaseException) -> str:
    """An exception as one short line, any user:password@ of a URL hidden."""
    text = " ".join((str(exc) or type(exc).__name__).split("\n")[0].split())
    text = re.sub(r"://[^/\s@]+@", "://***@", text)
    return f"{type(exc).__name__}: {text[:200]}"

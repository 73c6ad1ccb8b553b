"""brittle's entry point: `python run.py [group=option ...] [-m]` (Hydra).

Composes the config from conf/, then runs (or resumes) every stage in the run directory that
Hydra chose (outputs/<overrides> or multirun/<overrides>). Errors the user can fix print one
line and exit with status 2; `debug=true` shows the full traceback instead.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from brittle.config import register_resolvers
from brittle.errors import BrittleError

register_resolvers()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v}
    try:
        from brittle.pipeline import run
        run(cfg, Path(hc.runtime.output_dir), choices)
    except Exception as exc:
        user_error = _user_error(exc)
        if user_error is None or cfg.get("debug", False):
            raise
        logging.getLogger("brittle").error("%s", user_error)
        print(f"error: {user_error}", file=sys.stderr, flush=True)
        sys.exit(2)


def _user_error(exc: BaseException | None) -> BrittleError | None:
    """The BrittleError behind `exc`, also when Hydra's instantiate wrapped it."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BrittleError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


if __name__ == "__main__":
    main()

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
    except BrittleError as exc:
        if cfg.get("debug", False):
            raise
        logging.getLogger("brittle").error("%s", exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

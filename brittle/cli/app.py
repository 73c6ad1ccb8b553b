"""The brittle Hydra app: `brittle ...`, `python -m brittle ...` and a checkout's
`python run.py ...` are this one app (same configs, groups, run directories, `--help`, `-m`
sweeps and launchers).

The command line is checked before Hydra starts (brittle/cli/validate.py); the job composes the
config, then runs (or resumes) every stage in the run directory Hydra chose (outputs/<overrides>
or multirun/<overrides>). Errors the user can fix, and faults of the
machine (full disk, read-only directory), print one line and exit with status 2; SIGTERM or
Ctrl-C ends the job with one line and status 128 + the signal; `debug=true` shows the full
traceback instead.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import cast

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from brittle.cli.configs import config_dir
from brittle.cli.resolvers import register_resolvers
from brittle.cli.validate import check_command_line
from brittle.runtime.errors import BrittleError
from brittle.runtime.faults import RESUME, Interrupted, environment_fault, signals_interrupt


def job(cfg: DictConfig) -> None:
    """One Hydra job: the pipeline on the composed config, user errors as one line."""
    hc = cast(DictConfig, HydraConfig.get())  # typed as HydraConf, a DictConfig at run time
    choices = {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v}
    job_num = OmegaConf.select(hc.job, "num", default=None)  # set in multirun jobs only
    if job_num is not None and cfg.device == "auto":
        cfg.device = gpu_for_job(int(job_num))
    run_dir = Path(hc.runtime.output_dir)
    fresh = not (run_dir / "run_spec.json").exists()   # this job made the directory's first record
    try:
        with signals_interrupt():
            from brittle.pipeline import run
            run(cfg, run_dir, choices)
    except Interrupted as stop:
        _fail(f"interrupted by {stop}; {RESUME}", 128 + stop.signum)
    except Exception as exc:
        user_error = user_error_of(exc) or environment_fault(exc, {"cache_dir": Path(cfg.cache_dir),
                                                                   "hydra.run.dir": run_dir})
        if user_error is None or cfg.get("debug", False):
            raise
        # bad input leaves nothing half-written behind: a directory this job started is removed
        removed = fresh and isinstance(user_error, BrittleError) and remove_unstarted_run(run_dir)
        _fail(str(user_error), 2, log_file=not removed)


def _fail(message: str, status: int, log_file: bool = True) -> None:
    """One `error:` line on stderr, once (the job's log file, when it can still be written, gets
    it too; the console handler does not, or the line would show twice), then exit."""
    record = logging.LogRecord("brittle", logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers if log_file else ():
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def remove_unstarted_run(run_dir: Path) -> bool:
    """Remove a run directory that holds only what starting a run writes (Hydra's `.hydra/`, the
    job's `*.log`, `run_spec.json`), so a run stopped by bad input leaves nothing to confuse a
    rerun; True when removed. A directory with anything else in it is left alone."""
    import shutil

    started = (".hydra", "run_spec.json")
    if (not run_dir.is_dir() or any(p.name not in started and p.suffix != ".log"
                                    for p in run_dir.iterdir())):
        return False
    for handler in logging.getLogger().handlers:   # the log file closes before its directory goes
        if isinstance(handler, logging.FileHandler):
            handler.close()
    shutil.rmtree(run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        run_dir.parent.rmdir()   # outputs/ or multirun/, when this run was all it held
    return not run_dir.exists()


def gpu_for_job(job_num: int, n_gpus: int | None = None) -> str:
    """On a multi-GPU node, jobs of a local sweep take GPUs round-robin (job i -> cuda:i mod n)."""
    if n_gpus is None:
        import torch
        n_gpus = torch.cuda.device_count()
    return f"cuda:{job_num % n_gpus}" if n_gpus > 1 else "auto"


def user_error_of(exc: BaseException | None) -> BrittleError | None:
    """The BrittleError behind `exc`, also when Hydra's instantiate wrapped it."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, BrittleError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def main() -> None:
    """The console script: check the command line, then hand it to Hydra. A reader that closes
    the pipe (`brittle --help | head`) ends it quietly, as a shell tool ends on SIGPIPE."""
    try:
        _main()
        sys.stdout.flush()
    except BrokenPipeError:
        import os
        # Python would flush the closed stdout again at exit and print a second error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + 13)   # 128 + SIGPIPE, a shell tool's status on a closed pipe


def _main() -> None:
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        # the text Hydra's --help prints (conf/config.yaml's help template is this one resolver),
        # without the second Hydra spends listing every config group for a template that omits them
        from brittle.cli.help import help_text
        print(help_text())
        return
    register_resolvers()
    # a log file on a full disk must not print a traceback per line: the failed write is reported
    logging.raiseExceptions = False
    problem = check_command_line(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    app = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(job)
    app()

"""Shared test helpers: Hydra composition of the real config, tiny-run overrides, data paths."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from brittle.cli.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
CIFAR_TGZ = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

register_resolvers()

# A whole run in seconds: one pretraining epoch, two targets, a 3-test bisection of 2 models.
TINY = [
    "backbone.epochs=1",
    "targets.n=2",
    "search.budget=2",
    "search.n_test=2",
    "search.max_support=16",
    "reference.n_models=1",
    "arch.recipe.epochs=4",
]


class DigitsModels:
    """The digits data, its retraining engine and the models the pipeline would hand a model-based
    scorer (trained into `base`/cache once)."""

    def __init__(self, base: Path):
        from brittle.api import build_engine, load_data
        self.base = base
        self.cfg = make_cfg(["arch.recipe.epochs=8"], cache_dir=base / "cache")
        self.data = load_data(self.cfg)
        self.engine = build_engine(self.cfg, self.data)

    def models_for(self, scorer):
        from brittle.api import scorer_models
        return scorer_models(self.cfg, self.engine, scorer, self.base)


def make_cfg(overrides: list[str], cache_dir: Path | None = None) -> DictConfig:
    extra = [f"cache_dir={cache_dir}"] if cache_dir is not None else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides) + extra)


def _brittle_child(argv: list[str], cwd: str, env: dict[str, str], out: str, err: str,
                   setup: str | None = None) -> None:
    """In a fresh process forked from the fork server: the console script's main() with argv
    (after `setup`, "module:function", when given: e.g. a fake GPU machine)."""
    import importlib
    import logging
    import sys

    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
    sys.stdout, sys.stderr = (open(1, "w", buffering=1, closefd=False),
                              open(2, "w", buffering=1, closefd=False))
    logging.root.handlers.clear()
    # a process started now would put PYTHONPATH first on its path (a user's own modules)
    sys.path[:0] = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if "OMP_NUM_THREADS" in env:
        import torch
        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    if setup is not None:
        module, function = setup.split(":")
        getattr(importlib.import_module(module), function)()
    sys.argv = ["brittle", *argv]
    from brittle.cli.app import main
    main()


_SERVER: list = []


def run_brittle(argv: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None,
                timeout: float = 300, setup: str | None = None) -> subprocess.CompletedProcess:
    """`brittle ARGV` as its own process, with its own working directory, environment, stdout,
    stderr and exit status, as the console script runs it. The process is forked from a server that
    imported brittle (torch, Hydra) once, so a test pays the checks and the run, not the imports."""
    import multiprocessing
    import tempfile

    if not _SERVER:
        ctx = multiprocessing.get_context("forkserver")
        # everything a run imports, so a test pays neither the imports nor Lightning's and lightly's
        ctx.set_forkserver_preload(["brittle.cli.app", "tests.helpers", "brittle.pipeline",
                                    "brittle.ssl.fit", "brittle.ssl.methods", "sklearn.svm",
                                    "pandas", "pyarrow.parquet"])
        _SERVER.append(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = f"{tmp}/out", f"{tmp}/err"
        args = (list(argv), str(cwd), dict(env or os.environ), out, err, setup)
        proc = _SERVER[0].Process(target=_brittle_child, args=args)
        proc.start()
        proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join()
        code = proc.exitcode if proc.exitcode is not None else -9
        return subprocess.CompletedProcess(["brittle", *argv], code, Path(out).read_text(),
                                           Path(err).read_text())


def image_folder(root: Path, n_per_class: int, size: int = 24,
                 classes=("ant", "bee", "cow")) -> Path:
    """A class-folder tree root/{train,test}/<class>/*.png of solid-colour images (one colour per
    class, a white line each): trivially separable classes."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_per_class), ("test", 2)):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                base = np.full((size, size, 3), 40 + 80 * c, np.uint8)
                base[rng.integers(0, size), :, :] = 255  # a little content per image
                Image.fromarray(base).save(root / split / cls / f"{i:05d}.png")
    return root

"""Pack the GPU check for a machine that has no package index and receives only a working tree
(`make gpu-pack`; the recipe is docs/gpu.md).

The GPU machine this check is written for has Python 3.12 with torch, Lightning, numpy, pandas,
pyarrow, scikit-learn, scipy, seaborn, timm and the rest of brittle's needs, but not Hydra,
OmegaConf, ANTLR's runtime or lightly. This script
1. downloads those as Python 3.12 wheels into `.whl/` (the versions this checkout is tested with;
   ANTLR's runtime is published as a source archive only, so it is built into a wheel here), and
   airbench, which only the check's airbench part imports (the `bench` extra; a source archive
   too, built into a wheel),
2. copies the CIFAR-10 class-folder tarball into `.gpu/`,
3. prints the one command that installs the wheels there and runs `bench/gpu_check.py`, and how
   to bring its results file back into bench/results/ and commit it.
Both folders are git-ignored; a tool that ships the working tree must be told to carry them.
`--verify` then runs that command here, in a new virtual environment holding only what the GPU
machine has (with this machine's torch), at `--smoke` size: the check of the pack itself.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WHEELS, DATA = ROOT / ".whl", ROOT / ".gpu"
# brittle's runtime needs that the GPU machine lacks (everything else it has)
MISSING_THERE = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "lightly")
# the check's own needs, not brittle's (pyproject's `bench` extra): built from their sources
CHECK_ONLY = ("airbench==0.1.8",)
# what the GPU machine has, for the --verify environment (torch: this machine's build)
THERE = ("torch==2.14.1", "torchvision==0.29.1", "pytorch-lightning==2.6.6", "numpy", "pandas",
         "pyarrow", "scikit-learn", "scipy", "seaborn", "matplotlib", "timm", "pillow", "filelock",
         "tabulate", "pyyaml", "tqdm", "packaging")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def download(pip: list[str]) -> list[Path]:
    """Python 3.12 wheels of MISSING_THERE, at this environment's versions, in .whl/."""
    if WHEELS.exists():
        shutil.rmtree(WHEELS)
    WHEELS.mkdir()
    for name in MISSING_THERE:
        pin = f"{name}=={md.version(name)}"
        fetched = subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:",
                                  "--python-version", "3.12", "--implementation", "cp",
                                  *[f"--platform={p}" for p in PLATFORMS],
                                  "-d", str(WHEELS), "-q", pin], capture_output=True, text=True)
        if fetched.returncode != 0:  # no wheel published (ANTLR's runtime): build a pure-Python one
            subprocess.run([*pip, "wheel", "--no-deps", "-w", str(WHEELS), "-q", pin], check=True)
    for pin in CHECK_ONLY:   # published as a source archive only
        subprocess.run([*pip, "wheel", "--no-deps", "--no-binary", ":all:", "-w", str(WHEELS),
                        "-q", pin], check=True)
    wheels = sorted(WHEELS.glob("*.whl"))
    impure = [w.name for w in wheels if not w.name.endswith("-none-any.whl")]
    expected = len(MISSING_THERE) + len(CHECK_ONLY)
    if impure or len(wheels) != expected:
        sys.exit(f"error: expected {expected} pure-Python wheels in {WHEELS}, got "
                 f"{[w.name for w in wheels]}")
    return wheels


def copy_data(tarball: Path) -> Path:
    if not tarball.is_file():
        sys.exit(f"error: CIFAR-10 not found at {tarball}; "
                 "set BRITTLE_CIFAR10 to the class-folder tarball")
    DATA.mkdir(exist_ok=True)
    target = DATA / tarball.name
    if not target.exists() or target.stat().st_size != tarball.stat().st_size:
        shutil.copyfile(tarball, target)
    return target


def command(data: Path, python: str = "python3", smoke: bool = False) -> str:
    """The one command to run in the checkout's root on the GPU machine (results under $OUT)."""
    rel = data.relative_to(ROOT)
    return (f"{python} -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "
            f"--upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site "
            f"BRITTLE_CIFAR10=$PWD/{rel} BRITTLE_CACHE=/tmp/brittle-cache PYTHONUNBUFFERED=1 && "
            f"{python} bench/gpu_check.py{' --smoke --seeds 1' if smoke else ''}")


def bring_back() -> str:
    """How the results file comes home: the check writes bench/results/<date>-<device>.json on
    the GPU machine and copies it into $OUT; it belongs in this checkout's bench/results/."""
    return ("bring the results back: copy $OUT/<date>-<device>.json (bench/results/ there) into "
            "this checkout's bench/results/, then\n"
            "  git add bench/results/<date>-<device>.json && "
            "git commit -m 'GPU check on <device>: figures'\n"
            "(docs/gpu.md; make bench-docs puts its figures into docs/benchmarks.md)")


def verify(data: Path) -> None:
    """The pack run as the GPU machine would run it, here, in a venv of only its packages."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        py = str(venv / "bin" / "python")
        subprocess.run([py, "-m", "pip", "install", "-q", *THERE], check=True)
        out = Path(tmp) / "out"
        out.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        site = Path(tmp) / "site"
        cmd = command(data, py, smoke=True).replace("/tmp/site", str(site))
        subprocess.run(["bash", "-c", cmd], cwd=ROOT, env={**env, "OUT": str(out)}, check=True)
        print((out / "gpu_check.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verify", action="store_true",
                        help="run the packed check here at --smoke size, in a venv of the "
                             "GPU machine's packages")
    args = parser.parse_args()
    default = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    tarball = Path(os.environ.get("BRITTLE_CIFAR10", str(default)))
    wheels = download([sys.executable, "-m", "pip"])
    data = copy_data(tarball)
    size = sum(p.stat().st_size for p in [*wheels, data]) / 2 ** 20
    print("packed (git-ignored; carry both):", *(str(p.relative_to(ROOT)) for p in wheels),
          str(data.relative_to(ROOT)), f"({size:.1f} MiB)", sep="\n  ")
    print("run in the checkout's root on the GPU machine (add --budget S or --parts a,b to the "
          "check; python3 bench/gpu_check.py --list shows the parts):")
    print(command(data))
    print(bring_back())
    if args.verify:
        verify(data)


if __name__ == "__main__":
    main()

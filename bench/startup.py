"""Benchmark: how long brittle's command line takes before any work, against a minimal Hydra
app's own `--help` on the same machine, side by side in one run.

Measured as wall time of fresh processes, the commands alternating `--rounds` times (median kept):
  hydra_help   a minimal Hydra app (one @hydra.main function, no config) with --help
  help         python run.py --help
  error        python run.py scorer.C=abc (a bad value: its one error line, exit status 2)
  startup      python run.py: from the process's start to the pipeline's first log line (the
               device line, before the first stage), read from the run's log timestamps
  torch        python -c "import torch": the floor of any run's start-up, as the device line
               needs torch (CUDA or not) and every stage after it trains or embeds with it
The last line: `startup_ratio=X` (the largest of help, error and startup over hydra_help; goal
<= 2), each ratio, the floor's ratio and `startup_above_torch` (startup - torch, seconds: what
brittle itself adds before its first stage). The figures also go to bench/results/startup.json
(bench/record.py; X there is `largest_ratio`). `--smoke`: one round, no warm-up.

    .venv/bin/python bench/startup.py [--rounds 5] [--smoke] [--out FILE]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.record import Record, add_arguments  # noqa: E402

PY = sys.executable
MINIMAL = '''import hydra


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    print(cfg)


main()
'''


def wall(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def startup(work: Path) -> float:
    """Seconds from spawning `python run.py` to its device line (the pipeline's first), stopped
    there."""
    out = work / "out"
    argv = [PY, str(ROOT / "run.py"), f"hydra.run.dir={out}", f"cache_dir={work / 'cache'}",
            "progress=false"]
    spawned = datetime.now()
    proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            lines = [ln for f in out.glob("*.log") for ln in f.read_text().splitlines()]
            first = next((ln for ln in lines if "] - device " in ln), None)
            if first:
                stamp = datetime.strptime(first[1:24], "%Y-%m-%d %H:%M:%S,%f")
                return (stamp - spawned).total_seconds()
            time.sleep(0.01)
        raise RuntimeError("python run.py ended without its device line "
                           f"(status {proc.returncode})")
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["rm", "-rf", str(out)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    add_arguments(parser)
    args = parser.parse_args()
    record = Record("startup", args)
    rounds = 1 if args.smoke else args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "minimal.py").write_text(MINIMAL)
        commands = {"hydra_help": lambda: wall([PY, "minimal.py", "--help"], work),
                    "help": lambda: wall([PY, str(ROOT / "run.py"), "--help"], work),
                    "error": lambda: wall([PY, str(ROOT / "run.py"), "scorer.C=abc"], work),
                    "startup": lambda: startup(work),
                    "torch": lambda: wall([PY, "-c", "import torch"], work)}
        for run in commands.values() if not args.smoke else ():  # warm the file cache once
            run()
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(rounds):
            for name, run in commands.items():
                times[name].append(run())
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in median.items():
        print(f"{name:<11} {t:6.2f} s  (runs: {', '.join(f'{x:.2f}' for x in times[name])})")
    ratios = {name: median[name] / median["hydra_help"] for name in ("help", "error", "startup")}
    floor = median["torch"] / median["hydra_help"]
    above = median["startup"] - median["torch"]
    print(f"startup_ratio={max(ratios.values()):.2f} "
          + " ".join(f"{k}_ratio={v:.2f}" for k, v in ratios.items())
          + f" torch_floor_ratio={floor:.2f} startup_above_torch={above:.2f}")
    record.add(**{f"{name}_seconds": t for name, t in median.items()}, runs=times,
               largest_ratio=max(ratios.values()), **{f"{k}_ratio": v for k, v in ratios.items()},
               torch_floor_ratio=floor, startup_above_torch=above)
    record.done()


if __name__ == "__main__":
    main()

"""The GPU check's runner: every part in its own process with its own time limit, within a
budget, into one results file.

Before a part starts, the runner checks what it needs (CIFAR-10, CUDA) and whether its
estimate fits what is left of --budget (the time already used counted); a part that cannot run
is skipped with its reason, printed and recorded. A part's process is stopped at its limit (or
at the budget's end); a part that fails is recorded with its error line and the next part runs.
The results file (bench/record.py's format: machine, date, commit, figures) is
bench/results/<date>-<device>.json, rewritten after every part, and copied into $OUT when set.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.gpu.common import ROOT, WORK_ENV, Context, Skip, cuda, device_info, find_cifar
from bench.gpu.parts import BY_NAME, PARTS, Part
from bench.record import RESULTS, Record, _plain, add_arguments

NOT_CHOSEN = "not in --parts"


def results_path(device: dict) -> Path:
    """bench/results/<date>-<device>.json, numbered when that day's file exists."""
    stem = f"{datetime.now(timezone.utc):%Y-%m-%d}-{device['slug']}"
    path, n = RESULTS / f"{stem}.json", 2
    while path.exists():
        path, n = RESULTS / f"{stem}-{n}.json", n + 1
    return path


def unmet(part: Part, has_cifar: bool, has_cuda: bool) -> str | None:
    if "cuda" in part.needs and not has_cuda:
        return f"needs a CUDA GPU, and there is none here ({part.what}: CUDA only)"
    if "cifar" in part.needs and not has_cifar:
        return "needs CIFAR-10; not found (set BRITTLE_CIFAR10 to the class-folder tarball)"
    return None


def run_part(part: Part, args: argparse.Namespace, limit: float, work: Path) -> dict:
    """The part in its own process (its own session, so its command lines stop with it)."""
    out = work / f"{part.name}.result.json"
    argv = [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--part", part.name,
            "--part-out", str(out), "--seeds", str(args.seeds)]
    argv += ["--smoke"] if args.smoke else []
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return {"error": f"stopped at its time limit ({limit:.0f} s)"}
    if out.exists():
        return json.loads(out.read_text())
    return {"error": f"its process exited with {proc.returncode} before writing its figures"}


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the part's process group, then SIGKILL if it has not ended in 15 s."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def child(args: argparse.Namespace) -> int:
    """One part, in this process: its figures, skip reason or error into --part-out."""
    part = BY_NAME[args.part]
    try:
        figures, line = part.function()(Context.from_env(args.smoke, args.seeds))
        result: dict = {"figures": figures, "line": line}
    except Skip as skip:
        result = {"skipped": str(skip)}
    except Exception as exc:   # recorded; the runner goes on with the next part
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    Path(args.part_out).write_text(json.dumps(result, default=_plain))
    return 0


def check(args: argparse.Namespace, chosen: list[str]) -> Record:
    """Every part in order, within the budget."""
    device = device_info()
    if args.out is None and not args.smoke:
        args.out = results_path(device)
    record = Record("gpu_check", args)
    record.data.update(device=device, budget_seconds=args.budget, parts={}, skipped={}, errors={})
    work = Path(tempfile.mkdtemp(prefix="brittle-gpu-check-"))
    os.environ[WORK_ENV] = str(work)
    os.environ.setdefault("BRITTLE_CACHE", str(work / "cache"))
    has_cifar, has_cuda, start = find_cifar() is not None, cuda(), time.monotonic()
    print(f"GPU check on {device['name']} (torch {device['torch']}, CUDA {device['cuda']}), "
          f"budget {args.budget:.0f} s, size {'smoke' if args.smoke else 'full'}", flush=True)
    left_out = [part.name for part in PARTS if part.name not in chosen]
    if left_out:
        print(f"skipped, {NOT_CHOSEN}: {', '.join(left_out)}", flush=True)
    try:
        for part in PARTS:
            left = args.budget - (time.monotonic() - start)
            estimate = part.estimate_for(args.smoke)
            reason = NOT_CHOSEN if part.name not in chosen else unmet(part, has_cifar, has_cuda)
            if reason is None and estimate > left:
                reason = (f"does not fit the budget: estimated {estimate:.0f} s, "
                          f"{max(left, 0):.0f} s of {args.budget:.0f} s left")
            entry = {"what": part.what, "estimate_seconds": estimate}
            if reason is None:
                entry["limit_seconds"] = limit = min(part.limit_for(args.smoke), left)
                began = time.monotonic()
                result = run_part(part, args, limit, work)
                entry["seconds"] = time.monotonic() - began
                reason = result.get("skipped")
            else:
                result = {}
            _note(record, part.name, entry, result, reason)
    finally:
        if args.keep:
            print(f"run directories and logs kept in {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    record.data["seconds"] = time.monotonic() - start
    return record


def _note(record: Record, name: str, entry: dict, result: dict, reason: str | None) -> None:
    """Print the part's line and record it (figures, status, reason or error)."""
    if reason is not None:
        entry.update(status="skipped", reason=reason)
        record.data["skipped"][name] = reason
        if reason != NOT_CHOSEN:   # those are listed once, at the start
            print(f"[{name}] skipped: {reason}", flush=True)
    elif "error" in result:
        entry.update(status="error", error=result["error"])
        record.data["errors"][name] = result["error"]
        print(f"[{name}] error: {result['error']}", flush=True)
    else:
        entry.update(status="ran", line=result["line"])
        if isinstance(result["figures"], dict) and "command" in result["figures"]:
            entry["command"] = result["figures"]["command"]
        print(f"[{name}] {result['line']}", flush=True)
    record.data["parts"][name] = entry
    record.add(**({name: result["figures"]} if "figures" in result else {}))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="GPU check: what brittle claims of a GPU, as users "
                                            "run it.")
    add_arguments(p)
    p.add_argument("--seeds", type=int, default=3, help="fast_recipe's models")
    p.add_argument("--budget", type=float, default=480.0,
                   help="seconds for the whole check (default 480: 8 minutes); a part whose "
                        "estimate no longer fits is skipped, saying so")
    p.add_argument("--parts", default=None,
                   help="comma-separated parts to run (default: all): " + ",".join(BY_NAME))
    p.add_argument("--list", action="store_true", help="list the parts with their estimates")
    p.add_argument("--keep", action="store_true", help="keep the work folder (run directories)")
    p.add_argument("--part", choices=list(BY_NAME), help=argparse.SUPPRESS)
    p.add_argument("--part-out", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.part:
        return child(args)
    if args.list:
        for part in PARTS:
            print(f"{part.name:<15} ~{part.estimate:4.0f} s on an H200 (limit {part.limit:.0f} s)"
                  f"  {part.what}")
        return 0
    chosen = list(BY_NAME) if args.parts is None else args.parts.split(",")
    unknown = sorted(set(chosen) - set(BY_NAME))
    if unknown:
        sys.exit(f"error: unknown parts {unknown}; the parts are {', '.join(BY_NAME)}")
    record = check(args, chosen)
    record.done()
    if os.environ.get("OUT"):   # a GPU machine hands back what is under $OUT
        shutil.copyfile(record.path, Path(os.environ["OUT"]) / record.path.name)
        print(f"copied to {Path(os.environ['OUT']) / record.path.name}", flush=True)
    ran = [n for n, e in record.data["parts"].items() if e["status"] == "ran"]
    print(f"ran {len(ran)} of {len(PARTS)} parts in {record.data['seconds']:.0f} s; skipped "
          f"{len(record.data['skipped'])}, errors {len(record.data['errors'])}", flush=True)
    return 0

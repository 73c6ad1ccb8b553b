"""Scale-out: sharded sweeps through the joblib launcher, Ray, Slurm config, concurrent cache."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from brittle.report.aggregate import aggregate
from tests.helpers import CONF, ROOT, TINY, run_brittle


def _run(args, timeout=600, fresh=False):
    """`brittle ARGS`, from the test's forkserver, or as a fresh `python run.py` (`fresh`: the
    joblib launcher's worker processes start from the parent's interpreter, as a user's would)."""
    if fresh:
        p = subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=timeout)
    else:
        p = run_brittle(list(args), ROOT, timeout=timeout)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout + p.stderr


@pytest.mark.heavy
def test_joblib_shards_equal_the_unsharded_run(tmp_path):
    common = [*TINY, "targets.n=2", f"cache_dir={tmp_path}/cache"]
    _run([*common, f"hydra.run.dir={tmp_path}/whole"])
    _run(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "targets.num_shards=2",
          "targets.shard=0,1", f"hydra.sweep.dir={tmp_path}/sharded", *common], fresh=True)
    summary, tidy = aggregate([tmp_path / "sharded"])
    assert len(summary) == 1 and summary["n_targets"].iloc[0] == 2
    whole = pd.read_parquet(tmp_path / "whole" / "support.parquet").sort_values("target")
    merged = tidy[["target", "label", "support", "n_models"]].sort_values("target")
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), merged.reset_index(drop=True))
    full, _ = aggregate([tmp_path / "whole"])
    assert summary["auc"].iloc[0] == pytest.approx(full["auc"].iloc[0])


@pytest.mark.heavy
def test_missing_and_duplicate_shards_are_reported(tmp_path, caplog):
    import shutil
    common = [*TINY, "targets.n=4", f"cache_dir={tmp_path}/cache", "targets.num_shards=3"]
    _run(["-m", "targets.shard=0,2", f"hydra.sweep.dir={tmp_path}/s", *common])
    job = next(p for p in (tmp_path / "s").iterdir() if "shard=0" in p.name)
    shutil.copytree(job, tmp_path / "s" / "copy_of_shard0")
    caplog.set_level("WARNING")
    summary, _ = aggregate([tmp_path / "s"])
    assert "missing shards [1] of 3" in caplog.text
    assert "duplicate shard 0" in caplog.text
    assert len(summary) == 1 and summary["shards_missing"].iloc[0] == 1


@pytest.mark.heavy
def test_two_processes_on_an_empty_cache_pretrain_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    args = [*TINY, "backbone.epochs=3", f"cache_dir={tmp_path}/cache"]
    with ThreadPoolExecutor(2) as pool:   # two processes at once, on one cache
        procs = list(pool.map(
            lambda i: run_brittle([*args, f"hydra.run.dir={tmp_path}/r{i}"], ROOT), range(2)))
    outs = [p.stdout + p.stderr for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][-2000:] + outs[1][-2000:]
    assert sum(o.count("computing pretrain") for o in outs) == 1
    assert sum(o.count("cache hit (after wait): pretrain") for o in outs) == 1
    assert len(list((tmp_path / "cache" / "pretrain").glob("[0-9a-f]*[0-9a-f]"))) == 1


def test_slurm_launcher_config_composes_with_its_submission_parameters():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=submitit",
                                                       "hydra.launcher.partition=a100"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "a100" and launcher.gpus_per_node == 1
    assert launcher.array_parallelism == 32 and launcher.timeout_min == 240
    # a preempted or timed-out job is requeued and resumes (conf/hydra/launcher/submitit.yaml)
    assert launcher.max_num_timeout == 10 and launcher.signal_delay_s == 120


def test_gpu_round_robin_for_local_sweeps():
    sys.path.insert(0, str(ROOT))
    from run import gpu_for_job
    assert [gpu_for_job(i, 4) for i in range(6)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert gpu_for_job(3, 1) == "auto" and gpu_for_job(3, 0) == "auto"


@pytest.mark.slow
def test_ray_launcher_local_sweep(tmp_path):
    out = _run(["-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
                "+hydra.launcher.ray.init.include_dashboard=false", "scorer=esvm,random",
                f"hydra.sweep.dir={tmp_path}/ray", f"cache_dir={tmp_path}/cache", *TINY],
               timeout=900)
    summary, _ = aggregate([tmp_path / "ray"])
    assert len(summary) == 2, out[-2000:]

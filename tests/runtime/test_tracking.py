"""Experiment tracking (brittle/runtime/tracking.py): what each logger wrote during a real TINY
run on digits, read back with the tracker's own reader and compared with the run's own records
(curve.csv of the pretraining, support.parquet, summary.json); logger=none writes nothing and
tracking changes no number; a tracker that cannot be reached is one warning line."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from brittle.pipeline import run
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import run_identity
from brittle.runtime.tracked_values import flat_params, summary_metrics
from brittle.runtime.tracking import Tracker
from tests.helpers import TINY, make_cfg, run_brittle

# two pretraining epochs (two points of the loss curve), kNN measured after each
RUN = [*TINY, "backbone.epochs=2", "backbone.knn_every=1", "progress=false"]


def _tracked(tmp_path: Path, monkeypatch, option: str, *extra: str) -> Path:
    """A TINY run with `logger=option` in tmp_path (also the working directory): its run dir."""
    monkeypatch.chdir(tmp_path)
    cfg = make_cfg([*RUN, f"logger={option}", *extra], cache_dir=tmp_path / "cache")
    run(cfg, tmp_path / "run")
    return tmp_path / "run"


def _records(tmp_path: Path) -> dict:
    """What the run itself wrote: the pretraining curve, the supports in row order, summary."""
    curve = pd.read_csv(next((tmp_path / "cache" / "pretrain").glob("*/curve.csv")))
    support = pd.read_parquet(tmp_path / "run" / "support.parquet")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    return {"loss": dict(zip(curve.epoch, curve.loss)), "knn": dict(zip(curve.epoch,
                                                                        curve.knn_accuracy)),
            "support": list(support.support), "n_models": list(support.n_models),
            "target": list(support.target), "summary": summary}


def _check(got: dict, want: dict, rel: float = 1e-6) -> None:
    """Tracked series {name: {step: value}} and final values against the run's records."""
    # curve.csv rounds losses to 6 decimals, accuracies to 4
    assert got["pretrain/loss"] == pytest.approx(want["loss"], abs=5e-6)
    assert got["pretrain/knn_accuracy"] == pytest.approx(want["knn"], abs=5e-5)
    steps = range(len(want["support"]))
    assert got["search/support"] == dict(zip(steps, map(float, want["support"])))
    assert got["search/n_models"] == dict(zip(steps, map(float, want["n_models"])))
    assert got["search/target"] == dict(zip(steps, map(float, want["target"])))
    for key in ("auc", "fraction_flipped", "n_targets", "reference_accuracy", "search_models"):
        assert got[key] == {0: pytest.approx(want["summary"][key], rel=rel)}, key
    assert got["score_cost/seconds"][0] == pytest.approx(want["summary"]["score_cost"]["seconds"],
                                                         rel=rel)


def test_csv_writes_the_config_curves_supports_and_summary(tmp_path, monkeypatch):
    run_dir = _tracked(tmp_path, monkeypatch, "csv")
    rows = pd.read_csv(run_dir / "tracking/csv/version_0/metrics.csv")
    got = {c: {int(s): float(v) for s, v in zip(rows.step, rows[c]) if not np.isnan(v)}
           for c in rows.columns if c != "step"}
    _check(got, _records(tmp_path))
    params = yaml.safe_load((run_dir / "tracking/csv/version_0/hparams.yaml").read_text())
    assert params["dataset.name"] == "digits" and params["search.budget"] == 2
    assert params["backbone.epochs"] == 2 and not any(k.startswith("logger") for k in params)
    # a second run on the same cache: its pretraining is a cache hit, so no curve is tracked
    run(make_cfg([*RUN, "logger=csv"], cache_dir=tmp_path / "cache"), tmp_path / "again")
    again = pd.read_csv(tmp_path / "again/tracking/csv/version_0/metrics.csv")
    assert "pretrain/loss" not in again.columns and list(again["search/support"].dropna()) == \
        list(map(float, _records(tmp_path)["support"]))


def test_none_writes_no_tracker_file_and_tracking_changes_no_number(tmp_path, monkeypatch):
    tracked = tmp_path / "tracked"
    tracked.mkdir()
    _tracked(tracked, monkeypatch, "csv")
    base = tmp_path / "none"
    base.mkdir()
    plain = _tracked(base, monkeypatch, "none")
    assert sorted(p.name for p in base.iterdir()) == ["cache", "run"]   # nothing in the cwd
    assert sorted(p.name for p in plain.iterdir()) == sorted(
        p.name for p in (tracked / "run").iterdir() if p.name != "tracking")
    assert not list(plain.rglob("*tfevents*")) and not list(base.rglob("metrics.csv"))
    # the same run: identity, cache keys, weights and supports
    assert (plain / "run_spec.json").read_text() == (tracked / "run/run_spec.json").read_text()
    [ours] = (base / "cache/pretrain").glob("*/backbone.pt")
    [theirs] = (tracked / "cache/pretrain").glob("*/backbone.pt")
    assert ours.parent.name == theirs.parent.name
    a, b = torch.load(ours), torch.load(theirs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _records(base)["support"] == _records(tracked)["support"]
    assert _records(base)["summary"]["auc"] == _records(tracked)["summary"]["auc"]


def test_tensorboard_event_files_hold_the_curves_supports_and_hparams(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run_dir = _tracked(tmp_path, monkeypatch, "tensorboard")
    events = EventAccumulator(str(run_dir / "tracking/tensorboard/version_0"))
    events.Reload()
    got = {tag: {e.step: e.value for e in events.Scalars(tag)}
           for tag in events.Tags()["scalars"]}
    _check(got, _records(tmp_path), rel=1e-6)   # float32 on disk
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["dataset.name"].string_value == "digits"
    assert hparams["search.budget"].number_value == 2


def test_mlflow_file_store_holds_a_finished_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = _tracked(tmp_path, monkeypatch, "mlflow")
    client = MlflowClient(f"file:{run_dir / 'tracking/mlruns'}")
    [found] = client.search_runs([client.get_experiment_by_name("brittle").experiment_id])
    assert found.info.status == "FINISHED" and found.info.run_name == "run"
    assert found.data.params["dataset.name"] == "digits"
    assert found.data.params["search.max_support"] == "16"
    got = {key: {m.step: m.value for m in client.get_metric_history(found.info.run_id, key)}
           for key in found.data.metrics}
    _check(got, _records(tmp_path))


def _wandb_records(path: Path):
    """The records of a W&B offline run file (run-*.wandb: a header, then 32 KiB blocks of
    records, each checksum, length, type and a piece of a protobuf Record)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (length, kind) == (0, 0):   # a block's padding
            pos += left
            continue
        pending, pos = pending + data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):   # a whole record, or its last piece
            yield wandb_internal_pb2.Record.FromString(pending)
            pending = b""


def _key(item) -> str:
    """A W&B record item's name (one with a `/` is stored as its parts)."""
    return item.key or "/".join(item.nested_key)


def test_wandb_offline_run_holds_the_config_and_history(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    run_dir = _tracked(tmp_path, monkeypatch, "wandb", "logger.offline=true")
    [path] = (run_dir / "tracking/wandb").glob("offline-run-*/run-*.wandb")
    config, got = {}, {}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        if kind == "history":
            item = {_key(i): json.loads(i.value_json) for i in record.history.item}
            step = item.pop("trainer/global_step", None)   # W&B's own rows have none
            for key, value in item.items():
                got.setdefault(key, {})[step] = value
    assert config["dataset.name"] == "digits" and config["search.n_test"] == 2
    _check(got, _records(tmp_path))


def test_an_unreachable_tracker_costs_one_warning_line(tmp_path, monkeypatch, caplog):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://someone:s3cret@127.0.0.1:9")
    with caplog.at_level("WARNING"):
        run_dir = _tracked(tmp_path, monkeypatch, "mlflow")
    [line] = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR", "CRITICAL")]
    assert "127.0.0.1:9 cannot be reached" in line.getMessage() and "untracked" in line.getMessage()
    assert "s3cret" not in caplog.text
    assert (run_dir / "summary.json").is_file() and not (run_dir / "tracking").exists()


def test_no_credential_is_logged(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "key-0123456789abcdef")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pw-0123456789abcdef")
    run_dir = _tracked(tmp_path, monkeypatch, "csv")
    for path in (run_dir / "tracking").rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            assert b"0123456789abcdef" not in text, path
    # a credential-like setting anywhere in a config is left out of the logged parameters
    from omegaconf import OmegaConf
    cfg = OmegaConf.create({"a": {"api_key": "k", "hf_token": "t", "n": 1}, "password": "p",
                            "hydra": {"x": 1}, "logger": {"_target_": "x"}, "b": [1, 2]})
    assert flat_params(cfg) == {"a.n": 1, "b": "[1, 2]"}


def test_a_credential_in_the_logger_settings_is_one_error(tmp_path):
    cfg = make_cfg(["logger=wandb", "+logger.api_key=abc"])
    with pytest.raises(BrittleError, match=r"^logger.api_key: credentials come from the "):
        Tracker.of(cfg, tmp_path)


def test_a_missing_tracker_package_is_one_line_naming_the_extra(monkeypatch):
    import importlib.util

    from brittle.cli.validate import check_command_line
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    assert check_command_line(["logger=mlflow"]) == (
        "logger=mlflow needs the mlflow package: pip install 'brittle[mlflow]'")
    with pytest.raises(BrittleError, match=r"brittle\[mlflow\]"):
        Tracker.of(make_cfg(["logger=mlflow"]), Path("."))


def test_the_tracker_is_no_part_of_a_runs_identity_or_directory_name():
    from brittle.cli.resolvers import execution_keys
    plain = run_identity(make_cfg([]))
    for option in ("csv", "tensorboard", "mlflow", "wandb"):
        assert run_identity(make_cfg([f"logger={option}"])) == plain
    assert {"logger", "logger.offline", "logger.save_dir", "logger.tracking_uri",
            "logger.project"} <= set(execution_keys())


def test_summary_metrics_are_its_numbers_by_name():
    summary = {"auc": 0.25, "auc_ci": [0.1, 0.4], "median_support": ">128", "lds": None,
               "score_cost": {"seconds": 2.0, "backend": "cpu"}, "n_targets": 10,
               "cdf": [[1, 0.5]], "search": {"budget": 7}, "flag": True}
    assert summary_metrics(summary) == {"auc": 0.25, "auc_ci/low": 0.1, "auc_ci/high": 0.4,
                                        "score_cost/seconds": 2.0, "n_targets": 10.0}


@pytest.mark.heavy
def test_a_sweep_tracks_one_run_per_job(tmp_path):
    p = run_brittle(["-m", "logger=csv", "seed=0,1", *RUN, f"cache_dir={tmp_path / 'cache'}",
                     f"hydra.sweep.dir={tmp_path / 'multirun'}"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    jobs = sorted(d for d in (tmp_path / "multirun").iterdir() if (d / "summary.json").is_file())
    seeds = []
    for job in jobs:
        rows = pd.read_csv(job / "tracking/csv/version_0/metrics.csv")
        params = yaml.safe_load((job / "tracking/csv/version_0/hparams.yaml").read_text())
        seeds.append(params["seed"])
        assert rows["pretrain/loss"].notna().sum() == 2   # each job pretrains its own seed
        support = pd.read_parquet(job / "support.parquet").support
        assert list(rows["search/support"].dropna()) == list(map(float, support))
    assert sorted(seeds) == [0, 1]

"""Seconds per model remembered across runs: one record per engine and device in the cache."""
from __future__ import annotations

import json
import logging
import time

import pytest
import torch

from brittle.runtime.timings import ModelClock, hours


def test_a_clock_remembers_seconds_per_model_for_its_engine_and_device(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    clock = ModelClock(tmp_path, "engineA", torch.device("cpu"), planned=40)
    assert clock.known is None
    with clock.timing(2):
        time.sleep(0.2)
    with clock.timing(2):
        time.sleep(0.2)
    assert "first 2 models: 0.1" in caplog.text and "at most 40 models ~ 4 s" in caplog.text
    clock.save()
    record = json.loads((tmp_path / "timings.json").read_text())
    assert record["engineA@cpu"]["models"] == 4
    assert record["engineA@cpu"]["seconds_per_model"] == pytest.approx(0.1, abs=0.03)
    assert ModelClock(tmp_path, "engineA",
                      torch.device("cpu")).known == pytest.approx(0.1, abs=0.03)
    assert ModelClock(tmp_path, "engineB", torch.device("cpu")).known is None   # another engine
    # a second engine's record joins the first's, it does not replace it
    other = ModelClock(tmp_path, "engineB", torch.device("cpu"))
    with other.timing(1):
        pass
    other.save()
    saved = json.loads((tmp_path / "timings.json").read_text())
    assert set(saved) == {"engineA@cpu", "engineB@cpu"}


def test_a_clock_that_timed_nothing_writes_nothing(tmp_path):
    ModelClock(tmp_path, "engineA", torch.device("cpu")).save()
    assert not (tmp_path / "timings.json").exists()


@pytest.mark.parametrize("seconds,shown", [(40, "40 s"), (119, "119 s"), (600, "10 min"),
                                           (5400, "1.5 h"), (36000, "10.0 h")])
def test_hours(seconds, shown):
    assert hours(seconds) == shown

"""Device resolution without a GPU: a cuda:N index checked against the visible GPUs, the current
CUDA device set at the start of a run, and a warning (not a silent CPU run) when NVIDIA GPUs are
present but this torch cannot use them. CUDA is mocked: these are CPU tests of the GPU paths."""
from __future__ import annotations

import logging

import pytest
import torch

from brittle.runtime import execution
from brittle.runtime.errors import BrittleError


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_a_cuda_index_beyond_the_visible_gpus_is_refused(two_gpus):
    assert execution.resolve_device("cuda:1") == torch.device("cuda:1")
    assert execution.resolve_device("auto") == torch.device("cuda")
    with pytest.raises(BrittleError, match=r"device=cuda:2 but 2 GPUs are visible; use cuda:0 \.\. cuda:1"):
        execution.resolve_device("cuda:2")


def test_the_run_device_becomes_the_current_device(two_gpus, monkeypatch, caplog):
    current: list = []
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: "Mock GPU")
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with caplog.at_level(logging.INFO, logger="brittle.runtime.execution"):
        execution.activate(torch.device("cuda:1"))
    assert current == [torch.device("cuda:1")] and torch.backends.cudnn.benchmark
    assert "device cuda:1 (Mock GPU)" in caplog.text and f"CUDA {torch.version.cuda}" in caplog.text


def test_unusable_nvidia_gpus_are_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(execution, "nvidia_gpus_present", lambda: True)
    with caplog.at_level(logging.WARNING, logger="brittle.runtime.execution"):
        assert execution.resolve_device("auto") == torch.device("cpu")
    assert "NVIDIA GPUs are present but this torch" in caplog.text and "runs on the CPU" in caplog.text
    caplog.clear()
    monkeypatch.setattr(execution, "nvidia_gpus_present", lambda: False)
    with caplog.at_level(logging.WARNING, logger="brittle.runtime.execution"):
        execution.resolve_device("auto")
    assert caplog.text == ""  # a machine without NVIDIA GPUs runs on the CPU quietly


def test_rank_prepares_the_scorer_on_the_device_it_is_given():
    """api.rank scores where it is told (the GPU check measures ESVM on the GPU through it)."""
    import numpy as np

    from brittle.api import rank
    from brittle.scorers.distance import Distance

    seen: list = []

    class Recording(Distance):
        def prepare(self, train, models, device):
            seen.append(device)
            super().prepare(train, models, torch.device("cpu"))

    rng = np.random.default_rng(0)
    train, labels = rng.normal(size=(40, 4)).astype(np.float32), np.repeat(np.arange(2), 20)
    queries = train[:3]
    top = rank(Recording(), train, labels, queries, labels[:3], k=5, device="cuda:1")
    assert seen == [torch.device("cuda:1")] and top.shape == (3, 5)
    rank(Recording(), train, labels, queries, labels[:3], k=5)
    assert seen[-1] == torch.device("cpu")

"""Device resolution without a GPU: a cuda:N index checked against the visible GPUs, the current
CUDA device set at the start of a run, and a warning (not a silent CPU run) when NVIDIA GPUs are
present but this torch cannot use them. CUDA is mocked: these are CPU tests of the GPU paths."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from brittle.runtime import execution
from brittle.runtime.errors import BrittleError


@pytest.fixture
def two_gpus(monkeypatch):
    from tests.fake_cuda import install
    return install(monkeypatch, 2)


def test_the_fake_refuses_what_torch_refuses(two_gpus):
    """The fake's set_device fails exactly as torch's own does on an index-less CUDA device."""
    import inspect

    real = inspect.getmodule(torch.cuda.device).set_device  # torch's function, not the patched name
    with pytest.raises(ValueError) as theirs:
        real(torch.device("cuda"))
    with pytest.raises(ValueError) as ours:
        torch.cuda.set_device(torch.device("cuda"))
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        torch.cuda.set_device(2)
    torch.cuda.set_device("cuda:1")
    assert torch.cuda.current_device() == 1 and torch.cuda.get_device_name("cuda") == "Fake GPU 1"


def test_devices_always_carry_an_index(two_gpus):
    """`auto` and `cuda` name the current GPU; an index beyond the visible GPUs is refused."""
    assert execution.resolve_device("cuda:1") == torch.device("cuda:1")
    assert execution.resolve_device("auto") == torch.device("cuda:0")
    assert execution.resolve_device("cuda") == torch.device("cuda:0")
    torch.cuda.set_device(1)
    assert execution.resolve_device("auto") == torch.device("cuda:1")
    assert execution.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(BrittleError, match=r"device=cuda:2 but 2 GPUs are visible; use "
                                           r"cuda:0 \.\. cuda:1"):
        execution.resolve_device("cuda:2")
    with pytest.raises(BrittleError,
                       match=r"device=cudax is not valid; use auto, cpu, cuda or cuda:N"):
        execution.resolve_device("cudax")


@pytest.mark.parametrize("want", ["auto", "cuda", "cuda:1"])
def test_the_run_device_becomes_the_current_device(two_gpus, monkeypatch, caplog, want):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    device = execution.resolve_device(want)
    with caplog.at_level(logging.INFO, logger="brittle.runtime.execution"):
        execution.activate(device)
    index = 1 if want == "cuda:1" else 0
    assert ("set_device", index) in two_gpus.calls and torch.cuda.current_device() == index
    assert torch.backends.cudnn.benchmark
    assert (f"device cuda:{index} (Fake GPU {index})" in caplog.text
            and f"CUDA {torch.version.cuda}" in caplog.text)


@pytest.mark.parametrize("device,index", [("auto", 0), ("cuda", 0), ("cuda:1", 1)])
def test_the_command_line_reaches_its_first_stage_on_a_gpu(device, index, tmp_path):
    """The default job's whole command line on a (fake) two-GPU machine: the check, Hydra, the
    pipeline's start-up (device, activate, run directory), up to the first stage."""
    from tests.helpers import run_brittle
    p = run_brittle([f"device={device}", f"hydra.run.dir={tmp_path}/run",
                     f"cache_dir={tmp_path}/cache"],
                    setup="tests.fake_cuda:two_gpus_to_first_stage", timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"first stage: device=cuda:{index} current={index}" in p.stdout, \
        p.stdout + p.stderr[-3000:]
    assert f"('set_device', {index})" in p.stdout and "Traceback" not in p.stderr


def test_python_run_py_reaches_its_first_stage_on_a_gpu(tmp_path):
    """The checkout's `python run.py` itself (a fresh interpreter, the user's entry point)."""
    import subprocess
    import sys

    from tests.helpers import ROOT
    code = ("import runpy, sys\nfrom tests.fake_cuda import two_gpus_to_first_stage\n"
            "two_gpus_to_first_stage()\nsys.argv = ['run.py', *sys.argv[1:]]\n"
            "runpy.run_path('run.py', run_name='__main__')\n")
    p = subprocess.run([sys.executable, "-c", code, f"hydra.run.dir={tmp_path}/run",
                        f"cache_dir={tmp_path}/cache"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "first stage: device=cuda:0 current=0" in p.stdout, p.stdout + p.stderr[-3000:]


def test_sweep_jobs_take_gpus_round_robin():
    from brittle.cli.app import gpu_for_job
    assert [gpu_for_job(j, 2) for j in range(3)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert gpu_for_job(3, 1) == "auto"


def test_unusable_nvidia_gpus_are_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(execution, "nvidia_gpus_present", lambda: True)
    with caplog.at_level(logging.WARNING, logger="brittle.runtime.execution"):
        assert execution.resolve_device("auto") == torch.device("cpu")
    assert ("NVIDIA GPUs are present but this torch" in caplog.text
            and "runs on the CPU" in caplog.text)
    caplog.clear()
    monkeypatch.setattr(execution, "nvidia_gpus_present", lambda: False)
    with caplog.at_level(logging.WARNING, logger="brittle.runtime.execution"):
        execution.resolve_device("auto")
    assert caplog.text == ""  # a machine without NVIDIA GPUs runs on the CPU quietly


def test_rank_prepares_the_scorer_on_the_device_it_is_given(two_gpus):
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
    rank(Recording(), train, labels, queries, labels[:3], k=5, device="cuda")
    assert seen[-1] == torch.device("cuda:0")  # never an index-less CUDA device
    rank(Recording(), train, labels, queries, labels[:3], k=5)
    assert seen[-1] == torch.device("cpu")


class _FakeCuLinearSVC:
    """cuML's LinearSVC as far as brittle uses it (no n_iter_, as cuML), solved by liblinear to a
    tight tolerance; `scale` < 1 returns a hyperplane short of the optimum (an unconverged fit)."""
    made: list = []
    scale = 1.0

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        _FakeCuLinearSVC.made.append(self)

    def fit(self, x, y):
        from sklearn.svm import LinearSVC
        self.inputs = (x, y)
        ref = LinearSVC(C=self.kwargs["C"], class_weight="balanced", loss="squared_hinge",
                        tol=1e-10, max_iter=100_000,
                        random_state=0).fit(np.asarray(x, np.float64), np.asarray(y))
        self.coef_ = (self.scale * ref.coef_).astype(np.float32)
        self.intercept_ = (self.scale * ref.intercept_).astype(np.float32)
        return self


@pytest.fixture
def fake_cuml(monkeypatch):
    import sys
    import types

    from brittle.scorers.esvm import scorer as esvm
    module, svm = types.ModuleType("cuml"), types.ModuleType("cuml.svm")
    svm.LinearSVC = _FakeCuLinearSVC
    module.svm = svm
    monkeypatch.setitem(sys.modules, "cuml", module)
    monkeypatch.setitem(sys.modules, "cuml.svm", svm)
    monkeypatch.setattr(esvm, "cuml_available", lambda: True)
    _FakeCuLinearSVC.made, _FakeCuLinearSVC.scale = [], 1.0
    return _FakeCuLinearSVC


def _esvm_problem():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 16)), rng.normal(size=(60, 16)) + 0.3


def test_cuml_fits_on_device_tensors_with_numpy_output(fake_cuml):
    """Each fit gets the problem as tensors already on the scorer's device (numpy input would be
    uploaded again for every target) and asks for numpy output; its decisions are liblinear's."""
    from brittle.scorers.esvm.scorer import ExemplarSVM
    queries, pool = _esvm_problem()
    svm = ExemplarSVM(backend="cuml")
    got = svm.decisions(queries, pool, pool)
    ref = ExemplarSVM(backend="sklearn", tol=1e-10, max_iter=100_000).decisions(queries, pool, pool)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)
    assert len(fake_cuml.made) == len(queries)
    for fit in fake_cuml.made:
        x, y = fit.inputs
        assert isinstance(x, torch.Tensor) and x.device == svm.device and x.shape == (61, 16)
        assert isinstance(y, torch.Tensor) and float(y[0]) == 1.0 and float(y[1:].sum()) == 0.0
        assert fit.kwargs["output_type"] == "numpy" and fit.kwargs["penalized_intercept"] is True
    assert svm.not_converged == 0


def test_cuml_fits_short_of_the_optimum_count_as_not_converged(fake_cuml):
    """cuML has no n_iter_: convergence is judged by the relative primal gradient at its answer."""
    from brittle.scorers.esvm.newton import relative_gradient
    from brittle.scorers.esvm.scorer import ExemplarSVM
    queries, pool = _esvm_problem()
    fake_cuml.scale = 0.5
    svm = ExemplarSVM(backend="cuml")
    svm.decisions(queries, pool, pool)
    assert svm.not_converged == len(queries)
    # the rule itself: 1 at w = 0 by definition, ~0 at liblinear's tight optimum
    q, n = torch.as_tensor(queries[:1]), torch.as_tensor(pool)
    assert float(relative_gradient(torch.zeros(1, 17, dtype=torch.float64), q, n,
                                   0.1)[0]) == pytest.approx(1.0)
    from sklearn.svm import LinearSVC
    x = np.concatenate([queries[:1], pool])
    y = np.r_[1, np.zeros(len(pool), dtype=int)]
    ref = LinearSVC(C=0.1, class_weight="balanced", tol=1e-12, max_iter=1_000_000,
                    random_state=0).fit(x, y)
    w = torch.as_tensor(np.r_[ref.coef_[0], ref.intercept_])[None, :]
    assert float(relative_gradient(w, q, n, 0.1)[0]) < 1e-4

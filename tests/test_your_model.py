"""find_supports: brittle's searches for a model trained by the user's own function, here a
scikit-learn classifier on digits: supports found, a killed search resumed from its directory,
lockstep (a batched function) and one by one giving the same supports, the checks, and one line
for each bad input."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

from brittle.api import TrainingJob, find_supports, rank
from brittle.runtime.errors import BrittleError
from brittle.scorers.distance import Distance

SETTINGS = {"budget": 3, "n_test": 3, "max_support": 128}


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.2,
                                                        random_state=0, stratify=y)
    targets = np.array([3, 11, 20, 42])
    topk = rank(Distance("l2"), x_train, y_train, x_test[targets], y_test[targets], targets,
                k=128)
    return x_train, y_train, x_test, y_test, targets, topk


class Trainer:
    """The user's function: a linear classifier on the job's training set, its margin on the
    target. Counts calls, and can be killed after a number of them."""

    def __init__(self, data, kill_after: int | None = None):
        self.x, _, self.xt, self.yt = data[:4]
        self.calls, self.kill_after = 0, kill_after

    def __call__(self, job: TrainingJob) -> float:
        if self.kill_after is not None and self.calls >= self.kill_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        model = SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=15, tol=None,
                              random_state=job.seed32)
        model.fit(self.x[job.train_indices], job.labels[job.train_indices])
        scores = model.decision_function(self.xt[job.target:job.target + 1])[0]
        label = self.yt[job.target]
        return float(scores[label] - np.delete(scores, label).max())

    def batch(self, jobs: list[TrainingJob]) -> list[float]:
        return [self(job) for job in jobs]


def _find(data, fn, **kwargs):
    x, y, _, yt, targets, topk = data
    return find_supports(fn, targets, y, yt[targets], rankings=topk, **{**SETTINGS, **kwargs})


def test_supports_of_a_scikit_learn_model(digits, tmp_path):
    found = _find(digits, Trainer(digits), directory=tmp_path)
    table = found.table
    assert list(table.columns) == ["target", "label", "support", "n_models"]
    assert (table["support"] >= 0).any() and table["n_models"].sum() == found.trained
    assert 0 < found.headline["auc"] <= 1 and found.cdf[-1][0] == 128
    assert (tmp_path / "tests.jsonl").exists()
    # rerun: everything is in the log
    again = _find(digits, Trainer(digits), directory=tmp_path)
    assert again.trained == 0 and again.table.equals(table)


def test_a_killed_search_resumes_from_its_directory(digits, tmp_path):
    whole = _find(digits, Trainer(digits), directory=tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        _find(digits, Trainer(digits, kill_after=whole.trained - 5), directory=tmp_path / "cut")
    fn = Trainer(digits)
    resumed = _find(digits, fn, directory=tmp_path / "cut")
    assert resumed.table.equals(whole.table) and 0 < fn.calls < whole.trained


def test_lockstep_and_one_by_one_give_the_same_supports(digits):
    fn = Trainer(digits)
    one = _find(digits, fn)
    both = _find(digits, Trainer(digits).batch, batched=True)
    assert both.table.equals(one.table)


def test_mislabel_with_checks(digits):
    x, y, _, yt, targets, topk = digits
    flips = (yt[targets] + 1) % 10
    found = find_supports(Trainer(digits), targets, y, yt[targets], rankings=topk,
                          task="mislabel", flip_classes=flips, verify=3, refine_budget=2,
                          **SETTINGS)
    assert {"flip_class", "holds", "refined_support"} <= set(found.table.columns)
    assert found.checks is not None and found.checks["n_found"] == (found.table.support >= 0).sum()


@pytest.mark.parametrize("answer,message", [
    ("yes", "train_fn returned 'yes' for the job of target 3"),
    (float("nan"), r"return a bool \(still classified correctly\) or a finite float margin")])
def test_a_bad_answer_is_one_line(digits, answer, message):
    with pytest.raises(BrittleError, match=message):
        _find(digits, lambda job: answer)


def test_bad_inputs_are_one_line(digits, tmp_path):
    x, y, _, yt, targets, topk = digits
    with pytest.raises(BrittleError, match=r"returned 1 answers for \d+ jobs"):
        _find(digits, lambda jobs: [1.0], batched=True)
    with pytest.raises(BrittleError, match="needs rankings .* or scores"):
        find_supports(Trainer(digits), targets, y, yt[targets], **SETTINGS)
    with pytest.raises(BrittleError, match="rankings have shape"):
        find_supports(Trainer(digits), targets, y, yt[targets], rankings=topk[:, :10], **SETTINGS)
    with pytest.raises(BrittleError, match="needs flip_classes"):
        find_supports(Trainer(digits), targets, y, yt[targets], rankings=topk, task="mislabel",
                      **SETTINGS)
    _find(digits, Trainer(digits), directory=tmp_path)
    with pytest.raises(BrittleError, match="holds the logs of other inputs"):
        _find(digits, Trainer(digits), directory=tmp_path, seed=1)


def test_the_same_network_and_loop_run_from_the_command_line(tmp_path):
    """docs/your-model.md's my_model.py as arch=custom and trainer=custom: a whole brittle run
    (and one error line when the loop cannot be imported)."""
    import json
    import os

    from tests.helpers import ROOT, TINY, run_brittle
    from tests.test_docs import page_modules

    page_modules((ROOT / "docs" / "your-model.md").read_text(), tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    common = ["arch=custom", "arch.model._target_=my_model.Net", "trainer=custom",
              f"cache_dir={tmp_path / 'cache'}", *[o for o in TINY if not o.startswith("arch.")]]
    p = run_brittle([*common, "trainer.fit=my_model.fit", f"hydra.run.dir={tmp_path / 'run'}"],
                    env=env)
    assert p.returncode == 0, p.stderr[-1500:]
    names = json.loads((tmp_path / "run" / "summary.json").read_text())["names"]
    assert names["arch"] == "custom" and names["trainer"] == "custom"
    p = run_brittle([*common, "trainer.fit=my_model.nosuch", f"hydra.run.dir={tmp_path / 'x'}"],
                    env=env)
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode != 0 and len(errors) == 1 and "trainer.fit=my_model.nosuch" in errors[0]

"""scorer=precomputed through the real command line: an ESVM run evaluated again from its run
directory, from an .npz of its ranking and from an .npz of scores that order the same images the
same way reproduces its supports and tests exactly (and its LDS from its saved attributions); every
bad file is one error line."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from brittle.scorers.base import TargetSet, TrainSet
from brittle.scorers.precomputed import Precomputed
from tests.helpers import TINY, run_brittle

RUN = [*TINY, "targets.n=3", "progress=false"]
LDS = ("eval=lds", "eval.n_models=12")
N_TRAIN, N_TEST, K = 1437, 360, 16   # digits' split; K = TINY's search.max_support


def _brittle(tmp, name: str, *args: str):
    done = run_brittle([f"hydra.run.dir={tmp}/{name}", f"cache_dir={tmp}/cache", *RUN, *args])
    return done


@pytest.fixture(scope="module")
def esvm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("precomputed")
    done = _brittle(tmp, "esvm", "scorer=esvm", *LDS)
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp


def _same_search(a, b) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(a / "support.parquet"),
                                  pd.read_parquet(b / "support.parquet"))
    pd.testing.assert_frame_equal(pd.read_parquet(a / "tests.parquet").drop(columns="seconds"),
                                  pd.read_parquet(b / "tests.parquet").drop(columns="seconds"))


def test_an_esvm_run_evaluated_again_from_its_files(esvm):
    run = esvm / "esvm"
    targets, topk = np.load(run / "targets.npy"), np.load(run / "topk.npy")
    ranked = np.zeros((len(targets), N_TRAIN))
    # K minus the position, 0 elsewhere
    ranked[np.arange(len(targets))[:, None], topk] = K - np.arange(K)
    np.savez(esvm / "topk.npz", targets=targets, topk=topk)
    np.savez(esvm / "scores.npz", targets=targets[::-1], scores=ranked[::-1],
             ordering="official")  # any row order
    sources = {"dir": run, "topk": esvm / "topk.npz", "scores": esvm / "scores.npz"}
    for name, source in sources.items():
        extra = (*LDS, "scorer.lds_sparsity=0.05") if name == "dir" else ()
        done = _brittle(esvm, name, "scorer=precomputed", f"scorer.path={source}", *extra)
        assert done.returncode == 0, (name, done.stderr[-2000:])
        assert np.array_equal(np.load(esvm / name / "targets.npy"), targets)
        _same_search(run, esvm / name)
    # the run directory's saved attributions give the ESVM run's LDS, target by target
    pd.testing.assert_frame_equal(pd.read_parquet(run / "lds.parquet"),
                                  pd.read_parquet(esvm / "dir" / "lds.parquet"))


def _bad(tmp, **arrays) -> str:
    path = tmp / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


OK3 = np.array([3, 40, 77])   # three valid targets


def _text(path) -> str:
    path.write_text("plain text")
    return str(path)


@pytest.mark.parametrize("make,needle", [
    (lambda t: _bad(t, targets=OK3, scores=np.zeros((3, 100))),
     "scores has shape [3, 100], expected [3, 1437]"),
    (lambda t: _bad(t, targets=OK3, scores=np.zeros((3, N_TRAIN, 1))),
     "scores must be a float [T, N_train]"),
    (lambda t: _bad(t, targets=np.array([3, 400]), scores=np.zeros((2, N_TRAIN))),
     "target 400 is outside"),
    (lambda t: _bad(t, targets=np.array([3, 3, 5]), scores=np.zeros((3, N_TRAIN))),
     "target 3 appears 2 times"),
    (lambda t: _bad(t, targets=OK3, scores=np.full((3, N_TRAIN), np.nan)), "NaN or inf in 3 rows"),
    (lambda t: _bad(t, targets=OK3, scores=np.zeros((3, N_TRAIN)), ordering="class-folder"),
     "its indices are in the class-folder order but the dataset was loaded in the official order"),
    (lambda t: _bad(t, targets=OK3, topk=np.tile(np.arange(8), (3, 1))),
     "topk ranks 8 images per target"),
    (lambda t: _bad(t, targets=OK3, topk=np.tile(np.arange(K) + N_TRAIN, (3, 1))),
     "topk holds training index 1437"),
    (lambda t: _bad(t, targets=OK3, topk=np.zeros((3, K), dtype=int)),
     "topk row 0 names a training image twice"),
    (lambda t: _bad(t, targets=OK3), "holds neither `scores`"),
    (lambda t: _bad(t, scores=np.zeros((3, N_TRAIN))), "has no `targets`"),
    (lambda t: _text(t / "not.npz"), "is not a readable .npz archive"),
    (lambda t: str(t / "missing.npz"), "does not exist"),
])
def test_a_bad_score_file_is_one_error_line(make, needle, tmp_path):
    done = _brittle(tmp_path, "run", "scorer=precomputed", f"scorer.path={make(tmp_path)}")
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not (tmp_path / "run" / "topk.npy").exists()


def test_lds_needs_scores_not_only_a_ranking(tmp_path):
    path = _bad(tmp_path, targets=OK3, topk=np.tile(np.arange(K), (3, 1)))
    done = _brittle(tmp_path, "run", "scorer=precomputed", f"scorer.path={path}", *LDS)
    assert (done.returncode == 2
            and "holds a ranking (topk) but no scores" in done.stderr), done.stderr[-2000:]


def test_scores_are_ranked_within_the_pool_a_ranking_as_given(tmp_path):
    labels = np.repeat(np.arange(3), 4)               # 12 training images, 3 classes
    scores = np.arange(12, dtype=float)[None, :].repeat(2, 0)   # the last image scores highest
    np.savez(tmp_path / "s.npz", targets=np.array([0, 1]), scores=scores)
    queries = TargetSet(np.array([0, 1]), np.array([0, 1]))
    for pool, first in (("same_class", [3, 7]), ("all", [11, 11])):
        scorer = Precomputed(str(tmp_path / "s.npz"), pool=pool)
        scorer.given_targets(12, 5, "official", "digits", 4)
        scorer.prepare(TrainSet(labels), None, torch.device("cpu"))
        ranked = scorer.pool_scores(scorer.scores(queries), queries)
        assert list(np.argmax(ranked, axis=1)) == first
        np.testing.assert_array_equal(scorer.attributions(scorer.scores(queries), queries), scores)
    topk = np.array([[11, 0, 5, 2], [1, 2, 3, 4]])      # other classes included: used as given
    np.savez(tmp_path / "t.npz", targets=np.array([0, 1]), topk=topk)
    scorer = Precomputed(str(tmp_path / "t.npz"))
    scorer.given_targets(12, 5, "official", "digits", 4)
    scorer.prepare(TrainSet(labels), None, torch.device("cpu"))
    ranked = scorer.pool_scores(scorer.scores(queries), queries)
    np.testing.assert_array_equal(np.argsort(-ranked, axis=1, kind="stable")[:, :4], topk)


def test_a_missing_path_is_one_line(tmp_path):
    done = _brittle(tmp_path, "run", "scorer=precomputed")
    assert done.returncode == 2 and done.stderr.strip() == \
        "error: scorer.path is required (???) and not set; give scorer.path=...", \
        done.stderr[-2000:]

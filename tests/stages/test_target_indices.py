"""`targets.indices` as a file (.npy, .txt, .csv), as the paper's reference code publishes its 100
CIFAR-10 targets (`test_100.npy`): the same targets as the equal list, bad files as one line
naming the file, and a run bound to the indices read, not to the path."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from brittle.data.datasets import Dataset, ImageSet
from brittle.pipeline import run
from brittle.runtime.errors import BrittleError
from brittle.runtime.execution import run_identity
from brittle.runtime.files import canonical
from brittle.stages.targets import check_indices, select_targets, with_indices_read
from tests.helpers import TINY, make_cfg

INDICES = [7, 301, 42, 0, 359, 128]   # an order of their own: kept as given
LABELS = np.repeat(np.arange(10), 36)  # a test set of 360 images


def _dataset(ordering: str = "official") -> Dataset:
    images = ImageSet(np.zeros((len(LABELS), 1, 2, 2), np.uint8), LABELS,
                      [str(c) for c in range(10)])
    return Dataset("synthetic", images, images, ordering)


def _files(base: Path, values: list) -> dict[str, Path]:
    """The same indices in every format a user may bring."""
    out = {name: base / name for name in ("a.npy", "column.npy", "floats.npy", "lines.txt",
                                          "spaced.txt", "header.csv", "bare.csv")}
    np.save(out["a.npy"], np.asarray(values, dtype=np.int64))
    np.save(out["column.npy"], np.asarray(values, dtype=np.int32)[:, None])
    np.save(out["floats.npy"], np.asarray(values, dtype=np.float64))   # whole numbers are fine
    out["lines.txt"].write_text("".join(f"{v}\n" for v in values))
    out["spaced.txt"].write_text("# the targets\n" + " ".join(map(str, values)) + "\n")
    out["header.csv"].write_text("test_index\n" + "".join(f"{v}\n" for v in values))
    out["bare.csv"].write_text("".join(f"{v}\r\n" for v in values))
    return out


def _targets(indices) -> np.ndarray:
    """The targets as the pipeline takes them: a file read into the config, the indices checked
    against the test set once the dataset is loaded, then selected."""
    cfg, named = with_indices_read(make_cfg([f"targets.indices={indices}"]))
    check_indices(cfg.targets, _dataset(), named)
    return select_targets(cfg.targets, _dataset(), np.eye(10)[LABELS])


@pytest.mark.parametrize("name", ["a.npy", "column.npy", "floats.npy", "lines.txt", "spaced.txt",
                                  "header.csv", "bare.csv"])
def test_a_file_gives_the_targets_of_the_equal_list(tmp_path, name):
    path = _files(tmp_path, INDICES)[name]
    listed = _targets(str(INDICES).replace(" ", ""))
    assert list(listed) == INDICES
    assert list(_targets(path)) == INDICES
    # the stage reads a file itself too (select_targets on a config not read by the pipeline)
    direct = select_targets(make_cfg([f"targets.indices={path}"]).targets, _dataset(),
                            np.eye(10)[LABELS])
    assert list(direct) == INDICES


def test_the_run_identity_holds_the_indices_read_not_the_path(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.txt"
    np.save(a, np.asarray(INDICES))
    b.write_text("\n".join(map(str, INDICES)))
    identities = [canonical(run_identity(with_indices_read(make_cfg([o]))[0]))
                  for o in (f"targets.indices={a}", f"targets.indices={b}",
                            "targets.indices=" + str(INDICES).replace(" ", ""))]
    assert len(set(identities)) == 1
    np.save(a, np.asarray(INDICES[:-1]))
    changed = canonical(run_identity(with_indices_read(make_cfg([f"targets.indices={a}"]))[0]))
    assert changed != identities[0]


def _bad_files(base: Path) -> dict[str, Path]:
    out = {k: base / v for k, v in (("fractions", "fractions.npy"), ("words", "words.txt"),
                                    ("strings", "strings.npy"), ("range", "range.csv"),
                                    ("repeat", "repeat.npy"), ("pairs", "pairs.npy"),
                                    ("wide", "wide.csv"), ("empty", "empty.txt"))}
    np.save(out["fractions"], np.array([3.0, 4.5, 17.25]))
    out["words"].write_text("3\ncat\n5\n")
    np.save(out["strings"], np.array(["3", "4"]))
    out["range"].write_text("index\n3\n360\n1000\n")
    np.save(out["repeat"], np.array([5, 9, 5, 12, 9]))
    np.save(out["pairs"], np.array([[0, 3], [1, 9]]))
    out["wide"].write_text("position,index\n0,3\n")
    out["empty"].write_text("# nothing\n")
    return out


BAD = [
    ("fractions", "targets.indices={path} holds 4.5, 17.25, not integer test indices"),
    ("words", "targets.indices={path} holds 'cat', not integer test indices"),
    ("strings", "targets.indices={path} holds '3', '4', not integer test indices"),
    ("range", "targets.indices={path} contains 360, 1000, outside the test set; valid indices "
              "are 0..359"),
    ("repeat", "targets.indices={path} repeats test index 5, 9; give each index once"),
    ("pairs", "targets.indices={path} holds an array of shape (2, 2); give a 1-D array"),
    ("wide", "targets.indices={path} has 2 columns on row 1; give one column"),
    ("empty", "targets.indices={path} holds no indices"),
]


@pytest.mark.parametrize("name,needle", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_one_line_naming_it(tmp_path, name, needle):
    path = _bad_files(tmp_path)[name]
    with pytest.raises(BrittleError, match=re.escape(needle.format(path=path))):
        _targets(path)


def test_a_missing_file_and_a_repeated_list_index_are_one_line(tmp_path):
    missing = tmp_path / "test_100.npy"
    with pytest.raises(BrittleError, match=re.escape(f"targets.indices={missing} does not exist; "
                                                     "give a list [i, j, ...] or the path of")):
        _targets(missing)
    with pytest.raises(BrittleError, match=r"targets\.indices=\S+indices\.json is not a \.npy, "
                                           r"\.txt or \.csv file"):
        _targets(tmp_path / "indices.json")
    with pytest.raises(BrittleError, match=r"targets.indices repeats test index 3; give each"):
        _targets("[3,4,3]")
    with pytest.raises(BrittleError, match=r"targets.indices holds 1.5, not integer test indices"):
        _targets("[1.5,2]")


def test_a_file_follows_the_ordering_setting(tmp_path):
    path = _files(tmp_path, INDICES)["a.npy"]
    with pytest.raises(BrittleError, match=re.escape(f"targets.indices={path} are in the official "
                                                     "order, but dataset synthetic was loaded in "
                                                     "the class-folder order")):
        select_targets(make_cfg([f"targets.indices={path}"]).targets, _dataset("class-folder"),
                       np.eye(10)[LABELS])
    ok = make_cfg([f"targets.indices={path}", "targets.indices_ordering=class-folder"])
    assert list(select_targets(ok.targets, _dataset("class-folder"), np.eye(10)[LABELS])) == INDICES


def test_a_run_refuses_to_resume_with_another_file_content(tmp_path):
    path = tmp_path / "targets.txt"
    path.write_text("3\n250\n")
    cfg = make_cfg([*TINY, "scorer=random", f"targets.indices={path}"],
                   cache_dir=tmp_path / "cache")
    run(cfg, tmp_path / "run")
    assert list(np.load(tmp_path / "run" / "targets.npy")) == [3, 250]
    # the same indices as a list: the same run, resumed
    listed = make_cfg([*TINY, "scorer=random", "targets.indices=[3,250]"],
                      cache_dir=tmp_path / "cache")
    run(listed, tmp_path / "run")
    path.write_text("3\n251\n")
    with pytest.raises(BrittleError, match="holds results of a different config"):
        run(cfg, tmp_path / "run")
    # out of the test set: refused once the dataset is loaded, before any model trains
    path.write_text("3\n100000\n")
    fresh = make_cfg([*TINY, "scorer=random", f"targets.indices={path}"],
                     cache_dir=tmp_path / "fresh")
    with pytest.raises(BrittleError, match=re.escape(f"targets.indices={path} contains 100000, "
                                                     "outside the test set")):
        run(fresh, tmp_path / "other")
    assert (tmp_path / "cache" / "reference").is_dir()   # where the first run's models went
    assert not (tmp_path / "fresh" / "reference").exists()
    assert not (tmp_path / "other" / "targets.npy").exists()

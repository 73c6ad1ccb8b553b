"""dataset=huggingface on a DatasetDict built here from scikit-learn's digits (upscaled to RGB
16x16 PNGs) and saved with save_to_disk: exact decoding, a whole run, and each bad input as one
error line with nothing left in the cache."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from brittle.data.huggingface import _load_dataset, load_huggingface, pixel_stats
from brittle.runtime.errors import BrittleError
from tests.helpers import TINY, make_cfg, run_brittle

hf = pytest.importorskip("datasets")

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
N_TRAIN, N_TEST = 300, 60


def _digit_pixels() -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 16, 16, 3] digits (8x8 upscaled twice; the three channels differ) and labels."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    gray = np.rint(bunch.images * (255 / 16)).astype(np.uint8).repeat(2, 1).repeat(2, 2)
    rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)
    return rgb[:N_TRAIN + N_TEST], bunch.target[:N_TRAIN + N_TEST].astype(np.int64)


def _save(path: Path, pixels: np.ndarray, labels: np.ndarray, label_feature=None) -> Path:
    features = hf.Features({"image": hf.Image(),
                            "label": label_feature or hf.ClassLabel(names=NAMES),
                            "caption": hf.Value("string")})

    def split(rows: slice):
        return hf.Dataset.from_dict(
            {"image": [Image.fromarray(p) for p in pixels[rows]],
             "label": labels[rows].tolist(),
             "caption": [f"a {NAMES[y]}" for y in labels[rows]]}, features=features)
    hf.DatasetDict({"train": split(slice(0, N_TRAIN)),
                    "test": split(slice(N_TRAIN, None))}).save_to_disk(str(path))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    pixels, labels = _digit_pixels()
    return _save(tmp_path_factory.mktemp("hf") / "digits16", pixels, labels), pixels, labels


def _complete_entries(cache: Path) -> list[Path]:
    return [p.parent for p in (cache / "dataset").glob("*/meta.json")]


def test_decoded_arrays_equal_the_source_pixels_and_labels(source, tmp_path):
    path, pixels, labels = source
    data = load_huggingface(str(path), cache_dir=str(tmp_path), image_size=16)
    assert data.train.images.dtype == np.uint8 and data.train.images.shape == (N_TRAIN, 3, 16, 16)
    assert data.train.labels.dtype == np.int64 and data.train.classes == NAMES
    assert np.array_equal(data.train.images, pixels[:N_TRAIN].transpose(0, 3, 1, 2))
    assert np.array_equal(data.test.images, pixels[N_TRAIN:].transpose(0, 3, 1, 2))
    assert np.array_equal(data.train.labels, labels[:N_TRAIN])
    assert np.array_equal(data.test.labels, labels[N_TRAIN:])
    # decoded once: the second load reads the cached entry, whose record holds the pixel stats
    again = load_huggingface(str(path), cache_dir=str(tmp_path), image_size=16)
    assert np.array_equal(again.test.images, data.test.images)
    (entry,) = _complete_entries(tmp_path)
    meta = json.loads((entry / "meta.json").read_text())
    source_01 = pixels[:N_TRAIN].astype(np.float64) / 255
    assert np.allclose(meta["pixel_mean"], source_01.mean(axis=(0, 1, 2)), atol=1e-12)
    assert np.allclose(meta["pixel_std"], source_01.std(axis=(0, 1, 2)), atol=1e-12)


def test_grayscale_integer_labels_and_subsets(source, tmp_path):
    """channels=1 converts as PIL's L (ITU-R 601-2 luma); int64 labels name classes 0..9."""
    _, pixels, labels = source
    path = _save(tmp_path / "ints", pixels, labels, label_feature=hf.Value("int64"))
    data = load_huggingface(str(path), cache_dir=str(tmp_path / "c"), channels=1, image_size=16,
                            train_subset=100, test_subset=20)
    assert data.train.classes == [str(c) for c in range(10)]
    assert data.train.images.shape == (100, 1, 16, 16)
    assert np.bincount(data.train.labels).tolist() == [10] * 10
    full = load_huggingface(str(path), cache_dir=str(tmp_path / "c"), channels=1, image_size=16)
    luma = pixels[:N_TRAIN].astype(np.float64) @ [0.299, 0.587, 0.114]
    assert np.abs(full.train.images[:, 0].astype(np.float64) - luma).max() <= 1.0
    assert np.allclose(pixel_stats(full.train.images), [[np.mean(full.train.images / 255)],
                                                        [np.std(full.train.images / 255)]])


def test_a_changed_folder_is_decoded_again(source, tmp_path):
    """The cache key follows the saved content, not the path alone."""
    import shutil
    _, pixels, labels = source
    path = _save(tmp_path / "set", pixels, labels)
    first = load_huggingface(str(path), cache_dir=str(tmp_path / "c"), image_size=16)
    shutil.rmtree(path)
    _save(path, 255 - pixels, labels)
    second = load_huggingface(str(path), cache_dir=str(tmp_path / "c"), image_size=16)
    assert np.array_equal(second.train.images, 255 - first.train.images)
    assert len(_complete_entries(tmp_path / "c")) == 2


def test_a_hub_id_that_cannot_be_reached_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(hf.config, "HF_HUB_OFFLINE", True)   # nothing is downloaded in tests
    with pytest.raises(BrittleError, match=r"^cannot load dataset.path=owner/no-such-set with "
                                           r"datasets.load_dataset \(ConnectionError"):
        load_huggingface("owner/no-such-set", cache_dir=str(tmp_path))


def test_a_whole_run_on_a_saved_datasetdict(source, tmp_path, caplog):
    from brittle.pipeline import run
    caplog.set_level("INFO")
    path, _, _ = source
    cfg = make_cfg([*TINY, "dataset=huggingface", f"dataset.path={path}", "dataset.image_size=16",
                    "arch=mlp"], cache_dir=tmp_path / "cache")
    summary = run(cfg, tmp_path / "run")
    assert summary.n_targets == 2
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["n_targets"] == 2 and 0 <= on_disk["auc"] <= 1
    support = pd.read_parquet(tmp_path / "run" / "support.parquet")
    assert len(support) == 2 and support["label"].between(0, 9).all()
    assert "dataset huggingface: 300 train, 60 test images of shape (3, 16, 16)" in caplog.text


def _bad_sources(base: Path, pixels: np.ndarray, labels: np.ndarray) -> dict[str, Path]:
    """A DatasetDict with one 12x12 image among 16x16 ones, one with an unlabelled (-1) test
    split, and one Dataset saved alone."""
    good = hf.load_from_disk(str(_save(base / "good", pixels, labels)))
    small = hf.Dataset.from_dict({"image": [Image.fromarray(pixels[0, :12, :12])], "label": [3],
                                  "caption": ["x"]}, features=good["train"].features)
    out = {"mixed": base / "mixed", "one": base / "one"}
    hf.DatasetDict({"train": hf.concatenate_datasets([good["train"], small]),
                    "test": good["test"]}).save_to_disk(str(out["mixed"]))
    unlabelled = labels.copy()
    unlabelled[N_TRAIN:] = -1
    out["unlabelled"] = _save(base / "unlabelled", pixels, unlabelled,
                              label_feature=hf.Value("int64"))
    hf.Dataset.from_dict({"label": [1]}).save_to_disk(str(out["one"]))
    return out


BAD = [
    # (id, loader arguments, the error line must contain)
    ("unknown column", {"image_column": "img"},
     "dataset.image_column=img is not a column of the train split; columns: image, label, caption"),
    ("image column not an image", {"image_column": "caption"},
     "dataset.image_column=caption has feature type Value('string'), not Image; "
     "Image columns: image"),
    ("missing split", {"test_split": "validation"},
     "dataset.test_split=validation is not a split of dataset.path="),
    ("label column of text", {"label_column": "caption"},
     "dataset.label_column=caption has feature type Value('string'), not an integer Value or "
     "ClassLabel; such columns: label"),
    ("label column of images", {"label_column": "image"}, "has feature type Image, not an integer"),
    ("images of two sizes", {"path": "{mixed}"},
     "images of several sizes (train: 16x16 (300), 12x12 (1); test: 16x16 (60)); resize them"),
    ("unlabelled test split", {"path": "{unlabelled}"},
     "the test split has 60 unlabelled images (label < 0) of 60"),
    ("one Dataset, not a dict", {"path": "{one}"}, "holds one Dataset, not a DatasetDict"),
    ("size other than image_size", {"image_size": 32},
     "are 16x16, but dataset.image_size=32; set dataset.image_size=16"),
    ("no path", {"path": None}, "dataset.path is not set"),
    ("path missing", {"path": "/nonexistent/set"}, "dataset.path=/nonexistent/set is not a folder"),
    ("channels neither 1 nor 3", {"channels": 2}, "dataset.channels=2 is not valid"),
]


@pytest.fixture(scope="module")
def bad_sources(source, tmp_path_factory):
    _, pixels, labels = source
    return _bad_sources(tmp_path_factory.mktemp("bad"), pixels, labels)


@pytest.mark.parametrize("name,args,needle", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_one_line_and_leaves_no_cache_entry(source, bad_sources, tmp_path, name,
                                                         args, needle):
    args = {"path": str(source[0]), "image_size": 16, **args}
    if isinstance(args["path"], str) and args["path"].startswith("{"):
        args["path"] = str(bad_sources[args["path"][1:-1]])
    with pytest.raises(BrittleError) as caught:
        load_huggingface(cache_dir=str(tmp_path), **args)
    message = str(caught.value)
    assert needle in message and "\n" not in message, message
    expect_entry = name == "size other than image_size"   # the decoded images are sound
    assert len(_complete_entries(tmp_path)) == int(expect_entry)
    assert not [p for p in (tmp_path / "dataset").glob(".*") if p.is_dir()]


def test_a_loading_script_is_refused_and_never_run(tmp_path):
    folder = tmp_path / "scripted"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "scripted.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    (folder / "data.csv").write_text("label\n1\n")
    with pytest.raises(BrittleError, match=r"needs its own loading script \(scripted\.py\); "
                                           r"brittle never runs a dataset's code"):
        load_huggingface(str(folder), cache_dir=str(tmp_path / "c"))
    # the same folder handed to datasets.load_dataset directly: its refusal becomes the same line
    with pytest.raises(BrittleError, match=r"needs its own loading script \(scripted\.py\)"):
        _load_dataset(hf, str(folder))
    assert not marker.exists() and not (tmp_path / "c").exists()


def test_without_the_extra_one_line_names_it(source, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)   # as if not installed
    with pytest.raises(BrittleError, match=r"pip install 'brittle\[huggingface\]'"):
        load_huggingface(str(source[0]), cache_dir=str(tmp_path))


def test_the_command_line_prints_one_error_line(source, tmp_path):
    p = run_brittle(["dataset=huggingface", f"dataset.path={source[0]}", "dataset.image_size=16",
                     "dataset.test_split=validation", f"cache_dir={tmp_path}/cache",
                     f"hydra.run.dir={tmp_path}/run"])
    errors = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("error:")]
    assert p.returncode != 0 and len(errors) == 1, p.stderr[-2000:]
    assert "dataset.test_split=validation is not a split" in errors[0] and "splits: train, test" \
        in errors[0]
    assert "Traceback" not in p.stdout + p.stderr


def test_grayscale_left_with_rgb_statistics_is_refused_before_any_work(source):
    from brittle.cli.validate import check_command_line
    gray = ["dataset=huggingface", f"dataset.path={source[0]}", "dataset.channels=1"]
    assert check_command_line(gray) == ("dataset.normalize.mean=[0.485, 0.456, 0.406] has 3 "
                                        "values, but dataset.channels=1; give one value per "
                                        "channel")
    assert check_command_line([*gray, "dataset.normalize.mean=[0.5]",
                               "dataset.normalize.std=[0.25]"]) is None

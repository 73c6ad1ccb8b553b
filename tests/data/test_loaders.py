"""Dataset loaders: digits split, balanced subsets, CIFAR-10 from class trees and tarballs."""
from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brittle.data.cifar10 import load_cifar10
from brittle.data.datasets import balanced_subset, load_digits
from brittle.runtime.errors import BrittleError


def test_digits_split_is_fixed_stratified_uint8():
    a, b = load_digits(), load_digits()
    assert a.train.images.dtype == np.uint8 and a.train.images.shape[1:] == (1, 8, 8)
    assert len(a.train) + len(a.test) == 1797 and len(a.test) == 360
    assert (np.array_equal(a.test.labels, b.test.labels)
            and np.array_equal(a.train.images, b.train.images))
    frac = np.bincount(a.test.labels) / np.bincount(np.concatenate([a.train.labels, a.test.labels]))
    assert np.allclose(frac, 0.2, atol=0.01)
    assert a.train.images.max() == 255


def test_balanced_subset_counts_and_seed():
    labels = np.repeat(np.arange(5), 40)
    idx = balanced_subset(labels, 25, seed=3, what="x")
    assert np.bincount(labels[idx]).tolist() == [5] * 5
    assert np.array_equal(idx, balanced_subset(labels, 25, seed=3, what="x"))
    assert not np.array_equal(idx, balanced_subset(labels, 25, seed=4, what="x"))
    with pytest.raises(BrittleError, match="x=1000"):
        balanced_subset(labels, 1000, seed=0, what="x")


def _write_tree(root: Path, classes=("cat", "dog"), n=3, size=(6, 6), test_classes=None) -> Path:
    rng = np.random.default_rng(0)
    for split, names in (("train", classes), ("test", test_classes or classes)):
        for c in names:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{i:04d}.png")
    return root


def test_class_tree_and_tarball_give_the_same_arrays(tmp_path):
    tree = _write_tree(tmp_path / "tree")
    tgz = tmp_path / "tree.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tree, arcname="cifar")
    a = load_cifar10(str(tree), cache_dir=str(tmp_path / "cache"))
    b = load_cifar10(str(tgz), cache_dir=str(tmp_path / "cache"))
    assert a.train.classes == ["cat", "dog"] and a.train.images.shape == (6, 3, 6, 6)
    assert (np.array_equal(a.train.images, b.train.images)
            and np.array_equal(a.test.labels, b.test.labels))
    png = np.asarray(Image.open(tree / "train" / "dog" / "0001.png"))
    assert np.array_equal(a.train.images[4], png.transpose(2, 0, 1))  # lossless PNG round trip
    # decoded once: a second load reads the cached array
    assert len(list((tmp_path / "cache" / "dataset").iterdir())) >= 2


def test_bad_roots_give_clear_errors(tmp_path):
    with pytest.raises(BrittleError, match="does not exist"):
        load_cifar10(str(tmp_path / "nope"), cache_dir=str(tmp_path / "c"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BrittleError, match="no train/<class>/"):
        load_cifar10(str(tmp_path / "empty"), cache_dir=str(tmp_path / "c"))
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not a tarball")
    with pytest.raises(BrittleError, match="not a readable tar archive"):
        load_cifar10(str(bad), cache_dir=str(tmp_path / "c"))
    mixed = _write_tree(tmp_path / "mixed")
    Image.fromarray(np.zeros((7, 5, 3), np.uint8)).save(mixed / "train" / "dog" / "9999.png")
    with pytest.raises(BrittleError, match="mixed sizes"):
        load_cifar10(str(mixed), cache_dir=str(tmp_path / "c"))
    differ = _write_tree(tmp_path / "differ", test_classes=("cat", "cow"))
    with pytest.raises(BrittleError, match="class folders differ"):
        load_cifar10(str(differ), cache_dir=str(tmp_path / "c"))
    # nothing half-written was left in the cache by the failures
    assert not [p for p in (tmp_path / "c" / "dataset").glob("*") if not p.name.endswith(".lock")]


def test_real_cifar10_tarball(cifar_tgz, cifar_cache):
    data = load_cifar10(str(cifar_tgz), cache_dir=str(cifar_cache), train_subset=1000,
                        test_subset=200)
    assert data.train.classes[0] == "airplane" and data.num_classes == 10
    assert data.train.images.shape == (1000, 3, 32, 32) and data.train.images.dtype == np.uint8
    assert np.bincount(data.train.labels).tolist() == [100] * 10
    assert np.bincount(data.test.labels).tolist() == [20] * 10

"""CIFAR-10 from any of its usual forms: torchvision's pickled batches (the official order), a
train/ test/ class-folder tree, or a .tar.gz of one (class then file name order).

It is decoded once into the stage cache (keyed by the source's path, size and mtime), so later
runs load one `.npz`; a corrupt image is named with the count of bad ones.
"""
from __future__ import annotations

import io
import logging
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from brittle.data.datasets import Dataset, ImageSet, apply_subsets
from brittle.runtime.cache import StageCache
from brittle.runtime.errors import BrittleError

log = logging.getLogger(__name__)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_cifar10(root: str | None, cache_dir: str, download: bool = False,
                 train_subset: int | None = None, test_subset: int | None = None,
                 subset_seed: int = 0, **_: object) -> Dataset:
    """CIFAR-10 from torchvision's batches folder, a class-folder tree, or a `.tar.gz` of one."""
    if root is None:
        raise BrittleError("dataset.root is not set; give the CIFAR-10 batches folder, a train/ "
                           "test/ class-folder tree or a .tar.gz of one (or dataset.download=true)")
    source = Path(root).expanduser().resolve()
    if download:
        import torchvision
        for is_train in (True, False):
            torchvision.datasets.CIFAR10(str(source), train=is_train, download=True)
    if not source.exists():
        raise BrittleError(f"dataset.root={root} does not exist; give the CIFAR-10 batches folder, "
                           f"a train/ test/ class-folder tree or a .tar.gz of one")
    stat = source.stat()
    spec = {"source": str(source), "size": stat.st_size, "mtime": int(stat.st_mtime)}
    cache = StageCache(Path(cache_dir))
    out = cache.get_or_compute("dataset", spec, lambda tmp: _decode_to(source, tmp))
    with np.load(out / "data.npz") as z:
        classes = [str(c) for c in z["classes"]]
        train = ImageSet(z["train_x"], z["train_y"], classes)
        test = ImageSet(z["test_x"], z["test_y"], classes)
        ordering = str(z["ordering"])
    if len(classes) != 10:
        log.warning("dataset at %s has %d classes, not CIFAR-10's 10", root, len(classes))
    if ordering != "official":
        log.info("CIFAR-10 from %s is ordered by class folder, then file name (not the official "
                 "order of the python batches)", root)
    return apply_subsets("cifar10", train, test, train_subset, test_subset, subset_seed, ordering)


def _decode_to(source: Path, out: Path) -> dict:
    batches = _batches_dir(source) if source.is_dir() else None
    if batches is not None:
        splits, classes = _read_batches(batches), CLASSES
        ordering = "official"
    else:
        splits, classes = _read_class_tree(source)
        ordering = "class-folder"
    np.savez(out / "data.npz", classes=np.array(classes), ordering=np.array(ordering),
             train_x=splits["train"][0], train_y=splits["train"][1],
             test_x=splits["test"][0], test_y=splits["test"][1])
    return {"n_train": len(splits["train"][1]), "n_test_images": len(splits["test"][1]),
            "ordering": ordering}


def _batches_dir(source: Path) -> Path | None:
    for cand in (source, source / "cifar-10-batches-py"):
        if (cand / "data_batch_1").exists() and (cand / "test_batch").exists():
            return cand
    return None


def _read_batches(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            try:
                with open(folder / name, "rb") as f:
                    batch = pickle.load(f, encoding="latin1")
            except Exception as exc:  # truncated or foreign files raise many types
                raise BrittleError(f"{folder / name} is not a CIFAR-10 python batch "
                                   f"({type(exc).__name__}); download the batches again or give "
                                   "the class-folder tarball") from None
            xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch["labels"], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)
    return {"train": read([f"data_batch_{i}" for i in range(1, 6)]), "test": read(["test_batch"])}


def _iter_tree(source: Path) -> Iterator[tuple[str, bytes]]:
    """(relative path, file bytes) of every image file under a folder or inside a tarball."""
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            if path.is_file() and path.suffix.lower() in _IMAGE_SUFFIXES:
                yield path.relative_to(source).as_posix(), path.read_bytes()
        return
    try:
        with tarfile.open(source, "r:*") as tar:
            for member in tar:
                if member.isfile() and member.name.lower().endswith(_IMAGE_SUFFIXES):
                    data = tar.extractfile(member)
                    if data is not None:
                        yield member.name, data.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        reason = " ".join(str(exc).split())  # tarfile's message spans lines; the error is one line
        raise BrittleError(f"dataset.root={source} is not a readable tar archive ({reason}); "
                           f"give a .tar.gz of a train/ test/ class-folder tree") from None


def _read_class_tree(source: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    found: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    for rel, data in _iter_tree(source):
        parts = rel.split("/")
        if len(parts) >= 3 and parts[-3] in found:
            found[parts[-3]].setdefault(parts[-2], []).append((parts[-1], data))
    if not found["train"] or not found["test"]:
        raise BrittleError(f"dataset.root={source} holds no train/<class>/ and test/<class>/ "
                           f"images; expected e.g. train/cat/0001.jpg")
    classes = sorted(found["train"])
    if sorted(found["test"]) != classes:
        raise BrittleError(f"class folders differ between train/ ({classes}) and test/ "
                           f"({sorted(found['test'])}) in dataset.root={source}")
    return {split: _decode_split(found[split], classes, split) for split in found}, classes


def _decode_split(by_class: dict[str, list[tuple[str, bytes]]], classes: list[str],
                  split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels, shape, bad = [], [], None, []
    for label, name in enumerate(classes):
        for fname, data in sorted(by_class[name]):
            try:
                img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
            except Exception:  # PIL raises many types for corrupt files
                bad.append(f"{split}/{name}/{fname}")
                continue
            if shape is None:
                shape = img.shape
            elif img.shape != shape:
                raise BrittleError(f"images of mixed sizes: {split}/{name}/{fname} is "
                                   f"{img.shape[1]}x{img.shape[0]}, others {shape[1]}x{shape[0]}; "
                                   f"resize them to one size")
            images.append(img.transpose(2, 0, 1))
            labels.append(label)
    if bad:
        raise BrittleError(f"cannot decode {bad[0]} ({len(bad)} "
                           f"image{'s' if len(bad) > 1 else ''} of {split}/ cannot be decoded); "
                           "replace or remove them")
    log.info("decoded %d %s images", len(labels), split)
    return np.stack(images), np.asarray(labels, dtype=np.int64)

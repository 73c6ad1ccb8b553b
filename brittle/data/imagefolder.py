"""`dataset=imagefolder`: any train/ and test/ (or val/) class-folder tree, ImageNet layout
included, read lazily: images are decoded (and resized) only when a batch asks for them, so
pretraining and embedding stream from disk and memory does not grow with the folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from brittle.data.datasets import Dataset, ImageSet, apply_subsets
from brittle.runtime.errors import BrittleError

_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class LazyImages:
    """uint8 images [N, 3, S, S] decoded from files on access; `take` selects without decoding."""

    def __init__(self, files: list[Path], size: int):
        self.files, self.size = list(files), int(size)

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), 3, self.size, self.size)

    def take(self, index: np.ndarray) -> LazyImages:
        return LazyImages([self.files[int(i)] for i in np.asarray(index)], self.size)

    def _load(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
                return np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
        except OSError as exc:
            raise BrittleError(f"cannot decode {path}: {exc}") from None

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._load(self.files[int(index)])
        picks = range(*index.indices(len(self))) if isinstance(index, slice) else np.asarray(index)
        return np.stack([self._load(self.files[int(i)]) for i in picks]) if len(picks) else \
            np.zeros((0, 3, self.size, self.size), np.uint8)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[slice(None)]
        return out.astype(dtype) if dtype is not None else out


def _scan(split_dir: Path) -> tuple[list[Path], list[str]]:
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    files = [(c, f) for c in classes for f in sorted((split_dir / c).iterdir())
             if f.suffix.lower() in _SUFFIXES]
    return [f for _, f in files], [c for c, _ in files]


def _verify(root: Path, files: list[Path]) -> None:
    """Every image file's header parses (PIL's verify; no pixels decoded): a corrupt file is
    named here, with the count of bad files, rather than failing inside a DataLoader worker."""
    bad = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.verify()
        except Exception:  # PIL raises many types for corrupt files
            bad.append(path)
    if bad:
        raise BrittleError(f"cannot decode {bad[0].relative_to(root)} in dataset.root={root} ({len(bad)} "
                           f"bad image{'s' if len(bad) > 1 else ''} of {len(files)}); replace or remove them")


def load_imagefolder(root: str | None, image_size: int = 64, train_subset: int | None = None,
                     test_subset: int | None = None, subset_seed: int = 0) -> Dataset:
    if root is None:
        raise BrittleError("dataset.root is not set; give a folder with train/<class>/ and "
                           "test/<class>/ (or val/<class>/) images")
    base = Path(root).expanduser()
    test_name = "test" if (base / "test").is_dir() else "val"
    if not (base / "train").is_dir() or not (base / test_name).is_dir():
        raise BrittleError(f"dataset.root={root} has no train/ and test/ (or val/) class folders")
    train_files, train_cls = _scan(base / "train")
    test_files, test_cls = _scan(base / test_name)
    classes = sorted(set(train_cls))
    if not train_files or not test_files:
        raise BrittleError(f"dataset.root={root} holds no images under train/<class>/ and {test_name}/<class>/")
    if sorted(set(test_cls)) != classes:
        raise BrittleError(f"class folders differ between train/ ({classes[:5]}...) and {test_name}/ "
                           f"({sorted(set(test_cls))[:5]}...) in dataset.root={root}")
    _verify(base, train_files + test_files)
    index = {c: i for i, c in enumerate(classes)}
    train = ImageSet(LazyImages(train_files, image_size), np.array([index[c] for c in train_cls]), classes)
    test = ImageSet(LazyImages(test_files, image_size), np.array([index[c] for c in test_cls]), classes)
    return apply_subsets("imagefolder", train, test, train_subset, test_subset, subset_seed,
                          ordering="class-folder")

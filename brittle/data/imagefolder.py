"""`dataset=imagefolder`: any train/ and test/ (or val/) class-folder tree, ImageNet layout
included, read lazily: images are decoded (and resized) only when a batch asks for them, so
pretraining and embedding stream from disk and memory does not grow with the folder.

Each image becomes a square of `image_size` pixels in one of two ways: squashed whole (the aspect
ratio is lost; `center_crop: null`, the default), or, as ImageNet evaluation does, the central
square of `center_crop` x the shorter side resized to `image_size` (0.875 = 224 / 256: torchvision's
Resize(256) + CenterCrop(224), FFCV's centre-crop decoder; 1.0: resize the shorter side, then crop).
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

    def __init__(self, files: list[Path], size: int, center_crop: float | None = None):
        self.files, self.size, self.center_crop = list(files), int(size), center_crop

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), 3, self.size, self.size)

    def take(self, index: np.ndarray) -> LazyImages:
        picked = [self.files[int(i)] for i in np.asarray(index)]
        return LazyImages(picked, self.size, self.center_crop)

    def _load(self, path: Path) -> np.ndarray:
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
                box = None if self.center_crop is None else crop_box(rgb.size, self.center_crop)
                rgb = rgb.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
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


def crop_box(size: tuple[int, int], fraction: float) -> tuple[float, float, float, float]:
    """The central square (left, upper, right, lower) of side `fraction` x the shorter side of a
    (width, height) image."""
    width, height = size
    side = fraction * min(width, height)
    left, upper = (width - side) / 2, (height - side) / 2
    return (left, upper, left + side, upper + side)


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
        raise BrittleError(f"cannot decode {bad[0].relative_to(root)} in dataset.root={root} "
                           f"({len(bad)} bad image{'s' if len(bad) > 1 else ''} of {len(files)}); "
                           "replace or remove them")


def load_imagefolder(root: str | None, image_size: int = 64, train_subset: int | None = None,
                     test_subset: int | None = None, subset_seed: int = 0,
                     center_crop: float | None = None) -> Dataset:
    if center_crop is not None and not 0 < float(center_crop) <= 1:
        raise BrittleError(f"dataset.loader.center_crop={center_crop} is not valid; give a "
                           "fraction of the shorter side in (0, 1] (0.875: ImageNet's "
                           "224 of 256), or null")
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
        raise BrittleError(f"dataset.root={root} holds no images under train/<class>/ and "
                           f"{test_name}/<class>/")
    if sorted(set(test_cls)) != classes:
        raise BrittleError(f"class folders differ between train/ ({classes[:5]}...) and "
                           f"{test_name}/ ({sorted(set(test_cls))[:5]}...) in dataset.root={root}")
    _verify(base, train_files + test_files)
    index = {c: i for i, c in enumerate(classes)}
    crop = None if center_crop is None else float(center_crop)

    def images(files: list[Path], names: list[str]) -> ImageSet:
        labels = np.array([index[c] for c in names])
        return ImageSet(LazyImages(files, image_size, crop), labels, classes)
    train, test = images(train_files, train_cls), images(test_files, test_cls)
    return apply_subsets("imagefolder", train, test, train_subset, test_subset, subset_seed,
                          ordering="class-folder")

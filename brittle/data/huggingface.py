"""`dataset=huggingface`: an image-classification dataset of Hugging Face's `datasets` (optional
extra `brittle[huggingface]`), from a folder written by `DatasetDict.save_to_disk` or a Hub id.

Its two splits are decoded once into the stage cache (keyed by the path, the splits' fingerprints
and data files, the columns and the colour mode), as uint8 images [N, C, H, W] in `channels`
(3: RGB, 1: L) with int64 labels, in the split's own row order; later runs load one `.npz`.
Problems (an unknown split or column, a column of the wrong type, a loading script, images of
several sizes) are each one error line raised before anything enters the cache.
"""
from __future__ import annotations

import io
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from brittle.data.datasets import Dataset, ImageSet, apply_subsets
from brittle.runtime.cache import StageCache
from brittle.runtime.errors import BrittleError

log = logging.getLogger(__name__)

_MODES = {3: "RGB", 1: "L"}
_INTEGERS = {f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)}


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise BrittleError("dataset=huggingface needs Hugging Face's datasets package, brittle's "
                           "huggingface extra: pip install 'brittle[huggingface]' "
                           "(in a checkout: pip install -e '.[huggingface]')") from None
    return datasets


def load_huggingface(path: str | None, cache_dir: str, train_split: str = "train",
                     test_split: str = "test", image_column: str = "image",
                     label_column: str = "label", channels: int = 3, image_size: int = 32,
                     train_subset: int | None = None, test_subset: int | None = None,
                     subset_seed: int = 0) -> Dataset:
    """The `train_split` and `test_split` of `path` as uint8 images [N, channels, S, S]."""
    hf = _import_datasets()
    if channels not in _MODES:
        raise BrittleError(f"dataset.channels={channels} is not valid for dataset=huggingface; "
                           "use 3 (images converted to RGB) or 1 (to grayscale L)")
    found = _open(hf, path)
    sets = {"train": _split(found, path, "train_split", train_split),
            "test": _split(found, path, "test_split", test_split)}
    names = _check_columns(hf, sets, image_column, label_column)
    local = Path(str(path)).expanduser()
    spec = {"loader": "huggingface", "path": str(local.resolve()) if local.is_dir() else path,
            "splits": [train_split, test_split], "columns": [image_column, label_column],
            "mode": _MODES[channels], "data": {k: _identity(ds) for k, ds in sets.items()}}
    cache = StageCache(Path(cache_dir))
    out = cache.get_or_compute("dataset", spec, lambda tmp: _decode_to(
        hf, tmp, sets, (image_column, label_column), _MODES[channels], names))
    with np.load(out / "data.npz") as z:
        classes = [str(c) for c in z["classes"]]
        train = ImageSet(z["train_x"], z["train_y"], classes)
        test = ImageSet(z["test_x"], z["test_y"], classes)
    height, width = train.images.shape[2:]
    if (height, width) != (image_size, image_size):
        raise BrittleError(f"the images of dataset.path={path} are {width}x{height}, but "
                           f"dataset.image_size={image_size}; set dataset.image_size={height}"
                           if height == width else
                           f"the images of dataset.path={path} are {width}x{height}, not square; "
                           "crop or resize them to a square and save_to_disk again")
    return apply_subsets("huggingface", train, test, train_subset, test_subset, subset_seed)


def _open(hf: Any, path: str | None) -> Any:
    """The DatasetDict at `path`: a save_to_disk folder, a folder of data files, or a Hub id."""
    if not path:
        raise BrittleError("dataset.path is not set; give a Hub id (owner/name) or a folder "
                           "written by DatasetDict.save_to_disk")
    local = Path(path).expanduser()
    if local.is_dir():
        scripts = sorted(p.name for p in local.glob("*.py"))
        if scripts:
            raise _script_refused(path, scripts[0])
        if (local / "dataset_dict.json").is_file():
            return hf.load_from_disk(str(local))
        if (local / "state.json").is_file():
            raise BrittleError(f"dataset.path={path} holds one Dataset, not a DatasetDict of "
                               "splits; save DatasetDict({'train': ..., 'test': ...}) instead")
    elif local.exists() or path.startswith(("/", ".", "~")):
        raise BrittleError(f"dataset.path={path} is not a folder; give a folder written by "
                           "DatasetDict.save_to_disk or a Hub id (owner/name)")
    return _load_dataset(hf, path)


def _script_refused(path: str, script: str) -> BrittleError:
    return BrittleError(f"dataset.path={path} needs its own loading script ({script}); brittle "
                        "never runs a dataset's code (trust_remote_code stays off): convert it to "
                        "Parquet or save_to_disk and give that folder")


def _load_dataset(hf: Any, path: str) -> Any:
    # datasets >= 4 runs no loading script at all; an older one is told not to
    remote_code = {} if int(hf.__version__.split(".")[0]) >= 4 else {"trust_remote_code": False}
    try:
        found = hf.load_dataset(path, **remote_code)
    except Exception as exc:  # the Hub and the builders raise many types
        reason = " ".join(str(exc).split("\n")[0].split())
        if any(word in reason.lower() for word in ("script", "remote code", "custom code")):
            script = reason.rpartition(" ")[2]
            raise _script_refused(path, script if script.endswith(".py") else "a .py file") \
                from None
        raise BrittleError(f"cannot load dataset.path={path} with datasets.load_dataset "
                           f"({type(exc).__name__}: {reason[:200]}); give a Hub id that can be "
                           "reached or a folder written by DatasetDict.save_to_disk") from None
    if not isinstance(found, hf.DatasetDict):
        raise BrittleError(f"dataset.path={path} loads as {type(found).__name__}, not a "
                           "DatasetDict of splits")
    return found


def _split(found: Any, path: str | None, key: str, name: str) -> Any:
    if name not in found:
        raise BrittleError(f"dataset.{key}={name} is not a split of dataset.path={path}; "
                           f"splits: {', '.join(found)}")
    return found[name]


def _type_name(hf: Any, feature: Any) -> str:
    return repr(feature) if isinstance(feature, hf.Value) else type(feature).__name__


def _is_label(hf: Any, feature: Any) -> bool:
    return isinstance(feature, hf.ClassLabel) or (isinstance(feature, hf.Value)
                                                   and feature.dtype in _INTEGERS)


def _check_columns(hf: Any, sets: dict[str, Any], image_column: str,
                   label_column: str) -> list[str] | None:
    """The label feature's class names (None for integer labels), after checking that both
    splits have an Image column `image_column` and an integer or ClassLabel `label_column`."""
    for split, ds in sets.items():
        features = ds.features
        for key, column in (("image_column", image_column), ("label_column", label_column)):
            if column not in features:
                raise BrittleError(f"dataset.{key}={column} is not a column of the {split} "
                                   f"split; columns: {', '.join(features)}")
        if not isinstance(features[image_column], hf.Image):
            images = [c for c, f in features.items() if isinstance(f, hf.Image)] or ["none"]
            raise BrittleError(f"dataset.image_column={image_column} has feature type "
                               f"{_type_name(hf, features[image_column])}, not Image; Image "
                               f"columns: {', '.join(images)}")
        if not _is_label(hf, features[label_column]):
            labels = [c for c, f in features.items() if _is_label(hf, f)] or ["none"]
            raise BrittleError(f"dataset.label_column={label_column} has feature type "
                               f"{_type_name(hf, features[label_column])}, not an integer Value "
                               f"or ClassLabel; such columns: {', '.join(labels)}")
    names = [getattr(ds.features[label_column], "names", None) for ds in sets.values()]
    if names[0] != names[1]:
        raise BrittleError(f"the class names of dataset.label_column={label_column} differ "
                           f"between the splits: {names[0]} and {names[1]}")
    return names[0]


def _identity(ds: Any) -> dict:
    """What a split's content is known by: its fingerprint and its data files' sizes and times."""
    files = []
    for entry in ds.cache_files:
        stat = Path(entry["filename"]).stat()
        files.append([entry["filename"], stat.st_size, int(stat.st_mtime)])
    return {"fingerprint": getattr(ds, "_fingerprint", None), "files": files, "rows": len(ds)}


def _decode_to(hf: Any, out: Path, sets: dict[str, Any], columns: tuple[str, str], mode: str,
               names: list[str] | None) -> dict:
    decoded = {split: _decode_split(hf, ds, split, columns, mode) for split, ds in sets.items()}
    sizes = {split: Counter(img.shape[1:] for img in images)
             for split, (images, _) in decoded.items()}
    if len(set().union(*sizes.values())) > 1:
        found = "; ".join(f"{split}: " + ", ".join(f"{w}x{h} ({n})" for (h, w), n in c.items())
                          for split, c in sizes.items())
        raise BrittleError(f"images of several sizes ({found}); resize them to one size "
                           "(e.g. with Dataset.map) and save_to_disk again")
    labels = {split: np.asarray(y, dtype=np.int64) for split, (_, y) in decoded.items()}
    for split, y in labels.items():
        if len(y) == 0:
            raise BrittleError(f"the {split} split has no images; give a split that has some")
        if y.min() < 0:
            raise BrittleError(f"the {split} split has {int((y < 0).sum())} unlabelled images "
                               f"(label < 0) of {len(y)}; give labelled splits")
    classes = names or [str(c) for c in range(int(max(y.max() for y in labels.values())) + 1)]
    train_x, test_x = (np.stack(decoded[split][0]) for split in ("train", "test"))
    np.savez(out / "data.npz", classes=np.array(classes), train_x=train_x, test_x=test_x,
             train_y=labels["train"], test_y=labels["test"])
    mean, std = pixel_stats(train_x)
    log.info("training images' channel mean %s and std %s (dataset.normalize may be set to them)",
             [round(m, 4) for m in mean], [round(s, 4) for s in std])
    return {"n_train": len(labels["train"]), "n_test_images": len(labels["test"]),
            "pixel_mean": mean, "pixel_std": std}


def _decode_split(hf: Any, ds: Any, split: str, columns: tuple[str, str],
                  mode: str) -> tuple[list[np.ndarray], list[int]]:
    """Every image of a split as uint8 [C, H, W] in `mode`, and its label, in row order."""
    image_column, label_column = columns
    raw = ds.select_columns(list(columns)).cast_column(image_column, hf.Image(decode=False))
    images: list[np.ndarray] = []
    labels: list[int] = []
    bad: list[int] = []
    for batch in raw.iter(batch_size=256):
        for item, label in zip(batch[image_column], batch[label_column]):
            try:
                source = io.BytesIO(item["bytes"]) if item.get("bytes") else item["path"]
                with Image.open(source) as img:
                    pixels = np.asarray(img.convert(mode), dtype=np.uint8)
            except Exception:  # PIL raises many types for corrupt or missing images
                bad.append(len(images) + len(bad))
                continue
            images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
            labels.append(-1 if label is None else int(label))
    if bad:
        raise BrittleError(f"cannot decode the image of row {bad[0]} of the {split} split "
                           f"({len(bad)} of {len(ds)} cannot be decoded); replace or remove them")
    log.info("decoded %d %s images", len(labels), split)
    return images, labels


def pixel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images [N, C, H, W] in [0, 1] units, exact from each
    channel's 256-bin histogram (no float copy of the images)."""
    values = np.arange(256, dtype=np.float64) / 255.0
    mean, std = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(np.ascontiguousarray(images[:, c]).ravel(), minlength=256)
        m = float(counts @ values / counts.sum())
        mean.append(m)
        std.append(float(np.sqrt(counts @ (values - m) ** 2 / counts.sum())))
    return mean, std

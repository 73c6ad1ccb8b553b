"""dataset.loader.center_crop: image-folder images resized by the shorter side and centre-cropped
(ImageNet's evaluation crop) instead of squashed, against torchvision's Resize + CenterCrop."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from brittle.data.imagefolder import load_imagefolder
from brittle.runtime.errors import BrittleError


def _tree(root, image: Image.Image):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            image.save(root / split / cls / "0.png")
    return root


def _wide_image() -> Image.Image:
    """120 x 60: a smooth gradient in the central 60 x 60 square, solid blue bands either side."""
    x = np.zeros((60, 120, 3), np.uint8)
    x[:, :, 2] = 255
    yy, xx = np.mgrid[0:60, 0:60]
    x[:, 30:90] = np.stack([4 * xx, 4 * yy, np.zeros_like(xx)], -1).astype(np.uint8)
    return Image.fromarray(x)


def test_center_crop_matches_torchvisions_resize_then_center_crop(tmp_path):
    from torchvision.transforms import CenterCrop, Resize

    image = _wide_image()
    root = _tree(tmp_path, image)
    for fraction, resize in ((1.0, 24), (0.75, 32)):
        data = load_imagefolder(str(root), image_size=24, center_crop=fraction)
        ours = data.train.images[0].transpose(1, 2, 0).astype(float)
        theirs = np.asarray(CenterCrop(24)(Resize(resize)(image)), dtype=float)   # 24 / 0.75 = 32
        assert ours.shape == theirs.shape == (24, 24, 3)
        # equal up to rounding (the squashed image is 84 grey levels off on average)
        assert np.abs(ours - theirs).max() <= 1, fraction
        assert ours[..., 2].max() < 40                       # no blue band: the sides are cut off


def test_without_center_crop_images_are_squashed_whole(tmp_path):
    root = _tree(tmp_path, _wide_image())
    squashed = load_imagefolder(str(root), image_size=24).train.images[0]
    assert squashed.shape == (3, 24, 24) and squashed[2, :, 0].min() > 200   # the blue band stays


@pytest.mark.parametrize("bad", [0.0, 1.5])
def test_a_bad_fraction_is_one_clear_error(tmp_path, bad):
    root = _tree(tmp_path, _wide_image())
    with pytest.raises(BrittleError, match=rf"dataset.loader.center_crop={bad} is not valid; give"):
        load_imagefolder(str(root), center_crop=bad)

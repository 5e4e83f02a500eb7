"""Training and test preprocessing for unpaired images, following the official CycleGAN choices.

Modes (official CycleGAN data/base_dataset.py): ``resize_and_crop`` resizes to ``load_size``² and takes a random
``crop_size``² crop; ``crop`` only crops; ``scale_width`` resizes the width to ``load_size`` keeping
the aspect ratio; ``scale_width_and_crop`` does that and then crops; ``none`` only rounds each side
to a multiple of 4. A random horizontal flip follows when ``flip`` is on. Resizing is bicubic, and
pixels are mapped to [-1, 1] with ``(x/255 - 0.5) / 0.5``.

All randomness comes from the ``torch.Generator`` the caller passes, so an augmented image is a
pure function of (image, preprocess, generator seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from PIL import Image

from i2icli.errors import UsageError
from i2icli.imageio import to_tensor

Mode = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]

_CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")
# ``none`` rounds sizes to this base, as the official ``__make_power_2(img, base=4)`` does.
_SIZE_BASE = 4


@dataclass(frozen=True)
class Preprocess:
    """How training images are resized, cropped and flipped (defaults: official CycleGAN)."""

    mode: Mode = "resize_and_crop"
    load_size: int = 286  # side after resizing (square for resize_*, the width for scale_width*)
    crop_size: int = 256  # side of the square random crop in the crop modes
    flip: bool = True  # random horizontal flip with probability 1/2 (the official `not no_flip`)

    def __post_init__(self) -> None:
        if self.mode not in get_args(Mode):
            choices = ", ".join(get_args(Mode))
            raise UsageError(f"preprocess.mode: {self.mode!r} is not one of {choices}")
        if self.load_size < 1 or self.crop_size < 1:
            raise UsageError(
                f"preprocess: load_size ({self.load_size}) and crop_size ({self.crop_size}) "
                "must be positive"
            )
        # The crop is taken from a side of exactly load_size in these modes, so it cannot be larger.
        fixed_side = self.mode in ("resize_and_crop", "scale_width_and_crop")
        if fixed_side and self.crop_size > self.load_size:
            raise UsageError(
                f"preprocess.crop_size ({self.crop_size}) must not exceed load_size "
                f"({self.load_size}) in mode {self.mode!r}"
            )

    @property
    def crops(self) -> bool:
        """Whether this mode takes a ``crop_size``² crop."""
        return self.mode in _CROP_MODES


def _scale_width_size(width: int, height: int, load_size: int, crop_size: int) -> tuple[int, int]:
    """Official ``__scale_width``: width -> load_size keeping aspect, height floored at crop_size.

    The floor exists because a later crop needs at least ``crop_size`` rows; like the official
    code, a very wide image is stretched vertically rather than failing (the aspect ratio is then
    not kept). The official code also clamps in plain ``scale_width``, so we do too.
    """
    if width == load_size and height >= crop_size:
        return width, height
    return load_size, int(max(load_size * height / width, crop_size))


def _at_least_crop_size(width: int, height: int, crop_size: int) -> tuple[int, int]:
    """Scale up, keeping aspect, until both sides are at least ``crop_size`` (``crop`` mode).

    The official code would fail on an image smaller than the crop; we enlarge it instead.
    """
    short = min(width, height)
    if short >= crop_size:
        return width, height
    scale = crop_size / short
    return max(crop_size, round(width * scale)), max(crop_size, round(height * scale))


def _multiple_of_base(width: int, height: int) -> tuple[int, int]:
    """Round each side to the nearest multiple of 4 (Python ``round``, as upstream; at least 4)."""
    return (
        max(_SIZE_BASE, round(width / _SIZE_BASE) * _SIZE_BASE),
        max(_SIZE_BASE, round(height / _SIZE_BASE) * _SIZE_BASE),
    )


def resized_size(size: tuple[int, int], pre: Preprocess) -> tuple[int, int]:
    """(W, H) after the resize step of ``pre`` (before any crop) for an image of ``size`` (W, H)."""
    width, height = size
    if pre.mode == "resize_and_crop":
        return pre.load_size, pre.load_size
    if pre.mode in ("scale_width", "scale_width_and_crop"):
        return _scale_width_size(width, height, pre.load_size, pre.crop_size)
    if pre.mode == "crop":
        return _at_least_crop_size(width, height, pre.crop_size)
    return _multiple_of_base(width, height)


def output_size(size: tuple[int, int], pre: Preprocess) -> tuple[int, int]:
    """(W, H) of what ``apply_preprocess`` / ``test_transform`` make from a (W, H) image."""
    if pre.crops:
        return pre.crop_size, pre.crop_size
    return resized_size(size, pre)


def resize_step(img: Image.Image, pre: Preprocess) -> Image.Image:
    """The deterministic resize the transforms start with; idempotent (a resized image is kept as
    it is), so images can be stored resized (``--preload``) without changing any batch."""
    target = resized_size(img.size, pre)
    if target == img.size:
        return img
    return img.resize(target, Image.Resampling.BICUBIC)


def pixels(img: Image.Image) -> torch.Tensor:
    """An "L" or "RGB" image as a (C, H, W) uint8 tensor: how ``--preload`` holds training images."""
    array = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W) or (H, W, C)
    return array.unsqueeze(0) if array.ndim == 2 else array.permute(2, 0, 1).contiguous()


def apply_preprocess(img: Image.Image | torch.Tensor, pre: Preprocess, gen: torch.Generator) -> torch.Tensor:
    """Training transform: resize, random crop, random flip -> (C, H, W) in [-1, 1].

    ``img`` is a PIL image, or a (C, H, W) uint8 tensor already resized (``resize_step`` then
    ``pixels``, as preloaded images are held): then crop and flip are tensor slices, with no PIL
    work per step, and the result is the same to the bit. Crop offsets and the flip are drawn
    from ``gen`` only (in that order), so the result is reproducible from the generator's seed.
    """
    x = pixels(resize_step(img, pre)) if isinstance(img, Image.Image) else img  # (C, H, W) uint8
    if pre.crops:
        _, height, width = x.shape
        size = pre.crop_size
        top = int(torch.randint(height - size + 1, (1,), generator=gen))
        left = int(torch.randint(width - size + 1, (1,), generator=gen))
        x = x[:, top : top + size, left : left + size]
    if pre.flip and bool(torch.rand((), generator=gen) < 0.5):
        x = torch.flip(x, dims=(-1,))
    return (x.to(torch.float32) / 255.0 - 0.5) / 0.5  # as ``imageio.to_tensor``


def test_transform(img: Image.Image, pre: Preprocess) -> torch.Tensor:
    """Deterministic transform: the training resize, a centre crop in crop modes, no flip."""
    img = resize_step(img, pre)
    if pre.crops:
        width, height = img.size
        size = pre.crop_size
        top, left = (height - size) // 2, (width - size) // 2
        img = img.crop((left, top, left + size, top + size))
    return to_tensor(img)


"""Padding for native-resolution inference: any H x W goes through a network that needs sides
divisible by its stride and at least its minimum size, and the output is cropped back."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Padding:
    """Where the original sits inside a padded tensor: rows [0, height), columns [0, width)."""

    height: int
    width: int

    def crop(self, y: torch.Tensor) -> torch.Tensor:
        """Cut the original-size region back out of a (..., H', W') network output."""
        return y[..., : self.height, : self.width]


def pad_for_network(x: torch.Tensor, multiple: int, min_size: int) -> tuple[torch.Tensor, Padding]:
    """Pad a (B, C, H, W) tensor so both sides are >= ``min_size`` and divisible by ``multiple``.

    Placement: the original stays at the top-left; all padding goes at the bottom and right.
    Step 1: a side shorter than ``min_size`` is extended to ``min_size`` by replicating its last
    row/column (``np.pad(mode="edge")``). Step 2: each side is extended to the next multiple of
    ``multiple`` by mirror reflection without repeating the edge pixel, continued periodically when
    the padding exceeds the side (exactly ``np.pad(mode="reflect")`` on the step-1 result); a side
    of length 1 is replicated instead, since a single pixel has nothing to reflect.
    Returns the padded tensor and the ``Padding`` whose ``crop`` undoes it.
    """
    if x.ndim != 4:
        raise ValueError(f"pad_for_network expects (B, C, H, W), got shape {tuple(x.shape)}")
    if multiple < 1 or min_size < 0:
        raise ValueError(f"need multiple >= 1 and min_size >= 0, got {multiple} and {min_size}")
    height, width = x.shape[-2:]
    short_h, short_w = max(min_size - height, 0), max(min_size - width, 0)
    if short_h or short_w:
        x = F.pad(x, (0, short_w, 0, short_h), mode="replicate")
    x = _reflect_to(x, _round_up(x.shape[-2], multiple), _round_up(x.shape[-1], multiple))
    return x, Padding(height=height, width=width)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _reflect_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reflect-pad bottom/right to (height, width); a length-1 side is replicated instead."""
    if x.shape[-2] == 1 and height > 1:
        x = F.pad(x, (0, 0, 0, height - 1), mode="replicate")
    if x.shape[-1] == 1 and width > 1:
        x = F.pad(x, (0, width - 1, 0, 0), mode="replicate")
    # torch reflects at most (size - 1) per pass; repeated passes continue the mirror periodically.
    while x.shape[-2] < height or x.shape[-1] < width:
        cur_h, cur_w = x.shape[-2:]
        pad_h, pad_w = min(height - cur_h, cur_h - 1), min(width - cur_w, cur_w - 1)
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x

"""Library-level inference: native-resolution translation of image batches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch import nn

from i2icli.checkpoint import ModelConfig
from i2icli.errors import UsageError
from i2icli.imageio import pad_for_network, to_pil, to_tensor
from i2icli.methods.base import DIRECTIONS, Direction


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: the network (eval mode, on ``device``) and its checkpoint config."""

    net: nn.Module
    config: ModelConfig
    path: Path
    device: torch.device

    @property
    def directions(self) -> tuple[Direction, ...]:
        return tuple(self.net.directions)

    def channels(self, direction: Direction) -> tuple[int, int]:
        return self.net.channels(direction)

    @property
    def has_styles(self) -> bool:
        """Whether the method has style codes (MUNIT): translation then needs a style per image."""
        from i2icli.registry import METHODS, Capability

        spec = METHODS.get(self.config.method)
        return spec is not None and Capability.SAMPLE_STYLES in spec.capabilities

    @property
    def needs_style(self) -> bool:
        """Whether ``translate`` needs a style per image. A style model whose network declares
        ``style_optional = True`` (TransGaGa: the appearance transformer supplies one) does not."""
        return self.has_styles and not getattr(self.net, "style_optional", False)

    def direction_to(self, domain: str) -> Direction:
        """The direction whose output is ``domain`` (``--to winter``)."""
        a, b = self.config.domains
        if domain == b:
            return "a2b"
        if domain == a:
            return "b2a"
        raise UsageError(f"--to {domain!r}: this model's domains are {a!r} and {b!r}")

    def check_direction(self, direction: str) -> Direction:
        if direction not in DIRECTIONS:
            raise UsageError(f"--direction {direction!r}: use a2b or b2a")
        if direction not in self.directions:
            raise UsageError(f"--direction {direction}: this model only has {', '.join(self.directions)}")
        return direction  # type: ignore[return-value]


def _run_padded(
    model: LoadedModel, group: list[torch.Tensor], direction: Direction, styles: list[torch.Tensor] | None
) -> list[torch.Tensor]:
    """Same-size (C, H, W) images -> translated images of the same size (pad, run, crop back)."""
    net = model.net
    x = torch.stack(group).to(model.device)  # (B, C, H, W)
    padded, padding = pad_for_network(x, net.stride, net.min_size)
    if styles is None:
        y = net.translate(padded, direction)
    else:
        y = net.translate(padded, direction, torch.stack(styles).to(model.device))  # styles (B, S, 1, 1)
    return list(padding.crop(y).float().cpu())


@torch.inference_mode()
def translate_tensors(
    model: LoadedModel,
    images: Sequence[torch.Tensor],
    direction: Direction,
    *,
    batch_size: int = 1,
    styles: Sequence[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """(C, H, W) tensors in [-1, 1] -> translations in [-1, 1], each at its own native size.

    Consecutive images of equal size share a batch of up to ``batch_size``; the result does not
    depend on the batch size (instance norm is per image). Style-based models (``needs_style``)
    need ``styles``: one target-domain style (S, 1, 1) per image (see ``i2icli.multimodal``).
    """
    if styles is not None and not model.has_styles:
        raise UsageError(f"a {model.config.method} model has no style codes; drop the styles")
    if styles is None and model.needs_style:
        raise UsageError(f"a {model.config.method} model needs one style per image (see i2icli.multimodal)")
    if styles is not None and len(styles) != len(images):
        raise ValueError(f"got {len(styles)} styles for {len(images)} images")
    out: list[torch.Tensor] = []
    group: list[int] = []  # indices of images sharing one forward pass
    for i, img in enumerate(images):
        if group and (img.shape != images[group[0]].shape or len(group) == batch_size):
            out += _run_padded(model, [images[j] for j in group], direction, _pick(styles, group))
            group = []
        group.append(i)
    if group:
        out += _run_padded(model, [images[j] for j in group], direction, _pick(styles, group))
    return out


def _pick(styles: Sequence[torch.Tensor] | None, indices: list[int]) -> list[torch.Tensor] | None:
    return None if styles is None else [styles[j] for j in indices]


def prepare_input(image: Image.Image, channels: int) -> torch.Tensor:
    """PIL image -> (channels, H, W) tensor in [-1, 1], converting RGB <-> gray as the model needs."""
    mode = "L" if channels == 1 else "RGB"
    return to_tensor(image.convert(mode) if image.mode != mode else image)


def translate(
    model: LoadedModel,
    images: Sequence[Image.Image],
    direction: Direction = "a2b",
    *,
    batch_size: int = 1,
    styles: Sequence[torch.Tensor] | None = None,
) -> list[Image.Image]:
    """Translate PIL images with ``model`` at their native resolution; returns PIL images.

    Style-based models need ``styles``, one per image (e.g. ``i2icli.multimodal.named_style``).
    """
    direction = model.check_direction(direction)
    c_in, _ = model.channels(direction)
    tensors = [prepare_input(img, c_in) for img in images]
    outputs = translate_tensors(model, tensors, direction, batch_size=batch_size, styles=styles)
    return [to_pil(t) for t in outputs]

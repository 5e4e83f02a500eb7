"""Library-level inference: native-resolution translation of image batches."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Sequence, TypeVar, cast

import torch
from PIL import Image
from torch import nn

from i2icli.checkpoint import ModelConfig
from i2icli.errors import UsageError
from i2icli.imageio import to_pil, to_tensor
from i2icli.methods import read_info
from i2icli.methods.base import CAPABILITY_PROTOCOLS, DIRECTIONS, Direction
from i2icli.methods.info import Capability, MethodInfo
from i2icli.padding import pad_for_network
from i2icli.runtime import Runtime, TranslateFn, build_fn, eager_fn
from i2icli.tiling import TileOptions, activation_bytes_per_pixel, receptive_radius, translate_tiled

CapableNet = TypeVar("CapableNet")
# What a usage error says a model without the capability lacks.
_LACKS = {
    Capability.STYLES: "style codes",
    Capability.LATENT_WALK: "latent space to walk",
    Capability.LANDMARKS: "landmarks",
    Capability.OPTIONAL_STYLE: "styles of its own",
}


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference: the network (eval mode, on ``device``) and its checkpoint config."""

    net: nn.Module
    config: ModelConfig
    path: Path
    device: torch.device
    runtime: Runtime = Runtime()
    precision_reason: str = "requested"  # why ``runtime.precision`` was chosen (``--precision auto`` says it)
    # Built lazily per (direction, with style): translation functions, activation bytes per pixel.
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def with_runtime(self, runtime: Runtime) -> LoadedModel:
        """The same weights run another way (precision, layout, compiled, ONNX); see ``i2icli.runtime``."""
        if runtime.channels_last:
            self.net.to(memory_format=torch.channels_last)
        return replace(self, runtime=runtime, _cache={})

    def translate_fn(self, direction: Direction, example: tuple[torch.Tensor, torch.Tensor | None]) -> TranslateFn:
        """The runtime's translation for ``direction``; ``example`` (a padded batch and its styles)
        calibrates int8 and traces ONNX the first time."""
        key = ("run", direction, example[1] is not None)
        if key not in self._cache:
            self._cache[key] = build_fn(self.net, direction, self.device, self.runtime, key[2], [example])
        return self._cache[key]

    def calibrate(self, direction: Direction, images: Sequence[tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        """Build the translation for ``direction`` from example (C, H, W) images and their styles:
        int8 calibrates its activation ranges on them (each padded, batch 1)."""
        if not images:
            return
        examples = []
        for image, style in images:
            padded, _ = pad_for_network(image[None].to(self.device), self.net.stride, self.net.min_size)
            examples.append((padded, None if style is None else style[None].to(self.device)))
        key = ("run", direction, examples[0][1] is not None)
        self._cache[key] = build_fn(self.net, direction, self.device, self.runtime, key[2], examples)

    def eager_fn(self, direction: Direction) -> TranslateFn:
        """Eager translation in the runtime's eager precision (tiles, memory probes)."""
        rt = self.runtime
        return eager_fn(self.net, direction, self.device, rt.eager_precision, rt.channels_last)

    def autocast(self) -> AbstractContextManager[object]:
        """Autocast for eager calls outside ``translate_fn`` (styles, multimodal decoding)."""
        from i2icli.precision import autocast

        return autocast(self.device, self.runtime.eager_precision)

    @property
    def info(self) -> MethodInfo:
        """The method's torch-free declaration: what it can do (``info.caps``)."""
        return read_info(self.config.method)

    def has(self, capability: Capability) -> bool:
        """Whether the model's method declares ``capability``."""
        return capability in self.info.caps

    def net_as(self, protocol: type[CapableNet]) -> CapableNet:
        """The network as ``protocol``, the model side of a capability (``StyleModel``, ``LatentModel``,
        ``LandmarkModel``, ``OwnStyleModel``); a usage error for a method that does not declare it."""
        capability = next(c for c, p in CAPABILITY_PROTOCOLS.items() if p is protocol)
        if not self.has(capability):
            raise UsageError(f"{self.path}: a {self.config.method} model has no {_LACKS[capability]}")
        return cast(CapableNet, self.net)

    @property
    def tileable(self) -> bool:
        """Whether tiles can stand for the whole image: not for networks with global geometry (landmarks)."""
        return not self.has(Capability.LANDMARKS)

    def receptive_radius(self, direction: Direction, style: torch.Tensor | None) -> int:
        """Measured reach of one input pixel in the output (the default tile overlap)."""
        key = ("radius", direction, style is not None)
        if key not in self._cache:
            run = self.eager_fn(direction)
            s = None if style is None else style[:1]
            start = -(-max(64, self.net.min_size) // self.net.stride) * self.net.stride
            self._cache[key] = receptive_radius(lambda x: run(x, s), self.net, self.channels(direction)[0], start)
        return self._cache[key]

    def bytes_per_pixel(self, direction: Direction, style: torch.Tensor | None) -> float:
        """Estimated peak activation bytes per input pixel of one eager forward pass."""
        key = ("bpp", direction, style is not None)
        if key not in self._cache:
            run = self.eager_fn(direction)
            probe = max(self.net.min_size, 8 * self.net.stride)
            probe = -(-probe // self.net.stride) * self.net.stride
            s = None if style is None else style[:1]
            self._cache[key] = activation_bytes_per_pixel(lambda x: run(x, s), self.net, self.channels(direction)[0], probe)
        return self._cache[key]

    @property
    def directions(self) -> tuple[Direction, ...]:
        return tuple(self.net.directions)

    def channels(self, direction: Direction) -> tuple[int, int]:
        return self.net.channels(direction)

    @property
    def has_styles(self) -> bool:
        """Whether the method has style codes (``styles``): translation then takes a style per image."""
        return self.has(Capability.STYLES)

    @property
    def needs_style(self) -> bool:
        """Whether ``translate`` needs a style per image: a style model that does not supply its
        own (``optional-style``, TransGaGa's appearance transformer)."""
        return self.has_styles and not self.has(Capability.OPTIONAL_STYLE)

    def direction_to(self, domain: str) -> Direction:
        """The direction whose output is ``domain`` (``--to winter``; case does not matter)."""
        a, b = self.config.domains
        if domain.casefold() == b.casefold():
            return "a2b"
        if domain.casefold() == a.casefold():
            return "b2a"
        raise UsageError(f"--to {domain!r}: this model's domains are {a!r} and {b!r}")

    def check_direction(self, direction: str, *, shown: str | None = None) -> Direction:
        """``direction`` (``a2b``/``b2a``, any case, or ``AtoB``/``BtoA``) if this model has it;
        errors start with ``shown`` (default ``--direction DIRECTION``)."""
        normal = direction.strip().lower().replace("to", "2")
        if normal not in DIRECTIONS:
            raise UsageError(f"{shown or f'--direction {direction!r}'}: use a2b or b2a")
        if normal not in self.directions:
            a, b = self.config.domains
            can = ", ".join(f"{d} ({a} -> {b})" if d == "a2b" else f"{d} ({b} -> {a})" for d in self.directions)
            raise UsageError(f"{shown or f'--direction {direction}'}: this model only has {can}")
        return normal  # type: ignore[return-value]

    def choose_direction(self, direction: str, to: str | None) -> Direction:
        """The direction of ``--to DOMAIN`` when given, else of ``--direction``; errors name the option used."""
        if to is None:
            return self.check_direction(direction)
        return self.check_direction(self.direction_to(to), shown=f"--to {to}")


def check_tiling(model: LoadedModel, tiling: TileOptions) -> None:
    """Refuse tiles for a model that cannot run in them (``landmarks``: a global geometry)."""
    if tiling.tile and not model.tileable:
        raise UsageError(f"--tile: a {model.config.method} model uses global geometry (landmarks) and cannot be tiled")


def _run_padded(
    model: LoadedModel, group: list[torch.Tensor], direction: Direction, styles: list[torch.Tensor] | None,
    tiling: TileOptions,
) -> list[torch.Tensor]:  # fmt: skip
    """Same-size (C, H, W) images -> translated images of the same size (pad, run, crop back),
    in tiles when asked to or when the batch would exceed the memory budget."""
    net = model.net
    x = torch.stack(group).to(model.device)  # (B, C, H, W)
    s = None if styles is None else torch.stack(styles).to(model.device)  # (B, S, 1, 1)
    padded, padding = pad_for_network(x, net.stride, net.min_size)
    pixels = padded.shape[2] * padded.shape[3]
    check_tiling(model, tiling)
    tile = tiling.tile
    per_image = None
    if model.tileable:  # landmark models always run whole
        per_image = model.bytes_per_pixel(direction, s) * pixels
        if not tile and per_image > tiling.memory_budget:
            tile = _auto_tile(model, direction, s, tiling.memory_budget)
    if tile and max(padded.shape[2:]) > tile:
        return [_tiled(model, xi[None], direction, None if s is None else s[i : i + 1], tile, tiling) for i, xi in enumerate(x)]
    if per_image is not None and len(group) > 1 and per_image * len(group) > tiling.memory_budget:
        fit = max(1, int(tiling.memory_budget // per_image))  # smaller batches, each within the budget
        out: list[torch.Tensor] = []
        for i in range(0, len(group), fit):
            out += _run_padded(model, group[i : i + fit], direction, None if styles is None else styles[i : i + fit], tiling)
        return out
    run = model.translate_fn(direction, (padded, s))
    return list(padding.crop(run(padded, s)).float().cpu())


def _auto_tile(model: LoadedModel, direction: Direction, style: torch.Tensor | None, budget: int) -> int:
    """The largest tile side (a stride multiple) whose forward pass fits ``budget`` bytes."""
    side = int((budget / model.bytes_per_pixel(direction, style)) ** 0.5)
    return max(model.net.min_size, side // model.net.stride * model.net.stride)


def _tiled(
    model: LoadedModel, x: torch.Tensor, direction: Direction, style: torch.Tensor | None, tile: int, tiling: TileOptions
) -> torch.Tensor:
    """One image (1, C, H, W) in tiles; statistics from the whole image as large as the budget allows."""
    run = model.eager_fn(direction)
    bpp = model.bytes_per_pixel(direction, style)
    stats_pixels = tiling.stats_pixels or max(tile * tile, int(tiling.memory_budget / bpp))
    tile_batch = max(1, int(tiling.memory_budget // (bpp * tile * tile)))
    overlap = tiling.overlap
    if overlap is None:
        overlap = min(tile // 4, model.receptive_radius(direction, style))
    y = translate_tiled(
        lambda t: run(t, None if style is None else style.expand(t.shape[0], -1, -1, -1)), model.net, x,
        stride=model.net.stride, min_size=model.net.min_size, tile=tile, overlap=overlap,
        stats_pixels=stats_pixels, tile_batch=tile_batch,
    )  # fmt: skip
    return y[0].cpu()


@torch.inference_mode()
def translate_tensors(
    model: LoadedModel,
    images: Sequence[torch.Tensor],
    direction: Direction,
    *,
    batch_size: int = 1,
    styles: Sequence[torch.Tensor] | None = None,
    tiling: TileOptions = TileOptions(),
) -> list[torch.Tensor]:
    """(C, H, W) tensors in [-1, 1] -> translations in [-1, 1], each at its own native size.

    Consecutive images of equal size share a batch of up to ``batch_size``; the result does not
    depend on the batch size (instance norm is per image). Style-based models (``needs_style``)
    need ``styles``: one target-domain style (S, 1, 1) per image (see ``i2icli.multimodal``).
    Images run in tiles (``i2icli.tiling``) with ``tiling.tile`` set, or when one would exceed
    ``tiling.memory_budget``; batches are split to stay within it.
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
            out += _run_padded(model, [images[j] for j in group], direction, _pick(styles, group), tiling)
            group = []
        group.append(i)
    if group:
        out += _run_padded(model, [images[j] for j in group], direction, _pick(styles, group), tiling)
    return out


def _pick(styles: Sequence[torch.Tensor] | None, indices: list[int]) -> list[torch.Tensor] | None:
    return None if styles is None else [styles[j] for j in indices]


# --------------------------------------------------------------------------- input scale

# Inputs whose resized side is more than this factor away from the model's training scale get a warning.
FAR_FROM_SCALE = 1.5


@dataclass(frozen=True)
class InputScale:
    """How images are resized before the network.

    ``target``: pixels the ``side`` ("short" side, or "width") is resized to (aspect kept), None for
    native resolution. ``learned``: the model's training scale for that side, when its checkpoint
    records resizing preprocessing (every preset that resizes does); ``reason`` says where ``target``
    comes from.
    """

    target: int | None
    side: Literal["short", "width"]
    learned: int | None
    reason: str

    def size_for(self, size: tuple[int, int]) -> tuple[int, int]:
        """(W, H) an image of ``size`` is resized to."""
        if self.target is None:
            return size
        w, h = size
        ref = min(w, h) if self.side == "short" else w
        scale = self.target / ref
        return max(1, round(w * scale)), max(1, round(h * scale))

    def resize(self, image: Image.Image, alpha: Image.Image | None = None) -> tuple[Image.Image, Image.Image | None]:
        """``image`` (bicubic) and its alpha (bilinear) at ``size_for(image.size)``."""
        new = self.size_for(image.size)
        if new == image.size:
            return image, alpha
        resized_alpha = alpha.resize(new, Image.Resampling.BILINEAR) if alpha is not None else None
        return image.resize(new, Image.Resampling.BICUBIC), resized_alpha

    def describe_outputs(self, restored: bool = False) -> str:
        """Where outputs come from, for a command's summary line."""
        if restored:
            return f"translated at {self.reason}, resized back to each input's size"
        if self.target is None:
            return f"at {self.reason}"
        return f"at {self.reason}; --size native keeps each input's size"

    def far_warning(self, name: str, size: tuple[int, int]) -> str:
        """The one-line warning for an input ``name`` of ``size`` that is ``far`` from the training scale."""
        w, h = self.size_for(size)
        side = "short side" if self.side == "short" else "width"
        return (
            f"warning: {name} reaches the model at {w}x{h}, far from the scale it was trained at "
            f"({side} {self.learned} px); results may fail (--size auto resizes to it)"
        )

    def far(self, size: tuple[int, int]) -> bool:
        """Whether an image of ``size`` reaches the network far from the training scale."""
        if self.learned is None:
            return False
        w, h = self.size_for(size)
        side = min(w, h) if self.side == "short" else w
        return max(side / self.learned, self.learned / side) > FAR_FROM_SCALE


# An input whose side reaching the network is this many times the card's training crop (or smaller
# by as much) is far from anything the model saw: a wider margin than FAR_FROM_SCALE, since models
# are often applied to images a few times their crop.
FAR_FROM_CARD = 4.0
_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def domain_warning(model: LoadedModel, direction: str, scale: InputScale, name: str, size: tuple[int, int], mode: str | None) -> str | None:
    """One warning line when an input is far from what the model was trained on: a side far from
    the card's training crop (``config.image_size``; only when the checkpoint records no resize,
    since ``scale.far`` covers that case), or colour into a gray model or gray into a colour one.
    ``size`` is the input's (W, H), ``mode`` its Pillow mode before conversion (None: unknown)."""
    c_in, _ = model.channels(direction)  # type: ignore[arg-type]
    problems = []
    crop = model.config.image_size
    w, h = scale.size_for(size)
    if scale.learned is None and crop and max(min(w, h) / crop, crop / min(w, h)) > FAR_FROM_CARD:
        # Said here, once, rather than after every summary: only a far input makes it matter.
        unscaled = " (the model records no training resize; --size N resizes inputs)" if scale.target is None else ""
        problems.append(f"reaches the model at {w}x{h}{unscaled}")
    if mode is not None and (c_in == 1) != (mode in _GRAY_MODES):
        problems.append("is a colour image" if c_in == 1 else "is a gray image")
    if not problems:
        return None
    trained = f"{crop}x{crop} " if crop else ""
    kind = "gray" if c_in == 1 else "colour"
    return (
        f"warning: {name} {' and '.join(problems)}, but the model was trained on {trained}{kind} images "
        "(see its card: i2i models info); results may be poor"
    )


def training_scale(config: ModelConfig) -> tuple[int | None, Literal["short", "width"]]:
    """The side length images had in training and which side it measures, from the checkpoint's
    recorded preprocessing: ``resize_and_crop`` resized whole images to load_size² (so the short
    side, aspect kept, at inference), ``scale_width*`` their width; ``crop``/``none`` kept the native
    scale, and a checkpoint without recorded preprocessing (converted, older) says nothing: None."""
    from i2icli.config import ConfigError, from_dict
    from i2icli.data.transforms import Preprocess

    recorded = config.training.get("preprocess")
    if not isinstance(recorded, dict):
        return None, "short"
    try:
        pre = from_dict(Preprocess, recorded)
    except (ConfigError, UsageError):
        return None, "short"
    if pre.mode == "resize_and_crop":
        return pre.load_size, "short"
    if pre.mode in ("scale_width", "scale_width_and_crop"):
        return pre.load_size, "width"
    return None, "short"


def input_scale(model: LoadedModel, size: int | str) -> InputScale:
    """``size``: ``"auto"`` (the training scale when recorded, else native), ``"native"`` or pixels
    for the short side."""
    learned, side = training_scale(model.config)
    if size == "native":
        return InputScale(None, side, learned, "native resolution (--size native)")
    if size == "auto":
        if learned is None:
            return InputScale(None, side, None, "native resolution")
        what = "short side" if side == "short" else "width"
        return InputScale(learned, side, learned, f"the model's training scale ({what} {learned} px)")
    if not isinstance(size, int) or size < 1:
        raise UsageError(f"--size {size}: use auto, native or a number of pixels")
    return InputScale(size, "short", learned if side == "short" else None, f"short side {size} px (--size {size})")


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
    tiling: TileOptions = TileOptions(),
) -> list[Image.Image]:
    """Translate PIL images with ``model`` at their native resolution; returns PIL images.

    Style-based models need ``styles``, one per image (e.g. ``i2icli.multimodal.named_style``).
    """
    direction = model.check_direction(direction)
    c_in, _ = model.channels(direction)
    tensors = [prepare_input(img, c_in) for img in images]
    outputs = translate_tensors(model, tensors, direction, batch_size=batch_size, styles=styles, tiling=tiling)
    return [to_pil(t) for t in outputs]

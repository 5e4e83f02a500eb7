"""Tiled inference: translate an image of any size in overlapping tiles, blended smoothly.

Convolutions only see a neighbourhood, so a tile with enough context around it gives the same
pixels as the whole image, except for two things this module handles:

- **Normalisation statistics.** Instance norm (CycleGAN, GcGAN, DistanceGAN, UNIT, MUNIT's
  content encoder), AdaIN (MUNIT's decoder) and MUNIT's layer norm normalise with the mean and
  variance of the *whole* feature map. A tile computing its own would change brightness and
  contrast from tile to tile (seams). Here every tile uses one set of statistics for the whole
  image (``FrozenNorms`` records them layer by layer, in call order, and replays them in the tile
  passes): from one pass over the whole image when its forward pass fits ``stats_pixels`` (then
  tiles reproduce the untiled output up to tile borders); otherwise from a first pass of plain
  tiles whose moments are pooled over the part of the image each tile owns, at full resolution
  (an approximation: each layer's moments are measured after per-tile normalisation of the layers
  before it; one extra tiled pass). Measured by ``benchmarks/speed.py`` (cells e, g; PSNR against
  the untiled output): whole-image statistics 39-42 dB; pooled 30-33 dB on pages of the shipped
  models' digit examples, where each tile alone does as well or better (31-39 dB: every tile holds
  the same kind of content), and 19 dB on a photo, where each tile alone gives 15 dB. Pooling is
  kept for the photo case; neither approximation reaches the whole-image figure, so over the
  budget, raising ``memory_budget`` (one exact statistics pass) is the better fix when memory
  allows. A pass over a downscaled copy was rejected: networks trained at one scale see other
  statistics at another (10-16 dB on the digit pages).
- **Tile borders.** Pixels near a tile's edge lack context; tiles overlap by ``overlap`` pixels
  and are blended with weights that ramp from ~0 at a tile's inner edge to 1 (a raised cosine),
  so every output pixel is dominated by the tile that sees it best. Image borders keep weight 1.

Tiles start on multiples of the network stride within the image padded as the untiled path pads
it, so they sample the same grid as the whole-image pass. Networks with global geometry
(landmark models such as TransGaGa) cannot be tiled and are refused.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from i2icli.padding import pad_for_network

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of activations one forward pass may use
LIVE_TENSORS = 4  # activation tensors alive at once in a forward pass (input, output, pads, residual)
RADIUS_PROBE_LIMIT = 1024  # largest probe side when measuring a network's receptive field


@dataclass(frozen=True)
class TileOptions:
    """How to tile: ``tile`` side in pixels (0: only when over ``memory_budget``), ``overlap`` in
    pixels (None: the network's receptive-field radius, at most a quarter tile), activation
    ``memory_budget`` in bytes, and the pixel count of the statistics pass (None: what the
    budget allows)."""

    tile: int = 0
    overlap: int | None = None
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    stats_pixels: int | None = None


# --------------------------------------------------------------------------- statistics


Stats = list[tuple[Tensor, Tensor]]  # per normalisation call, in call order: (mean, var), each (1, C) or (1,)


Box = tuple[float, float, float, float]  # (top, bottom, left, right) as fractions of a tile's height and width


class FrozenNorms(TorchFunctionMode):
    """Record normalisation statistics of forward passes, or normalise with recorded ones.

    Intercepts every instance-norm call (``F.instance_norm``: nn.InstanceNorm2d, AdaIN) and MUNIT's
    layer norm of ``net``. Without ``use`` each call normalises as usual and the moments of its
    input are accumulated, per call (in call order) over every pass made inside this object and
    over the batch: over whole maps, or with ``regions`` (one ``Box`` per batch item, settable
    between passes) over those parts only; ``recorded()`` gives the resulting (mean, var) per call.
    With ``use`` each call normalises with the given (mean, var) of the same call instead of its
    own input's, so one image's statistics apply to every tile of it.
    """

    def __init__(self, net: nn.Module, use: Stats | None = None, regions: list[Box] | None = None) -> None:
        super().__init__()
        from i2icli.nn.adain import LayerNorm

        self.use = use
        self.regions = regions
        self.calls = 0
        self._sums: list[list[Any]] = []  # per call: [count, sum, sum of squares, unbiased]
        self._layer_norms = [m for m in net.modules() if isinstance(m, LayerNorm)]

    def __enter__(self) -> FrozenNorms:
        self.calls = 0
        for m in self._layer_norms:
            m.forward = self._layer_norm_of(m)  # instance attribute shadows the class method
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        for m in self._layer_norms:
            del m.forward
        super().__exit__(*exc)
        if exc[0] is None and self.use is not None and self.calls != len(self.use):
            raise RuntimeError(f"a tile pass made {self.calls} normalisation calls, the statistics pass {len(self.use)}")

    def recorded(self) -> Stats:
        """(mean, var) per call over everything seen, each (1, C) or (1,); var unbiased for layer norm."""
        out: Stats = []
        for count, total, squares, unbiased in self._sums:
            mean = total / count
            var = (squares / count - mean * mean).clamp_min(0)
            if unbiased:
                var = var * count / max(count - 1, 1)
            out.append((mean.float()[None], var.float()[None]))
        return out

    def _stats(self, x: Tensor, dims: tuple[int, ...], unbiased: bool) -> tuple[Tensor, Tensor] | None:
        """The given statistics to normalise ``x`` with over ``dims``, or None after accumulating
        ``x``'s moments (within the regions, if any)."""
        call = self.calls
        self.calls += 1
        if self.use is not None:
            if call >= len(self.use):
                raise RuntimeError("a tile pass made more normalisation calls than the statistics pass")
            return self.use[call]
        h, w = x.shape[-2:]
        boxes = self.regions if self.regions is not None else [(0.0, 1.0, 0.0, 1.0)] * x.shape[0]
        axes = tuple(d - 1 for d in dims)  # per item: (1, 2) for instance norm, (0, 1, 2) for layer norm
        count, total, squares = 0, 0.0, 0.0
        for item, (top, bottom, left, right) in zip(x, boxes):
            part = item[..., round(top * h) : round(bottom * h), round(left * w) : round(right * w)].double()
            count += part[0].numel() if len(axes) == 2 else part.numel()
            total = total + part.sum(axes)
            squares = squares + (part * part).sum(axes)
        if call == len(self._sums):
            self._sums.append([0, 0.0, 0.0, unbiased])
        acc = self._sums[call]
        acc[0], acc[1], acc[2] = acc[0] + count, acc[1] + total, acc[2] + squares
        return None

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.instance_norm:
            return self._instance_norm(*args, **kwargs)
        return func(*args, **kwargs)

    def _instance_norm(
        self, x: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
        weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
        momentum: float = 0.1, eps: float = 1e-5,
    ) -> Tensor:  # fmt: skip
        if not use_input_stats:  # running statistics: already global
            return F.instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
        stats = self._stats(x, (2, 3), unbiased=False)  # each (1, C)
        if stats is None:
            return F.instance_norm(x, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)
        mean, var = stats
        y = (x.float() - mean[:, :, None, None]) * torch.rsqrt(var[:, :, None, None] + eps)
        if weight is not None:
            y = y * weight.float()[None, :, None, None]
        if bias is not None:
            y = y + bias.float()[None, :, None, None]
        return y.to(x.dtype)

    def _layer_norm_of(self, module: nn.Module) -> Callable[[Tensor], Tensor]:
        def forward(x: Tensor) -> Tensor:  # MUNIT's LayerNorm: per sample over C*H*W, unbiased std
            stats = self._stats(x, (1, 2, 3), unbiased=True)  # each (1,)
            if stats is None:
                return type(module).forward(module, x)
            mean, var = stats
            y = (x.float() - mean.view(-1, 1, 1, 1)) / (var.sqrt().view(-1, 1, 1, 1) + module.eps)
            return (y * module.gamma.view(1, -1, 1, 1) + module.beta.view(1, -1, 1, 1)).to(x.dtype)

        return forward


# --------------------------------------------------------------------------- memory


def activation_bytes_per_pixel(run: Callable[[Tensor], Tensor], net: nn.Module, channels: int, probe: int) -> float:
    """Peak activation bytes per input pixel of one forward pass, estimated from a ``probe``^2 pass:
    the largest module output per input pixel times ``LIVE_TENSORS``."""
    largest = 0
    hooks = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal largest
        if isinstance(output, Tensor):
            largest = max(largest, output.numel() * output.element_size())

    for m in net.modules():
        hooks.append(m.register_forward_hook(record))
    try:
        ref = next(net.parameters())
        run(torch.zeros(1, channels, probe, probe, device=ref.device))
    finally:
        for h in hooks:
            h.remove()
    return LIVE_TENSORS * largest / (probe * probe)


def receptive_radius(run: Callable[[Tensor], Tensor], net: nn.Module, channels: int, start: int = 64) -> int:
    """How far (pixels) one input pixel's influence reaches in the output, measured: the output
    change from a unit impulse at the centre of a random image, with the normalisation
    statistics frozen (otherwise every output pixel would change through them)."""
    size = start
    gen = torch.Generator().manual_seed(0)
    ref = next(net.parameters())
    while True:
        x = (torch.rand(1, channels, size, size, generator=gen) * 2 - 1).to(ref.device)
        poked = x.clone()
        c = size // 2
        poked[:, :, c, c] += 1.0
        with FrozenNorms(net) as recorder:
            base = run(x).float()
        with FrozenNorms(net, use=recorder.recorded()):
            moved = run(poked).float()
        change = (moved - base).abs().amax(dim=(0, 1))  # (H, W)
        hit = torch.nonzero(change > 1e-4 * change.max())
        radius = int(max(c - hit[:, 0].min(), hit[:, 0].max() - c, c - hit[:, 1].min(), hit[:, 1].max() - c))
        if radius < c - 1 or size >= RADIUS_PROBE_LIMIT:
            return radius
        size *= 2


# --------------------------------------------------------------------------- tiles


def tile_starts(length: int, tile: int, overlap: int, align: int) -> list[int]:
    """Starts of tiles of ``tile`` pixels covering ``length``, on multiples of ``align``, neighbours
    overlapping by at least ``overlap`` (``tile``, ``length`` multiples of ``align``)."""
    if tile >= length:
        return [0]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(size: int, overlap: int, before: bool, after: bool) -> Tensor:
    """1-D blending weights: a raised cosine over ``overlap`` pixels at each side that has a
    neighbouring tile, 1 elsewhere (and at image borders)."""
    w = torch.ones(size)
    n = min(overlap, size // 2)
    if n > 0:
        t = (torch.arange(n, dtype=torch.float32) + 0.5) / n  # (0, 1)
        rise = 0.5 - 0.5 * torch.cos(math.pi * t)
        if before:
            w[:n] = rise
        if after:
            w[size - n :] = rise.flip(0)
    return w


def _cores(starts: list[int], tile: int, length: int, align: int) -> list[tuple[int, int]]:
    """The span of the axis each tile owns (relative to the tile): overlaps split at their middle."""
    cores = []
    for i, start in enumerate(starts):
        lo = 0 if i == 0 else (start + starts[i - 1] + tile) // 2 // align * align
        hi = length if i == len(starts) - 1 else (starts[i + 1] + start + tile) // 2 // align * align
        cores.append((lo - start, hi - start))
    return cores


def translate_tiled(
    run: Callable[[Tensor], Tensor],
    net: nn.Module,
    x: Tensor,
    *,
    stride: int,
    min_size: int,
    tile: int,
    overlap: int,
    stats_pixels: int,
    tile_batch: int = 1,
    statistics: Literal["auto", "downscaled", "tile"] = "auto",
) -> Tensor:
    """Translate one image ``x`` (1, C, H, W) with ``run`` in tiles of ``tile``^2 pixels; returns
    (1, C_out, H, W) float32 on ``x``'s device. ``run`` maps a padded batch to its translation.

    Normalisation statistics (``"auto"``) come from one pass over the whole image when it has at
    most ``stats_pixels`` pixels (exact); beyond, from a first pass of plain tiles, each
    normalised with its own statistics, whose moments are pooled over the part of the image each
    tile owns (full resolution, one extra tiled pass). The alternatives the benchmark compares:
    ``"downscaled"`` (a pass over the image shrunk to ``stats_pixels``; scale-sensitive
    networks suffer) and ``"tile"`` (each tile its own statistics: naive tiling).
    """
    if x.shape[0] != 1:
        raise ValueError("translate_tiled takes one image at a time")
    padded, padding = pad_for_network(x, stride, min_size)  # (1, C, Hp, Wp), the untiled path's padding
    height, width = padded.shape[2:]
    tile = max(min_size, tile // stride * stride)
    overlap = max(0, min(overlap, tile // 2))
    ys, xs = tile_starts(height, tile, overlap, stride), tile_starts(width, tile, overlap, stride)
    th, tw = min(tile, height), min(tile, width)
    boxes = [(y0, x0) for y0 in ys for x0 in xs]
    stats = None
    if statistics == "downscaled" or (statistics == "auto" and height * width <= stats_pixels):
        stats = _whole_image_stats(run, net, padded, stride, min_size, stats_pixels)
    elif statistics == "auto":
        core_y, core_x = _cores(ys, th, height, stride), _cores(xs, tw, width, stride)
        owned = {(y0, x0): (cy[0] / th, cy[1] / th, cx[0] / tw, cx[1] / tw) for y0, cy in zip(ys, core_y) for x0, cx in zip(xs, core_x)}
        recorder = FrozenNorms(net, regions=[])
        for first in range(0, len(boxes), tile_batch):
            chunk = boxes[first : first + tile_batch]
            recorder.regions = [owned[b] for b in chunk]
            with recorder:
                run(torch.cat([padded[:, :, y0 : y0 + th, x0 : x0 + tw] for y0, x0 in chunk]))  # (T, C, th, tw)
        stats = recorder.recorded()
    out: Tensor | None = None
    weight_sum = torch.zeros(1, 1, height, width, device=x.device)
    for first in range(0, len(boxes), tile_batch):
        chunk = boxes[first : first + tile_batch]
        tiles = torch.cat([padded[:, :, y0 : y0 + th, x0 : x0 + tw] for y0, x0 in chunk])  # (T, C, th, tw)
        with FrozenNorms(net, use=stats) if stats is not None else nullcontext():
            y = run(tiles).float()  # (T, C_out, th, tw)
        if out is None:
            out = torch.zeros(1, y.shape[1], height, width, device=x.device)
        for (y0, x0), piece in zip(chunk, y):
            wy = _ramp(th, overlap, y0 > 0, y0 + th < height).to(x.device)
            wx = _ramp(tw, overlap, x0 > 0, x0 + tw < width).to(x.device)
            w = wy[:, None] * wx[None, :]  # (th, tw)
            out[0, :, y0 : y0 + th, x0 : x0 + tw] += piece * w
            weight_sum[0, 0, y0 : y0 + th, x0 : x0 + tw] += w
    assert out is not None
    out /= weight_sum
    return padding.crop(out)


def _whole_image_stats(
    run: Callable[[Tensor], Tensor], net: nn.Module, padded: Tensor, stride: int, min_size: int, stats_pixels: int
) -> Stats:
    """Normalisation statistics of the whole (padded) image, downscaled to at most ``stats_pixels``."""
    height, width = padded.shape[2:]
    small = padded
    if height * width > stats_pixels:
        scale = math.sqrt(stats_pixels / (height * width))
        size = (max(min_size, round(height * scale)), max(min_size, round(width * scale)))
        small = F.interpolate(padded, size=size, mode="bilinear", antialias=True, align_corners=False)
        small, _ = pad_for_network(small, stride, min_size)
    with FrozenNorms(net) as recorder:
        run(small)
    return recorder.recorded()

"""Multimodal inference for style-based models (``styles``: MUNIT, TransGaGa): styles drawn from the
prior, styles encoded from example images, and walks between two styles or two contents; for
unimodal models with a latent space (``latent-walk``: UNIT), walks between two inputs' latent codes.
Each function uses only the capabilities the model's method declares (``base.py`` protocols).

Images are (C, H, W) tensors in [-1, 1] at their native size; a style is (S, 1, 1) and a batch of
them (N, S, 1, 1). Like ``inference.translate_tensors``, every function pads an input (reflect) to
the network's stride and minimum size, runs it, and crops the result back. Randomness only comes
from CPU generators seeded by the caller, never from the global RNG, so results depend on the
seed alone (not on the device, batch size or input order).
"""

from __future__ import annotations

import hashlib
from typing import Literal, Sequence

import torch
from PIL import Image
from torch import Tensor

from i2icli.data.unpaired import mix_seed
from i2icli.errors import UsageError
from i2icli.inference import LoadedModel
from i2icli.methods.base import Direction, LatentModel, OwnStyleModel, StyleModel, split_direction
from i2icli.methods.info import Capability
from i2icli.padding import Padding, pad_for_network

Mode = Literal["lerp", "slerp"]


# --------------------------------------------------------------------------- styles


def prior_styles(model: LoadedModel, n: int, seed: int) -> Tensor:
    """``n`` styles from N(0, I) drawn with a CPU generator seeded by ``seed``: (n, S, 1, 1)."""
    if n < 1:
        raise UsageError(f"need at least one style, got {n}")
    return model.net_as(StyleModel).random_style(n, torch.Generator().manual_seed(seed))


def name_seed(seed: int, name: str) -> int:
    """A per-input seed from the run seed and the input's (relative) name."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return mix_seed(seed, int.from_bytes(digest[:8], "little"))


def named_style(model: LoadedModel, name: str, seed: int) -> Tensor:
    """The random style ``translate`` uses for the input called ``name``: (S, 1, 1).

    It depends only on (seed, name), so outputs do not change with batch size or input order.
    """
    return prior_styles(model, 1, name_seed(seed, name))[0]


def encode_styles(model: LoadedModel, refs: Sequence[Tensor], direction: Direction) -> Tensor:
    """Styles of reference images of the *target* domain of ``direction``: (R, S, 1, 1).

    The style is a global average, so a reference smaller than the network minimum is only
    edge-padded up to it; any other size is encoded as it is.
    """
    net = model.net_as(StyleModel)
    _, target = split_direction(direction)
    styles = []
    with torch.inference_mode(), model.autocast():
        for ref in refs:
            padded, _ = pad_for_network(ref.unsqueeze(0).to(model.device), 1, model.net.min_size)
            styles.append(net.encode_style(padded, target))  # (1, S, 1, 1)
    if not styles:
        raise UsageError("need at least one reference image")
    return torch.cat(styles)


# --------------------------------------------------------------------------- translation


def _padded(model: LoadedModel, image: Tensor) -> tuple[Tensor, Padding]:
    """(C, H, W) -> (1, C, H', W') on the model's device, padded to the network's stride and minimum."""
    net = model.net
    return pad_for_network(image.unsqueeze(0).to(model.device), net.stride, net.min_size)


def _content(model: LoadedModel, image: Tensor, source: str) -> tuple[Tensor, Padding]:
    padded, padding = _padded(model, image)
    with model.autocast():
        return model.net_as(StyleModel).encode_content(padded, source), padding  # (1, D, h, w)


def _decode(model: LoadedModel, content: Tensor, styles: Tensor, target: str, padding: Padding) -> list[Tensor]:
    # content: (1 or K, D, h, w); styles: (K, S, 1, 1) -> K images (C, H, W) on the CPU
    with model.autocast():
        out = model.net_as(StyleModel).decode(content.expand(styles.shape[0], -1, -1, -1), styles.to(model.device), target)
    return list(padding.crop(out).float().cpu())


@torch.inference_mode()
def translate_with_styles(
    model: LoadedModel, image: Tensor, styles: Tensor, direction: Direction, *, batch_size: int = 8
) -> list[Tensor]:
    """One image translated with each of ``styles`` (K, S, 1, 1): K images, content encoded once."""
    source, target = split_direction(direction)
    content, padding = _content(model, image, source)
    out: list[Tensor] = []
    for chunk in styles.split(batch_size):
        out += _decode(model, content, chunk, target, padding)
    return out


def sample_styles(
    model: LoadedModel, images: Sequence[Tensor], n: int, seed: int, direction: Direction = "a2b", *, batch_size: int = 8
) -> list[list[Tensor]]:
    """``out[i][k]``: image i translated with the k-th of ``n`` prior styles drawn from ``seed``.

    Every input gets the same ``n`` styles (the official ``--synchronized`` sampling).
    """
    styles = prior_styles(model, n, seed)
    return [translate_with_styles(model, img, styles, direction, batch_size=batch_size) for img in images]


def exemplar(
    model: LoadedModel, images: Sequence[Tensor], refs: Sequence[Tensor], direction: Direction = "a2b", *, batch_size: int = 8
) -> list[list[Tensor]]:
    """``out[i][j]``: image i translated with the style of reference j (a target-domain image)."""
    styles = encode_styles(model, refs, direction)
    return [translate_with_styles(model, img, styles, direction, batch_size=batch_size) for img in images]


# --------------------------------------------------------------------------- interpolation


def mix(a: Tensor, b: Tensor, t: float, mode: Mode) -> Tensor:
    """The point at fraction ``t`` from ``a`` to ``b``; exactly ``a`` at t = 0 and ``b`` at t = 1.

    ``slerp`` weights the two (flattened) vectors by sin((1 - t)ω) / sin ω and sin(tω) / sin ω,
    ω being the angle between them (Shoemake 1985; the formula of the MUNIT repository's helper);
    nearly parallel vectors fall back to lerp.
    """
    if mode not in ("lerp", "slerp"):
        raise UsageError(f"--mode {mode!r}: use lerp or slerp")
    if t == 0:
        return a
    if t == 1:
        return b
    if mode == "lerp":
        return torch.lerp(a, b, t)
    fa, fb = a.flatten().double(), b.flatten().double()
    cos = torch.dot(fa / fa.norm(), fb / fb.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega).abs()) < 1e-6:
        return torch.lerp(a, b, t)
    w_a, w_b = torch.sin((1 - t) * omega) / torch.sin(omega), torch.sin(t * omega) / torch.sin(omega)
    return (w_a * fa + w_b * fb).to(a.dtype).view_as(a)


def fractions(steps: int) -> list[float]:
    """``steps`` evenly spaced fractions from 0 to 1, both ends included."""
    if steps < 2:
        raise UsageError(f"--steps {steps}: must be at least 2 (both ends are frames)")
    return [k / (steps - 1) for k in range(steps)]


@torch.inference_mode()
def interpolate(
    model: LoadedModel,
    images: Sequence[Tensor],
    styles: Tensor | None,
    *,
    steps: int,
    mode: Mode = "lerp",
    direction: Direction = "a2b",
    geometry: bool = False,
) -> list[Tensor]:
    """Frames of a walk, ``steps`` of them, both ends included.

    Two images of equal size: the walk between their latent codes, decoded in the target domain of
    ``direction``; a style model (MUNIT) walks between the contents and decodes them with the one
    style given (1, S, 1, 1); a latent model (UNIT) takes ``styles=None``. One image and two
    styles (2, S, 1, 1), style models only: the image translated along the path from style A to B.
    A landmark model (TransGaGa) walks appearance: between two styles on one image, or with
    ``styles=None`` between the appearances that translation gives two images, on the first one's
    geometry; ``geometry=True`` walks its landmark space between two images instead (one style).
    Each frame is decoded on its own, so the end frames equal plain translations bit for bit.
    """
    source, target = split_direction(direction)
    if geometry and not model.has(Capability.LANDMARKS):
        raise UsageError(f"--geometry: a {model.config.method} model has no landmarks to walk")
    if geometry and len(images) != 2:
        raise UsageError(f"--geometry walks landmark space between two inputs, got {len(images)}")
    if not model.has_styles:
        return _latent_walk(model, images, styles, steps=steps, mode=mode, source=source, target=target)
    if model.has(Capability.OPTIONAL_STYLE) and not geometry and len(images) == 2:
        if styles is not None:
            raise UsageError("an appearance walk between two inputs takes both ends from them; drop the styles or walk --geometry")
        _check_pair(images)
        with model.autocast():
            ends = [model.net_as(OwnStyleModel).translated_style(_padded(model, img)[0], direction) for img in images]
        return interpolate(model, images[:1], torch.cat(ends), steps=steps, mode=mode, direction=direction)
    if styles is None:
        raise UsageError(f"a {model.config.method} model walks with styles; pass one (content walk) or two (style walk)")
    frames: list[Tensor] = []
    if len(images) == 1:
        if styles.shape[0] != 2:
            raise UsageError(f"a style walk needs two styles, got {styles.shape[0]}")
        content, padding = _content(model, images[0], source)
        for t in fractions(steps):
            frames += _decode(model, content, mix(styles[0], styles[1], t, mode).unsqueeze(0), target, padding)
        return frames
    _check_pair(images)
    if styles.shape[0] != 1:
        raise UsageError(f"a content walk uses one style, got {styles.shape[0]}")
    (content_a, padding), (content_b, _) = _content(model, images[0], source), _content(model, images[1], source)
    for t in fractions(steps):
        frames += _decode(model, mix(content_a, content_b, t, mode), styles, target, padding)
    return frames


def _check_pair(images: Sequence[Tensor]) -> None:
    if len(images) != 2:
        raise UsageError(f"interpolate takes one input (style walk) or two (content walk), got {len(images)}")
    if images[0].shape != images[1].shape:
        raise UsageError(
            f"a content walk needs two images of the same size, got {tuple(images[0].shape)} and {tuple(images[1].shape)}"
        )


def _latent_walk(
    model: LoadedModel, images: Sequence[Tensor], styles: Tensor | None, *, steps: int, mode: Mode, source: str, target: str
) -> list[Tensor]:
    net = model.net_as(LatentModel)
    if styles is not None:
        raise UsageError(f"a {model.config.method} model has no style codes; interpolate walks between two inputs")
    if len(images) != 2:
        raise UsageError(f"a {model.config.method} model walks between two inputs' latent codes; got {len(images)} input(s)")
    _check_pair(images)
    x = torch.stack(list(images)).to(model.device)  # (2, C, H, W)
    padded, padding = pad_for_network(x, model.net.stride, model.net.min_size)
    with model.autocast():
        codes = [net.encode_latent(padded[i : i + 1], source) for i in range(2)]  # each (1, Z, h, w)
        frames: list[Tensor] = []
        for t in fractions(steps):
            frames += list(padding.crop(net.decode_latent(mix(codes[0], codes[1], t, mode), target)).float().cpu())
    return frames


# --------------------------------------------------------------------------- grids


def grid_image(rows: Sequence[Sequence[Image.Image | None]], *, gap: int = 2) -> Image.Image:
    """Paste images into a grid (RGB, black background); ``None`` leaves a cell empty.

    Every cell is as large as the largest image; smaller images sit at the cell's top-left.
    """
    cells = [img for row in rows for img in row if img is not None]
    if not cells:
        raise ValueError("grid_image needs at least one image")
    cell_w, cell_h = max(i.width for i in cells), max(i.height for i in cells)
    n_cols = max(len(row) for row in rows)
    grid = Image.new("RGB", (n_cols * cell_w + (n_cols - 1) * gap, len(rows) * cell_h + (len(rows) - 1) * gap))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            if img is not None:
                grid.paste(img.convert("RGB"), (c * (cell_w + gap), r * (cell_h + gap)))
    return grid

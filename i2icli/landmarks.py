"""The geometry a landmark model found: overlay and heatmap pictures (``i2i translate --save-landmarks``).

Works for any method that declares ``landmarks`` (``base.LandmarkModel``: ``landmarks(x, domain) ->
(heatmaps (B, K, H, W), points (B, K, 2))``, points as (x, y) in [-1, 1] over pixel centres;
TransGaGa). Images are (C, H, W) in [-1, 1] at native size; the input is padded for the network
like every inference path and the results are mapped back to the original pixels.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from i2icli.imageio import to_pil, write_image
from i2icli.inference import LoadedModel
from i2icli.methods.base import LandmarkModel
from i2icli.methods.info import Capability
from i2icli.multimodal import grid_image
from i2icli.padding import pad_for_network


def has_landmarks(model: LoadedModel) -> bool:
    """Whether the model's method declares landmarks."""
    return model.has(Capability.LANDMARKS)


@torch.inference_mode()
def find_landmarks(model: LoadedModel, image: Tensor, domain: str) -> tuple[Tensor, Tensor]:
    """(heatmaps (K, H, W) over the original pixels, landmarks (K, 2) as (column, row) pixels)."""
    net = model.net_as(LandmarkModel)
    padded, padding = pad_for_network(image.unsqueeze(0).to(model.device), model.net.stride, model.net.min_size)
    heat, points = net.landmarks(padded, domain)
    h, w = padded.shape[2:]
    # [-1, 1] over the padded frame's pixel centres -> pixels; the original sits at the top-left.
    pixels = (points[0].float().cpu() + 1) / 2 * torch.tensor([w - 1, h - 1], dtype=torch.float32)
    return padding.crop(heat[0]).float().cpu(), pixels


def _colour(k: int, n: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(k / max(n, 1), 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def overlay_image(image: Tensor, points: Tensor, *, scale: int = 4) -> Image.Image:
    """The image (upscaled ``scale`` x, nearest) with one coloured dot per landmark."""
    base = to_pil(image).convert("RGB")
    big = base.resize((base.width * scale, base.height * scale), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(big)
    radius = max(2, scale // 2 + 1)
    for k, (x, y) in enumerate(points.tolist()):
        cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=_colour(k, len(points)), outline=(0, 0, 0))
    return big


def heatmap_image(heatmaps: Tensor, *, columns: int = 10, gap: int = 1) -> Image.Image:
    """The K heatmaps as a grid of gray tiles, each scaled to its own maximum (white)."""
    tiles = [to_pil(h[None] / h.max().clamp_min(1e-12) * 2 - 1) for h in heatmaps]
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    return grid_image(rows, gap=gap)


def save_landmarks(model: LoadedModel, image: Tensor, domain: str, stem: Path) -> list[Path]:
    """Write ``<stem>_landmarks.png`` (overlay) and ``<stem>_heatmaps.png``; returns the paths."""
    heat, points = find_landmarks(model, image, domain)
    out = [Path(f"{stem}_landmarks.png"), Path(f"{stem}_heatmaps.png")]
    write_image(out[0], overlay_image(image, points))
    write_image(out[1], heatmap_image(heat))
    return out

"""Loss functions: small, pure, and shared by the methods."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

GanMode = Literal["lsgan", "nsgan", "hinge"]


def gan_d_loss(real: torch.Tensor, fake: torch.Tensor, mode: GanMode) -> torch.Tensor:
    """Discriminator loss on raw score maps of real and (detached) fake images."""
    if mode == "lsgan":
        return F.mse_loss(real, torch.ones_like(real)) + F.mse_loss(fake, torch.zeros_like(fake))
    if mode == "nsgan":
        return F.binary_cross_entropy_with_logits(
            real, torch.ones_like(real)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if mode == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    raise ValueError(f"unknown GAN mode {mode!r}")


def gan_g_loss(fake: torch.Tensor, mode: GanMode) -> torch.Tensor:
    """Generator loss on the discriminator's raw scores of fake images."""
    if mode == "lsgan":
        return F.mse_loss(fake, torch.ones_like(fake))
    if mode == "nsgan":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    if mode == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN mode {mode!r}")


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (cycle, identity and reconstruction terms)."""
    return (a - b).abs().mean()


def prior_moments(codes: torch.Tensor) -> torch.Tensor:
    """How far a batch of (B, S, ...) codes is from N(0, I) in its first two moments: the mean over
    dimensions of (batch mean)^2 + (batch variance - 1)^2. The variance is the biased one, so a
    batch of one gives a constant (no gradient) rather than a NaN."""
    flat = codes.flatten(1)  # (B, S)
    return flat.mean(0).pow(2).mean() + (flat.var(0, unbiased=False) - 1).pow(2).mean()


def low_pass_l1(x: torch.Tensor, y: torch.Tensor, factor: int) -> torch.Tensor:
    """L1 between grey, ``factor``-times average-pooled versions of (B, C, H, W) images (channel
    counts may differ): compares the coarse layout of two images and ignores texture and colour."""
    grey_x, grey_y = x.mean(1, keepdim=True), y.mean(1, keepdim=True)  # (B, 1, H, W)
    return l1(F.avg_pool2d(grey_x, factor, ceil_mode=True), F.avg_pool2d(grey_y, factor, ceil_mode=True))

"""Blocks of the improved MUNIT and UNIT generators the authors released with NVlabs/imaginaire (2021).

Differences from the 2018 generators (``nn/adain.py``), all read from imaginaire's generator and
layer files for the released configs:

* convolutions pad by reflection inside ``nn.Conv2d`` (``padding_mode="reflect"``);
* the residual blocks are pre-activation: norm -> ReLU -> 3x3 conv, twice, plus the identity;
* instance norms of the encoders carry an affine scale and shift; the encoder's channel count is
  capped at ``max_dim`` (256 in every released config) however many times it downsamples;
* MUNIT's style MLP ends in a ReLU and outputs a ``mlp_dim`` feature, not the AdaIN parameters:
  every AdaIN layer has its own linear projection of that feature to (gamma, beta) and applies
  ``beta + IN(x) * (1 + gamma)``;
* the decoder's last 7x7 conv has no output non-linearity (no tanh): images are clamped to [-1, 1]
  only when they are written, as imaginaire does;
* training used spectral weight norm on most convs; a converted checkpoint stores the normalised
  weights (``W / sigma``), so these modules are plain convolutions.

Module names follow imaginaire's with its ``layers.`` level dropped, so conversion is a rename
(``convert/imaginaire.py``).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor, nn

Norm = Literal["none", "in", "in_affine", "adain"]


class AdaIN(nn.Module):
    """Instance norm without affine, then ``beta + x * (1 + gamma)``; (gamma, beta) = ``fc(feature)``."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.fc = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: Tensor, feature: Tensor) -> Tensor:
        # x: (B, C, H, W); feature: (B or 1, cond_dim) -> gamma, beta each (B or 1, C, 1, 1)
        gamma, beta = self.fc(feature)[:, :, None, None].chunk(2, dim=1)
        return torch.addcmul(beta, self.norm(x), 1 + gamma)


def _norm(kind: Norm, channels: int, cond_dim: int) -> nn.Module | None:
    if kind == "none":
        return None
    if kind == "adain":
        return AdaIN(channels, cond_dim)
    return nn.InstanceNorm2d(channels, affine=kind == "in_affine")


class ConvBlock(nn.Module):
    """conv (reflect padding) -> norm -> ReLU, imaginaire's ``Conv2dBlock`` in its default order."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int,
        *, norm: Norm = "none", relu: bool = True, cond_dim: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, padding_mode="reflect")
        self.norm = _norm(norm, out_ch, cond_dim)
        self.relu = relu

    def forward(self, x: Tensor, feature: Tensor | None = None) -> Tensor:
        x = self.conv(x)
        if isinstance(self.norm, AdaIN):
            x = self.norm(x, feature)
        elif self.norm is not None:
            x = self.norm(x)
        return torch.relu(x) if self.relu else x


class PreActBlock(nn.Module):
    """norm -> ReLU -> 3x3 conv (reflect padding): one half of a pre-activation residual block."""

    def __init__(self, channels: int, *, norm: Norm, cond_dim: int = 0) -> None:
        super().__init__()
        self.norm = _norm(norm, channels, cond_dim)
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")

    def forward(self, x: Tensor, feature: Tensor | None = None) -> Tensor:
        if isinstance(self.norm, AdaIN):
            x = self.norm(x, feature)
        elif self.norm is not None:
            x = self.norm(x)
        return self.conv(torch.relu(x))


class PreActResBlock(nn.Module):
    """``x + B1(B0(x))`` with two ``PreActBlock``s (imaginaire ``Res2dBlock``, order ``pre_act``)."""

    def __init__(self, channels: int, *, norm: Norm, cond_dim: int = 0) -> None:
        super().__init__()
        self.conv_block_0 = PreActBlock(channels, norm=norm, cond_dim=cond_dim)
        self.conv_block_1 = PreActBlock(channels, norm=norm, cond_dim=cond_dim)

    def forward(self, x: Tensor, feature: Tensor | None = None) -> Tensor:
        return x + self.conv_block_1(self.conv_block_0(x, feature), feature)


class LinearRelu(nn.Module):
    """Linear -> ReLU (imaginaire ``LinearBlock`` with a ReLU)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.fc(x))


class ContentEncoder(nn.Module):
    """Image -> content code: 7x7 conv, ``n_downsample`` 4x4 stride-2 convs (channels doubled up to
    ``max_dim``), each with affine instance norm and ReLU, then ``n_res`` pre-activation blocks."""

    def __init__(self, n_downsample: int, n_res: int, in_ch: int, dim: int, max_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(in_ch, dim, 7, 1, 3, norm="in_affine")]
        for _ in range(n_downsample):
            prev, dim = dim, min(dim * 2, max_dim)
            layers.append(ConvBlock(prev, dim, 4, 2, 1, norm="in_affine"))
        layers += [PreActResBlock(dim, norm="in_affine") for _ in range(n_res)]
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        # (B, C, H, W) -> (B, output_dim, H / 2^n, W / 2^n)
        return self.model(x)


class StyleEncoder(nn.Module):
    """Image -> style code (B, style_dim, 1, 1): 7x7 conv, two doubling and ``n_downsample - 2``
    plain 4x4 stride-2 convs with ReLU and no norm, global average pool, 1x1 conv."""

    def __init__(self, n_downsample: int, in_ch: int, dim: int, style_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(in_ch, dim, 7, 1, 3)]
        for _ in range(2):
            layers.append(ConvBlock(dim, 2 * dim, 4, 2, 1))
            dim *= 2
        layers += [ConvBlock(dim, dim, 4, 2, 1) for _ in range(n_downsample - 2)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class StyleMLP(nn.Module):
    """Style code (B, style_dim, 1, 1) -> AdaIN feature (B, mlp_dim): ``n_blocks`` Linear + ReLU."""

    def __init__(self, style_dim: int, mlp_dim: int, n_blocks: int) -> None:
        super().__init__()
        dims = [style_dim] + [mlp_dim] * n_blocks
        self.model = nn.Sequential(*(LinearRelu(i, o) for i, o in pairwise(dims)))

    def forward(self, style: Tensor) -> Tensor:
        return self.model(style.flatten(1))


class Decoder(nn.Module):
    """Content code -> image: ``n_res`` pre-activation blocks, ``n_upsample`` times (nearest x2,
    5x5 conv halving the channels, norm, ReLU), a 7x7 conv to ``out_ch`` without non-linearity.

    ``norm="adain"`` (MUNIT): every norm is an ``AdaIN`` of the style feature; ``"in_affine"`` (UNIT).
    """

    def __init__(self, n_upsample: int, n_res: int, dim: int, out_ch: int, *, norm: Norm, cond_dim: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [PreActResBlock(dim, norm=norm, cond_dim=cond_dim) for _ in range(n_res)]
        for _ in range(n_upsample):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers.append(ConvBlock(dim, dim // 2, 5, 1, 2, norm=norm, cond_dim=cond_dim))
            dim //= 2
        layers.append(ConvBlock(dim, out_ch, 7, 1, 3, relu=False))
        self.model = nn.ModuleList(layers)

    def forward(self, x: Tensor, feature: Tensor | None = None) -> Tensor:
        # x: (B, dim, h, w); feature: (B or 1, cond_dim) for AdaIN -> (B, out_ch, h * 2^n, w * 2^n)
        for layer in self.model:
            x = layer(x) if isinstance(layer, nn.Upsample) else layer(x, feature)
        return x


class MunitAutoEncoder(nn.Module):
    """One domain of the improved MUNIT generator; same interface as ``methods.munit.AdaINGenerator``."""

    def __init__(
        self, in_ch: int, *, dim: int, max_dim: int, style_dim: int, n_downsample: int, n_res: int,
        mlp_dim: int, mlp_blocks: int, style_downsample: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.enc_style = StyleEncoder(style_downsample, in_ch, dim, style_dim)
        self.enc_content = ContentEncoder(n_downsample, n_res, in_ch, dim, max_dim)
        self.dec = Decoder(n_downsample, n_res, self.enc_content.output_dim, in_ch, norm="adain", cond_dim=mlp_dim)
        self.mlp = StyleMLP(style_dim, mlp_dim, mlp_blocks)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Content (B, D, h, w) + style (B or 1, style_dim, 1, 1) -> image (unbounded; ~[-1, 1])."""
        return self.dec(content, self.mlp(style))


class UnitAutoEncoder(nn.Module):
    """One domain of the improved UNIT generator: content encoder and decoder, no shared layers."""

    def __init__(self, in_ch: int, *, dim: int, max_dim: int, n_downsample: int, n_res: int) -> None:
        super().__init__()
        self.enc_content = ContentEncoder(n_downsample, n_res, in_ch, dim, max_dim)
        self.dec = Decoder(n_downsample, n_res, self.enc_content.output_dim, in_ch, norm="in_affine")

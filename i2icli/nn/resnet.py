"""The CycleGAN-family ResNet generator and 70x70 PatchGAN discriminator.

Layouts follow the official CycleGAN code so that its checkpoints map 1:1 onto these modules:
the generator is one ``nn.Sequential`` named ``model`` whose indices are the official key prefixes
(``model.1`` first conv, ``model.10..`` residual blocks, ...; official CycleGAN models/networks.py).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Padding = Literal["reflect", "zero"]


def instance_norm(channels: int, affine: bool = False) -> nn.InstanceNorm2d:
    """Instance norm without running statistics (train and eval modes agree); ``affine`` adds the
    per-channel scale and shift of the 2017 code (DistanceGAN)."""
    return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)


def _padded_conv(c_in: int, c_out: int, k: int, padding: Padding) -> list[nn.Module]:
    """A stride-1 ``k``x``k`` conv keeping H and W: ``[ReflectionPad, Conv]`` or one zero-padded ``Conv``.

    The reflect form takes two ``nn.Sequential`` slots and the zero form one, which is exactly how
    the official layer indices (the checkpoint keys) of the two variants differ.
    """
    if padding == "reflect":
        return [nn.ReflectionPad2d(k // 2), nn.Conv2d(c_in, c_out, k, bias=True)]
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=True)]


class ResnetBlock(nn.Module):
    """RB-C: ``x + [pad, conv3, IN, ReLU, (dropout), pad, conv3, IN](x)``; no activation after the sum.

    With dropout the second conv sits at ``conv_block.6`` instead of ``conv_block.5``, as officially.
    With zero padding (the 2017 variant) the pads vanish: convs at ``conv_block.0``/``.3`` (``.4``
    with dropout), affine norms at ``.1``/``.4`` (``.5``).
    """

    def __init__(self, channels: int, *, dropout: bool, padding: Padding = "reflect", affine: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            *_padded_conv(channels, channels, 3, padding),
            instance_norm(channels, affine),
            nn.ReLU(True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [*_padded_conv(channels, channels, 3, padding), instance_norm(channels, affine)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-out, tanh.

    Input (B, in_ch, H, W) with H, W multiples of 4 (``STRIDE``) and at least ``MIN_SIZE``;
    output (B, out_ch, H, W) in [-1, 1]. ``padding="zero", affine=True`` is the 2017 variant the
    DistanceGAN fork trained (docs/methods/distancegan.md): no reflection pads, so every index from the first
    norm on is one lower (blocks at ``model.9..``) and the norms carry weights.
    """

    STRIDE = 4  # two stride-2 convolutions
    MIN_SIZE = 8  # the 1-px reflect pads in the blocks need a bottleneck of at least 2x2

    def __init__(
        self, in_ch: int, out_ch: int, *, ngf: int, n_blocks: int, dropout: bool,
        padding: Padding = "reflect", affine: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        layers: list[nn.Module] = [
            *_padded_conv(in_ch, ngf, 7, padding),
            instance_norm(ngf, affine),
            nn.ReLU(True),
        ]
        for mult in (1, 2):  # downsampling: ngf -> 2 ngf -> 4 ngf, zero padding as officially
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True),
                instance_norm(ngf * mult * 2, affine),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, dropout=dropout, padding=padding, affine=affine) for _ in range(n_blocks)]
        for mult in (4, 2):  # upsampling: output_padding=1 makes each ConvT exactly double H and W
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                instance_norm(ngf * mult // 2, affine),
                nn.ReLU(True),
            ]
        layers += [*_padded_conv(ngf, out_ch, 7, padding), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN (n_layers=3): raw score map, e.g. (B, 1, 30, 30) for a 256^2 input."""

    def __init__(self, in_ch: int, *, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1  # the last hidden layer keeps the resolution
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=True),
                instance_norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ResnetTranslator(nn.Module):
    """Base of the models made of ``ResnetGenerator``s (CycleGAN, GcGAN, DistanceGAN): an input must
    be a multiple of the generator's stride and at least its minimum size."""

    stride = ResnetGenerator.STRIDE
    min_size = ResnetGenerator.MIN_SIZE


def patch_min_size(n_layers: int) -> int:
    """Smallest square input a PatchGAN with ``n_layers`` accepts in training: every instance norm
    must see more than one spatial element (conv4 stride 2 pad 1 halves; stride 1 removes 1 px)."""
    size = 1
    while True:
        s = size
        ok = True
        for _ in range(n_layers):  # stride-2 layers; the ones after the first carry an IN
            s = (s + 2 - 4) // 2 + 1
        s = s - 1  # the stride-1 hidden layer (IN)
        ok = s >= 2 and (s - 1) >= 1
        if ok:
            return size
        size += 1


def check_patch_crop(crop_size: int, n_layers: int) -> None:
    """Refuse training crops too small for a PatchGAN with ``n_layers`` (``patch_min_size``); the
    message names the config fields the ResNet-generator methods share."""
    smallest = patch_min_size(n_layers)
    if crop_size < smallest:
        raise ValueError(
            f"data.crop_size {crop_size} is too small for a PatchGAN with n_layers_d={n_layers} "
            f"(needs >= {smallest}); lower n_layers_d or raise crop_size"
        )


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """CycleGAN's ``init_type=normal``: conv/linear weights ~ N(0, std), biases 0; affine norm
    scales ~ N(1, std), shifts 0 (only the 2017 affine-IN variant has any)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def init_xavier(module: nn.Module, gain: float = 0.02) -> None:
    """The 2018 fork's ``init_type=xavier`` (GcGAN's default): conv/linear weights ~
    xavier_normal(gain), biases 0; affine norm scales ~ N(1, 0.02), shifts 0. Ours: the fork
    leaves biases at PyTorch's default uniform init; zero is the current CycleGAN code's choice."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

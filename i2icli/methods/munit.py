"""MUNIT: Multimodal Unsupervised Image-to-Image Translation (Huang et al., ECCV 2018).

Paper: https://arxiv.org/abs/1804.04732
Official code: https://github.com/NVlabs/MUNIT (networks.py).
Each domain has an autoencoder whose latent code splits into a spatial *content* code, shared
across domains, and a small *style* vector with a N(0, I) prior. Translation keeps the content
and decodes it with the other domain's decoder and a random or example-encoded style.

Paper symbol -> code name (domain 1 = a, domain 2 = b; METHODS.md §5.2):

    x_1, x_2         images of domain a / b           ``x`` with ``domain="a"`` / ``"b"``
    E^c_1, E^c_2     content encoders                 ``gen_a.enc_content``, ``gen_b.enc_content``
    E^s_1, E^s_2     style encoders                   ``gen_a.enc_style``, ``gen_b.enc_style``
    G_1, G_2         decoders (AdaIN res blocks, up)  ``gen_a.dec``, ``gen_b.dec``
    MLP inside G_i   style -> AdaIN (β, γ)            ``gen_a.mlp``, ``gen_b.mlp``
    c_1, s_1         content / style of x_1           ``encode(x, "a") -> (content, style)``
    s_2 ~ N(0, I)    random style of domain b         ``random_style(n, generator)``
    x_{1->2}         G_2(c_1, s_2)                    ``translate(x, "a2b", style)``
    D_1, D_2         multi-scale discriminators       ``dis_a``, ``dis_b`` (training objective):
                                                      ``MultiScaleDiscriminator(in_ch, arch.dis)``

Unlike the official code, AdaIN parameters are passed down the decoder as arguments instead of
being assigned to module attributes, so a generator is re-entrant and each sample in a batch
uses its own style.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from i2icli.errors import UsageError
from i2icli.nn.style import (
    MLP,
    Activation,
    AdaINResBlocks,
    Conv2dBlock,
    ContentEncoder,
    MsDisArch,
    PadType,
    StyleEncoder,
)

Domain = Literal["a", "b"]
Direction = Literal["a2b", "b2a"]

# The style encoder always halves the image this many times before pooling (official constant).
STYLE_ENCODER_DOWNSAMPLE = 4
# Linear layers in the style MLP (official constant).
MLP_BLOCKS = 3


@dataclass(frozen=True)
class MunitArch:
    """Network config: the official ``gen:`` and ``dis:`` sections plus the channel counts."""

    dim: int = 64  # channels after the first conv; doubled by each downsampling
    style_dim: int = 8  # length of the style code
    n_downsample: int = 2  # stride-2 convs in the content encoder (= upsamplings in the decoder)
    n_res: int = 4  # residual blocks in the content encoder and in the decoder
    activ: Activation = "relu"
    pad_type: PadType = "reflect"
    mlp_dim: int = 256  # hidden width of the style -> AdaIN MLP
    input_dim_a: int = 3  # image channels of domain a
    input_dim_b: int = 3  # image channels of domain b
    dis: MsDisArch = field(default_factory=MsDisArch)


class AdaINDecoder(nn.Module):
    """Content code + AdaIN parameters -> image.

    Layout (official ``dec.model`` indices): 0 AdaIN residual blocks, then per upsampling an
    ``nn.Upsample`` (nearest, x2) and a 5x5 conv + LayerNorm + activation halving the channels,
    then a 7x7 conv + tanh to ``out_ch``.
    """

    def __init__(
        self,
        n_upsample: int,
        n_res: int,
        dim: int,
        out_ch: int,
        *,
        activ: Activation,
        pad_type: PadType,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [AdaINResBlocks(n_res, dim, activ=activ, pad_type=pad_type)]
        for _ in range(n_upsample):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers.append(
                Conv2dBlock(dim, dim // 2, 5, 1, 2, norm="ln", activ=activ, pad_type=pad_type)
            )
            dim //= 2
        layers.append(Conv2dBlock(dim, out_ch, 7, 1, 3, activ="tanh", pad_type=pad_type))
        self.model = nn.ModuleList(layers)

    @property
    def num_adain_params(self) -> int:
        """Length of the AdaIN parameter vector ``forward`` expects."""
        return self.model[0].num_adain_params

    def forward(self, content: Tensor, adain_params: Tensor) -> Tensor:
        # content: (B, dim, h, w); adain_params: (B, num_adain_params) -> (B, out_ch, h*2^n, w*2^n)
        x = self.model[0](content, adain_params)
        for layer in self.model[1:]:
            x = layer(x)
        return x


class AdaINGenerator(nn.Module):
    """One domain's autoencoder (official ``AdaINGen``): two encoders, decoder and style MLP."""

    def __init__(self, in_ch: int, arch: MunitArch) -> None:
        super().__init__()
        self.enc_style = StyleEncoder(
            STYLE_ENCODER_DOWNSAMPLE,
            in_ch,
            arch.dim,
            arch.style_dim,
            activ=arch.activ,
            pad_type=arch.pad_type,
        )
        self.enc_content = ContentEncoder(
            arch.n_downsample,
            arch.n_res,
            in_ch,
            arch.dim,
            norm="in",
            activ=arch.activ,
            pad_type=arch.pad_type,
        )
        self.dec = AdaINDecoder(
            arch.n_downsample,
            arch.n_res,
            self.enc_content.output_dim,
            in_ch,
            activ=arch.activ,
            pad_type=arch.pad_type,
        )
        self.mlp = MLP(
            arch.style_dim, self.dec.num_adain_params, arch.mlp_dim, MLP_BLOCKS, activ=arch.activ
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Image (B, C, H, W) -> (content (B, D, H/2^n, W/2^n), style (B, style_dim, 1, 1))."""
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Content code and style (B, style_dim, 1, 1) -> image in [-1, 1].

        A style batch of 1 is applied to every content code in the batch.
        """
        return self.dec(content, self.mlp(style))


class MunitModel(nn.Module):
    """Inference model: the two per-domain generators ``gen_a`` and ``gen_b``."""

    def __init__(self, arch: MunitArch) -> None:
        super().__init__()
        self.arch = arch
        self.gen_a = AdaINGenerator(arch.input_dim_a, arch)
        self.gen_b = AdaINGenerator(arch.input_dim_b, arch)

    def generator(self, domain: Domain) -> AdaINGenerator:
        """The autoencoder of ``domain`` ("a" or "b")."""
        if domain == "a":
            return self.gen_a
        if domain == "b":
            return self.gen_b
        raise UsageError(f"domain must be 'a' or 'b', got {domain!r}")

    def encode(self, x: Tensor, domain: Domain) -> tuple[Tensor, Tensor]:
        """Image of ``domain`` -> (content code, style code (B, style_dim, 1, 1))."""
        return self.generator(domain).encode(x)

    def encode_content(self, x: Tensor, domain: Domain) -> Tensor:
        """Image of ``domain`` -> content code (B, D, H/2^n, W/2^n)."""
        return self.generator(domain).enc_content(x)

    def encode_style(self, x: Tensor, domain: Domain) -> Tensor:
        """Image of ``domain`` -> style code (B, style_dim, 1, 1), e.g. for guided translation."""
        return self.generator(domain).enc_style(x)

    def decode(self, content: Tensor, style: Tensor, domain: Domain) -> Tensor:
        """Content code + style of ``domain`` -> image of ``domain`` in [-1, 1]."""
        return self.generator(domain).decode(content, style)

    def translate(self, x: Tensor, direction: Direction, style: Tensor) -> Tensor:
        """Translate images with the given target-domain style (B or 1, style_dim, 1, 1)."""
        source, target = _split_direction(direction)
        return self.decode(self.encode_content(x, source), style, target)

    def random_style(
        self, n: int, generator: torch.Generator, device: torch.device | str | None = None
    ) -> Tensor:
        """``n`` style codes from N(0, I), shape (n, style_dim, 1, 1).

        Drawn on the generator's device and then moved, so a CPU generator gives the same styles
        whatever device the model runs on. ``device`` defaults to the model's.
        """
        ref = next(self.parameters())
        shape = (n, self.arch.style_dim, 1, 1)
        styles = torch.randn(shape, generator=generator, device=generator.device)
        return styles.to(device=ref.device if device is None else device, dtype=ref.dtype)


def _split_direction(direction: Direction) -> tuple[Domain, Domain]:
    if direction == "a2b":
        return "a", "b"
    if direction == "b2a":
        return "b", "a"
    raise UsageError(f"direction must be 'a2b' or 'b2a', got {direction!r}")

"""Building blocks of the MUNIT / UNIT-master networks: AdaIN, MUNIT's LayerNorm, the style MLP,
conv and residual blocks with selectable norm, the content and style encoders, and the
multi-scale discriminator.

Module and attribute names follow NVlabs/MUNIT ``networks.py`` (``model``, ``conv``, ``norm``,
``fc``, ``cnns``) so that official state-dict keys map onto ours one to one. Layer facts are in
the official MUNIT networks.py. Paper: https://arxiv.org/abs/1804.04732
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Activation = Literal["relu", "lrelu", "selu"]
PadType = Literal["reflect", "replicate", "zero"]
Norm = Literal["none", "in", "ln", "bn"]
GanType = Literal["lsgan", "nsgan", "hinge"]
InitKind = Literal["kaiming", "normal", "xavier"]

# Block activations add the output layer's tanh and "none" (last conv of a residual branch).
BlockActivation = Literal["relu", "lrelu", "selu", "tanh", "none"]


# --------------------------------------------------------------------------- factories


def make_activation(kind: BlockActivation) -> nn.Module:
    """Activation layer by name; LeakyReLU uses slope 0.2 as in the official code."""
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if kind == "selu":
        return nn.SELU(inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}")


def make_padding(kind: PadType, size: int) -> nn.Module:
    """Explicit padding layer; the conv that follows uses padding 0."""
    if kind == "reflect":
        return nn.ReflectionPad2d(size)
    if kind == "replicate":
        return nn.ReplicationPad2d(size)
    if kind == "zero":
        return nn.ZeroPad2d(size)
    raise ValueError(f"unknown padding {kind!r}")


def make_norm(kind: Norm, channels: int) -> nn.Module:
    """Normalisation layer by name. IN has no affine and no running statistics (no state)."""
    if kind == "none":
        return nn.Identity()
    if kind == "in":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "ln":
        return LayerNorm(channels)
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"unknown norm {kind!r}")


# --------------------------------------------------------------------------- normalisation


class LayerNorm(nn.Module):
    """MUNIT's layer norm: per-sample over C·H·W, *unbiased* std, eps added to the std, then a
    per-channel affine named ``gamma``/``beta``. Not ``nn.LayerNorm`` nor ``GroupNorm(1, C)``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        # gamma ~ U(0, 1), beta = 0: the official initialisation (MUNIT networks.py LayerNorm).
        self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
        self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(1)  # (B, C*H*W)
        stat_shape = (-1,) + (1,) * (x.dim() - 1)
        mean = flat.mean(1).view(stat_shape)
        std = flat.std(1).view(stat_shape)  # unbiased (N - 1)
        y = (x - mean) / (std + self.eps)
        affine_shape = (1, -1) + (1,) * (x.dim() - 2)
        return y * self.gamma.view(affine_shape) + self.beta.view(affine_shape)


class AdaptiveInstanceNorm2d(nn.Module):
    """Instance norm whose per-sample affine comes from outside: ``IN(x) * weight + bias``.

    The parameters are passed to ``forward`` rather than stored on the module, so one module can
    serve several styles at once and stays re-entrant. It holds no state: the official dummy
    ``running_mean``/``running_var`` buffers are never read and are dropped by the converter.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        # x: (B, C, H, W); weight, bias: (B, C) or (1, C), which then broadcasts over the batch.
        y = F.instance_norm(x, eps=self.eps)  # biased variance, always instance statistics
        return y * weight[:, :, None, None] + bias[:, :, None, None]


def split_adain_params(params: Tensor, channels: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
    """Cut the MLP output (B, P) into one ``(weight, bias)`` pair per AdaIN layer.

    Each layer of C channels takes the next 2C columns: the first C are the bias (β, "mean" in
    the official code) and the next C the weight (γ, "std"); no ``1 +`` offset on the weight.
    """
    expected = 2 * sum(channels)
    if params.shape[1] != expected:
        raise ValueError(f"expected {expected} AdaIN parameters, got {params.shape[1]}")
    pairs: list[tuple[Tensor, Tensor]] = []
    offset = 0
    for c in channels:
        bias = params[:, offset : offset + c]
        weight = params[:, offset + c : offset + 2 * c]
        pairs.append((weight, bias))
        offset += 2 * c
    return pairs


# --------------------------------------------------------------------------- conv blocks


class Conv2dBlock(nn.Module):
    """Explicit padding -> conv (with bias) -> norm -> activation."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        padding: int,
        *,
        norm: Norm = "none",
        activ: BlockActivation = "relu",
        pad_type: PadType = "reflect",
    ) -> None:
        super().__init__()
        self.pad = make_padding(pad_type, padding)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, bias=True)
        self.norm = make_norm(norm, out_ch)
        self.activation = make_activation(activ)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.norm(self.conv(self.pad(x))))


class AdaINConv2dBlock(Conv2dBlock):
    """``Conv2dBlock`` with an AdaIN norm whose weight and bias are forward arguments (the same
    module names, so the same state-dict keys)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, padding: int, *, activ: BlockActivation = "relu", pad_type: PadType = "reflect"
    ) -> None:
        super().__init__(in_ch, out_ch, kernel, stride, padding, activ=activ, pad_type=pad_type)
        self.norm = AdaptiveInstanceNorm2d(out_ch)

    def forward(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        return self.activation(self.norm(self.conv(self.pad(x)), weight, bias))


class ResBlock(nn.Module):
    """``x + [conv3 + norm + activ, conv3 + norm](x)``, no activation after the sum (RB-M)."""

    def __init__(self, dim: int, *, norm: Norm, activ: Activation, pad_type: PadType) -> None:
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activ=activ, pad_type=pad_type),
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activ="none", pad_type=pad_type),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.model(x)


class ResBlocks(nn.Module):
    """``n`` residual blocks in sequence (kept as ``model.{i}`` for the official key names)."""

    def __init__(
        self, n: int, dim: int, *, norm: Norm, activ: Activation, pad_type: PadType
    ) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *(ResBlock(dim, norm=norm, activ=activ, pad_type=pad_type) for _ in range(n))
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class AdaINResBlock(nn.Module):
    """Residual block whose two norms are AdaIN; takes one (weight, bias) pair per conv."""

    def __init__(self, dim: int, *, activ: Activation, pad_type: PadType) -> None:
        super().__init__()
        self.model = nn.ModuleList(
            [
                AdaINConv2dBlock(dim, dim, 3, 1, 1, activ=activ, pad_type=pad_type),
                AdaINConv2dBlock(dim, dim, 3, 1, 1, activ="none", pad_type=pad_type),
            ]
        )

    def forward(self, x: Tensor, params: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        y = x
        for block, (weight, bias) in zip(self.model, params, strict=True):
            y = block(y, weight, bias)
        return x + y


class AdaINResBlocks(nn.Module):
    """``n`` AdaIN residual blocks that consume the style MLP output in module order."""

    def __init__(self, n: int, dim: int, *, activ: Activation, pad_type: PadType) -> None:
        super().__init__()
        self.model = nn.ModuleList(
            AdaINResBlock(dim, activ=activ, pad_type=pad_type) for _ in range(n)
        )

    @property
    def adain_channels(self) -> list[int]:
        """Channel count of every AdaIN layer, in the order they take parameters."""
        return [m.num_features for m in self.modules() if isinstance(m, AdaptiveInstanceNorm2d)]

    @property
    def num_adain_params(self) -> int:
        """Length of the parameter vector these blocks consume (2 per channel per layer)."""
        return 2 * sum(self.adain_channels)

    def forward(self, x: Tensor, adain_params: Tensor) -> Tensor:
        # adain_params: (B, num_adain_params), order: block 0 conv 0, block 0 conv 1, block 1 ...
        pairs = split_adain_params(adain_params, self.adain_channels)
        for i, block in enumerate(self.model):
            x = block(x, pairs[2 * i : 2 * i + 2])
        return x


# --------------------------------------------------------------------------- MLP


class LinearBlock(nn.Module):
    """Linear (with bias) -> activation."""

    def __init__(self, in_dim: int, out_dim: int, *, activ: BlockActivation) -> None:
        super().__init__()
        self.fc = nn.Linear(in_dim, out_dim, bias=True)
        self.activation = make_activation(activ)

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.fc(x))


class MLP(nn.Module):
    """Style code -> AdaIN parameters: ``n_blk`` linear layers, the last one without activation."""

    def __init__(
        self, in_dim: int, out_dim: int, dim: int, n_blk: int, *, activ: Activation
    ) -> None:
        super().__init__()
        if n_blk < 2:
            raise ValueError(f"MLP needs at least 2 blocks, got {n_blk}")
        layers = [LinearBlock(in_dim, dim, activ=activ)]
        layers += [LinearBlock(dim, dim, activ=activ) for _ in range(n_blk - 2)]
        layers.append(LinearBlock(dim, out_dim, activ="none"))
        self.model = nn.Sequential(*layers)

    def forward(self, style: Tensor) -> Tensor:
        return self.model(style.flatten(1))  # (B, S, 1, 1) -> (B, S) -> (B, out_dim)


# --------------------------------------------------------------------------- encoders


class StyleEncoder(nn.Module):
    """Image -> style code (B, style_dim, 1, 1). No normalisation (IN would erase the style).

    Layout: conv7, two channel-doubling stride-2 convs, ``n_downsample - 2`` more at constant
    width, global average pooling, 1x1 conv (official indices 0..n_downsample, pool, conv).
    """

    def __init__(
        self,
        n_downsample: int,
        in_ch: int,
        dim: int,
        style_dim: int,
        *,
        activ: Activation,
        pad_type: PadType,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(in_ch, dim, 7, 1, 3, activ=activ, pad_type=pad_type)]
        for i in range(n_downsample):
            out = dim * 2 if i < 2 else dim
            layers.append(Conv2dBlock(dim, out, 4, 2, 1, activ=activ, pad_type=pad_type))
            dim = out
        layers.append(nn.AdaptiveAvgPool2d(1))
        layers.append(nn.Conv2d(dim, style_dim, 1, 1, 0))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # (B, in_ch, H, W) -> (B, style_dim, 1, 1)


class ContentEncoder(nn.Module):
    """Image -> spatial content code: conv7, ``n_downsample`` stride-2 convs, ``n_res`` blocks."""

    def __init__(
        self,
        n_downsample: int,
        n_res: int,
        in_ch: int,
        dim: int,
        *,
        norm: Norm,
        activ: Activation,
        pad_type: PadType,
    ) -> None:
        super().__init__()
        kw = {"norm": norm, "activ": activ, "pad_type": pad_type}
        layers: list[nn.Module] = [Conv2dBlock(in_ch, dim, 7, 1, 3, **kw)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, **kw))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, **kw))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)  # (B, in_ch, H, W) -> (B, dim * 2**n_downsample, H / 2**n, W / 2**n)


# --------------------------------------------------------------------------- discriminator


@dataclass(frozen=True)
class MsDisArch:
    """Multi-scale discriminator config (the official ``dis:`` section)."""

    dim: int = 64  # channels of the first conv; doubled by each further layer
    n_layer: int = 4  # stride-2 4x4 convs per scale
    num_scales: int = 3  # scale k+1 sees a 2x average-pooled copy of scale k's input
    norm: Norm = "none"
    activ: Activation = "lrelu"
    gan_type: GanType = "lsgan"  # read by the training objective, not by the network
    pad_type: PadType = "reflect"


class MultiScaleDiscriminator(nn.Module):
    """``arch.num_scales`` independent conv discriminators on successively halved images
    (official MUNIT networks.py MsImageDis). ``forward`` returns one raw score map per scale, finest first."""

    def __init__(self, in_ch: int, arch: MsDisArch) -> None:
        super().__init__()
        self.cnns = nn.ModuleList(_dis_scale(in_ch, arch) for _ in range(arch.num_scales))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for i, cnn in enumerate(self.cnns):
            if i > 0:
                x = self.downsample(x)
            outputs.append(cnn(x))  # (B, 1, H / 2**(n_layer + i), W / 2**(n_layer + i))
        return outputs


def _dis_scale(in_ch: int, arch: MsDisArch) -> nn.Sequential:
    # The first conv never has a norm. Official keys: convs cnns.k.<i>, 1x1 head cnns.k.<n_layer>.
    kw = {"activ": arch.activ, "pad_type": arch.pad_type}
    layers: list[nn.Module] = [Conv2dBlock(in_ch, arch.dim, 4, 2, 1, norm="none", **kw)]
    dim = arch.dim
    for _ in range(arch.n_layer - 1):
        layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm=arch.norm, **kw))
        dim *= 2
    layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- init


def init_weights(module: nn.Module, kind: InitKind) -> None:
    """Re-initialise every Conv2d/Linear weight in ``module`` in place and zero its bias.

    ``kaiming``: N(0, 2/fan_in) (official MUNIT/UNIT generators); ``normal``: N(0, 0.02)
    (official discriminators); ``xavier``: Glorot normal with gain sqrt(2). Norm affines
    (e.g. LayerNorm gamma ~ U(0, 1)) keep their own initialisation.
    """
    if kind not in ("kaiming", "normal", "xavier"):
        raise ValueError(f"unknown init {kind!r}")
    for m in module.modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if kind == "kaiming":
            nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in")
        elif kind == "normal":
            nn.init.normal_(m.weight, 0.0, 0.02)
        else:
            nn.init.xavier_normal_(m.weight, gain=2**0.5)
        if m.bias is not None:
            nn.init.zeros_(m.bias)

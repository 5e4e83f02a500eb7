"""MUNIT: Multimodal Unsupervised Image-to-Image Translation (Huang et al., ECCV 2018).

Paper: https://arxiv.org/abs/1804.04732; official code: https://github.com/NVlabs/MUNIT. A domain's
code splits into a spatial content code (shared across domains) and a style vector with an N(0, I)
prior; translation decodes the content with the other domain's decoder and a style. Facts, losses
and deviations (AdaIN parameters passed as arguments, so each sample uses its own style):
docs/methods/munit.md.

Paper symbol -> code name (domain 1 = a, domain 2 = b):

    E^c_1, E^c_2     content encoders                 ``gen_a.enc_content``, ``gen_b.enc_content``
    E^s_1, E^s_2     style encoders                   ``gen_a.enc_style``, ``gen_b.enc_style``
    G_1, G_2         decoders (AdaIN res blocks, up)  ``gen_a.dec``, ``gen_b.dec``
    MLP inside G_i   style -> AdaIN (β, γ)            ``gen_a.mlp``, ``gen_b.mlp``
    c_1, s_1         content / style of x_1           ``encode(x, "a") -> (content, style)``
    s_2 ~ N(0, I)    random style of domain b         ``random_style(n, generator)``
    x_{1->2}         G_2(c_1, s_2)                    ``translate(x, "a2b", style)``
    D_1, D_2         multi-scale discriminators       ``dis_a``, ``dis_b`` (training objective)
    λ_GAN, λ_x, λ_c, λ_s                              ``gan_w`` 1, ``recon_x_w`` 10, ``recon_c_w`` 1, ``recon_s_w`` 1

Two generator architectures, chosen by ``arch.variant``: ``official`` (the 2018 ``AdaINGen``) and
``imaginaire`` (the authors' later NVlabs/imaginaire generator, ``nn/imaginaire.py``), converted
from their checkpoints for inference only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from i2icli.data.transforms import Preprocess
from i2icli.errors import UsageError
from i2icli.losses import GanMode, gan_d_loss, gan_g_loss, l1, low_pass_l1, prior_moments
from i2icli.methods.base import (
    DIRECTIONS,
    Direction,
    Domain,
    Method,
    Optim,
    Preset,
    TrainingData,
    split_direction,
)
from i2icli.methods.info import MethodInfo, MethodOption
from i2icli.methods.presets import tiny_test_presets
from i2icli.nn.adain import (
    MLP,
    Activation,
    AdaINResBlocks,
    ContentEncoder,
    Conv2dBlock,
    InitKind,
    MsDisArch,
    MultiScaleDiscriminator,
    PadType,
    StyleEncoder,
    init_weights,
)
from i2icli.nn.imaginaire import MunitAutoEncoder
from i2icli.nn.vgg import VggFeatures, VggInput, load_vgg16_features, vgg_loss
from i2icli.train.objective import Batch, Carry, Phase, SingleStage, StepOutput, Validation, gray_to_rgb
from i2icli.train.schedule import step_decay

INFO = MethodInfo(
    name="munit", converter="i2icli.convert.munit", capabilities=("translate", "bidirectional", "styles"),
    summary="content/style autoencoders with AdaIN decoders, multi-scale discriminators; multimodal",
    paper="Huang et al., ECCV 2018, https://arxiv.org/abs/1804.04732",
    convert_help=(
        "the official gen_*.pt (or a released file such as edges2shoes.pt) holding both generators {'a','b'}, "
        "or an NVlabs/imaginaire MUNIT checkpoint"
    ),
    options=(
        MethodOption(flag="--vgg-weights", field="vgg_weights", kind="path", help="torchvision VGG16 state dict; turns on the domain-invariant perceptual loss"),
    ),
)


# The style encoder always halves the image this many times before pooling (official constant).
STYLE_ENCODER_DOWNSAMPLE = 4
# Linear layers in the style MLP (official constant).
MLP_BLOCKS = 3


@dataclass(frozen=True)
class MunitArch:
    """Network config: the official ``gen:`` and ``dis:`` sections plus the channel counts."""

    variant: Literal["official", "imaginaire"] = "official"
    dim: int = 64  # channels after the first conv; doubled by each downsampling
    style_dim: int = 8  # length of the style code
    n_downsample: int = 2  # stride-2 convs in the content encoder (= upsamplings in the decoder)
    n_res: int = 4  # residual blocks in the content encoder and in the decoder
    activ: Activation = "relu"
    pad_type: PadType = "reflect"
    mlp_dim: int = 256  # hidden width of the style -> AdaIN MLP
    channels_a: int = 3  # image channels of domain a (official input_dim_a)
    channels_b: int = 3  # image channels of domain b (official input_dim_b)
    dis: MsDisArch = field(default_factory=MsDisArch)
    mlp_blocks: int = MLP_BLOCKS  # linear layers of the style MLP (imaginaire configs: 2)
    max_dim: int = 256  # imaginaire: the content encoder's channel cap (official: no cap)


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
            arch.style_dim, self.dec.num_adain_params, arch.mlp_dim, arch.mlp_blocks, activ=arch.activ
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Image (B, C, H, W) -> (content (B, D, H/2^n, W/2^n), style (B, style_dim, 1, 1))."""
        return self.enc_content(x), self.enc_style(x)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Content code and style (B, style_dim, 1, 1) -> image in [-1, 1].

        A style batch of 1 is applied to every content code in the batch.
        """
        return self.dec(content, self.mlp(style))


def _generator(in_ch: int, arch: MunitArch) -> AdaINGenerator | MunitAutoEncoder:
    if arch.variant == "official":
        return AdaINGenerator(in_ch, arch)
    return MunitAutoEncoder(
        in_ch, dim=arch.dim, max_dim=arch.max_dim, style_dim=arch.style_dim, n_downsample=arch.n_downsample,
        n_res=arch.n_res, mlp_dim=arch.mlp_dim, mlp_blocks=arch.mlp_blocks, style_downsample=STYLE_ENCODER_DOWNSAMPLE,
    )  # fmt: skip


class MunitModel(nn.Module):
    """Inference model: the two per-domain generators ``gen_a`` and ``gen_b``.

    It follows the ``Translator`` protocol (``methods/base.py``) with one addition: ``translate``
    needs the target-domain style. Inputs must have sides that are multiples of ``stride`` (the
    content encoder halves the image ``n_downsample`` times and the decoder doubles it back) and at
    least ``min_size``, which lets the style encoder's four halvings end on a 1x1 map.
    """

    def __init__(self, arch: MunitArch) -> None:
        super().__init__()
        self.arch = arch
        self.directions: tuple[Direction, ...] = DIRECTIONS
        self.stride = 2**arch.n_downsample
        # Reflection padding needs >= 2 pixels wherever it runs: at the content code (residual
        # blocks) and before the style encoder's last stride-2 conv.
        self.min_size = max(2 ** (arch.n_downsample + 1), 2**STYLE_ENCODER_DOWNSAMPLE)
        self.gen_a = _generator(arch.channels_a, arch)
        self.gen_b = _generator(arch.channels_b, arch)

    def channels(self, direction: Direction) -> tuple[int, int]:
        """(input channels, output channels) for ``direction``."""
        a, b = self.arch.channels_a, self.arch.channels_b
        return (a, b) if split_direction(direction)[0] == "a" else (b, a)

    def generator(self, domain: Domain) -> AdaINGenerator | MunitAutoEncoder:
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

    def translate(self, x: Tensor, direction: Direction, style: Tensor | None = None) -> Tensor:
        """Translate images with the given target-domain style (B or 1, style_dim, 1, 1).

        The style is required: drawing one here would hide where the randomness comes from (use
        ``random_style`` with a seeded generator, or ``encode_style`` on a reference image).
        """
        source, target = split_direction(direction)
        if style is None:
            raise ValueError("MUNIT translation needs a target-domain style (random_style or encode_style)")
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


# --------------------------------------------------------------------------- training

# Weight of the perceptual loss when a VGG16 file is given but ``vgg_w`` is left at 0: the
# official value of the one released config that uses it (synthia2cityscape).
VGG_W_WHEN_ENABLED = 1.0
# Smallest score map (side, pixels) any discriminator scale may produce: the official coarsest
# map (256 px crops, n_layer 4, third scale sees 64 px -> 4x4).
MIN_SCORE_MAP = 4


@dataclass(frozen=True)
class MunitConfig:
    """A MUNIT training run: networks, data, loss weights and optimiser (official defaults).

    Data: the official loader resizes the short side to ``new_size`` (256) and takes a random
    256^2 crop and a flip. No ``Preprocess`` mode resizes the short side, so the default is
    ``scale_width_and_crop`` with load 256, crop 256: identical for square and portrait images
    (the width is the short side); a landscape image is instead scaled to width 256 and its
    height stretched up to 256, where the official loader would keep the aspect ratio.
    """

    arch: MunitArch = field(default_factory=MunitArch)
    data: Preprocess = field(
        default_factory=lambda: Preprocess(mode="scale_width_and_crop", load_size=256, crop_size=256, flip=True)
    )
    gan_w: float = 1.0  # adversarial (LSGAN unless arch.dis.gan_type says otherwise)
    recon_x_w: float = 10.0  # image reconstruction within a domain
    recon_c_w: float = 1.0  # content reconstruction after translation
    recon_s_w: float = 1.0  # style reconstruction after translation
    recon_x_cyc_w: float = 0.0  # explicit style-augmented cycle (official: 10 for summer2winter)
    # Labelled option, not the paper's: L1 between the input and its translation (random style)
    # after grey + content_pool x average pooling, so a translation keeps the input's layout.
    lambda_content: float = 0.0
    content_pool: int = 4  # pooling factor of the content term (32 px -> 8 px)
    # Labelled option, not the paper's: pulls the batch mean and variance of the encoded styles
    # towards the prior's (0, 1), so that styles drawn from N(0, I) are ones the decoders have seen.
    style_prior_w: float = 0.0
    vgg_w: float = 0.0  # domain-invariant perceptual loss; 0 with vgg_weights set means VGG_W_WHEN_ENABLED
    vgg_weights: str = ""  # VGG16 weights file (torchvision layout or the official conv1_1.. names)
    vgg_input: VggInput = "caffe"  # caffe: BGR 0..255 minus mean (official weights); torchvision: RGB mean/std
    # Adam with an L2 term (weight_decay) for generators and discriminators alike.
    optim: Optim = field(default_factory=lambda: Optim(lr=1e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4))
    lr_policy: Literal["step", "constant"] = "step"
    step_size: int = 100_000  # lr x gamma every step_size iterations
    gamma: float = 0.5
    init: InitKind = "kaiming"  # generators; the discriminators are always N(0, 0.02) (official)

    def __post_init__(self) -> None:
        weights = {
            "gan_w": self.gan_w, "recon_x_w": self.recon_x_w, "recon_c_w": self.recon_c_w,
            "recon_s_w": self.recon_s_w, "recon_x_cyc_w": self.recon_x_cyc_w, "vgg_w": self.vgg_w,
            "lambda_content": self.lambda_content, "style_prior_w": self.style_prior_w,
        }  # fmt: skip
        for name, value in weights.items():
            if value < 0:
                raise UsageError(f"{name} {value}: loss weights must be >= 0")
        if self.step_size < 1:
            raise UsageError(f"step_size {self.step_size}: must be at least 1")
        if self.content_pool < 1:
            raise UsageError(f"content_pool {self.content_pool}: must be at least 1")
        if self.vgg_w > 0 and not self.vgg_weights:
            raise UsageError(f"vgg_w {self.vgg_w}: the perceptual loss needs vgg_weights (a VGG16 weights file)")
        # Checked here, before a run folder exists; shapes are checked when the file is loaded.
        if self.vgg_weights and not Path(self.vgg_weights).is_file():
            raise UsageError(f"vgg_weights {self.vgg_weights}: no such file")

    @property
    def effective_vgg_w(self) -> float:
        """The perceptual-loss weight in use: ``vgg_w``, or ``VGG_W_WHEN_ENABLED`` when only a file is given."""
        if not self.vgg_weights:
            return 0.0
        return self.vgg_w if self.vgg_w > 0 else VGG_W_WHEN_ENABLED


def score_map_side(size: int, n_layer: int, scale: int) -> int:
    """Side of the score map that discriminator scale ``scale`` (0 = finest) gives for a ``size`` crop.

    Each downsampling to the next scale (3x3 average pool, stride 2, pad 1) rounds up; each 4x4
    stride-2 conv with pad 1 rounds down.
    """
    for _ in range(scale):
        size = math.ceil(size / 2)
    for _ in range(n_layer):
        size //= 2
    return size


def dis_scales(crop_size: int, dis: MsDisArch) -> int:
    """How many of ``dis.num_scales`` scales to use for ``crop_size`` training crops.

    Rule: every scale in use must give a score map of at least ``MIN_SCORE_MAP`` pixels a side,
    as the official coarsest one does; so the official 3 scales need crops of >= 256 px with
    n_layer 4 (>= 128 px with n_layer 3, >= 64 px with n_layer 2). Smaller crops drop the coarse
    scales. A crop too small for even the finest scale is a ``UsageError``.
    """
    finest = score_map_side(crop_size, dis.n_layer, 0)
    if finest < MIN_SCORE_MAP:
        fitting = [n for n in range(1, dis.n_layer) if score_map_side(crop_size, n, 0) >= MIN_SCORE_MAP]
        hint = f"lower arch.dis.n_layer to {fitting[-1]}" if fitting else "raise data.crop_size"
        raise UsageError(
            f"arch.dis.n_layer {dis.n_layer} is too deep for data.crop_size {crop_size}: the discriminator's "
            f"score map would be {finest}x{finest} (needs >= {MIN_SCORE_MAP}x{MIN_SCORE_MAP}); {hint}"
        )
    scales = 1
    while scales < dis.num_scales and score_map_side(crop_size, dis.n_layer, scales) >= MIN_SCORE_MAP:
        scales += 1
    return scales


def _check_crop(cfg: MunitConfig, model: MunitModel) -> None:
    data = cfg.data
    if not data.crops:
        raise UsageError(f"data.mode {data.mode!r}: MUNIT training needs a cropping mode (e.g. scale_width_and_crop)")
    if data.crop_size % model.stride or data.crop_size < model.min_size:
        raise UsageError(
            f"data.crop_size {data.crop_size}: must be a multiple of {model.stride} (2**arch.n_downsample) "
            f"and at least {model.min_size}"
        )


def _dis_loss(dis: MultiScaleDiscriminator, real: Tensor, fake: Tensor, mode: GanMode) -> Tensor:
    # Sum over scales of each scale's mean loss, no 1/2 factor (official MsImageDis.calc_dis_loss).
    return torch.stack([gan_d_loss(r, f, mode) for r, f in zip(dis(real), dis(fake), strict=True)]).sum()


def _gen_adv_loss(dis: MultiScaleDiscriminator, fake: Tensor, mode: GanMode) -> Tensor:
    return torch.stack([gan_g_loss(f, mode) for f in dis(fake)]).sum()


class MunitObjective(SingleStage):
    """Discriminators (and the optional frozen VGG16) plus the two phases of a MUNIT step.

    Logged scalars are the unweighted terms (as the official logger writes them): ``recon_x_*``,
    ``recon_c_*``, ``recon_s_*``, ``gan_*`` (and ``cyc_x_*``, ``vgg_*`` when on), ``d_a``, ``d_b``.
    """

    def __init__(self, cfg: MunitConfig, model: MunitModel, data: TrainingData, seed: int) -> None:
        if cfg.arch.variant != "official":
            raise ValueError(f"arch.variant {cfg.arch.variant}: converted for inference only; train the official variant")
        _check_crop(cfg, model)
        scales = dis_scales(cfg.data.crop_size, cfg.arch.dis)
        self.cfg = cfg
        self.model = model
        self.seed = seed  # only for the fixed styles of the sample grids
        dis_arch = replace(cfg.arch.dis, num_scales=scales)
        self.dis_a = MultiScaleDiscriminator(cfg.arch.channels_a, dis_arch)
        self.dis_b = MultiScaleDiscriminator(cfg.arch.channels_b, dis_arch)
        # Official: kaiming on everything, then the discriminators re-initialised with N(0, 0.02).
        init_weights(model, cfg.init)
        init_weights(self.dis_a, "normal")
        init_weights(self.dis_b, "normal")
        self.vgg: VggFeatures | None = (
            load_vgg16_features(cfg.vgg_weights, cfg.vgg_input) if cfg.effective_vgg_w > 0 else None
        )

    def phases(self) -> list[Phase]:
        o = self.cfg.optim
        gens, dis = (self.model.gen_a, self.model.gen_b), (self.dis_a, self.dis_b)
        # Discriminators first, then generators: the official update order.
        return [o.phase("dis", dis, self.discriminator_loss), o.phase("gen", gens, self.generator_loss)]

    def lr_factor(self, step: int, max_steps: int) -> float:
        if self.cfg.lr_policy == "constant":
            return 1.0
        # The official loop steps its StepLR before each update, so update s (0-indexed) already
        # runs at the rate of iteration s + 1: the first halving applies to update step_size - 1.
        return step_decay(step + 1, self.cfg.step_size, self.cfg.gamma)

    def training_modules(self) -> dict[str, nn.Module]:
        return {"gen_a": self.model.gen_a, "gen_b": self.model.gen_b, "dis_a": self.dis_a, "dis_b": self.dis_b}

    def _random_styles(self, x_a: Tensor, x_b: Tensor) -> tuple[Tensor, Tensor]:
        # Fresh prior samples from the global RNG in every phase (official: s_a first, then s_b).
        dim = self.cfg.arch.style_dim
        s_a = torch.randn(x_a.shape[0], dim, 1, 1, device=x_a.device)  # (B, S, 1, 1)
        s_b = torch.randn(x_b.shape[0], dim, 1, 1, device=x_b.device)
        return s_a, s_b

    def discriminator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        gen_a, gen_b, mode = self.model.gen_a, self.model.gen_b, self.cfg.arch.dis.gan_type
        x_a, x_b = batch["a"], batch["b"]  # (B, C_a, H, W), (B, C_b, H, W)
        s_a, s_b = self._random_styles(x_a, x_b)
        with torch.no_grad():  # the generators are frozen in this phase; their fakes are constants
            x_ba = gen_a.decode(gen_b.enc_content(x_b), s_a)
            x_ab = gen_b.decode(gen_a.enc_content(x_a), s_b)
        d_a = _dis_loss(self.dis_a, x_a, x_ba, mode)
        d_b = _dis_loss(self.dis_b, x_b, x_ab, mode)
        return StepOutput(self.cfg.gan_w * (d_a + d_b), {"d_a": d_a, "d_b": d_b})

    def generator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        c, gen_a, gen_b, mode = self.cfg, self.model.gen_a, self.model.gen_b, self.cfg.arch.dis.gan_type
        x_a, x_b = batch["a"], batch["b"]
        s_a, s_b = self._random_styles(x_a, x_b)  # (B, S, 1, 1)
        c_a, s_a_prime = gen_a.encode(x_a)  # (B, D, H/2^n, W/2^n), (B, S, 1, 1)
        c_b, s_b_prime = gen_b.encode(x_b)
        x_ba = gen_a.decode(c_b, s_a)  # cross-domain, random styles
        x_ab = gen_b.decode(c_a, s_b)
        c_b_recon, s_a_recon = gen_a.encode(x_ba)
        c_a_recon, s_b_recon = gen_b.encode(x_ab)
        terms: dict[str, tuple[float, Tensor]] = {
            "gan_a": (c.gan_w, _gen_adv_loss(self.dis_a, x_ba, mode)),
            "gan_b": (c.gan_w, _gen_adv_loss(self.dis_b, x_ab, mode)),
            "recon_x_a": (c.recon_x_w, l1(gen_a.decode(c_a, s_a_prime), x_a)),
            "recon_x_b": (c.recon_x_w, l1(gen_b.decode(c_b, s_b_prime), x_b)),
            "recon_c_a": (c.recon_c_w, l1(c_a_recon, c_a)),
            "recon_c_b": (c.recon_c_w, l1(c_b_recon, c_b)),
            "recon_s_a": (c.recon_s_w, l1(s_a_recon, s_a)),
            "recon_s_b": (c.recon_s_w, l1(s_b_recon, s_b)),
        }
        if c.recon_x_cyc_w > 0:
            # Recovered content decoded with the input's own encoded style must give the input back.
            terms["cyc_x_a"] = (c.recon_x_cyc_w, l1(gen_a.decode(c_a_recon, s_a_prime), x_a))
            terms["cyc_x_b"] = (c.recon_x_cyc_w, l1(gen_b.decode(c_b_recon, s_b_prime), x_b))
        if c.lambda_content > 0:
            # Content-code reconstruction alone lets the decoder ignore the content and draw one
            # template per style; the low-pass term ties each translation to its own input.
            terms["content_a"] = (c.lambda_content, low_pass_l1(x_ab, x_a, c.content_pool))
            terms["content_b"] = (c.lambda_content, low_pass_l1(x_ba, x_b, c.content_pool))
        if c.style_prior_w > 0:
            # Encoded styles far narrower than N(0, I) leave prior samples outside what the decoders
            # learnt from reconstruction: their translations come out as grid-textured blobs.
            terms["prior_s_a"] = (c.style_prior_w, prior_moments(s_a_prime))
            terms["prior_s_b"] = (c.style_prior_w, prior_moments(s_b_prime))
        if self.vgg is not None:
            # Each translation is compared with its own source image.
            vgg = self.vgg.to(x_a.device)
            terms["vgg_a"] = (c.effective_vgg_w, vgg_loss(vgg, x_ba, x_b))
            terms["vgg_b"] = (c.effective_vgg_w, vgg_loss(vgg, x_ab, x_a))
        loss = torch.stack([w * v for w, v in terms.values()]).sum()
        return StepOutput(loss, {name: v for name, (_, v) in terms.items()})

    def validation(self) -> Validation:
        """Mean within-domain reconstruction L1 (own content + own style) on held-back images (lower is better)."""

        def recon_l1(x_a: Tensor, x_b: Tensor) -> float:
            m = self.model
            rec_a = m.gen_a.decode(*m.gen_a.encode(x_a))
            rec_b = m.gen_b.decode(*m.gen_b.encode(x_b))
            return float((l1(rec_a, x_a) + l1(rec_b, x_b)) / 2)

        return Validation("recon_l1", recon_l1, higher_is_better=False)

    def extra_state(self) -> dict[str, Any]:
        return {}  # no pools or private RNGs: the loop's saved global RNG covers the random styles

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    @torch.no_grad()
    def samples(self, batch: Batch) -> dict[str, Tensor]:
        """Official layout: x_a, its reconstruction, x_ab with two fixed styles; the same for b."""
        m = self.model
        x_a, x_b = batch["a"], batch["b"]
        n = x_a.shape[0]
        # A private generator: sampling must not consume the training RNG.
        styles = m.random_style(4 * n, torch.Generator().manual_seed(self.seed))  # (4n, S, 1, 1)
        s_b1, s_b2, s_a1, s_a2 = styles.split(n)
        c_a, s_a_prime = m.gen_a.encode(x_a)
        c_b, s_b_prime = m.gen_b.encode(x_b)
        rows = {
            "A": x_a, "A recon": m.gen_a.decode(c_a, s_a_prime), "A->B s1": m.gen_b.decode(c_a, s_b1),
            "A->B s2": m.gen_b.decode(c_a, s_b2), "B": x_b, "B recon": m.gen_b.decode(c_b, s_b_prime),
            "B->A s1": m.gen_a.decode(c_b, s_a1), "B->A s2": m.gen_a.decode(c_b, s_a2),
        }  # fmt: skip
        return {label: gray_to_rgb(r) for label, r in rows.items()}


def _cpu_config(
    size: int, dim: int, n_res: int, mlp_dim: int, dis_dim: int, step_size: int, dis_layers: int = 2
) -> MunitConfig:
    return MunitConfig(
        arch=MunitArch(dim=dim, n_res=n_res, mlp_dim=mlp_dim, dis=MsDisArch(dim=dis_dim, n_layer=dis_layers)),
        data=Preprocess(mode="scale_width_and_crop", load_size=size, crop_size=size, flip=True),
        step_size=step_size,
    )


PRESETS = {
    "paper": Preset(
        "paper",
        "official recipe: 256^2 crops (short side 256), dim 64, 4 res blocks, mlp 256, 3-scale D, batch 1, 1M steps",
        MunitConfig(),
        batch_size=1,
        max_steps=1_000_000,
    ),
    "cpu-small": Preset(
        "cpu-small",
        "CPU-sized (labelled, not the paper's): 32^2 crops, dim 16, 2 res blocks, mlp 64, style 8, "
        "2-layer D (2 scales), batch 8, 3000 steps, lr halved every 300",
        _cpu_config(32, 16, 2, 64, 16, 300),
        batch_size=8,
        max_steps=3000,
    ),
    # Chosen on validation curves (benchmarks/curves.py). From cpu-small: the content term ties each
    # translation to its own input (content-code reconstruction alone let the decoder draw one
    # template per style); Adam at 5e-4 (the paper's 1e-4 learnt no target style in 1500 steps) and
    # the GAN weight at 3; the lr halves every 1000 steps; the explicit cycle at 10 (the authors'
    # summer2winter setting); the weight average adds 2-6 points to mnist -> uci. The munit-*-d3
    # variants then showed what held every small run back: with 2 layers a scale sees 10 px
    # patches, and at 28-32 px only one or two scales fit, so the discriminator never saw a whole
    # shape (sneaker -> boot judged a boot 16-40 %, mnist -> uci judged UCI 81 %). 3 layers see
    # 22 px; that lets the content term be loose (weight 1 after 8x pooling: the coarse place of
    # the object, not its silhouette), so shapes may change, and the style prior term makes
    # N(0, I) styles ones the decoders learnt (validation, seed 0: sneaker <-> boot judged the
    # target 93 / 96 % at 1500 steps; mnist <-> uci 89 / 90 % kept and judged the target).
    "cpu-fast": Preset(
        "cpu-fast",
        "CPU recipe (labelled, not the paper's): cpu-small with a 3-layer D (22 px patches), Adam lr 5e-4 halved "
        "every 1000 steps, GAN weight 3, the explicit cycle at 10, a loose content term (1 after 8x pooling), "
        "the style prior term at 1 and EMA 0.995 of the weights, batch 8, 1200 steps; 32 px crops or larger",
        replace(
            _cpu_config(32, 16, 2, 64, 16, 1000, dis_layers=3), recon_x_cyc_w=10.0, gan_w=3.0, lambda_content=1.0,
            content_pool=8, style_prior_w=1.0, optim=Optim(lr=5e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4),
        ),
        batch_size=8,
        max_steps=1200,
        ema=0.995,
    ),
    "cpu-tiny": Preset(
        "cpu-tiny",
        "tests and smoke runs (labelled, not the paper's): 32^2 crops, dim 8, 1 res block, mlp 32, "
        "2-layer D (2 scales), batch 4, 100 steps, constant lr",
        replace(_cpu_config(32, 8, 1, 32, 8, 100_000), lr_policy="constant"),
        batch_size=4,
        max_steps=100,
    ),
}

# The generic suite (tests/test_methods.py): 16^2, dim 4, one res block, one-scale 2-layer D.
TEST_PRESETS = tiny_test_presets(2, {"tiny": replace(_cpu_config(16, 4, 1, 16, 4, 100_000), lr_policy="constant")})


METHOD = Method(
    info=INFO, main_loss="recon_x_a", presets=PRESETS, test_presets=TEST_PRESETS,
    arch_cls=MunitArch, config_cls=MunitConfig, build_model=MunitModel, build_objective=MunitObjective,
)  # fmt: skip

"""UNIT: Liu, Breuel & Kautz, "Unsupervised Image-to-Image Translation Networks", NIPS 2017.
https://arxiv.org/abs/1703.00848. Facts relied on, the variants (``paper``, ``master``,
``da32``, ``imaginaire``) and the deviations: docs/methods/unit.md. The da32 networks: ``i2icli/nn/da32.py``.

Each domain is a VAE (encoder E_i, generator G_i) plus a discriminator D_i; the two domains share
one latent code. Translation a -> b is G_2(E_1(x_1)) from the posterior mean (no noise).

Paper symbol -> code name (domain 1 = a, domain 2 = b):

    E_1, E_2     ``enc_a`` + ``enc_shared``, ``enc_b`` + ``enc_shared`` (paper, da32);
                 ``gen_a.enc``, ``gen_b.enc`` (master)
    G_1, G_2     ``dec_shared`` + ``dec_a``, ``dec_shared`` + ``dec_b`` (paper, da32);
                 ``gen_a.dec``, ``gen_b.dec`` (master)
    D_1, D_2     ``dis_a``, ``dis_b`` (training objective; da32: ``classifier.front_a/front_b`` +
                 ``classifier.trunk`` + the objective's ``gan_head``)
    z            ``encode_latent(x, domain)`` = the posterior mean μ (B, Z, h, w); in training
                 z = μ + σ·ε with σ = 1 (paper, master) or learned (da32, ``posterior``)
    λ0..λ4       ``gan_w``, ``kl_w``, ``recon_x_w``, ``kl_cyc_w``, ``cyc_w``

Four architectures, chosen by ``arch.variant``: ``paper`` (version_02), ``master`` (``VAEGen``),
``da32`` (digits domain adaptation) and ``imaginaire`` (the authors' later generator, converted for
inference only).

Over ~600 lines on purpose: one file per method, and UNIT has four official networks sharing one
model class and one objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2icli.config import require
from i2icli.data.labels import labels_for_files, read_labels
from i2icli.data.transforms import Preprocess
from i2icli.errors import UsageError
from i2icli.losses import GanMode, gan_d_loss, gan_g_loss, l1, low_pass_l1
from i2icli.methods.base import DIRECTIONS, Direction, Domain, Method, Optim, Preset, TrainingData, split_direction
from i2icli.methods.info import MethodInfo, MethodOption
from i2icli.methods.presets import tiny_test_presets
from i2icli.nn.adain import ContentEncoder, Conv2dBlock, MsDisArch, MultiScaleDiscriminator, ResBlocks, init_weights
from i2icli.nn.da32 import V02_SLOPE, BatchNormBias, DaClassifier, GaussianLatent, down, init_da_discriminator, up, with_coords
from i2icli.nn.imaginaire import UnitAutoEncoder
from i2icli.train.objective import Batch, Carry, Phase, SingleStage, StepOutput, Validation, gray_to_rgb
from i2icli.train.schedule import step_decay

INFO = MethodInfo(
    name="unit", converter="i2icli.convert.unit", capabilities=("translate", "bidirectional", "latent-walk"),
    summary="shared-latent VAE-GANs (paper, official master, digits domain adaptation)",
    paper="Liu, Breuel & Kautz, NIPS 2017, https://arxiv.org/abs/1703.00848",
    convert_help="official UNIT master gen_*.pt holding {'a','b'} VAEGen state dicts, or an NVlabs/imaginaire UNIT checkpoint",
    options=(
        MethodOption(flag="--arch", field="arch.variant", help="Network: paper, master or da32 (the digits domain-adaptation network, trained with --preset da32)"),
        MethodOption(flag="--labels-a", field="labels_a", kind="path", help="Class labels of the domain-A images (CSV filename,label or a folder per class); arch da32 only"),
    ),
)

Variant = Literal["paper", "master", "da32", "imaginaire"]
VARIANTS: tuple[Variant, ...] = ("paper", "master", "da32", "imaginaire")
# The da32 discriminator halves the image 4 times and its heads are 2x2 convs: 32 px at least.
DA_MIN_TRAIN_SIZE = 32


@dataclass(frozen=True)
class UnitArch:
    """Network config (stored as ``arch`` in checkpoints); defaults: the paper's network."""

    variant: Variant = "paper"
    channels_a: int = 3
    channels_b: int = 3
    dim: int = 64  # channels after the first conv (doubled by each downsampling)
    n_downsample: int = 2  # paper / master: stride-2 convs in an encoder (da32: fixed at 4)
    n_res: int = 3  # private residual blocks per encoder and per decoder (master: all of them)
    n_shared: int = 1  # paper: residual blocks shared by the two encoders, and by the two decoders
    dis_dim: int = 64  # channels of a discriminator's first conv
    dis_layers: int = 6  # paper: stride-2 convs; master: convs per scale; da32: unused (fixed trunk)
    dis_scales: int = 1  # master: multi-scale discriminator scales
    n_classes: int = 0  # da32: size of the class head (10 for digits); 0 for the others
    # da32 generator layers: "strided" (stride-2 convs to a 2x2 code; any multiple of 16 px) or
    # "official" (CoVAE32x32 exactly: an 8x8 valid conv to a 1x1 code; 32x32 images only).
    da_layout: Literal["strided", "official"] = "strided"
    max_dim: int = 256  # imaginaire: the encoder's channel cap

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise UsageError(f"arch.variant {self.variant!r}: use one of {', '.join(VARIANTS)}")
        positive = ("channels_a", "channels_b", "dim", "n_downsample", "dis_dim", "dis_layers", "dis_scales")
        require(self, positive, lambda v: v >= 1, "must be at least 1", "arch.")
        if self.n_res < 0:
            raise UsageError(f"arch.n_res {self.n_res}: must be >= 0")
        if self.variant == "paper" and self.n_shared < 1:
            raise UsageError(f"arch.n_shared {self.n_shared}: the paper's UNIT shares at least one block")
        # A class head of 0 classes (da32) or of some (another variant) means the variant was switched
        # on top of a preset for the other kind of network: da32 has its own recipe (1-channel 32 px
        # digits, batch 64, Adam 2e-4 wd 5e-4, its loss weights), which --arch alone cannot select.
        if self.variant == "da32" and self.n_classes == 0:
            raise UsageError("--arch da32: the digits domain-adaptation network has its own recipe; train it with --preset da32")
        if self.variant != "da32" and self.n_classes:
            raise UsageError(
                f"--arch {self.variant}: preset da32 is the digits domain-adaptation network; use --preset paper, master or cpu-small"
            )
        if self.da_layout not in ("strided", "official"):
            raise UsageError(f"arch.da_layout {self.da_layout!r}: use strided or official")
        if self.da_layout != "strided" and self.variant != "da32":
            raise UsageError(f"arch.da_layout {self.da_layout}: only arch da32 has a layout choice")
        if self.variant == "da32" and self.n_classes < 2:
            raise UsageError(f"arch.n_classes {self.n_classes}: arch da32 needs a class head of at least 2 classes")


# --------------------------------------------------------------------------- paper (version_02)


class ResBlockU(nn.Module):
    """RB-U: ``x + [conv3 (zero pad), IN, ReLU, conv3, IN](x)`` (version_02 keys ``model.{0,3}``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1), nn.InstanceNorm2d(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1), nn.InstanceNorm2d(dim),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.model(x)


def _paper_encoder(in_ch: int, arch: UnitArch) -> nn.Sequential:
    # conv7 + LReLU (no norm), then stride-2 conv + IN + ReLU per downsampling, then private blocks.
    dim = arch.dim
    layers: list[nn.Module] = [nn.Conv2d(in_ch, dim, 7, 1, 3), nn.LeakyReLU(V02_SLOPE, inplace=True)]
    for _ in range(arch.n_downsample):
        layers += [nn.Conv2d(dim, 2 * dim, 3, 2, 1), nn.InstanceNorm2d(2 * dim), nn.ReLU(inplace=True)]
        dim *= 2
    layers += [ResBlockU(dim) for _ in range(arch.n_res)]
    return nn.Sequential(*layers)


def _paper_decoder(out_ch: int, arch: UnitArch) -> nn.Sequential:
    # private blocks, then ConvT(3, 2, 1, output_padding 1) + IN + ReLU per upsampling, 1x1 ConvT, tanh.
    dim = arch.dim * 2**arch.n_downsample
    layers: list[nn.Module] = [ResBlockU(dim) for _ in range(arch.n_res)]
    for _ in range(arch.n_downsample):
        layers += [nn.ConvTranspose2d(dim, dim // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(dim // 2), nn.ReLU(inplace=True)]
        dim //= 2
    layers += [nn.ConvTranspose2d(dim, out_ch, 1, 1, 0), nn.Tanh()]
    return nn.Sequential(*layers)


class CocoDiscriminator(nn.Module):
    """Paper D (``COCODis``): ``n_layers`` x [conv3 stride 2, LReLU 0.01] doubling the channels, 1x1 conv."""

    def __init__(self, in_ch: int, dim: int, n_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_layers):
            out = dim * 2**i
            layers += [nn.Conv2d(in_ch, out, 3, 2, 1), nn.LeakyReLU(V02_SLOPE, inplace=True)]
            in_ch = out
        layers.append(nn.Conv2d(in_ch, 1, 1, 1, 0))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.model(x)]  # one raw score map (B, 1, H / 2^n, W / 2^n), as a list like multi-scale D


# --------------------------------------------------------------------------- master (VAEGen)


class VaeDecoder(nn.Module):
    """Official ``VAEGen`` decoder: residual blocks (IN), per upsampling nearest x2 + conv5 + LN +
    ReLU halving the channels, conv7 + tanh (keys ``dec.model.{0..}`` as in the official file)."""

    def __init__(self, n_upsample: int, n_res: int, dim: int, out_ch: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, norm="in", activ="relu", pad_type="reflect")]
        for _ in range(n_upsample):
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers.append(Conv2dBlock(dim, dim // 2, 5, 1, 2, norm="ln", activ="relu", pad_type="reflect"))
            dim //= 2
        layers.append(Conv2dBlock(dim, out_ch, 7, 1, 3, norm="none", activ="tanh", pad_type="reflect"))
        self.model = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.model(h)


class VaeGen(nn.Module):
    """One domain's master autoencoder: ``enc`` (content-encoder layout) and ``dec``."""

    def __init__(self, in_ch: int, arch: UnitArch) -> None:
        super().__init__()
        self.enc = ContentEncoder(arch.n_downsample, arch.n_res, in_ch, arch.dim, norm="in", activ="relu", pad_type="reflect")
        self.dec = VaeDecoder(arch.n_downsample, arch.n_res, self.enc.output_dim, in_ch)


# --------------------------------------------------------------------------- model


class UnitModel(nn.Module):
    """The inference model of every variant (a ``Translator``) plus the latent-walk protocol:
    ``encode_latent(x, domain)`` (posterior mean, no noise) and ``decode_latent(z, domain)``."""

    def __init__(self, arch: UnitArch) -> None:
        super().__init__()
        self.arch = arch
        self.directions: tuple[Direction, ...] = DIRECTIONS
        ch = {"a": arch.channels_a, "b": arch.channels_b}
        if arch.variant == "paper":
            self.stride = 2**arch.n_downsample
            self.min_size = 2 * self.stride  # instance norm needs > 1 pixel at the code
            self.enc_a, self.enc_b = _paper_encoder(ch["a"], arch), _paper_encoder(ch["b"], arch)
            z_dim = arch.dim * 2**arch.n_downsample
            # One module each, used by both domains: the shared weights are the same tensors.
            self.enc_shared = nn.Sequential(*(ResBlockU(z_dim) for _ in range(arch.n_shared)))
            self.dec_shared = nn.Sequential(*(ResBlockU(z_dim) for _ in range(arch.n_shared)))
            self.dec_a, self.dec_b = _paper_decoder(ch["a"], arch), _paper_decoder(ch["b"], arch)
        elif arch.variant == "master":
            self.stride = 2**arch.n_downsample
            self.min_size = 2 * self.stride  # reflection padding needs >= 2 pixels at the code
            self.gen_a, self.gen_b = VaeGen(ch["a"], arch), VaeGen(ch["b"], arch)
        elif arch.variant == "imaginaire":
            self.stride = 2**arch.n_downsample
            self.min_size = 2 * self.stride
            kw = {"dim": arch.dim, "max_dim": arch.max_dim, "n_downsample": arch.n_downsample, "n_res": arch.n_res}
            self.gen_a, self.gen_b = UnitAutoEncoder(ch["a"], **kw), UnitAutoEncoder(ch["b"], **kw)
        else:
            official = arch.da_layout == "official"
            self.stride = 32 if official else 16
            self.min_size = 32 if official else 16
            d = arch.dim
            self.enc_a, self.enc_b = down(ch["a"] + 2, d, 5), down(ch["b"] + 2, d, 5)  # 32 -> 16
            if official:  # CoVAE32x32: 16 -> 8, 8x8 valid conv -> 1, 1x1 conv; back up 1 -> 4 -> 8 -> 16
                self.enc_shared = nn.Sequential(down(d, 2 * d, 5), down(2 * d, 4 * d, 8, 1, 0), down(4 * d, 8 * d, 1, 1, 0))
                self.dec_shared = nn.Sequential(up(8 * d, 8 * d, 0), up(8 * d, 4 * d), up(4 * d, 2 * d))
                last = 2 * d
            else:  # -> 2x2 code and back to 16
                self.enc_shared = nn.Sequential(down(d, 2 * d, 5), down(2 * d, 4 * d, 3), down(4 * d, 8 * d, 3))
                self.dec_shared = nn.Sequential(up(8 * d, 4 * d), up(4 * d, 2 * d), up(2 * d, d))
                last = d
            self.latent = GaussianLatent(8 * d)

            def back(out_ch: int) -> nn.Sequential:  # 16 -> 32, then 1x1 ConvT + tanh
                return nn.Sequential(up(last, d), nn.ConvTranspose2d(d, out_ch, 1), nn.Tanh())

            self.dec_a, self.dec_b = back(ch["a"]), back(ch["b"])
            self.classifier = DaClassifier(arch.channels_a, arch.channels_b, arch.dis_dim, arch.n_classes)

    def channels(self, direction: Direction) -> tuple[int, int]:
        """(input channels, output channels) for ``direction``."""
        a, b = self.arch.channels_a, self.arch.channels_b
        return (a, b) if split_direction(direction)[0] == "a" else (b, a)

    def generators(self) -> tuple[nn.Module, ...]:
        """Every encoder/decoder module once (the shared ones once): what the generator phase trains."""
        if self.arch.variant in ("master", "imaginaire"):
            return (self.gen_a, self.gen_b)
        mods = (self.enc_a, self.enc_b, self.enc_shared, self.dec_shared, self.dec_a, self.dec_b)
        return mods + ((self.latent,) if self.arch.variant == "da32" else ())

    def posterior(self, x: Tensor, domain: Domain) -> tuple[Tensor, Tensor | None]:
        """Image of ``domain`` -> (μ, σ) of q(z|x); σ is None where it is fixed at 1 (paper, master)."""
        v = self.arch.variant
        if v == "master":
            return (self.gen_a if domain == "a" else self.gen_b).enc(x), None
        if v == "imaginaire":
            return (self.gen_a if domain == "a" else self.gen_b).enc_content(x), None
        if v == "paper":
            return self.enc_shared((self.enc_a if domain == "a" else self.enc_b)(x)), None
        if self.arch.da_layout == "official" and x.shape[-2:] != (32, 32):
            raise UsageError(
                f"UNIT da32 with arch.da_layout official encodes 32x32 images only (got {x.shape[-2]}x{x.shape[-1]}): its "
                "model classifies (i2i eval adapt) but cannot go through the any-size translation pipeline; "
                "translate with a model trained with the default layout (strided)"
            )
        return self.latent(self.enc_shared((self.enc_a if domain == "a" else self.enc_b)(with_coords(x))))

    def encode_latent(self, x: Tensor, domain: Domain) -> Tensor:
        """Image (B, C, H, W) of ``domain`` -> the code used at inference, μ (B, Z, H/stride, W/stride)."""
        return self.posterior(x, domain)[0]

    def decode_latent(self, z: Tensor, domain: Domain) -> Tensor:
        """Code (B, Z, h, w) -> image of ``domain`` in [-1, 1] (B, C, h·stride, w·stride)."""
        if self.arch.variant in ("master", "imaginaire"):
            return (self.gen_a if domain == "a" else self.gen_b).dec(z)
        return (self.dec_a if domain == "a" else self.dec_b)(self.dec_shared(z))

    def translate(self, x: Tensor, direction: Direction) -> Tensor:
        source, target = split_direction(direction)
        return self.decode_latent(self.encode_latent(x, source), target)

    @property
    def n_classes(self) -> int:
        """Classes of the class head (0: none)."""
        return self.arch.n_classes

    def classify(self, x: Tensor, domain: Domain) -> Tensor:
        """da32: class logits (B, n_classes) of images of ``domain`` (domain-specific first layer,
        shared trunk, class head); images of at least ``DA_MIN_TRAIN_SIZE`` pixels a side."""
        if self.arch.variant != "da32":
            raise UsageError(f"a UNIT {self.arch.variant} model has no class head (only arch da32 has one)")
        return self.classifier.logits(self.classifier.features(x, domain))


# --------------------------------------------------------------------------- losses


def gaussian_kl(mu: Tensor, sigma: Tensor | None = None) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) as the UNIT codes scale it; 0 for μ = 0, σ = 1.

    σ None (unit variance): mean(μ²), i.e. ½‖μ‖² rescaled to a per-element mean (paper, master).
    Learned σ: Σ(μ² + σ² − log σ² − 1) / B, twice the true KL per image (the DA code's scaling;
    it drops the −1, a constant, which is kept here so that the prior itself scores 0).
    """
    if sigma is None:
        return mu.pow(2).mean()
    var = sigma.pow(2)
    return (mu.pow(2) + var - torch.log(var + 1e-8) - 1).sum() / mu.shape[0]


def sum_squared(a: Tensor, b: Tensor) -> Tensor:
    """Squared error summed over pixels, averaged over the batch (the DA code's pixel term)."""
    return (a - b).pow(2).sum() / a.shape[0]


# --------------------------------------------------------------------------- labels


def read_domain_a_labels(path: str, n_classes: int, files: Sequence[Path]) -> Tensor:
    """The ``--labels-a`` file matched to the domain-A training files: (N,) long, -1 = unlabelled."""
    labels = read_labels(path, n_classes, option="--labels-a")
    return torch.tensor(labels_for_files(labels, files, path, option="--labels-a"), dtype=torch.long)


# --------------------------------------------------------------------------- config and objective


@dataclass(frozen=True)
class UnitConfig:
    """A UNIT training run; defaults: the paper (version_02 cat2tiger recipe, scale 1.2, crop 216)."""

    arch: UnitArch = field(default_factory=UnitArch)
    data: Preprocess = field(default_factory=lambda: Preprocess(mode="resize_and_crop", load_size=259, crop_size=216, flip=True))
    optim: Optim = field(default_factory=lambda: Optim(lr=1e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4))
    gan_w: float = 10.0  # λ0
    kl_w: float = 0.1  # λ1
    recon_x_w: float = 100.0  # λ2
    kl_cyc_w: float = 0.1  # λ3
    cyc_w: float = 100.0  # λ4
    # The paper's L_CC also has λ3 KL on the input's own code; master's code leaves it out.
    kl_cyc_on_input: bool = True
    gan_type: GanMode = "nsgan"  # paper / da32: vanilla GAN (BCE with logits); master: lsgan
    cls_w: float = 10.0  # da32: class-head cross-entropy on labelled source images (D update)
    feat_w: float = 1e-4  # da32: trunk-feature consistency between translation and reconstruction
    # da32, not in the paper: class-head cross-entropy on translated source images x_ab, seen
    # through the target first layer, with the source labels (0: the paper's objective).
    cls_trans_w: float = 0.0
    # Labelled option, not the paper's (every trained network): L1 between the input and its
    # translation after grey + content_pool x average pooling, so a translation keeps its digit.
    lambda_content: float = 0.0
    content_pool: int = 4  # pooling factor of the content term (32 px -> 8 px)
    lr_policy: Literal["constant", "step"] = "constant"
    step_size: int = 100_000  # step policy: lr x gamma every step_size iterations (master)
    gamma: float = 0.5
    init: Literal["normal", "kaiming"] = "normal"  # generators; discriminators are always N(0, 0.02)
    labels_a: str = ""  # da32: class labels of domain A (CSV or folder per class)

    def __post_init__(self) -> None:
        weights = ("gan_w", "kl_w", "recon_x_w", "kl_cyc_w", "cyc_w", "cls_w", "feat_w", "cls_trans_w", "lambda_content")
        require(self, weights, lambda v: v >= 0, "loss weights must be >= 0")
        if self.step_size < 1:
            raise UsageError(f"step_size {self.step_size}: must be at least 1")
        if self.content_pool < 1:
            raise UsageError(f"content_pool {self.content_pool}: must be at least 1")
        if self.labels_a and self.arch.variant != "da32":
            raise UsageError(
                f"--labels-a {self.labels_a}: arch {self.arch.variant} has no class head; labels need arch da32 (--preset da32)"
            )


def _init_normal(module: nn.Module) -> None:
    # N(0, 0.02) on every conv and transposed-conv weight; biases keep PyTorch's default (version_02).
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)


def _content_terms(c: UnitConfig, f: dict[str, Any], x_a: Tensor, x_b: Tensor) -> dict[str, tuple[float, Tensor]]:
    """The labelled content term (none at weight 0). The shared latent and the cycle let a
    translation redraw a digit as another one as long as the way back undoes it (da32: the domains
    line up with their digits swapped and the class head learns the swap); the low-pass L1 between
    input and translation pins the coarse layout."""
    if c.lambda_content <= 0:
        return {}
    return {
        "content_a": (c.lambda_content, low_pass_l1(f["x_ab"], x_a, c.content_pool)),
        "content_b": (c.lambda_content, low_pass_l1(f["x_ba"], x_b, c.content_pool)),
    }


class UnitObjective(SingleStage):
    """Discriminators and the two phases (D, then G) of a UNIT step, for every variant.

    Logged scalars are unweighted terms: ``gan_a/b``, ``recon_a/b``, ``cyc_a/b``, ``kl``,
    ``kl_cyc``, ``d_a``, ``d_b``; da32: ``gan_trans``, ``gan_recon``, ``recon_a/b``, ``kl``
    (``cyc_a/b``, ``kl_cyc`` when weighted), ``d``, ``feat``, ``cls`` (and ``cls_trans``); every
    variant: ``content_a/b`` when the content term is on.
    """

    def __init__(self, cfg: UnitConfig, model: UnitModel, data: TrainingData, seed: int) -> None:
        arch = cfg.arch
        self.cfg, self.model, self.seed = cfg, model, seed
        size = cfg.data.crop_size if cfg.data.crops else cfg.data.load_size
        if size % model.stride or size < model.min_size:
            raise UsageError(f"data.crop_size {size}: UNIT {arch.variant} needs a multiple of {model.stride}, >= {model.min_size}")
        if arch.variant == "da32" and size < DA_MIN_TRAIN_SIZE:
            raise UsageError(f"data.crop_size {size}: the da32 discriminator needs crops of >= {DA_MIN_TRAIN_SIZE} pixels")
        self.labels: Tensor | None = None
        if cfg.labels_a:
            self.labels = read_domain_a_labels(cfg.labels_a, arch.n_classes, data.files_a)
        if arch.variant == "master":
            if size // 2**arch.dis_layers < 1:
                raise UsageError(f"arch.dis_layers {arch.dis_layers} is too deep for {size}-pixel crops")
            dis = MsDisArch(dim=arch.dis_dim, n_layer=arch.dis_layers, num_scales=arch.dis_scales, gan_type="lsgan")
            self.dis_a: nn.Module = MultiScaleDiscriminator(arch.channels_a, dis)
            self.dis_b: nn.Module = MultiScaleDiscriminator(arch.channels_b, dis)
            init_weights(model, cfg.init)
            init_weights(self.dis_a, "normal")
            init_weights(self.dis_b, "normal")
        elif arch.variant == "paper":
            if size // 2**arch.dis_layers < 1:
                raise UsageError(f"arch.dis_layers {arch.dis_layers} is too deep for {size}-pixel crops")
            self.dis_a = CocoDiscriminator(arch.channels_a, arch.dis_dim, arch.dis_layers)
            self.dis_b = CocoDiscriminator(arch.channels_b, arch.dis_dim, arch.dis_layers)
            for m in (model, self.dis_a, self.dis_b):
                _init_normal(m) if cfg.init == "normal" else init_weights(m, cfg.init)
        else:
            # Two logits (fake, real) per position, as the official head; the GAN score is their
            # difference, so the vanilla loss equals the official two-class cross-entropy.
            self.gan_head = nn.Conv2d(model.classifier.feature_dim, 2, 2)
            _init_normal(model)  # generators N(0, 0.02); the discriminator is re-initialised below
            for m in model.modules():  # official: N(0, 0.002) BN biases and latent-layer biases
                if isinstance(m, BatchNormBias):
                    nn.init.normal_(m.bias, 0.0, 0.002)
                elif isinstance(m, GaussianLatent):
                    nn.init.normal_(m.mu.bias, 0.0, 0.002)
                    nn.init.normal_(m.sigma.bias, 0.0, 0.002)
            for m in (model.classifier, self.gan_head):
                init_da_discriminator(m)

    # -- the loop's interface

    def phases(self) -> list[Phase]:
        o = self.cfg.optim
        if self.cfg.arch.variant == "da32":
            dis: tuple[nn.Module, ...] = (self.model.classifier, self.gan_head)
        else:
            dis = (self.dis_a, self.dis_b)
        return [o.phase("dis", dis, self.discriminator_loss), o.phase("gen", self.model.generators(), self.generator_loss)]

    def lr_factor(self, step: int, max_steps: int) -> float:
        if self.cfg.lr_policy == "constant":
            return 1.0
        return step_decay(step + 1, self.cfg.step_size, self.cfg.gamma)  # official: scheduler steps first

    def training_modules(self) -> dict[str, nn.Module]:
        if self.cfg.arch.variant == "da32":
            return {"model": self.model, "gan_head": self.gan_head}
        return {"model": self.model, "dis_a": self.dis_a, "dis_b": self.dis_b}

    def extra_state(self) -> dict[str, Any]:
        return {}  # the noise comes from the global RNG, which the loop saves

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None

    # -- pieces

    def _sample(self, mu: Tensor, sigma: Tensor | None) -> Tensor:
        # z = μ + σ ε, ε ~ N(0, I) from the global RNG (σ = 1 for paper and master)
        eps = torch.randn_like(mu)
        return mu + (eps if sigma is None else sigma * eps)

    def _scores(self, x: Tensor, domain: Domain) -> list[Tensor]:
        return (self.dis_a if domain == "a" else self.dis_b)(x)  # paper / master / imaginaire

    def _forward(self, x_a: Tensor, x_b: Tensor) -> dict[str, Any]:
        m = self.model
        if self.cfg.arch.variant == "da32":
            return self._forward_joint(x_a, x_b)
        mu_a, sd_a = m.posterior(x_a, "a")
        mu_b, sd_b = m.posterior(x_b, "b")
        z_a, z_b = self._sample(mu_a, sd_a), self._sample(mu_b, sd_b)
        return {
            "mu_a": mu_a, "sd_a": sd_a, "mu_b": mu_b, "sd_b": sd_b, "z_a": z_a, "z_b": z_b,
            "x_aa": m.decode_latent(z_a, "a"), "x_ab": m.decode_latent(z_a, "b"),
            "x_bb": m.decode_latent(z_b, "b"), "x_ba": m.decode_latent(z_b, "a"),
        }  # fmt: skip

    def _forward_joint(self, x_a: Tensor, x_b: Tensor) -> dict[str, Any]:
        # da32, as the official CoVAE32x32: the two domains' batches pass the shared layers as one
        # batch of 2B, so their batch-norm statistics are joint; per-domain statistics would differ
        # from the eval-mode running statistics, which mix both domains.
        m, n = self.model, x_a.shape[0]
        h = torch.cat([m.enc_a(with_coords(x_a)), m.enc_b(with_coords(x_b))])  # (2B, dim, H/2, W/2)
        mu, sd = m.latent(m.enc_shared(h))  # (2B, 8·dim, H/16, W/16) each
        d = m.dec_shared(self._sample(mu, sd))  # (2B, dim, H/2, W/2)
        x_aa, x_ba = m.dec_a(d).split(n)
        x_ab, x_bb = m.dec_b(d).split(n)
        (mu_a, mu_b), (sd_a, sd_b) = mu.split(n), sd.split(n)
        return {"mu_a": mu_a, "sd_a": sd_a, "mu_b": mu_b, "sd_b": sd_b, "x_aa": x_aa, "x_ab": x_ab, "x_bb": x_bb, "x_ba": x_ba}

    def _da_scores(self, x_for_a: Tensor, x_for_b: Tensor) -> Tensor:
        """da32: real/fake scores of domain-a and domain-b images through their own first layer and
        the shared trunk (dropout on), one batch: (2B, 1, h, w), logit(real) - logit(fake)."""
        logits = self.gan_head(self.model.classifier.joint_features(x_for_a, x_for_b))  # (2B, 2, h, w)
        return logits[:, 1:] - logits[:, :1]

    def discriminator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        c, x_a, x_b = self.cfg, batch["a"], batch["b"]
        if c.arch.variant == "da32":
            return self._da_discriminator_loss(batch)
        with torch.no_grad():  # the generators are frozen in this phase
            f = self._forward(x_a, x_b)
        mode = c.gan_type
        d_a = torch.stack([gan_d_loss(r, s, mode) for r, s in zip(self._scores(x_a, "a"), self._scores(f["x_ba"], "a"))]).sum()
        d_b = torch.stack([gan_d_loss(r, s, mode) for r, s in zip(self._scores(x_b, "b"), self._scores(f["x_ab"], "b"))]).sum()
        return StepOutput(c.gan_w * (d_a + d_b), {"d_a": d_a, "d_b": d_b})

    def _da_discriminator_loss(self, batch: Batch) -> StepOutput:
        # The official DA D update: real images of both domains against both kinds of fakes
        # (translations and reconstructions), i.e. BCE(real) + ½ (BCE(trans) + BCE(recon)); the
        # class head's cross-entropy on labelled source images; the feature-consistency term.
        # Passes run in the official order (reals, generator, reconstructions, translations,
        # class head), each drawing its own dropout masks: a seeded run draws the official masks.
        c, cls, x_a, x_b = self.cfg, self.model.classifier, batch["a"], batch["b"]
        real = self._da_scores(x_a, x_b)  # (2B, 1, h, w)
        with torch.no_grad():  # the generators are frozen in this phase
            f = self._forward_joint(x_a, x_b)
        recon = self._da_scores(f["x_aa"], f["x_bb"])  # reconstructions first, as the official code
        trans = self._da_scores(f["x_ba"], f["x_ab"])
        d = gan_d_loss(real, torch.cat([trans, recon]), c.gan_type)  # fakes: mean over both kinds
        # A translation and the same input's reconstruction should share trunk features (the
        # official code takes them from the dropout-free path).
        feat = sum_squared(cls.features(f["x_ab"], "b", dropout=False), cls.features(f["x_aa"], "a", dropout=False))
        feat = feat + sum_squared(cls.features(f["x_ba"], "a", dropout=False), cls.features(f["x_bb"], "b", dropout=False))
        terms = {"d": d, "feat": feat}
        loss = c.gan_w * d + c.feat_w * feat
        if self.labels is not None:
            y = self.labels.to(x_a.device)[batch["index_a"]]  # (B,), -1 = unlabelled
            if bool((y >= 0).any()):
                ce = F.cross_entropy(cls.logits(cls.features(x_a, "a")), y, ignore_index=-1)  # fresh dropout masks
                terms["cls"] = ce
                loss = loss + c.cls_w * ce
                if c.cls_trans_w:
                    ce_ab = F.cross_entropy(cls.logits(cls.features(f["x_ab"], "b")), y, ignore_index=-1)
                    terms["cls_trans"] = ce_ab
                    loss = loss + c.cls_trans_w * ce_ab
        return StepOutput(loss, terms)

    def generator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        c, m, x_a, x_b = self.cfg, self.model, batch["a"], batch["b"]
        f = self._forward(x_a, x_b)
        if c.arch.variant == "da32":
            return self._da_generator_loss(x_a, x_b, f)
        # The cycle runs through the latent space: re-encode each translation, decode it back.
        # Noise for x_ba is drawn before x_ab's, in the official order (parity of the draws).
        mu_ba, sd_ba = m.posterior(f["x_ba"], "a")
        mu_ab, sd_ab = m.posterior(f["x_ab"], "b")
        z_ba = self._sample(mu_ba, sd_ba)
        z_ab = self._sample(mu_ab, sd_ab)
        x_aba = m.decode_latent(z_ab, "a")
        x_bab = m.decode_latent(z_ba, "b")
        gan = lambda x, d: torch.stack([gan_g_loss(s, c.gan_type) for s in self._scores(x, d)]).sum()  # noqa: E731
        if c.arch.variant == "paper":
            # The version_02 code takes its KL terms, mean(z²), of the sampled code z = μ + ε: the
            # same expected gradient as mean(μ²) (master), plus noise; kept for parity.
            kl = gaussian_kl(f["z_a"]) + gaussian_kl(f["z_b"])
            kl_cyc = gaussian_kl(z_ab) + gaussian_kl(z_ba)
        else:
            kl = gaussian_kl(f["mu_a"], f["sd_a"]) + gaussian_kl(f["mu_b"], f["sd_b"])
            kl_cyc = gaussian_kl(mu_ab, sd_ab) + gaussian_kl(mu_ba, sd_ba)
        terms: dict[str, tuple[float, Tensor]] = {
            "gan_a": (c.gan_w, gan(f["x_ba"], "a")),
            "gan_b": (c.gan_w, gan(f["x_ab"], "b")),
            "recon_a": (c.recon_x_w, l1(f["x_aa"], x_a)),
            "recon_b": (c.recon_x_w, l1(f["x_bb"], x_b)),
            "kl": (c.kl_w + (c.kl_cyc_w if c.kl_cyc_on_input else 0.0), kl),
            "kl_cyc": (c.kl_cyc_w, kl_cyc),
            "cyc_a": (c.cyc_w, l1(x_aba, x_a)),
            "cyc_b": (c.cyc_w, l1(x_bab, x_b)),
        }
        terms.update(_content_terms(c, f, x_a, x_b))
        loss = torch.stack([w * v for w, v in terms.values()]).sum()
        return StepOutput(loss, {name: v for name, (_, v) in terms.items()})

    def _da_generator_loss(self, x_a: Tensor, x_b: Tensor, f: dict[str, Any]) -> StepOutput:
        # The official DA G update: fool D with translations and with reconstructions, KL, and the
        # pixel term (squared error summed over pixels); it has no cycle term (cyc_w = 0 there).
        c = self.cfg
        recon = self._da_scores(f["x_aa"], f["x_bb"])  # reconstructions first, as the official code
        terms: dict[str, tuple[float, Tensor]] = {
            "gan_trans": (c.gan_w, gan_g_loss(self._da_scores(f["x_ba"], f["x_ab"]), c.gan_type)),
            "gan_recon": (c.gan_w, gan_g_loss(recon, c.gan_type)),
            "recon_a": (c.recon_x_w, sum_squared(f["x_aa"], x_a)),
            "recon_b": (c.recon_x_w, sum_squared(f["x_bb"], x_b)),
            "kl": (c.kl_w + (c.kl_cyc_w if c.kl_cyc_on_input else 0.0), gaussian_kl(f["mu_a"], f["sd_a"]) + gaussian_kl(f["mu_b"], f["sd_b"])),
        }
        terms.update(_content_terms(c, f, x_a, x_b))
        if c.cyc_w or c.kl_cyc_w:
            # Re-encode both translations as one joint batch: "x_ba" of the result is x_aba.
            g = self._forward_joint(f["x_ba"], f["x_ab"])
            terms["kl_cyc"] = (c.kl_cyc_w, gaussian_kl(g["mu_a"], g["sd_a"]) + gaussian_kl(g["mu_b"], g["sd_b"]))
            terms["cyc_a"] = (c.cyc_w, sum_squared(g["x_ba"], x_a))
            terms["cyc_b"] = (c.cyc_w, sum_squared(g["x_ab"], x_b))
        loss = torch.stack([w * v for w, v in terms.values()]).sum()
        return StepOutput(loss, {name: v for name, (_, v) in terms.items()})

    def validation(self) -> Validation:
        """Mean within-domain reconstruction L1 from the posterior means on held-back images (lower is better)."""

        def recon_l1(x_a: Tensor, x_b: Tensor) -> float:
            m = self.model
            rec_a = m.decode_latent(m.encode_latent(x_a, "a"), "a")
            rec_b = m.decode_latent(m.encode_latent(x_b, "b"), "b")
            return float((l1(rec_a, x_a) + l1(rec_b, x_b)) / 2)

        return Validation("recon_l1", recon_l1, higher_is_better=False)

    @torch.no_grad()
    def samples(self, batch: Batch) -> dict[str, Tensor]:
        """Rows: x_a, its reconstruction, x_ab; x_b, its reconstruction, x_ba (posterior means)."""
        m, x_a, x_b = self.model, batch["a"], batch["b"]
        h_a, h_b = m.encode_latent(x_a, "a"), m.encode_latent(x_b, "b")
        rows = {
            "A": x_a, "A recon": m.decode_latent(h_a, "a"), "A->B": m.decode_latent(h_a, "b"),
            "B": x_b, "B recon": m.decode_latent(h_b, "b"), "B->A": m.decode_latent(h_b, "a"),
        }  # fmt: skip
        return {label: gray_to_rgb(r) for label, r in rows.items()}


def build_objective(cfg: UnitConfig, model: nn.Module, data: TrainingData, seed: int) -> UnitObjective:
    """The UNIT objective (``Method.build_objective``)."""
    if not isinstance(model, UnitModel):
        raise ValueError("UNIT needs a UnitModel")
    if model.arch != cfg.arch:
        raise ValueError("the model's arch differs from the config's")
    if cfg.arch.variant == "imaginaire":
        raise ValueError("arch.variant imaginaire: converted for inference only; train paper, master or da32")
    return UnitObjective(cfg, model, data, seed)


# --------------------------------------------------------------------------- presets


def _master_config(arch: UnitArch, data: Preprocess) -> UnitConfig:
    return UnitConfig(
        arch=arch, data=data, gan_w=1.0, kl_w=0.01, recon_x_w=10.0, kl_cyc_w=0.01, cyc_w=10.0,
        kl_cyc_on_input=False, gan_type="lsgan", lr_policy="step", init="kaiming",
    )  # fmt: skip


def _da32_config(arch: UnitArch, data: Preprocess) -> UnitConfig:
    return UnitConfig(
        arch=arch, data=data, optim=Optim(lr=2e-4, beta1=0.5, beta2=0.999, weight_decay=5e-4),
        gan_w=1.0, kl_w=1e-4, recon_x_w=1e-3, kl_cyc_w=0.0, cyc_w=0.0, kl_cyc_on_input=False,
        gan_type="nsgan", cls_w=10.0, feat_w=1e-4,
    )  # fmt: skip


def _digits(size: int) -> Preprocess:
    return Preprocess(mode="resize_and_crop", load_size=size, crop_size=size, flip=False)


_MASTER_ARCH = UnitArch(variant="master", n_res=4, dis_layers=4, dis_scales=3)
_DA32_ARCH = UnitArch(variant="da32", dim=96, dis_dim=64, n_classes=10)

PRESETS = {
    "paper": Preset(
        "paper",
        "NIPS 2017 recipe (version_02 cat2tiger): shared blocks, scale 1.2 + 216^2 crops, dim 64, "
        "6-layer D, BCE, λ 10/0.1/100/0.1/100, Adam 1e-4 wd 1e-4, batch 1, 500k steps",
        UnitConfig(),
        batch_size=1,
        max_steps=500_000,
    ),
    "master": Preset(
        "master",
        "official master recipe: VAEGen dim 64, 4 res blocks, 3-scale LSGAN D, λ 1/0.01/10/0.01/10, "
        "256^2 crops, lr x0.5 every 100k, batch 1, 1M steps",
        _master_config(_MASTER_ARCH, Preprocess(mode="scale_width_and_crop", load_size=256, crop_size=256, flip=True)),
        batch_size=1,
        max_steps=1_000_000,
    ),
    "da32": Preset(
        "da32",
        "digits domain adaptation (CoVAE32x32/CoDis32x32 layout, gen 96 / D 64 channels), 32^2, "
        "Adam 2e-4 wd 5e-4, batch 64, 200k steps; pass --labels-a",
        _da32_config(replace(_DA32_ARCH, channels_a=1, channels_b=1), _digits(32)),
        batch_size=64,
        max_steps=200_000,
    ),
    "da32-cpu": Preset(
        "da32-cpu",
        "CPU-budget digits domain adaptation (labelled, not the paper's): da32 network at gen 32 / D 32 "
        "channels (paper 64 / 64), 1 channel, 32^2, Adam 1e-3 (paper 2e-4), λ2 1e-2 (paper 1e-3), class "
        "cross-entropy weight 1 (paper 10), plus the class head on translated source images (weight 1, "
        "not in the paper), batch 16, 800 steps; pass --labels-a",
        replace(
            _da32_config(UnitArch(variant="da32", channels_a=1, channels_b=1, dim=32, dis_dim=32, n_classes=10), _digits(32)),
            optim=Optim(lr=1e-3, beta1=0.5, beta2=0.999, weight_decay=5e-4), recon_x_w=1e-2, cls_w=1.0, cls_trans_w=1.0,
        ),
        batch_size=16,
        max_steps=800,
    ),
    "cpu-small": Preset(
        "cpu-small",
        "CPU-sized (labelled, not the paper's): paper network at 32^2, dim 16, its 3 residual blocks "
        "all shared (paper: 3 private + 1 shared), 3-layer D, λ0 1 (paper 10), Adam 5e-4 (paper 1e-4), "
        "batch 8, 1500 steps. On MNIST <-> UCI digits the paper's λ0 and sharing collapsed every "
        "translation to one template within 2000 CPU steps",
        UnitConfig(
            arch=UnitArch(dim=16, n_res=0, n_shared=3, dis_dim=16, dis_layers=3), data=_digits(32),
            optim=Optim(lr=5e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4), gan_w=1.0,
        ),  # fmt: skip
        batch_size=8,
        max_steps=1500,
    ),
    # Chosen on validation curves (benchmarks/curves.py, docs/methods/unit.md). The former cpu-fast
    # (paper network, 2-layer D, content term 10) kept digits at seeds 0 and 2 but filled seed 1's
    # uci -> mnist outputs with stripes, and its small discriminators (5-15 px patches) never saw a
    # whole shoe. This is the official master network at CPU widths trained as MUNIT's cpu-fast:
    # one 3-layer LSGAN scale (22 px patches at 32 px), master's loss weights with GAN 3, Adam 5e-4
    # halved every 1000 steps, a loose content term (1 after 8x pooling: the object's coarse place,
    # not its silhouette) and EMA 0.995 (validation: mnist <-> uci 88 / 90 % kept and judged the
    # target at 1200 steps with seeds 0 and 1; sneaker <-> boot in unit-master-munitfast).
    "cpu-fast": Preset(
        "cpu-fast",
        "CPU recipe (labelled, not the paper's): the official master network (no shared blocks) at dim 16 with 2 res "
        "blocks, one 3-layer LSGAN D scale of width 16 (22 px patches), master's loss weights with GAN 3, Adam 5e-4 "
        "halved every 1000 steps, a loose content term (1 after 8x pooling) and EMA 0.995 of the weights, batch 8, "
        "1200 steps, images resized to 32 px (at 28 px the D's score map would be 3x3)",
        replace(
            _master_config(UnitArch(variant="master", dim=16, n_res=2, dis_dim=16, dis_layers=3), _digits(32)),
            gan_w=3.0, optim=Optim(lr=5e-4, beta1=0.5, beta2=0.999, weight_decay=1e-4), step_size=1000,
            lambda_content=1.0, content_pool=8,
        ),  # fmt: skip
        batch_size=8,
        max_steps=1200,
        ema=0.995,
    ),
    "cpu-tiny": Preset(
        "cpu-tiny",
        "smoke runs (labelled, not the paper's): paper network at 32^2, dim 8, 1 private + 1 shared "
        "block, 3-layer D, batch 4, 100 steps",
        UnitConfig(arch=UnitArch(dim=8, n_res=1, dis_dim=8, dis_layers=3), data=_digits(32)),
        batch_size=4,
        max_steps=100,
    ),
}

# The generic suite (tests/test_methods.py), one tiny network per variant: paper (16^2, dim 4,
# 1 private + 1 shared block, 2-layer D), master (16^2, dim 8, 1 res block, 2-scale 2-layer LSGAN D),
# da32 (32^2, the D's minimum; dim 4, D 4, 10 classes).
TEST_PRESETS = tiny_test_presets(2, {
    "paper": UnitConfig(arch=UnitArch(dim=4, n_res=1, dis_dim=4, dis_layers=2), data=_digits(16)),
    "master": _master_config(UnitArch(variant="master", dim=8, n_res=1, dis_dim=4, dis_layers=2, dis_scales=2), _digits(16)),
    "da32": _da32_config(UnitArch(variant="da32", dim=4, dis_dim=4, n_classes=10), _digits(32)),
})  # fmt: skip


METHOD = Method(
    info=INFO, main_loss="recon_a", presets=PRESETS, test_presets=TEST_PRESETS,
    arch_cls=UnitArch, config_cls=UnitConfig, build_model=UnitModel, build_objective=build_objective,
)  # fmt: skip

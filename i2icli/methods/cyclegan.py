"""CycleGAN: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017. https://arxiv.org/abs/1703.10593 (facts relied on, official
checkpoints and deviations: docs/methods/cyclegan.md).

Paper symbols -> code names (paper §3; official models/cycle_gan_model.py):

    G: X -> Y        gen_ab     (official netG_A)
    F: Y -> X        gen_ba     (official netG_B)
    D_Y              dis_b      (official netD_A: the official names are swapped)
    D_X              dis_a      (official netD_B)
    λ                lambda_a, lambda_b (10 each)
    identity weight  lambda_identity (0.5, relative to λ: effective weight 5)

One step: generators first (GAN + cycle + identity), then both discriminators on pooled fakes
with the LSGAN loss halved.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from i2icli.data.transforms import Preprocess
from i2icli.losses import GanMode, gan_d_loss, gan_g_loss, l1, low_pass_l1
from i2icli.methods.base import DIRECTIONS, Direction, Method, Optim, Preset, TrainingData
from i2icli.methods.info import MethodInfo
from i2icli.methods.presets import cpu_fast_preset, cpu_small_preset, cpu_tiny_preset, resnet_cpu_config, tiny_test_presets
from i2icli.nn.resnet import PatchDiscriminator, ResnetGenerator, ResnetTranslator, check_patch_crop, init_normal
from i2icli.train.objective import Batch, Carry, Phase, SingleStage, StepOutput, Validation, gray_to_rgb
from i2icli.train.pool import ImagePool
from i2icli.train.schedule import constant, linear_decay

INFO = MethodInfo(
    name="cyclegan", converter="i2icli.convert.cyclegan", capabilities=("translate", "bidirectional"),
    summary="two ResNet generators, PatchGAN discriminators, cycle + identity losses",
    paper="Zhu et al., ICCV 2017, https://arxiv.org/abs/1703.10593",
    convert_help="the official a->b generator (latest_net_G_A.pth), optionally the b->a one (latest_net_G_B.pth)",
)


@dataclass(frozen=True)
class CycleGANArch:
    """Generator architecture; stored as ``arch`` in every checkpoint."""

    channels_a: int = 3  # 1 (grayscale) or 3 (RGB)
    channels_b: int = 3
    ngf: int = 64
    n_blocks: int = 9  # 9 for 256^2 (official resnet_9blocks), 6 for 128^2
    dropout: bool = False  # the CycleGAN model forces no_dropout; kept for converted pix2pix-style nets
    directions: tuple[Direction, ...] = ("a2b", "b2a")  # generators present in the checkpoint


@dataclass(frozen=True)
class CycleGANConfig:
    """Everything a CycleGAN training run needs beyond the loop's own options."""

    arch: CycleGANArch = field(default_factory=CycleGANArch)
    data: Preprocess = field(default_factory=Preprocess)
    ndf: int = 64
    n_layers_d: int = 3  # 70x70 PatchGAN
    gan_mode: GanMode = "lsgan"
    lambda_a: float = 10.0  # cycle weight for a -> b -> a
    lambda_b: float = 10.0  # cycle weight for b -> a -> b
    lambda_identity: float = 0.5  # relative to lambda_a / lambda_b; 0 disables
    pool_size: int = 50
    optim: Optim = field(default_factory=lambda: Optim(lr=2e-4, beta1=0.5, beta2=0.999))
    lr_policy: Literal["linear", "constant"] = "linear"  # linear: constant, then linear decay to ~0 over the second half
    init_std: float = 0.02
    # Labelled options beyond the paper (all off in the paper preset):
    lambda_content: float = 0.0  # L1 between input and output after grey + content_pool x average pooling
    content_pool: int = 4  # pooling factor of the content term (28 px -> 7 px)
    spectral_norm_d: bool = False  # spectral normalisation on every discriminator conv


class CycleGANModel(ResnetTranslator):
    """The inference model: one or two ResNet generators."""

    def __init__(self, arch: CycleGANArch) -> None:
        super().__init__()
        if not arch.directions or len(set(arch.directions)) != len(arch.directions):
            raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {arch.directions}")
        self.arch = arch
        self.directions = tuple(arch.directions)
        kw = dict(ngf=arch.ngf, n_blocks=arch.n_blocks, dropout=arch.dropout)
        self.gen_ab = ResnetGenerator(arch.channels_a, arch.channels_b, **kw) if "a2b" in arch.directions else None
        self.gen_ba = ResnetGenerator(arch.channels_b, arch.channels_a, **kw) if "b2a" in arch.directions else None

    def channels(self, direction: Direction) -> tuple[int, int]:
        a, b = self.arch.channels_a, self.arch.channels_b
        return (a, b) if direction == "a2b" else (b, a)

    def generator(self, direction: Direction) -> ResnetGenerator:
        gen = self.gen_ab if direction == "a2b" else self.gen_ba
        if gen is None:
            raise ValueError(f"this model has no {direction} generator")
        return gen

    def translate(self, x: torch.Tensor, direction: Direction) -> torch.Tensor:
        return self.generator(direction)(x)


class CycleGANObjective(SingleStage):
    """Discriminators, pools and the two phases of a CycleGAN step."""

    def __init__(self, cfg: CycleGANConfig, model: CycleGANModel, data: TrainingData, seed: int) -> None:
        if model.gen_ab is None or model.gen_ba is None:
            raise ValueError("CycleGAN training needs both generators (arch.directions = ['a2b', 'b2a'])")
        if cfg.lambda_identity > 0 and cfg.arch.channels_a != cfg.arch.channels_b:
            raise ValueError("the identity loss needs equal channel counts; set lambda_identity=0")
        check_patch_crop(cfg.data.crop_size, cfg.n_layers_d)
        self.cfg = cfg
        self.model = model
        self.dis_a = PatchDiscriminator(cfg.arch.channels_a, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        self.dis_b = PatchDiscriminator(cfg.arch.channels_b, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        for net in (model, self.dis_a, self.dis_b):
            init_normal(net, cfg.init_std)
        if cfg.spectral_norm_d:
            for conv in [m for d in (self.dis_a, self.dis_b) for m in d.modules() if isinstance(m, nn.Conv2d)]:
                nn.utils.parametrizations.spectral_norm(conv)
        self.pool_a = ImagePool(cfg.pool_size)
        self.pool_b = ImagePool(cfg.pool_size)

    def phases(self) -> list[Phase]:
        o = self.cfg.optim
        return [
            o.phase("gen", (self.model.gen_ab, self.model.gen_ba), self.generator_loss),
            o.phase("dis", (self.dis_a, self.dis_b), self.discriminator_loss),
        ]

    def lr_factor(self, step: int, max_steps: int) -> float:
        return (linear_decay if self.cfg.lr_policy == "linear" else constant)(step, max_steps)

    def training_modules(self) -> dict[str, nn.Module]:
        return {"gen_ab": self.model.gen_ab, "gen_ba": self.model.gen_ba, "dis_a": self.dis_a, "dis_b": self.dis_b}

    def generator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        c, gen_ab, gen_ba = self.cfg, self.model.gen_ab, self.model.gen_ba
        x_a, x_b = batch["a"], batch["b"]  # (B, C_a, H, W), (B, C_b, H, W)
        x_ab = gen_ab(x_a)
        x_aba = gen_ba(x_ab)
        x_ba = gen_ba(x_b)
        x_bab = gen_ab(x_ba)
        gan_ab = gan_g_loss(self.dis_b(x_ab), c.gan_mode)
        gan_ba = gan_g_loss(self.dis_a(x_ba), c.gan_mode)
        cyc_a = l1(x_aba, x_a) * c.lambda_a
        cyc_b = l1(x_bab, x_b) * c.lambda_b
        loss = gan_ab + gan_ba + cyc_a + cyc_b
        scalars = {"g_gan_ab": gan_ab, "g_gan_ba": gan_ba, "cyc_a": cyc_a, "cyc_b": cyc_b}
        if c.lambda_content > 0:
            # The translation keeps the input's coarse layout: the cycle alone lets a 6 become a 9
            # as long as the way back can read a hidden signal.
            cont_a = low_pass_l1(x_ab, x_a, c.content_pool) * c.lambda_content
            cont_b = low_pass_l1(x_ba, x_b, c.content_pool) * c.lambda_content
            loss = loss + cont_a + cont_b
            scalars |= {"content_a": cont_a, "content_b": cont_b}
        if c.lambda_identity > 0:
            # G should leave real b images alone (and F real a images): discourages needless colour shifts.
            idt_b = l1(gen_ab(x_b), x_b) * c.lambda_b * c.lambda_identity
            idt_a = l1(gen_ba(x_a), x_a) * c.lambda_a * c.lambda_identity
            loss = loss + idt_a + idt_b
            scalars |= {"idt_a": idt_a, "idt_b": idt_b}
        return StepOutput(loss, scalars, {"x_ab": x_ab.detach(), "x_ba": x_ba.detach()})

    def discriminator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        mode = self.cfg.gan_mode
        fake_b = self.pool_b.query(carry["x_ab"])
        fake_a = self.pool_a.query(carry["x_ba"])
        d_b = 0.5 * gan_d_loss(self.dis_b(batch["b"]), self.dis_b(fake_b), mode)
        d_a = 0.5 * gan_d_loss(self.dis_a(batch["a"]), self.dis_a(fake_a), mode)
        return StepOutput(d_a + d_b, {"d_a": d_a, "d_b": d_b})

    def validation(self) -> Validation:
        """Mean cycle L1 over both directions on held-back images (lower is better)."""

        def cycle_l1(x_a: torch.Tensor, x_b: torch.Tensor) -> float:
            gen_ab, gen_ba = self.model.gen_ab, self.model.gen_ba
            return float((l1(gen_ba(gen_ab(x_a)), x_a) + l1(gen_ab(gen_ba(x_b)), x_b)) / 2)

        return Validation("cycle_l1", cycle_l1, higher_is_better=False)

    def extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        device = next(self.dis_a.parameters()).device
        self.pool_a.load_state_dict(state["pool_a"], device)
        self.pool_b.load_state_dict(state["pool_b"], device)

    @torch.no_grad()
    def samples(self, batch: Batch) -> dict[str, torch.Tensor]:
        x_a, x_b = batch["a"], batch["b"]
        x_ab = self.model.gen_ab(x_a)
        x_ba = self.model.gen_ba(x_b)
        rows = {"A": x_a, "A->B": x_ab, "A->B->A": self.model.gen_ba(x_ab),
                "B": x_b, "B->A": x_ba, "B->A->B": self.model.gen_ab(x_ba)}  # fmt: skip
        return {label: gray_to_rgb(r) for label, r in rows.items()}


def _cpu_config(ngf: int, n_blocks: int, size: int, **changes: Any) -> CycleGANConfig:
    return resnet_cpu_config(CycleGANConfig, CycleGANArch, ngf, n_blocks, size, **changes)


PRESETS = {
    "paper": Preset(
        "paper", "official recipe: 256^2 crops of 286^2, resnet_9blocks ngf 64, batch 1, 100+100 epochs",
        CycleGANConfig(), batch_size=1, max_steps=None,
    ),
    "cpu-small": cpu_small_preset(_cpu_config(16, 3, 32)),
    # Measured on MNIST<->UCI validation splits (benchmarks/curves.py): at 28-32 px a 3-layer D
    # ends in instance norms over 3x3 and 2x2 maps; 2 layers keep 6x6 maps and 5x5 patches. The
    # content term keeps the coarse layout that the cycle alone lets drift (a 6 drawn as a 9): at
    # weight 10 digits kept and judged as the target peak at 600-900 steps (90%/94%) and drift down
    # after; at weight 3 a2b keeps fewer (79% at 600).
    "cpu-fast": cpu_fast_preset(_cpu_config(16, 3, 32, n_layers_d=2, lambda_content=10.0)),
    "cpu-tiny": cpu_tiny_preset(_cpu_config(4, 1, 16, pool_size=4, n_layers_d=2), batch_size=2),
}

# The generic suite (tests/test_methods.py): 16^2 crops of 20^2, ngf 4, one block, 2-layer D;
# "tiny-options" turns the labelled options on (content term, spectral norm on D).
_TINY = _cpu_config(4, 1, 16, pool_size=2, n_layers_d=2)
TEST_PRESETS = tiny_test_presets(2, {"tiny": _TINY, "tiny-options": replace(_TINY, lambda_content=1.0, spectral_norm_d=True)})


METHOD = Method(
    info=INFO, main_loss="cyc_a", presets=PRESETS, test_presets=TEST_PRESETS,
    arch_cls=CycleGANArch, config_cls=CycleGANConfig, build_model=CycleGANModel, build_objective=CycleGANObjective,
)  # fmt: skip

"""GcGAN: Fu, Gong, Wang, Batmanghelich, Zhang & Tao, "Geometry-Consistent Generative Adversarial
Networks for One-Sided Unsupervised Domain Mapping", CVPR 2019. https://arxiv.org/abs/1809.05852

One generator translates x and f(x) for a fixed, semantics-preserving geometric transform f; the two
outputs must agree through f and f⁻¹ (one-sided, a -> b). Facts, loss and deviations (``torch.rot90``
for any crop shape, the ``cross`` generator kept apart, our test-time ``ensemble``): docs/methods/gcgan.md.

Paper symbols -> code names:

    G_XY                 gen_ab           (official netG_AB)
    G_X̃Ỹ                 gen_ab, shared    (variant "share", the official gc_gan_share default)
                         gen_ab_gc         (variant "cross": its own generator)
    D_Y                  dis_b            (official netD_B)
    D_Ỹ                  dis_b_gc         (official netD_gc_B; judges G(f(x)) against f(real b))
    f, f⁻¹               geo_fwd, geo_inv (``geometry``: "rot" = 90° clockwise, "vflip" = upside down)
    λ (geometry)         lambda_ab * lambda_gc = 10 * 2 = 20
    identity weight      lambda_ab * lambda_identity = 10 * 0.5 = 5
    G_YX (ablation)      gen_ba, with dis_a / dis_a_gc (``cycle=True``, training-only)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import nn

from i2icli.data.transforms import Preprocess
from i2icli.errors import UsageError
from i2icli.losses import GanMode, gan_d_loss, gan_g_loss, l1, low_pass_l1
from i2icli.methods.base import Direction, Method, Optim, Preset, TrainingData, check_choice
from i2icli.methods.info import MethodInfo, MethodOption
from i2icli.methods.presets import cpu_fast_preset, cpu_small_preset, cpu_tiny_preset, resnet_cpu_config, tiny_test_presets
from i2icli.nn.resnet import PatchDiscriminator, ResnetGenerator, ResnetTranslator, check_patch_crop, init_xavier
from i2icli.train.objective import Batch, Carry, Phase, SingleStage, StepOutput, gray_to_rgb
from i2icli.train.pool import ImagePool

INFO = MethodInfo(
    name="gcgan", converter="i2icli.convert.gcgan", capabilities=("translate",), one_sided=True,
    summary="GcGAN: one-sided a->b translation kept consistent under a fixed 90-degree rotation or vertical flip",
    paper="Fu, Gong, Wang, Batmanghelich, Zhang & Tao, CVPR 2019, https://arxiv.org/abs/1809.05852",
    convert_help="official <epoch>_net_G_AB.pth (gc_gan_share); add a second file for a gc_gan_cross G_gc_AB",
    options=(
        MethodOption(flag="--geometry", field="geometry", kind="str", help="the transform f the generator must commute with: rot (90 degrees clockwise, default) or vflip"),
    ),
)

Geometry = Literal["rot", "vflip"]
Variant = Literal["share", "cross"]
Ensemble = Literal["off", "rot", "vflip"]


def geo_fwd(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """f: (B, C, H, W) -> (B, C, W, H) rotated 90° clockwise, or (B, C, H, W) flipped upside down."""
    if geometry == "rot":
        return torch.rot90(x, k=-1, dims=(2, 3))
    if geometry == "vflip":
        return torch.flip(x, dims=(2,))
    raise UsageError(f"geometry: {geometry!r} is not one of {', '.join(get_args(Geometry))}")


def geo_inv(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """f⁻¹: the counter-clockwise rotation, or the same flip (a vertical flip is its own inverse)."""
    if geometry == "rot":
        return torch.rot90(x, k=1, dims=(2, 3))
    if geometry == "vflip":
        return torch.flip(x, dims=(2,))
    raise UsageError(f"geometry: {geometry!r} is not one of {', '.join(get_args(Geometry))}")


def geometry_loss(u: torch.Tensor, v: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """L1(u, f⁻¹(sg v)) + L1(v, f(sg u)) for u = G(x) (B, C, H, W) and v = G̃(f(x)).

    Zero exactly when G̃(f(x)) = f(G(x)), i.e. when the generator commutes with f.
    """
    return l1(u, geo_inv(v.detach(), geometry)) + l1(v, geo_fwd(u.detach(), geometry))


def gcgan_linear_decay(step: int, max_steps: int) -> float:
    """The 2018 fork's linear schedule in steps: it starts decaying one step (epoch) earlier than
    CycleGAN's and reaches 0 at the last step: 1 - max(0, s + 2 - n) / (n_d + 1), s 0-indexed."""
    n = max_steps // 2
    n_decay = max_steps - n
    return max(0.0, 1.0 - max(0, step + 2 - n) / (n_decay + 1))


@dataclass(frozen=True)
class GcGANArch:
    """The exported model; stored as ``arch`` in every checkpoint."""

    channels_a: int = 3
    channels_b: int = 3
    ngf: int = 64
    n_blocks: int = 9  # official resnet_9blocks; 6 for 128^2 (Cityscapes)
    variant: Variant = "share"  # share: one generator on x and f(x); cross: a second one (gen_ab_gc) for f(x)
    # Ours, not the paper's: translate returns ½(G(x) + f⁻¹(G̃(f(x)))) with this f ("off": G(x)).
    ensemble: Ensemble = "off"
    directions: tuple[Direction, ...] = ("a2b",)  # one-sided

    def __post_init__(self) -> None:
        check_choice("arch.variant", self.variant, Variant)
        check_choice("arch.ensemble", self.ensemble, Ensemble)
        if tuple(self.directions) != ("a2b",):
            raise UsageError(f"arch.directions: GcGAN is one-sided and translates a2b only, got {list(self.directions)}")


@dataclass(frozen=True)
class GcGANConfig:
    """A GcGAN training run (defaults: the official gc_gan_share recipe)."""

    arch: GcGANArch = field(default_factory=GcGANArch)
    data: Preprocess = field(default_factory=lambda: Preprocess(load_size=288, crop_size=256))
    optim: Optim = field(default_factory=Optim)  # 2e-4, (0.5, 0.999)
    geometry: Geometry = "rot"
    cycle: bool = False  # the GC + cycle ablation (official gc_cycle_gan): adds gen_ba, dis_a, dis_a_gc
    lambda_g: float = 1.0  # adversarial weight
    lambda_ab: float = 10.0  # base weight of the geometry, identity and cycle terms
    lambda_gc: float = 2.0  # geometry weight relative to lambda_ab (effective 20)
    lambda_identity: float = 0.5  # relative to lambda_ab (effective 5; 0.3 for parsing -> city); 0 disables
    lambda_content: float = 0.0  # labelled option, not the paper's: L1 between input and output after content_pool x average pooling
    content_pool: int = 4  # pooling factor of the content term (28 px -> 7 px)
    ndf: int = 64
    n_layers_d: int = 3  # 70x70 PatchGAN
    gan_mode: GanMode = "lsgan"
    pool_size: int = 50
    lr_policy: Literal["linear", "constant"] = "linear"
    init_gain: float = 0.02  # xavier_normal gain (the fork's default init)

    def __post_init__(self) -> None:
        check_choice("geometry", self.geometry, Geometry)


class GcGANModel(ResnetTranslator):
    """The inference model: ``gen_ab`` (and ``gen_ab_gc`` for the cross variant)."""

    def __init__(self, arch: GcGANArch) -> None:
        super().__init__()
        self.arch = arch
        self.directions: tuple[Direction, ...] = ("a2b",)
        kw = dict(ngf=arch.ngf, n_blocks=arch.n_blocks, dropout=False)
        self.gen_ab = ResnetGenerator(arch.channels_a, arch.channels_b, **kw)
        self.gen_ab_gc = ResnetGenerator(arch.channels_a, arch.channels_b, **kw) if arch.variant == "cross" else None

    @property
    def gen_gc(self) -> ResnetGenerator:
        """The generator applied to f(x): ``gen_ab`` itself when shared."""
        return self.gen_ab_gc if self.gen_ab_gc is not None else self.gen_ab

    def _check(self, direction: Direction) -> None:
        if direction not in self.directions:
            raise UsageError(f"this GcGAN model is one-sided and translates a2b only, not {direction}")

    def channels(self, direction: Direction) -> tuple[int, int]:
        self._check(direction)
        return self.arch.channels_a, self.arch.channels_b

    def translate(self, x: torch.Tensor, direction: Direction) -> torch.Tensor:
        self._check(direction)
        y = self.gen_ab(x)  # (B, C_b, H, W)
        if self.arch.ensemble == "off":
            return y
        g: Geometry = self.arch.ensemble
        return 0.5 * (y + geo_inv(self.gen_gc(geo_fwd(x, g)), g))


class GcGANObjective(SingleStage):
    """Discriminators, pools and the two phases of a GcGAN step (generators, then discriminators)."""

    def __init__(self, cfg: GcGANConfig, model: GcGANModel, data: TrainingData, seed: int) -> None:
        if cfg.arch != model.arch:
            raise ValueError("the model was built from a different arch than the config's")
        ca, cb = cfg.arch.channels_a, cfg.arch.channels_b
        if cfg.lambda_identity > 0 and ca != cb:
            raise ValueError(f"the identity loss needs equal channel counts (a: {ca}, b: {cb}); set lambda_identity=0")
        if model.gen_ab_gc is not None and cfg.arch.ensemble not in ("off", cfg.geometry):
            raise ValueError(
                f"arch.ensemble {cfg.arch.ensemble!r} must be 'off' or the training geometry {cfg.geometry!r}: "
                "the cross variant's second generator only knows the f it was trained with"
            )
        if cfg.data.crops:
            check_patch_crop(cfg.data.crop_size, cfg.n_layers_d)
        self.cfg = cfg
        self.model = model
        self.dis_b = PatchDiscriminator(cb, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        self.dis_b_gc = PatchDiscriminator(cb, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        # The cycle ablation's backward half (training-only: the exported model stays a -> b).
        self.gen_ba = self.dis_a = self.dis_a_gc = None
        if cfg.cycle:
            self.gen_ba = ResnetGenerator(cb, ca, ngf=cfg.arch.ngf, n_blocks=cfg.arch.n_blocks, dropout=False)
            self.dis_a = PatchDiscriminator(ca, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
            self.dis_a_gc = PatchDiscriminator(ca, ndf=cfg.ndf, n_layers=cfg.n_layers_d)
        for net in self.training_modules().values():
            init_xavier(net, cfg.init_gain)
        self.pools = {name: ImagePool(cfg.pool_size) for name in ("b", "b_gc", "a", "a_gc")}

    def phases(self) -> list[Phase]:
        gens = tuple(g for g in (self.model.gen_ab, self.model.gen_ab_gc, self.gen_ba) if g is not None)
        dis = tuple(d for d in (self.dis_b, self.dis_b_gc, self.dis_a, self.dis_a_gc) if d is not None)
        return [self.cfg.optim.phase("gen", gens, self.generator_loss), self.cfg.optim.phase("dis", dis, self.discriminator_loss)]

    def lr_factor(self, step: int, max_steps: int) -> float:
        return gcgan_linear_decay(step, max_steps) if self.cfg.lr_policy == "linear" else 1.0

    def training_modules(self) -> dict[str, nn.Module]:
        named = {
            "gen_ab": self.model.gen_ab, "gen_ab_gc": self.model.gen_ab_gc, "gen_ba": self.gen_ba,
            "dis_b": self.dis_b, "dis_b_gc": self.dis_b_gc, "dis_a": self.dis_a, "dis_a_gc": self.dis_a_gc,
        }  # fmt: skip
        return {name: m for name, m in named.items() if m is not None}

    def _one_side(
        self, x: torch.Tensor, gen: nn.Module, gen_gc: nn.Module, dis: nn.Module, dis_gc: nn.Module,
        y: torch.Tensor, tag: str,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:  # fmt: skip
        """The GcGAN terms of one generator pair on source x (B, C, H, W) with target-domain y.

        Returns the weighted terms, u = G(x) and v = G̃(f(x)) (in f's frame).
        """
        c, g = self.cfg, self.cfg.geometry
        fx = geo_fwd(x, g)
        u, v = gen(x), gen_gc(fx)
        terms = {
            f"g_gan_{tag}": c.lambda_g * gan_g_loss(dis(u), c.gan_mode),
            f"g_gan_{tag}_gc": c.lambda_g * gan_g_loss(dis_gc(v), c.gan_mode),
            f"geo_{tag}": c.lambda_ab * c.lambda_gc * geometry_loss(u, v, g),
        }
        if c.lambda_identity > 0:
            # G should leave real target images alone, in both frames.
            fy = geo_fwd(y, g)
            w = c.lambda_ab * c.lambda_identity
            terms[f"idt_{tag}"] = w * l1(gen(y), y)
            terms[f"idt_{tag}_gc"] = w * l1(gen_gc(fy), fy)
        return terms, u, v

    def generator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        c, g = self.cfg, self.cfg.geometry
        x_a, x_b = batch["a"], batch["b"]  # (B, C_a, H, W), (B, C_b, H, W)
        gen, gen_gc = self.model.gen_ab, self.model.gen_gc
        terms, u, v = self._one_side(x_a, gen, gen_gc, self.dis_b, self.dis_b_gc, x_b, "ab")
        if c.lambda_content > 0:
            # The geometry term only ties G to G~; neither stops a digit being redrawn as another one.
            terms["content_ab"] = c.lambda_content * low_pass_l1(u, x_a, c.content_pool)
        out = {"x_ab": u.detach(), "x_ab_gc": v.detach()}
        if self.gen_ba is not None:
            assert self.dis_a is not None and self.dis_a_gc is not None
            more, p, q = self._one_side(x_b, self.gen_ba, self.gen_ba, self.dis_a, self.dis_a_gc, x_a, "ba")
            terms |= more
            if c.lambda_content > 0:
                terms["content_ba"] = c.lambda_content * low_pass_l1(p, x_b, c.content_pool)
            # Cycles in both frames; the official code runs rec_gc_B through G_BA by mistake, we use G̃.
            terms["cyc_a"] = c.lambda_ab * (l1(self.gen_ba(u), x_a) + l1(self.gen_ba(v), geo_fwd(x_a, g)))
            terms["cyc_b"] = c.lambda_ab * (l1(gen(p), x_b) + l1(gen_gc(q), geo_fwd(x_b, g)))
            out |= {"x_ba": p.detach(), "x_ba_gc": q.detach()}
        loss = torch.stack(list(terms.values())).sum()
        return StepOutput(loss, terms, out)

    def discriminator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        mode, g = self.cfg.gan_mode, self.cfg.geometry

        def half(dis: nn.Module, real: torch.Tensor, fake_key: str, pool: str) -> torch.Tensor:
            fake = self.pools[pool].query(carry[fake_key])
            return 0.5 * gan_d_loss(dis(real), dis(fake), mode)

        x_a, x_b = batch["a"], batch["b"]
        # D_Ỹ's real images are f(real b), not raw b.
        terms = {"d_b": half(self.dis_b, x_b, "x_ab", "b"), "d_b_gc": half(self.dis_b_gc, geo_fwd(x_b, g), "x_ab_gc", "b_gc")}
        if self.dis_a is not None and self.dis_a_gc is not None:
            terms["d_a"] = half(self.dis_a, x_a, "x_ba", "a")
            terms["d_a_gc"] = half(self.dis_a_gc, geo_fwd(x_a, g), "x_ba_gc", "a_gc")
        return StepOutput(torch.stack(list(terms.values())).sum(), terms)

    def extra_state(self) -> dict[str, Any]:
        return {f"pool_{name}": pool.state_dict() for name, pool in self.pools.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        device = next(self.dis_b.parameters()).device
        for name, pool in self.pools.items():
            pool.load_state_dict(state[f"pool_{name}"], device)

    @torch.no_grad()
    def samples(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Rows: x, G(x), f⁻¹(G̃(f(x))) (the f branch brought back), b."""
        g, x_a = self.cfg.geometry, batch["a"]
        u = self.model.gen_ab(x_a)
        v_back = geo_inv(self.model.gen_gc(geo_fwd(x_a, g)), g)
        rows = {"A": x_a, "A->B": u, "f-1(G(f(A)))": v_back, "B": batch["b"]}
        return {label: gray_to_rgb(r) for label, r in rows.items()}


def _cpu_config(ngf: int, n_blocks: int, size: int, **changes: Any) -> GcGANConfig:
    return resnet_cpu_config(GcGANConfig, GcGANArch, ngf, n_blocks, size, **changes)


def _tiny(**changes: Any) -> GcGANConfig:
    """16^2 crops, ngf 4, one block, 2-layer PatchGANs: for the generic test suite."""
    return _cpu_config(4, 1, 16, pool_size=4, n_layers_d=2, **changes)


PRESETS = {
    "paper": Preset(
        "paper",
        "official gc_gan_share recipe: rot, 256^2 crops of 288^2, resnet_9blocks ngf 64, batch 8, "
        "xavier 0.02, 100+100 epochs",
        GcGANConfig(), batch_size=8, max_steps=None,
    ),
    "cpu-small": cpu_small_preset(_cpu_config(16, 3, 32)),
    # CycleGAN's cpu-fast recipe carried over (benchmarks/curves.py measures it on MNIST<->UCI):
    # 2-layer D for 28-32 px images, content term 10.
    "cpu-fast": cpu_fast_preset(_cpu_config(16, 3, 32, n_layers_d=2, lambda_content=10.0)),
    "cpu-tiny": cpu_tiny_preset(_tiny(), batch_size=2),
}

TEST_PRESETS = tiny_test_presets(2, {
    "share-rot": _tiny(),
    "share-vflip": _tiny(geometry="vflip"),
    "cross": _tiny(arch=GcGANArch(ngf=4, n_blocks=1, variant="cross", ensemble="rot")),
    "cycle": _tiny(cycle=True),
    "cycle-content": _tiny(cycle=True, lambda_content=1.0),
    "ensemble": _tiny(arch=GcGANArch(ngf=4, n_blocks=1, ensemble="vflip"), geometry="vflip"),
})  # fmt: skip


METHOD = Method(
    info=INFO, main_loss="geo_ab", presets=PRESETS, test_presets=TEST_PRESETS,
    arch_cls=GcGANArch, config_cls=GcGANConfig, build_model=GcGANModel, build_objective=GcGANObjective,
)  # fmt: skip

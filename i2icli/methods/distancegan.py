"""DistanceGAN: Benaim & Wolf, "One-Sided Unsupervised Domain Mapping", NIPS 2017.
https://arxiv.org/abs/1706.00826

If two images are far apart (or close) in domain A, their translations should be far apart (or
close) in domain B; distances are standardised per domain, so one direction can train alone. Facts,
the loss, and our choices (statistics over image pairs, the top/bottom self-distance split, the
``resnet2017`` generator of the official fork): docs/methods/distancegan.md.

Paper symbols -> code names:

    G_AB, G_BA         gen_ab, gen_ba      (official netG_A, netG_B; ``arch.directions`` says which)
    D_B, D_A           dis_b, dis_a        (official netD_A, netD_B: the official names are swapped)
    μ_A, σ_A, μ_B, σ_B dist_mean_a, dist_std_a, dist_mean_b, dist_std_b
                       (buffers of the ``distance_stats`` training module; official expectation_A, std_A)
    d(u, v)            mean |u - v|
    λ_dist             lambda_distance (1)
    cycle weight       lambda_cycle (0; the official --use_cycle_loss is 10, needs both directions)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from i2icli.data.transforms import Preprocess
from i2icli.errors import UsageError
from i2icli.losses import GanMode, gan_d_loss, gan_g_loss, l1, low_pass_l1
from i2icli.methods.base import Direction, Method, Optim, Preset, TrainingData, check_choice, split_direction
from i2icli.methods.info import MethodInfo
from i2icli.methods.presets import cpu_fast_preset, cpu_small_preset, cpu_tiny_preset, resnet_cpu_config, tiny_test_presets
from i2icli.nn.resnet import PatchDiscriminator, ResnetGenerator, ResnetTranslator, check_patch_crop, init_normal
from i2icli.train.objective import Batch, Carry, Phase, Stage, StepOutput, Validation, gray_to_rgb
from i2icli.train.pool import ImagePool

INFO = MethodInfo(
    name="distancegan", converter="i2icli.convert.distancegan", capabilities=("translate", "bidirectional"),
    summary="DistanceGAN: translation that keeps normalised pairwise (or half-to-half) distances; one or both directions",
    paper="Benaim & Wolf, NIPS 2017, https://arxiv.org/abs/1706.00826",
    convert_help="official <epoch>_net_G_A.pth (a2b), optionally followed by <epoch>_net_G_B.pth (b2a)",
)

DistanceMode = Literal["pairwise", "self"]
GeneratorKind = Literal["resnet", "resnet2017"]


def pair_distances(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N(N-1)/2,) mean absolute differences d(x_i, x_j) for all i < j (row-major)."""
    n = x.shape[0]
    i, j = torch.triu_indices(n, n, offset=1, device=x.device)
    return (x[i] - x[j]).abs().flatten(1).mean(1)


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and bottom halves (B, C, H//2, W) of (B, C, H, W); the middle row of an odd H is left out."""
    h = x.shape[2] // 2
    return x[:, :, :h], x[:, :, x.shape[2] - h :]


def half_distances(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,) d(top(x_i), bottom(x_i))."""
    top, bottom = halves(x)
    return (top - bottom).abs().flatten(1).mean(1)


@torch.no_grad()
def sample_distances(x: torch.Tensor, mode: DistanceMode) -> torch.Tensor:
    """Every distance a sample of images (N, C, H, W) offers: all N(N-1)/2 pairs, or N half pairs.

    The pairwise form uses ``torch.cdist`` (p=1) on the flattened images: no (pairs, C*H*W)
    intermediate, so a few hundred 256^2 images fit in memory.
    """
    if mode == "self":
        return half_distances(x)
    flat = x.flatten(1)  # (N, D)
    n, dim = flat.shape
    i, j = torch.triu_indices(n, n, offset=1, device=x.device)
    return (torch.cdist(flat, flat, p=1) / dim)[i, j]


def normalised_distance_loss(
    d_src: torch.Tensor, d_out: torch.Tensor, stats_src: tuple[torch.Tensor, torch.Tensor],
    stats_out: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:  # fmt: skip
    """mean | (d_src - μ_src)/σ_src - (d_out - μ_out)/σ_out | over matching distances (K,), (K,)."""
    (mu_s, sd_s), (mu_o, sd_o) = stats_src, stats_out
    return ((d_src - mu_s) / sd_s - (d_out - mu_o) / sd_o).abs().mean()


def distance_loss(
    x: torch.Tensor, y: torch.Tensor, mode: DistanceMode, stats_src: tuple[torch.Tensor, torch.Tensor],
    stats_out: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:  # fmt: skip
    """The DistanceGAN loss of translating x (B, C, H, W) to y = G(x) (B, C', H, W)."""
    if mode == "pairwise":
        if x.shape[0] < 2:
            raise ValueError("the pairwise distance loss needs at least 2 images per batch (use --batch-size >= 2)")
        return normalised_distance_loss(pair_distances(x), pair_distances(y), stats_src, stats_out)
    return normalised_distance_loss(half_distances(x), half_distances(y), stats_src, stats_out)


def distancegan_linear_decay(step: int, max_steps: int) -> float:
    """The 2017 fork's schedule in steps: constant for the first half, then lr0/n_d less per step
    (epoch) after each one, so the last step runs at lr0/n_d: 1 - max(0, s - n)/n_d, s 0-indexed."""
    n = max_steps // 2
    n_decay = max(1, max_steps - n)
    return 1.0 - max(0, step - n) / n_decay


class DistanceStats(nn.Module):
    """μ and σ of each domain's distances, fitted once before the first step (buffers: saved and
    restored with every training checkpoint). ``fitted`` guards against training without them."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("dist_mean_a", "dist_std_a", "dist_mean_b", "dist_std_b"):
            self.register_buffer(name, torch.zeros(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def stats(self, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not bool(self.fitted):
            raise RuntimeError("distance statistics were not fitted (the fit-statistics stage never ran)")
        return (self.dist_mean_a, self.dist_std_a) if domain == "a" else (self.dist_mean_b, self.dist_std_b)

    @torch.no_grad()
    def fit(self, a: torch.Tensor, b: torch.Tensor, mode: DistanceMode) -> None:
        """Fit from image samples a (N_a, C, H, W) and b (N_b, C', H, W); population std."""
        for domain, x, mean, std in (("a", a, self.dist_mean_a, self.dist_std_a), ("b", b, self.dist_mean_b, self.dist_std_b)):
            need = 3 if mode == "pairwise" else 2
            if x.shape[0] < need:
                raise ValueError(f"domain {domain}: {x.shape[0]} images are too few for {mode} distance statistics (need {need})")
            d = sample_distances(x, mode).double()
            mu, sd = d.mean(), d.std(unbiased=False)
            if not sd > 0:
                raise ValueError(f"domain {domain}: the {mode} distances have zero spread; the images are all alike")
            mean.copy_(mu)
            std.copy_(sd)
        self.fitted.fill_(True)


@dataclass(frozen=True)
class DistanceGANArch:
    """The exported model; stored as ``arch`` in every checkpoint."""

    channels_a: int = 3
    channels_b: int = 3
    ngf: int = 64
    n_blocks: int = 9
    generator: GeneratorKind = "resnet"  # resnet2017: the official fork's zero padding + affine IN
    dropout: bool = False
    directions: tuple[Direction, ...] = ("a2b", "b2a")  # official default: both

    def __post_init__(self) -> None:
        check_choice("arch.generator", self.generator, GeneratorKind)
        if not self.directions or len(set(self.directions)) != len(self.directions) or not set(self.directions) <= {"a2b", "b2a"}:
            raise UsageError(f"arch.directions: expected a2b, b2a or both, got {list(self.directions)}")


@dataclass(frozen=True)
class DistanceGANConfig:
    """A DistanceGAN training run (defaults: the official CycleGAN-architecture recipe)."""

    arch: DistanceGANArch = field(default_factory=DistanceGANArch)
    data: Preprocess = field(default_factory=Preprocess)  # 286 -> 256 crops, flip
    optim: Optim = field(default_factory=Optim)  # 2e-4, (0.5, 0.999)
    distance: DistanceMode = "pairwise"
    lambda_distance: float = 1.0
    lambda_cycle: float = 0.0  # official --use_cycle_loss: 10
    lambda_identity: float = 0.0  # not in the official recipe; relative weight of L1(G(y), y)
    lambda_content: float = 0.0  # labelled option, not the paper's: L1 between input and output after content_pool x average pooling
    content_pool: int = 4  # pooling factor of the content term (28 px -> 7 px)
    normalise: bool = True  # False: the official --unnormalized_distances (|d_x - d_y|)
    stat_images: int = 200  # images sampled per domain for μ, σ (all pairs: 19,900 distances)
    stat_seed: int = 0
    ndf: int = 64
    n_layers_d: int = 3
    gan_mode: GanMode = "lsgan"
    pool_size: int = 50
    lr_policy: Literal["linear", "constant"] = "linear"
    init_std: float = 0.02

    def __post_init__(self) -> None:
        check_choice("distance", self.distance, DistanceMode)
        if self.stat_images < 3:
            raise UsageError(f"stat_images: {self.stat_images} is too few to estimate distance statistics (need >= 3)")


class DistanceGANModel(ResnetTranslator):
    """The inference model: ``gen_ab`` and/or ``gen_ba`` (as ``arch.directions`` says)."""

    def __init__(self, arch: DistanceGANArch) -> None:
        super().__init__()
        self.arch = arch
        self.directions: tuple[Direction, ...] = tuple(arch.directions)
        kw: dict[str, Any] = dict(ngf=arch.ngf, n_blocks=arch.n_blocks, dropout=arch.dropout)
        if arch.generator == "resnet2017":
            kw |= dict(padding="zero", affine=True)
        self.gen_ab = ResnetGenerator(arch.channels_a, arch.channels_b, **kw) if "a2b" in self.directions else None
        self.gen_ba = ResnetGenerator(arch.channels_b, arch.channels_a, **kw) if "b2a" in self.directions else None

    def generator(self, direction: Direction) -> ResnetGenerator:
        gen = self.gen_ab if direction == "a2b" else self.gen_ba
        if gen is None:
            have = ", ".join(self.directions)
            raise UsageError(f"this DistanceGAN model was trained for {have} only and cannot translate {direction}")
        return gen

    def channels(self, direction: Direction) -> tuple[int, int]:
        self.generator(direction)
        a, b = self.arch.channels_a, self.arch.channels_b
        return (a, b) if direction == "a2b" else (b, a)

    def translate(self, x: torch.Tensor, direction: Direction) -> torch.Tensor:
        return self.generator(direction)(x)


class DistanceGANObjective:
    """Distance statistics, discriminators, pools and the two phases of a DistanceGAN step."""

    def __init__(self, cfg: DistanceGANConfig, model: DistanceGANModel, data: TrainingData, seed: int) -> None:
        if cfg.arch != model.arch:
            raise ValueError("the model was built from a different arch than the config's")
        dirs = model.directions
        if cfg.lambda_cycle > 0 and len(dirs) != 2:
            raise ValueError("lambda_cycle > 0 needs both generators: set arch.directions to [a2b, b2a]")
        if cfg.lambda_identity > 0 and cfg.arch.channels_a != cfg.arch.channels_b:
            raise ValueError("the identity loss needs equal channel counts; set lambda_identity=0")
        if cfg.distance == "pairwise" and cfg.lambda_distance > 0:
            batch = data[0]["a"].shape[0]
            if batch < 2:
                raise ValueError(
                    f"batch size {batch}: the pairwise distance loss compares images within a batch and needs "
                    "at least 2 (the official minimum; 4-8 is better), or use distance=self"
                )
        if cfg.lambda_distance > 0 and cfg.normalise:
            need = 3 if cfg.distance == "pairwise" else 2
            for domain, files in (("a", data.files_a), ("b", data.files_b)):
                if len(files) < need:
                    raise ValueError(f"domain {domain} has {len(files)} images; the {cfg.distance} distance statistics need {need}")
        if cfg.data.crops:
            check_patch_crop(cfg.data.crop_size, cfg.n_layers_d)
        self.cfg = cfg
        self.model = model
        self.distance_stats = DistanceStats()
        # D judging the target domain of each trained direction: dis_b for a2b, dis_a for b2a.
        self.dis_b = PatchDiscriminator(cfg.arch.channels_b, ndf=cfg.ndf, n_layers=cfg.n_layers_d) if "a2b" in dirs else None
        self.dis_a = PatchDiscriminator(cfg.arch.channels_a, ndf=cfg.ndf, n_layers=cfg.n_layers_d) if "b2a" in dirs else None
        for net in (model, self.dis_a, self.dis_b):
            if net is not None:
                init_normal(net, cfg.init_std)
        self.pools = {d: ImagePool(cfg.pool_size) for d in dirs}

    def fit_statistics(self, data: TrainingData) -> None:
        """Sample each domain once (bounded by ``stat_images``) and fit μ, σ of its distances."""
        n, s = self.cfg.stat_images, self.cfg.stat_seed
        device = self.distance_stats.dist_mean_a.device
        a, b = data.sample("a", n, s).to(device), data.sample("b", n, s + 1).to(device)
        try:
            self.distance_stats.fit(a, b, self.cfg.distance)
        except ValueError as e:  # e.g. all images alike: a data problem, reported as one line
            raise UsageError(str(e)) from None

    def stages(self) -> list[Stage]:
        return [Stage("fit-statistics", 0, self.fit_statistics)]

    def validation(self) -> Validation | None:
        return None

    def phases(self) -> list[Phase]:
        gens = tuple(g for g in (self.model.gen_ab, self.model.gen_ba) if g is not None)
        dis = tuple(d for d in (self.dis_a, self.dis_b) if d is not None)
        return [self.cfg.optim.phase("gen", gens, self.generator_loss), self.cfg.optim.phase("dis", dis, self.discriminator_loss)]

    def lr_factor(self, step: int, max_steps: int) -> float:
        return distancegan_linear_decay(step, max_steps) if self.cfg.lr_policy == "linear" else 1.0

    def training_modules(self) -> dict[str, nn.Module]:
        named = {
            "gen_ab": self.model.gen_ab, "gen_ba": self.model.gen_ba, "dis_a": self.dis_a, "dis_b": self.dis_b,
            "distance_stats": self.distance_stats,
        }  # fmt: skip
        return {name: m for name, m in named.items() if m is not None}

    def _dis(self, domain: str) -> nn.Module:
        dis = self.dis_b if domain == "b" else self.dis_a
        assert dis is not None
        return dis

    def generator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        c = self.cfg
        terms: dict[str, torch.Tensor] = {}
        fakes: dict[str, torch.Tensor] = {}
        for direction in self.model.directions:
            src, tgt = split_direction(direction)
            tag = src + tgt
            x = batch[src]  # (B, C_src, H, W)
            y = self.model.generator(direction)(x)  # (B, C_tgt, H, W)
            fakes[direction] = y
            terms[f"g_gan_{tag}"] = gan_g_loss(self._dis(tgt)(y), c.gan_mode)
            if c.lambda_distance > 0:
                if c.normalise:
                    s_src, s_tgt = self.distance_stats.stats(src), self.distance_stats.stats(tgt)
                else:  # the official --unnormalized_distances: |d_x - d_y|
                    one, zero = torch.ones((), device=x.device), torch.zeros((), device=x.device)
                    s_src = s_tgt = (zero, one)
                terms[f"dist_{tag}"] = c.lambda_distance * distance_loss(x, y, c.distance, s_src, s_tgt)
            if c.lambda_content > 0:
                # Distances between pairs survive a consistent relabelling of digits; this does not.
                terms[f"content_{tag}"] = c.lambda_content * low_pass_l1(y, x, c.content_pool)
            if c.lambda_identity > 0:
                real_tgt = batch[tgt]
                terms[f"idt_{tag}"] = c.lambda_identity * l1(self.model.generator(direction)(real_tgt), real_tgt)
        if c.lambda_cycle > 0:
            assert self.model.gen_ab is not None and self.model.gen_ba is not None
            terms["cyc_a"] = c.lambda_cycle * l1(self.model.gen_ba(fakes["a2b"]), batch["a"])
            terms["cyc_b"] = c.lambda_cycle * l1(self.model.gen_ab(fakes["b2a"]), batch["b"])
        loss = torch.stack(list(terms.values())).sum()
        scalars = dict(terms)
        dist = [v for k, v in terms.items() if k.startswith("dist_")]
        if dist:  # the method's own loss over whichever directions are trained (the main loss)
            scalars["dist"] = torch.stack(dist).sum()
        return StepOutput(loss, scalars, {f"fake_{d}": y.detach() for d, y in fakes.items()})

    def discriminator_loss(self, batch: Batch, carry: Carry) -> StepOutput:
        terms = {}
        for direction in self.model.directions:
            tgt = split_direction(direction)[1]
            dis = self._dis(tgt)
            fake = self.pools[direction].query(carry[f"fake_{direction}"])
            terms[f"d_{tgt}"] = 0.5 * gan_d_loss(dis(batch[tgt]), dis(fake), self.cfg.gan_mode)
        return StepOutput(torch.stack(list(terms.values())).sum(), terms)

    def extra_state(self) -> dict[str, Any]:
        return {f"pool_{d}": pool.state_dict() for d, pool in self.pools.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        device = self.distance_stats.dist_mean_a.device
        for d, pool in self.pools.items():
            pool.load_state_dict(state[f"pool_{d}"], device)

    @torch.no_grad()
    def samples(self, batch: Batch) -> dict[str, torch.Tensor]:
        rows = {}
        for direction in self.model.directions:
            src, tgt = (d.upper() for d in split_direction(direction))
            rows[src] = gray_to_rgb(batch[src.lower()])
            rows[f"{src}->{tgt}"] = gray_to_rgb(self.model.generator(direction)(batch[src.lower()]))
        return rows


def _cpu_config(ngf: int, n_blocks: int, size: int, **changes: Any) -> DistanceGANConfig:
    return resnet_cpu_config(DistanceGANConfig, DistanceGANArch, ngf, n_blocks, size, **changes)


def _tiny(**changes: Any) -> DistanceGANConfig:
    """16^2 crops, ngf 4, one block, 2-layer PatchGANs, 8 images for the statistics: for tests."""
    return _cpu_config(4, 1, 16, pool_size=4, n_layers_d=2, stat_images=8, **changes)


PRESETS = {
    "paper": Preset(
        "paper",
        "official CycleGAN-architecture recipe: both directions, pairwise distances, 256^2 crops of 286^2, resnet_9blocks ngf 64, batch 2, 100+100 epochs",
        DistanceGANConfig(), batch_size=2, max_steps=None,
    ),
    "cpu-small": cpu_small_preset(_cpu_config(16, 3, 32)),
    # CycleGAN's cpu-fast recipe (2-layer D for 28-32 px images) with the content term at 30, not 10:
    # without a cycle, a one-sided generator redraws a quarter of MNIST digits as others at 10
    # (validation, MNIST<->UCI, 1200 steps: 74% / 83% kept and judged as the target, at 30 93% / 90%,
    # still judged as the target domain 99.7% / 100%; benchmarks/curves.py).
    "cpu-fast": cpu_fast_preset(_cpu_config(16, 3, 32, n_layers_d=2, lambda_content=30.0)),
    "cpu-tiny": cpu_tiny_preset(_tiny(), batch_size=4),
}

_TINY_ARCH = DistanceGANArch(ngf=4, n_blocks=1)
TEST_PRESETS = tiny_test_presets(4, {
    "pairwise": _tiny(),
    "self-a2b": _tiny(arch=replace(_TINY_ARCH, directions=("a2b",)), distance="self"),
    "cycle": _tiny(lambda_cycle=10.0),
    "content": _tiny(lambda_content=1.0),
    "resnet2017-b2a": _tiny(arch=replace(_TINY_ARCH, generator="resnet2017", directions=("b2a",))),
})  # fmt: skip


METHOD = Method(
    info=INFO, main_loss="dist", presets=PRESETS, test_presets=TEST_PRESETS,
    arch_cls=DistanceGANArch, config_cls=DistanceGANConfig, build_model=DistanceGANModel, build_objective=DistanceGANObjective,
)  # fmt: skip

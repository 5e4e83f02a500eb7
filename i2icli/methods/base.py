"""The method contract: what a method module provides, and what every method config and model has.

A method module (``i2icli/methods/<name>.py``, or any module given to ``register_method``)
declares, and nothing outside it needs to know more:

    INFO     ``MethodInfo``: name, summary, paper, capabilities, method-specific train options,
             converter module and help (torch-free; see ``info.py``)
    METHOD   ``Method``: the arch and config dataclasses, the model and objective builders, the
             presets and the tiny test presets

Every model is a ``Translator``. Each optional capability declared in ``INFO.capabilities`` is a
protocol below (``CAPABILITY_PROTOCOLS``): the model meets it (``StyleModel``, ``LatentModel``,
``LandmarkModel``, ``OwnStyleModel``), or for ``stage-budgets`` the ``Method.stages`` object does.
Inference and the CLI only use a capability a method declares; ``tests/test_methods.py`` checks
every declaration against its protocol, both ways.

Every config has ``arch`` (with ``channels_a``/``channels_b``), ``data`` (a ``Preprocess``) and
``optim`` (an ``Optim``). The objective builder receives the training data, so a method can fit
statistics on it before the first step (DistanceGAN's distance statistics, TransGaGa's PCA bases
at a stage boundary).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Literal, Mapping, Protocol, TypeVar, get_args, runtime_checkable

import torch
from torch import Tensor, nn

from i2icli.errors import UsageError
from i2icli.methods.info import Capability, MethodInfo
from i2icli.train.objective import Batch, Carry, Objective, Phase, StepOutput

Direction = Literal["a2b", "b2a"]
DIRECTIONS: tuple[Direction, Direction] = ("a2b", "b2a")
Domain = Literal["a", "b"]


def split_direction(direction: str) -> tuple[Domain, Domain]:
    """(source, target) domain of a direction: ``"a2b"`` -> (``"a"``, ``"b"``)."""
    if direction == "a2b":
        return "a", "b"
    if direction == "b2a":
        return "b", "a"
    raise UsageError(f"direction must be 'a2b' or 'b2a', got {direction!r}")


def check_choice(field: str, value: object, choices: Any) -> None:
    """A usage error unless ``value`` of the config ``field`` is one of the ``Literal`` type ``choices``."""
    if value not in get_args(choices):
        raise UsageError(f"{field}: {value!r} is not one of {', '.join(get_args(choices))}")


@dataclass(frozen=True)
class Optim:
    """Adam settings shared by every phase of a method (each method states its paper's values)."""

    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    weight_decay: float = 0.0

    @property
    def betas(self) -> tuple[float, float]:
        return (self.beta1, self.beta2)

    def phase(
        self, name: str, modules: tuple[nn.Module, ...], loss_fn: Callable[[Batch, Carry], StepOutput],
        stages: tuple[str, ...] | None = None,
    ) -> Phase:  # fmt: skip
        """A training phase that updates ``modules`` with these Adam settings."""
        return Phase(name, modules, loss_fn, self.lr, self.betas, self.weight_decay, stages=stages)


class MethodArch(Protocol):
    """The fields every ``arch`` dataclass has (stored in every checkpoint)."""

    @property
    def channels_a(self) -> int: ...

    @property
    def channels_b(self) -> int: ...


@runtime_checkable
class Translator(Protocol):
    """What inference needs from every model (an ``nn.Module``)."""

    directions: tuple[Direction, ...]  # the directions this checkpoint can translate
    stride: int  # inputs must be a multiple of this (H and W)
    min_size: int  # and at least this large

    def channels(self, direction: Direction) -> tuple[int, int]:
        """(input channels, output channels) for ``direction``."""
        ...

    def translate(self, x: Tensor, direction: Direction) -> Tensor:
        """(B, C_in, H, W) in [-1, 1] -> (B, C_out, H, W) in [-1, 1]. A ``StyleModel`` also takes
        ``style`` (B, S, 1, 1), the target domain's style, as a third argument."""
        ...


# --------------------------------------------------------------------------- optional capabilities


@runtime_checkable
class StyleModel(Protocol):
    """``styles``: translation through a content code and a style code (MUNIT; TransGaGa's
    appearance). ``domain`` is "a" or "b"; a style is (S, 1, 1), a batch of them (B, S, 1, 1)."""

    def encode_content(self, x: Tensor, domain: str) -> Tensor:
        """(B, C, H, W) -> content (B, D, h, w)."""
        ...

    def encode_style(self, x: Tensor, domain: str) -> Tensor:
        """(B, C, H, W) -> style (B, S, 1, 1)."""
        ...

    def decode(self, content: Tensor, style: Tensor, domain: str) -> Tensor:
        """Content (B, D, h, w) and style (B, S, 1, 1) -> image (B, C, H, W) in ``domain``."""
        ...

    def random_style(self, n: int, generator: torch.Generator, device: torch.device | str | None = None) -> Tensor:
        """``n`` styles from the prior, drawn with ``generator`` (on the CPU): (n, S, 1, 1)."""
        ...


@runtime_checkable
class LatentModel(Protocol):
    """``latent-walk``: a unimodal model whose translation goes through one latent code (UNIT)."""

    def encode_latent(self, x: Tensor, domain: str) -> Tensor:
        """(B, C, H, W) -> latent code (B, Z, h, w)."""
        ...

    def decode_latent(self, z: Tensor, domain: str) -> Tensor:
        """Latent code (B, Z, h, w) -> image (B, C, H, W) in ``domain``."""
        ...


@runtime_checkable
class LandmarkModel(Protocol):
    """``landmarks``: a global geometry of K points (TransGaGa). Tiles cannot stand for the whole
    image, so such a model always runs whole."""

    def landmarks(self, x: Tensor, domain: str) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> heatmaps (B, K, H, W) and points (B, K, 2) as (x, y) in [-1, 1] over pixel centres."""
        ...


@runtime_checkable
class OwnStyleModel(Protocol):
    """``optional-style``: a style model that supplies an input's style itself, so translation
    needs no style (TransGaGa's appearance transformer); ``interpolate`` walks between two of them."""

    def translated_style(self, x: Tensor, direction: Direction) -> Tensor:
        """(B, C, H, W) -> the target-domain style translation gives it: (B, S, 1, 1)."""
        ...


@runtime_checkable
class StageBudgets(Protocol):
    """``stage-budgets``: a method trained in stages (``Method.stages``). Benchmarks train every
    method for one shared budget; this says how to fit every stage into it."""

    def budget_overrides(self, steps: int) -> tuple[str, ...]:
        """``--set`` overrides that fit every stage into ``steps`` steps."""
        ...


# Each optional capability and its protocol. ``stage-budgets`` is met by ``Method.stages``, the
# others by the model ``Method.build_model`` returns.
CAPABILITY_PROTOCOLS: dict[Capability, type] = {
    Capability.STYLES: StyleModel,
    Capability.LATENT_WALK: LatentModel,
    Capability.LANDMARKS: LandmarkModel,
    Capability.OPTIONAL_STYLE: OwnStyleModel,
    Capability.STAGE_BUDGETS: StageBudgets,
}
METHOD_CAPABILITIES = frozenset({Capability.STAGE_BUDGETS})  # met by the Method, not the model


class TrainingData(Protocol):
    """The training data as an objective builder and stage hooks see it."""

    @property
    def files_a(self) -> list[Path]: ...

    @property
    def files_b(self) -> list[Path]: ...

    def __getitem__(self, step: int) -> Batch:
        """The batch of ``step``: ``{"a": (B, C, H, W), "b": ..., "index_a": (B,), "index_b": (B,)}``."""
        ...

    def sample(self, domain: Domain, n: int, seed: int) -> torch.Tensor:
        """Up to ``n`` distinct images of ``domain`` (all of them when fewer), preprocessed as in
        training with augmentation drawn from ``seed``: (min(n, N), C, H, W). Bounded by ``n``."""
        ...


@dataclass(frozen=True)
class Preset:
    """A named training recipe: a full method config plus the loop defaults that go with it."""

    name: str
    description: str
    config: Any  # the method's config dataclass
    batch_size: int
    max_steps: int | None  # None: the official number of epochs of the dataset (``epochs``)
    epochs: int = 200
    ema: float = 0.0  # the loop's weight average (``i2i train --ema``) that goes with the recipe; 0 off


@dataclass(frozen=True)
class Converted:
    """An official checkpoint turned into ours: the inferred arch, the model state dict, one line."""

    arch: Any
    state: dict[str, torch.Tensor]
    summary: str  # e.g. "a2b, b2a; ngf 64, 9 blocks"


ArchT = TypeVar("ArchT")
ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True)
class Method(Generic[ArchT, ConfigT]):
    """Everything the registry, the training run, the CLI and the generic tests need from a method."""

    info: MethodInfo
    arch_cls: type[ArchT]  # dataclass stored as ``arch`` in checkpoints
    config_cls: type[ConfigT]  # training config: ``arch``, ``data``, ``optim`` and the method's own fields
    build_model: Callable[[ArchT], nn.Module]  # arch -> inference model (a ``Translator``)
    # (config, model, training data, seed) -> objective; raise ValueError for a config it cannot train
    build_objective: Callable[[ConfigT, nn.Module, TrainingData, int], Objective]
    presets: Mapping[str, Preset]
    # Tiny configs the generic suite (tests/test_methods.py) runs, one per architecture variant.
    test_presets: Mapping[str, Preset]
    # A logged scalar that training must lower (the generic suite checks it falls on a fixed batch).
    main_loss: str
    default_preset: str = "paper"
    # ``stage-budgets`` methods: how their stages fit a step budget; None for a method without stages.
    stages: StageBudgets | None = None

    @property
    def name(self) -> str:
        return self.info.name

    def budget_overrides(self, steps: int) -> tuple[str, ...]:
        """``--set`` overrides that fit the method into ``steps`` steps (none for a method without stages)."""
        if Capability.STAGE_BUDGETS not in self.info.caps:
            return ()
        if self.stages is None:
            raise TypeError(f"{self.name}: declares stage-budgets but has no Method.stages")
        return self.stages.budget_overrides(steps)

"""What a method hands to the training loop: its phases, in order.

A method's objective owns everything only training needs (discriminators, image pools, loss
weights). The loop owns optimisers, schedules, AMP, logging and checkpoints and knows nothing
about cycles, styles or geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn

Batch = dict[str, torch.Tensor]
# Tensors one phase passes to the next within a step (e.g. detached fakes for the D phase).
Carry = dict[str, torch.Tensor]


@dataclass
class StepOutput:
    """One phase's result: the loss to backpropagate, named scalars to log, tensors for later phases."""

    loss: torch.Tensor
    scalars: dict[str, torch.Tensor] = field(default_factory=dict)
    carry: Carry = field(default_factory=dict)


@dataclass(frozen=True)
class Phase:
    """An optimisation phase: ``loss_fn(batch, carry)`` updates ``modules`` with its own Adam optimiser.

    The loop freezes every other parameter while this phase runs (``requires_grad_``), and runs the
    phase when ``step % interval == 0``.
    """

    name: str
    modules: tuple[nn.Module, ...]
    loss_fn: Callable[[Batch, Carry], StepOutput]
    lr: float
    betas: tuple[float, float]
    weight_decay: float = 0.0
    interval: int = 1
    stages: tuple[str, ...] | None = None  # the stages it runs in (None: every stage)

    def parameters(self) -> list[nn.Parameter]:
        return [p for m in self.modules for p in m.parameters()]


@dataclass(frozen=True)
class Stage:
    """A training stage: from step ``start`` on (until the next stage), only phases listing this
    stage's name in ``Phase.stages`` run. ``enter(data)`` runs once, just before step ``start``
    (e.g. freeze a part by leaving it out of the later phases, fit PCA bases on the data). Its
    effects must live in module buffers or ``extra_state`` so that a resumed run has them without
    running ``enter`` again; the loop records entered stages in each checkpoint."""

    name: str
    start: int
    enter: Callable[[Any], None] | None = None  # receives the ``TrainingData``


@dataclass(frozen=True)
class Validation:
    """A score the loop computes every ``--val-every`` steps on held-back images.

    ``score(a, b)`` gets (N, C, H, W) tensors of held-back domain-A and domain-B images (already
    on the device, in eval mode, under ``no_grad``) and returns one number.
    """

    name: str
    score: Callable[[torch.Tensor, torch.Tensor], float]
    higher_is_better: bool


class Objective(Protocol):
    """The training-side half of a method (see ``methods/cyclegan.py`` for an example)."""

    model: nn.Module  # the inference model, exported at the end of training

    def phases(self) -> list[Phase]: ...

    def lr_factor(self, step: int, max_steps: int) -> float:
        """Multiplier on every phase's lr at ``step`` (a pure function: resuming needs no state)."""
        ...

    def training_modules(self) -> dict[str, nn.Module]:
        """Every module whose weights a training checkpoint must hold (generators and discriminators)."""
        ...

    def extra_state(self) -> dict[str, Any]:
        """Training state beyond module weights (image pools, private RNGs); tensors and plain values only."""
        ...

    def load_extra_state(self, state: dict[str, Any]) -> None: ...

    def samples(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Rows of images (each (B, C, H, W) in [-1, 1]) for the periodic sample grid, by row label
        (e.g. ``"A->B"``; the label is written beside its row)."""
        ...

    def stages(self) -> list[Stage]:
        """Training stages by step range ([] for single-stage methods; see ``SingleStage``)."""
        ...

    def validation(self) -> Validation | None:
        """The score ``--val-every`` tracks, or None when the method has none."""
        ...


def gray_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """A sample row as RGB for the grid: (B, 1, H, W) -> (B, 3, H, W); (B, 3, H, W) as it is."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class SingleStage:
    """Defaults for objectives with one stage and no validation score (mix in and override)."""

    def stages(self) -> list[Stage]:
        return []

    def validation(self) -> Validation | None:
        return None

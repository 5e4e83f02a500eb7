"""The contract between a method module, the registry, inference and the training loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol

import torch
from torch import nn

from i2icli.train.objective import Objective

Direction = Literal["a2b", "b2a"]
DIRECTIONS: tuple[Direction, Direction] = ("a2b", "b2a")


class Translator(Protocol):
    """What inference needs from a model (an ``nn.Module``)."""

    directions: tuple[Direction, ...]  # the directions this checkpoint can translate
    stride: int  # inputs must be a multiple of this (H and W)
    min_size: int  # and at least this large

    def channels(self, direction: Direction) -> tuple[int, int]:
        """(input channels, output channels) for ``direction``."""
        ...

    def translate(self, x: torch.Tensor, direction: Direction) -> torch.Tensor:
        """(B, C_in, H, W) in [-1, 1] -> (B, C_out, H, W) in [-1, 1]."""
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


@dataclass(frozen=True)
class MethodImpl:
    """A method's classes and factories; ``registry.METHODS`` points at these through lazy loaders."""

    name: str
    arch_cls: type  # dataclass stored as ``arch`` in checkpoints
    config_cls: type  # training config dataclass (``arch`` plus losses, optimiser, data)
    build_model: Callable[[Any], nn.Module]  # arch -> inference model (a Translator)
    build_objective: Callable[[Any, nn.Module, int], Objective]  # (config, model, seed) -> objective
    presets: dict[str, Preset]
    default_preset: str = "paper"

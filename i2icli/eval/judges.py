"""Judges: small CNN classifiers trained here on shipped data, used to score translations offline.

A class judge trained on the target domain measures whether a translation kept the content (UNIT's
translation accuracy); a content judge (``digits``) reads the class in either domain's style and from
many writers, so "class kept" does not depend on whether the target's own writers drew the digit that
way; a domain judge measures whether it reached the target domain; the penultimate features give
"FID-digits"-style distances (named after the judge, never plain FID).

Weights live in ``i2icli/eval/judges/<name>.safetensors`` beside ``<name>.json`` (the judge's card:
classes, data, seed, steps, held-out accuracy); ``python -m i2icli.eval.train_judges`` writes both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from torch import nn

from i2icli.errors import CheckpointError, InputError, UsageError

if TYPE_CHECKING:  # importlib.resources.abc exists from Python 3.11; annotations are lazy
    from importlib.resources.abc import Traversable

JUDGE_SIZE = 28
# ITU-R BT.601 luma weights: how MNIST-like gray is obtained from RGB translations.
_LUMA = (0.299, 0.587, 0.114)


@dataclasses.dataclass(frozen=True)
class JudgeCard:
    """Everything known about a trained judge; stored as ``<name>.json``."""

    name: str
    kind: str  # "class": which class is it? | "domain": which domain is it from?
    classes: tuple[str, ...]  # output index -> name
    widths: tuple[int, int, int]  # conv channels, see Judge
    hidden: int  # feature dimension
    data: str  # what it was trained on (train split only)
    seed: int
    steps: int
    batch_size: int
    lr: float
    shift: int  # training augmentation: random translation of up to this many pixels
    heldout: dict[str, float]  # held-out set description -> accuracy (the first is its own test split)
    affine: bool = False  # training augmentation: random rotation, per-axis scale and shear (train_judges)

    def to_json(self) -> str:
        """Pretty JSON with lists for tuples."""
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> JudgeCard:
        """Parse a card written by ``to_json``."""
        raw: dict[str, Any] = json.loads(text)
        raw["classes"] = tuple(raw["classes"])
        raw["widths"] = tuple(raw["widths"])
        return cls(**raw)


def prepare_input(x: torch.Tensor) -> torch.Tensor:
    """Images (B, 1 or 3, H, W) in [-1, 1] -> (B, 1, 28, 28) gray, the judges' input format."""
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise InputError(f"judges take (B, 1 or 3, H, W) images, got shape {tuple(x.shape)}")
    x = x.float()
    if x.shape[1] == 3:
        luma = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        x = (x * luma).sum(dim=1, keepdim=True)  # (B, 1, H, W); weights sum to 1, range kept
    if x.shape[-2:] != (JUDGE_SIZE, JUDGE_SIZE):
        # antialias so that large translations are averaged down, not aliased
        x = F.interpolate(x, size=(JUDGE_SIZE, JUDGE_SIZE), mode="bilinear", align_corners=False, antialias=True)
    return x


def uint8_to_input(images: np.ndarray) -> torch.Tensor:
    """Shipped images uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [-1, 1]."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0)[:, None]


class Judge(nn.Module):
    """Three strided conv stages (28 -> 14 -> 7 -> 4), one hidden layer, a linear head.

    Strided convolutions rather than max-pooling keep a training step cheap on CPU, so every judge
    trains in minutes on 2 cores. ``features`` is the hidden layer (B, hidden) after ReLU;
    ``forward`` gives logits (B, classes).
    """

    def __init__(self, classes: Sequence[str], widths: tuple[int, int, int] = (32, 64, 64), hidden: int = 128):
        super().__init__()
        self.classes = tuple(classes)
        self.widths, self.hidden = widths, hidden
        w1, w2, w3 = widths
        self.body = nn.Sequential(
            nn.Conv2d(1, w1, 5, stride=2, padding=2), nn.ReLU(),  # (B, w1, 14, 14)
            nn.Conv2d(w1, w2, 3, stride=2, padding=1), nn.ReLU(),  # (B, w2, 7, 7)
            nn.Conv2d(w2, w3, 3, stride=2, padding=1), nn.ReLU(),  # (B, w3, 4, 4)
            nn.Flatten(),
            nn.Linear(w3 * 16, hidden), nn.ReLU(),  # (B, hidden)
        )
        self.head = nn.Linear(hidden, len(self.classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, hidden) of images (B, 1 or 3, H, W) in [-1, 1]."""
        return self.body(prepare_input(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (B, classes) of images (B, 1 or 3, H, W) in [-1, 1]."""
        return self.head(self.features(x))


@torch.no_grad()
def predict(judge: Judge, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted class indices (N,) for images (N, C, H, W) in [-1, 1]."""
    return torch.cat([judge(chunk).argmax(dim=1) for chunk in images.split(batch_size)])


@torch.no_grad()
def extract_features(judge: Judge, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Judge features (N, hidden) for images (N, C, H, W) in [-1, 1]."""
    return torch.cat([judge.features(chunk) for chunk in images.split(batch_size)])


def accuracy(judge: Judge, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images the judge labels correctly."""
    return float((predict(judge, images) == labels).double().mean())


def _judge_dir() -> Traversable:
    return resources.files("i2icli.eval") / "judges"


def list_judges() -> list[str]:
    """Names of the judges shipped in the package."""
    return sorted(p.name.removesuffix(".json") for p in _judge_dir().iterdir() if p.name.endswith(".json"))


def judge_card(name: str) -> JudgeCard:
    """The card of a shipped judge; unknown names raise ``UsageError`` listing the known ones."""
    names = list_judges()
    if name not in names:
        raise UsageError(f"unknown judge {name!r}; available: {', '.join(names) or 'none'}")
    return JudgeCard.from_json((_judge_dir() / f"{name}.json").read_text(encoding="utf-8"))


def load_judge(name: str) -> Judge:
    """A shipped judge in eval mode with gradients off, loaded strictly from package data."""
    card = judge_card(name)
    judge = Judge(card.classes, card.widths, card.hidden)
    weights = _judge_dir() / f"{name}.safetensors"
    try:
        state = load_safetensors_bytes(weights.read_bytes())
        judge.load_state_dict(state, strict=True)
    except (OSError, RuntimeError, SafetensorError) as err:
        raise CheckpointError(f"judge {name}: cannot load {name}.safetensors ({str(err).splitlines()[0]})") from err
    return judge.eval().requires_grad_(False)

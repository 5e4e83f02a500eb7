"""Exponential moving average (EMA) of the inference model's weights: a labelled training option,
not in any of the papers here.

GAN generators oscillate around a good solution; an average over the last few hundred steps is
often a better translator than the last iterate (the same trick the StyleGAN and imaginaire
trainers use). With decay d the average after update t is

    avg_t = d_t * avg_{t-1} + (1 - d_t) * w_t,   d_t = min(d, (1 + t) / (10 + t)),

the warm-up d_t keeping the first steps from being dominated by the random initial weights. Only
floating-point tensors of ``model.state_dict()`` are averaged (parameters and float buffers);
integer buffers such as BatchNorm's batch counter are copied. Training always continues from the
raw weights; the average is what validation, sample grids and the exported model use.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

WARMUP = 10  # d_t = min(decay, (1 + t) / (WARMUP + t))


def step_decay(decay: float, updates: int) -> float:
    """d_t for the ``updates``-th update (0-based)."""
    return min(decay, (1 + updates) / (WARMUP + updates))


class WeightAverage:
    """The running average of ``model``'s weights; ``update`` after every optimisation step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = step_decay(self.decay, self.updates)
        for k, v in model.state_dict().items():
            avg = self.shadow[k]
            if avg.is_floating_point():
                avg.lerp_(v.detach().to(avg.dtype), 1.0 - d)  # avg = d * avg + (1 - d) * v
            else:
                avg.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "updates": self.updates, "weights": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, object]) -> None:
        weights = state["weights"]
        assert isinstance(weights, dict)
        if weights.keys() != self.shadow.keys():
            raise KeyError("the averaged weights' keys differ from the model's")
        for k, v in weights.items():
            self.shadow[k].copy_(v)
        self.updates = int(state["updates"])  # type: ignore[call-overload]

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """``model`` holds the averaged weights inside the block, its own weights again after it."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield
        finally:
            model.load_state_dict(raw)

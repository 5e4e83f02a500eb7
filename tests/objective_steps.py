"""Run an objective's phases for a few steps without the training loop (method-level tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from i2icli.train.objective import Batch, Objective


def run_steps(objective: Objective, batch_fn: Callable[[int], Batch], steps: int) -> list[dict[str, float]]:
    """Each step runs every phase in order as the loop does (Adam per phase, only that phase's
    parameters trainable, carry passed on); returns each step's logged scalars."""
    phases = objective.phases()
    optims = [torch.optim.Adam(ph.parameters(), lr=ph.lr, betas=ph.betas, weight_decay=ph.weight_decay) for ph in phases]
    params = [p for m in objective.training_modules().values() for p in m.parameters()]
    history = []
    for step in range(steps):
        batch, carry, scalars = batch_fn(step), {}, {}
        for phase, optim in zip(phases, optims):
            for p in params:
                p.requires_grad_(False)
            for p in phase.parameters():
                p.requires_grad_(True)
            out = phase.loss_fn(batch, carry)
            carry |= out.carry
            optim.zero_grad()
            out.loss.backward()
            optim.step()
            scalars |= {k: float(v.detach()) for k, v in out.scalars.items()}
        history.append(scalars)
    return history


class TensorData:
    """A ``TrainingData`` over in-memory tensors a (N, C, H, W), b (M, C', H', W'): step s takes
    ``batch_size`` consecutive images of each (cycling); ``sample`` returns the first n and records n."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, batch_size: int) -> None:
        self.a, self.b, self.batch_size = a, b, batch_size
        self.files_a = [Path(f"a{i}.png") for i in range(len(a))]  # stand-ins: only counted
        self.files_b = [Path(f"b{i}.png") for i in range(len(b))]
        self.sampled: list[tuple[str, int]] = []

    def __getitem__(self, step: int) -> Batch:
        ia = (torch.arange(self.batch_size) + step * self.batch_size) % len(self.a)
        ib = (torch.arange(self.batch_size) + step * self.batch_size + 1) % len(self.b)
        return {"a": self.a[ia], "b": self.b[ib], "index_a": ia, "index_b": ib, "step": torch.tensor(step)}

    def sample(self, domain: str, n: int, seed: int) -> torch.Tensor:
        self.sampled.append((domain, n))
        return (self.a if domain == "a" else self.b)[:n]

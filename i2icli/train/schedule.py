"""Learning-rate factors as pure functions of the step (so resuming needs no scheduler state)."""

from __future__ import annotations


def linear_decay(step: int, max_steps: int) -> float:
    """CycleGAN's schedule in steps: constant for the first half, then linear decay.

    The official rule per 1-indexed epoch e of n + n_d is 1 - max(0, e - n) / (n_d + 1); here the
    0-indexed step s plays epoch e = s + 1, so the last step runs at lr0 / (n_d + 1).
    """
    n = max_steps // 2
    n_decay = max_steps - n
    return 1.0 - max(0, step + 1 - n) / (n_decay + 1)


def constant(step: int, max_steps: int) -> float:
    return 1.0


def step_decay(step: int, step_size: int, gamma: float = 0.5) -> float:
    """MUNIT/UNIT: lr0 * gamma ** floor(step / step_size)."""
    return gamma ** (step // step_size)

"""Learning-rate factors as pure functions of the step (so resuming needs no scheduler state)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence


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


@dataclass(frozen=True)
class Extension:
    """A change of a run's length made on resume: from step ``start`` on, the run has a new total.

    ``replan``: the method's schedule for the new total, scaled so that it goes on from the factor
    the run had reached (no jump back up). ``keep``: the previous plan, its last factor held past
    its end.
    """

    start: int  # the first step run under the new total
    previous_max_steps: int  # the total before this extension
    mode: Literal["replan", "keep"] = "replan"


def planned_factor(
    base: Callable[[int, int], float], step: int, max_steps: int, extensions: Sequence[Extension]
) -> float:
    """The lr factor at ``step`` of a run now ``max_steps`` long whose length changed at ``extensions``.

    ``base(step, max_steps)`` is the method's schedule; without extensions this is exactly it.
    A pure function of its arguments, so a resumed run needs no scheduler state.
    """
    if not extensions:
        return base(step, max_steps)
    *earlier, last = extensions
    previous = last.previous_max_steps
    if step < last.start:
        return planned_factor(base, step, previous, earlier)
    if last.mode == "keep":
        return planned_factor(base, min(step, previous - 1), previous, earlier)
    # The factor the run had reached (the previous plan at this step, or at its last step once past
    # it), carried on by the new plan's shape from the same step: a schedule that ignores the total
    # (MUNIT's step decay) is unchanged, and a decaying one never jumps back up.
    anchor = min(last.start, previous - 1)
    reached = planned_factor(base, anchor, previous, earlier)
    at_anchor = base(anchor, max_steps)
    if at_anchor <= 0:
        return reached
    return reached * base(step, max_steps) / at_anchor

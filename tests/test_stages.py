"""Loop stages: each stage's enter hook runs exactly once, before its first step, also across a
resume; a phase runs only in the stages it lists."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from i2icli.train.loop import LoopOptions, check_stages, train
from i2icli.train.objective import Phase, SingleStage, Stage, StepOutput


class Toy(SingleStage):
    """Two linear maps; stage "fit" trains ``first``, stage "tune" trains ``second``."""

    def __init__(self, entered: list[tuple[str, int]], switch: int) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(2, 2)
        self.second = nn.Linear(2, 2)
        self.entered = entered
        self.switch = switch
        self.steps_run = 0

    def _loss(self, net: nn.Module, name: str):  # type: ignore[no-untyped-def]
        def loss(batch: dict[str, Any], carry: dict[str, torch.Tensor]) -> StepOutput:
            self.steps_run = batch["step"] + 1  # hooks record how many steps had started before them
            value = net(batch["a"]).pow(2).mean()
            return StepOutput(value, {f"ran_{name}": torch.tensor(1.0)})

        return loss

    def phases(self) -> list[Phase]:
        return [
            Phase("first", (self.model,), self._loss(self.model, "first"), 0.1, (0.5, 0.999), stages=("fit",)),
            Phase("second", (self.second,), self._loss(self.second, "second"), 0.1, (0.5, 0.999), stages=("tune",)),
        ]

    def stages(self) -> list[Stage]:
        return [
            Stage("fit", 0, lambda data: self.entered.append(("fit", self.steps_run))),
            Stage("tune", self.switch, lambda data: self.entered.append(("tune", self.steps_run))),
        ]

    def lr_factor(self, step: int, max_steps: int) -> float:
        return 1.0

    def training_modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "second": self.second}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def samples(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        return []


class Data:
    """Batches of ones; remembers the last step asked for, so a hook can say when it ran."""

    step_seen = -1

    def __getitem__(self, step: int) -> dict[str, Any]:
        self.step_seen = step
        return {"a": torch.ones(2, 2), "step": step}

    def __len__(self) -> int:
        return 100


def _train(run_dir: Path, steps: int, entered: list, *, resume: bool = False, stop_at: int | None = None):  # type: ignore[no-untyped-def]
    def on_step(step: int, scalars: dict[str, float]) -> None:
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGTERM)

    run_dir.mkdir(parents=True, exist_ok=True)
    opts = LoopOptions(max_steps=steps, save_every=1, keep_last=0, sample_every=0, log_every=1)
    toy = Toy(entered, switch=3)
    return train(toy, Data(), opts, run_dir=run_dir, device=torch.device("cpu"), resume=resume, on_step=on_step), toy


def _ran(run_dir: Path) -> list[tuple[int, list[str]]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], sorted(k[4:] for k in r if k.startswith("ran_"))) for r in rows]


def test_hooks_fire_once_and_phases_follow_their_stage(tmp_path: Path) -> None:
    entered: list[tuple[str, int]] = []
    _train(tmp_path, 6, entered)
    # The hooks ran right before steps 0 and 3 (the batch of that step was already fetched).
    assert entered == [("fit", 0), ("tune", 3)]
    assert _ran(tmp_path) == [(1, ["first"]), (2, ["first"]), (3, ["first"]), (4, ["second"]), (5, ["second"]), (6, ["second"])]


@pytest.mark.parametrize(("stop_at", "after_resume"), [(2, [("tune", 3)]), (4, [])])
def test_resume_lands_in_the_right_stage_and_never_reruns_a_hook(
    tmp_path: Path, stop_at: int, after_resume: list[tuple[str, int]]
) -> None:
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    _, full = _train(full_dir, 6, [])
    first: list[tuple[str, int]] = []
    result, _ = _train(cut_dir, 6, first, stop_at=stop_at)
    assert result.interrupted and result.step == stop_at
    again: list[tuple[str, int]] = []
    result, resumed = _train(cut_dir, 6, again, resume=True)
    assert not result.interrupted and again == after_resume
    for name in ("model", "second"):
        for key, value in full.training_modules()[name].state_dict().items():
            assert torch.equal(value, resumed.training_modules()[name].state_dict()[key]), f"{name}.{key}"


def test_stages_must_start_at_zero_and_increase() -> None:
    check_stages([Stage("a", 0), Stage("b", 5)])
    for bad in ([Stage("a", 1)], [Stage("a", 0), Stage("b", 0)], [Stage("a", 0), Stage("a", 3)]):
        with pytest.raises(ValueError):
            check_stages(bad)

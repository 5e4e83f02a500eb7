"""``i2i train --resume``: extending a run, its lr schedule, and options that would change the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_train_args, write_domains, write_rgb
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.train.schedule import Extension, linear_decay, planned_factor

runner = CliRunner()


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domains(tmp_path_factory.mktemp("data"), 4, seed_b=50)


def _start(domains: Path, run_dir: Path, steps: int = 6) -> None:
    result = runner.invoke(app, tiny_train_args(domains, run_dir, steps, "--seed", "3", "--log-every", "1", "--quiet"))
    assert result.exit_code == 0, result.output


def _resume(run_dir: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["train", "--resume", str(run_dir), "--device", "cpu", "--quiet", *extra])


def _factors(run_dir: Path) -> dict[int, float]:
    """lr factor of each step (0-indexed) from metrics.jsonl (a record at ``step`` holds step - 1's factor)."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return {json.loads(line)["step"] - 1: json.loads(line)["lr_factor"] for line in lines}


def test_extension_is_recorded_so_a_plain_resume_continues(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    _start(domains, run_dir)
    extended = _resume(run_dir, "--max-steps", "10")
    assert extended.exit_code == 0, extended.output
    spec = json.loads((run_dir / "run.json").read_text())["spec"]
    assert spec["loop"]["max_steps"] == 10
    assert (run_dir / "checkpoints" / "step_00000010.pt").is_file()
    # Before: "start_step (10) must be between 0 and max_steps (6)".
    again = _resume(run_dir)
    assert again.exit_code == 0, again.output
    assert "already at step 10 of 10" in again.output


def test_extended_schedule_is_stated_and_never_jumps_back(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    _start(domains, run_dir)
    before = _factors(run_dir)
    result = _resume(run_dir, "--max-steps", "10")
    assert result.exit_code == 0, result.output
    assert "lr schedule re-planned over steps 6-10" in result.output and "--schedule keep" in result.output
    after = _factors(run_dir)
    # cpu-tiny CycleGAN decays linearly to 0.25 at step 5 of 6; planning 10 steps from the start
    # would restart at 0.67 (the jump); re-planned, the factor goes on down from 0.25.
    assert before[5] == pytest.approx(0.25)
    assert 0.15 < after[6] <= 0.25
    assert all(after[s + 1] <= after[s] for s in range(6, 9)) and 0 < after[9] < after[6]


def test_schedule_keep_holds_the_end_of_the_original_plan(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    _start(domains, run_dir)
    result = _resume(run_dir, "--max-steps", "9", "--schedule", "keep")
    assert result.exit_code == 0, result.output
    assert "lr schedule kept" in result.output
    after = _factors(run_dir)
    assert [after[s] for s in (6, 7, 8)] == [pytest.approx(0.25)] * 3


def test_planned_factor_is_a_pure_function_of_the_extensions() -> None:
    plain = [planned_factor(linear_decay, s, 10, ()) for s in range(10)]
    assert plain == [linear_decay(s, 10) for s in range(10)]
    # Extended while still in the first plan: re-planning from a factor of 1 is the new plan itself.
    early = (Extension(start=2, previous_max_steps=10, mode="replan"),)
    assert [planned_factor(linear_decay, s, 20, early) for s in range(2, 20)] == [linear_decay(s, 20) for s in range(2, 20)]
    kept = (Extension(start=10, previous_max_steps=10, mode="keep"),)
    assert planned_factor(linear_decay, 15, 20, kept) == linear_decay(9, 10)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--seed", "5"], "--seed 5: this run was started with 3"),
        (["--lr", "0.1"], "--lr 0.1: this run was started with 0.0002"),
        (["--set", "lambda_a=1"], "--set lambda_a=1: this run was started with lambda_a=10.0"),
        (["--batch-size", "4"], "--batch-size 4: this run was started with 2"),
        (["--preset", "cpu-small"], "--preset cpu-small: this run was started with cpu-tiny"),
        (["--method", "munit"], "--method munit: this run was started with cyclegan"),
        (["--max-steps", "3"], "--max-steps 3: the run is already at step 6"),
        (["--schedule", "keep"], "--schedule applies when --max-steps changes"),
    ],
)
def test_options_that_would_change_the_run_are_refused(
    domains: Path, tmp_path: Path, extra: list[str], fragment: str
) -> None:
    run_dir = tmp_path / "r"
    _start(domains, run_dir)
    before = (run_dir / "run.json").read_text()
    result = _resume(run_dir, *extra)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.output
    assert (run_dir / "run.json").read_text() == before


def test_other_data_folders_are_refused(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    _start(domains, run_dir)
    other = tmp_path / "other"
    for i in range(2):
        write_rgb(other / "trainA" / f"{i}.png", (20, 20), seed=i)
        write_rgb(other / "trainB" / f"{i}.png", (20, 20), seed=i)
    result = _resume(run_dir, "--dataroot", str(other))
    assert result.exit_code == 2 and "--dataroot" in result.output and "this run was started with" in result.output


def test_unchanged_values_pass_and_safe_options_are_applied_and_recorded(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    _start(domains, run_dir)
    result = _resume(run_dir, "--seed", "3", "--dataroot", str(domains), "--max-steps", "8", "--save-every", "1", "--keep-last", "5")
    assert result.exit_code == 0, result.output
    loop = json.loads((run_dir / "run.json").read_text())["spec"]["loop"]
    assert loop["save_every"] == 1 and loop["keep_last"] == 5
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir())[-2:] == ["step_00000007.pt", "step_00000008.pt"]


def test_resume_removes_temp_files_a_kill_left_in_every_folder_it_writes(domains: Path, tmp_path: Path) -> None:
    # kill -9 during an atomic write leaves its hidden temp file (found by the kill -9 soak in the
    # exported model folder); the resumed run, holding the run lock, removes them everywhere.
    run_dir = tmp_path / "r"
    _start(domains, run_dir, steps=2)
    stale = [
        run_dir / ".run.json.k3j2.tmp", run_dir / "checkpoints" / ".step_00000002.pt.a1b2.tmp",
        run_dir / "model" / ".model.safetensors.2fj0rge2.tmp",
    ]  # fmt: skip
    for path in stale:
        path.write_bytes(b"partial")
    resumed = _resume(run_dir, "--max-steps", "3")
    assert resumed.exit_code == 0, resumed.output
    assert [p for p in stale if p.exists()] == []
    assert (run_dir / "model" / "model.safetensors").is_file()

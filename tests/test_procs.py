"""``i2i train --procs N``: the command starts its own data-parallel CPU job (as torchrun would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import write_domains
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.runs.spec import cpu_preset_procs
from i2icli.train.launch import run_ranks

COMMON = ["--preset", "cpu-tiny", "--set", "lr_policy=constant", "--sample-every", "0", "--log-every", "1", "--quiet"]


def _i2i(*args: str, cwd: Path, launcher: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [*(launcher or [sys.executable]), "-m", "i2icli", "train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _weights(run: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(run / "checkpoints" / f"step_{step:08d}.pt", weights_only=True)["modules"]


def test_procs_trains_exactly_as_torchrun_with_the_batch_split(tmp_path: Path) -> None:
    """``--procs 2`` (global batch 2, the preset's) equals ``torchrun --nproc_per_node 2`` with one image
    per process, to the bit: the command's own launcher is torchrun's job, not an approximation."""
    root = write_domains(tmp_path / "data", 8, seed_b=100)
    steps = ["--max-steps", "3", "--save-every", "3"]
    ours = _i2i("--dataroot", str(root), "--run-dir", str(tmp_path / "ours"), "--procs", "2", *steps, *COMMON, cwd=tmp_path)
    assert ours.returncode == 0, ours.stderr[-3000:]
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2"]
    theirs = _i2i("--dataroot", str(root), "--run-dir", str(tmp_path / "theirs"), "--batch-size", "1", *steps, *COMMON,
                  cwd=tmp_path, launcher=torchrun)  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    record = json.loads((tmp_path / "ours" / "run.json").read_text())
    assert (record["world_size"], record["spec"]["batch_size"], record["threads"]["threads"]) == (2, 1, 1)
    assert record["threads"]["source"] == "--procs"
    a, b = _weights(tmp_path / "ours", 3), _weights(tmp_path / "theirs", 3)
    for name, state in a.items():
        assert all(torch.equal(t, b[name][k]) for k, t in state.items()), name
    assert (tmp_path / "ours" / "model" / "model.safetensors").is_file()


def test_procs_resumes_with_its_recorded_count(tmp_path: Path) -> None:
    """A run started in 2 processes resumes in 2 (without --procs) and continues exactly."""
    root, run = write_domains(tmp_path / "data", 8, seed_b=100), tmp_path / "run"
    first = _i2i("--dataroot", str(root), "--run-dir", str(run), "--procs", "2", "--max-steps", "4", "--save-every", "2",
                 *COMMON, cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    straight = _weights(run, 4)
    (run / "checkpoints" / "step_00000004.pt").rename(tmp_path / "straight.pt")
    again = _i2i("--resume", str(run), "--max-steps", "4", "--quiet", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = _weights(run, 4)
    for name, state in straight.items():
        assert all(torch.equal(t, resumed[name][k]) for k, t in state.items()), name
    refused = _i2i("--resume", str(run), "--max-steps", "6", "--procs", "1", "--quiet", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == ["error: --procs 1: the run used 2 processes; resume it with the same number"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--procs", "0"], "--procs 0: must be at least 1"),
        (["--procs", "3"], "--procs 3: the batch of 2 images does not split evenly over 3 processes"),
    ],
)
def test_bad_procs_is_one_line_before_anything_is_made(tmp_path: Path, extra: list[str], message: str) -> None:
    root, run = write_domains(tmp_path / "data", 8, seed_b=100), tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--dataroot", str(root), "--run-dir", str(run), *COMMON, *extra])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not run.exists()


def test_procs_under_torchrun_is_refused_before_anything_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, run = write_domains(tmp_path / "data", 8, seed_b=100), tmp_path / "run"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets: this process is already one rank of two
    result = CliRunner().invoke(app, ["train", "--dataroot", str(root), "--run-dir", str(run), *COMMON, "--procs", "2"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: --procs: torchrun started this process and chose the process count (--nproc_per_node)"
    ]
    assert not run.exists()


def test_cpu_presets_default_to_one_process_per_cpu_that_splits_the_batch() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert [cpu_preset_procs("cpu-small", cpu, 8, n) for n in (1, 2, 3, 16)] == [1, 2, 2, 8]
    assert cpu_preset_procs("cpu-fast", cpu, 6, 4) == 3
    assert cpu_preset_procs("cpu-tiny", cpu, 8, 2) == 1  # seconds-long runs: starting processes costs more
    assert cpu_preset_procs("paper", cpu, 8, 2) == 1
    assert cpu_preset_procs("cpu-small", gpu, 8, 2) == 1


def _rank_target(hold: float) -> None:
    """Rank 1 fails at once with exit code 3; rank 0 would run for ``hold`` seconds."""
    if os.environ["RANK"] == "1":
        sys.exit(3)
    time.sleep(hold)
    sys.exit(0)


def test_a_failing_rank_stops_the_others_and_gives_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import i2icli.train.launch as launch

    monkeypatch.setattr(launch, "GRACE_S", 1.0)
    start = time.monotonic()
    assert run_ranks(_rank_target, (60.0,), 2) == 3
    assert time.monotonic() - start < 30  # rank 0 was stopped, not waited for


def test_a_multi_process_run_on_gpus_resumes_through_torchrun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command spawns CPU ranks only: a recorded 2-process run on a GPU device is sent to torchrun."""
    import i2icli.device

    root, run = write_domains(tmp_path / "data", 8, seed_b=100), tmp_path / "run"
    assert CliRunner().invoke(app, ["train", "--dataroot", str(root), "--run-dir", str(run), *COMMON, "--max-steps", "1"]).exit_code == 0
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "world_size": 2}))
    monkeypatch.setattr(i2icli.device, "pick_device", lambda name: torch.device("cuda"))
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--max-steps", "2", "--quiet"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --resume {run}: the run used 2 processes; on GPUs resume it with torchrun --nproc_per_node 2"
    ]


def test_ranks_meet_before_leaving_the_group_only_after_a_clean_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """``joined``: a clean body ends with a barrier, then the group is left (rank 0 may still be
    writing the export when the others finish; leaving early aborted a rank in gloo). An error leaves
    without a barrier (a peer may never arrive) and is not swallowed."""
    from i2icli.train import distributed

    calls: list[str] = []
    monkeypatch.setattr(distributed, "init_from_env", lambda device: (distributed.Dist(1, 2), device))
    monkeypatch.setattr(distributed.dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: calls.append("destroy"))
    with distributed.joined(torch.device("cpu")) as (place, _):
        calls.append("work")
    assert (place.rank, place.world) == (1, 2) and calls == ["work", "barrier", "destroy"]
    calls.clear()
    with pytest.raises(RuntimeError, match="boom"), distributed.joined(torch.device("cpu")):
        calls.append("work")
        raise RuntimeError("boom")
    assert calls == ["work", "destroy"]
    calls.clear()
    monkeypatch.setattr(distributed, "init_from_env", lambda device: (distributed.Dist(), device))
    with distributed.joined(torch.device("cpu")):
        calls.append("work")
    assert calls == ["work"]  # one process: no group to meet in or leave

"""Data-parallel training: ``torchrun --nproc_per_node 2 -m i2icli train`` on CPU (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_domains

from i2icli.data.transforms import Preprocess
from i2icli.data.unpaired import UnpairedImages


def test_shards_partition_each_steps_batch(tmp_path: Path) -> None:
    """Each rank decodes its own slots of the step's batch; together they are the one-process batch."""
    root = write_domains(tmp_path, 8, seed_b=100)
    pre = Preprocess(mode="resize_and_crop", load_size=20, crop_size=16)
    whole = UnpairedImages(root / "trainA", root / "trainB", pre, 3, seed=5, batch_size=4)
    shards = [UnpairedImages(root / "trainA", root / "trainB", pre, 3, seed=5, batch_size=4, shard=(r, 2)) for r in range(2)]
    for step in (0, 1, 7):
        parts = [s[step] for s in shards]
        for key in ("a", "b", "index_a", "index_b"):
            assert parts[0][key].shape[0] == 2
            assert torch.equal(torch.cat([p[key] for p in parts]), whole[step][key])
    with pytest.raises(Exception, match="does not divide"):
        UnpairedImages(root / "trainA", root / "trainB", pre, 3, seed=5, batch_size=3, shard=(0, 2))


def _torchrun(*args: str, cwd: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    # PYTHONFAULTHANDLER: a rank that aborts (SIGABRT) prints where its Python threads were.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "i2icli", "train", *args, "--quiet"]
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_cpu_processes_keep_identical_weights_and_resume_exactly(tmp_path: Path) -> None:
    root = write_domains(tmp_path / "data", 8, seed_b=100)
    run = tmp_path / "run"
    common = ["--preset", "cpu-tiny", "--set", "lr_policy=constant", "--sample-every", "0", "--log-every", "1"]
    _torchrun("--dataroot", str(root), "--max-steps", "4", "--save-every", "2", "--run-dir", str(run), *common, cwd=tmp_path)

    assert json.loads((run / "run.json").read_text())["world_size"] == 2
    final = torch.load(run / "checkpoints" / "step_00000004.pt", weights_only=True)
    # Each rank hashed its own weights at the checkpoint: both equal.
    assert len(final["ranks"]) == 2 and final["ranks"][0]["weights_sha256"] == final["ranks"][1]["weights_sha256"]
    # Each rank kept its own image pools (its own fakes), so they differ: the state is really per rank.
    assert not torch.equal(final["ranks"][0]["extra"]["pool_b"]["images"], final["ranks"][1]["extra"]["pool_b"]["images"])
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]  # rank 0 alone wrote, once per step

    # Resume from step 2 (as if stopped there) and continue to step 4: the same weights and optimiser state.
    shutil.move(run / "checkpoints" / "step_00000004.pt", tmp_path / "straight.pt")
    shutil.rmtree(run / "model")
    _torchrun("--resume", str(run), "--max-steps", "4", cwd=tmp_path)
    resumed = torch.load(run / "checkpoints" / "step_00000004.pt", weights_only=True)
    for name, state in final["modules"].items():
        assert all(torch.equal(t, resumed["modules"][name][k]) for k, t in state.items()), name
    for name, opt in final["optimizers"].items():
        for i, moments in opt["state"].items():
            assert all(torch.equal(v, resumed["optimizers"][name]["state"][i][k]) for k, v in moments.items())
    assert [r["weights_sha256"] for r in resumed["ranks"]] == [r["weights_sha256"] for r in final["ranks"]]
    assert (run / "model" / "model.safetensors").is_file()


def test_resume_with_another_process_count_is_refused(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from i2icli.cli.app import app

    root, run = write_domains(tmp_path / "data", 8, seed_b=100), tmp_path / "run"
    args = ["train", "--dataroot", str(root), "--preset", "cpu-tiny", "--max-steps", "1", "--run-dir", str(run), "--quiet"]
    assert CliRunner().invoke(app, [*args, "--sample-every", "0"]).exit_code == 0
    record = json.loads((run / "run.json").read_text())
    assert record["world_size"] == 1
    (run / "run.json").write_text(json.dumps({**record, "world_size": 2}))
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--max-steps", "2", "--procs", "1", "--quiet"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: --procs 1: the run used 2 processes; resume it with the same number"]

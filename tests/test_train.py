"""Training: exact resume after a real SIGTERM, RNG negative control, run folder, CLI errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, tiny_train_args, write_domains, write_rgb
from typer.testing import CliRunner

from i2icli.checkpoint import read_config
from i2icli.cli.app import app
from i2icli.errors import UsageError
from i2icli.precision import cpu_features
from i2icli.runs.run import run
from i2icli.runs.spec import read_spec
from i2icli.train.state import load_training_state

runner = CliRunner()


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domains(tmp_path_factory.mktemp("data"), 6, seed_b=100, size_b=(24, 18), ext_b=".jpg")


def _train_cmd(domains: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "i2icli", *tiny_train_args(domains, run_dir, 40, "--seed", "3", "--log-every", "1", *extra)]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _state(path: Path) -> dict:
    return load_training_state(path, torch.device("cpu"))


def _assert_states_equal(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for name in a["modules"]:
        for k, v in a["modules"][name].items():
            assert torch.equal(v, b["modules"][name][k]), f"{name}.{k}"
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        assert sa.keys() == sb.keys()
        for idx in sa:
            for moment in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(sa[idx][moment], sb[idx][moment]), f"{name}[{idx}].{moment}"
    for pool in ("pool_a", "pool_b"):
        assert torch.equal(a["extra"][pool]["images"], b["extra"][pool]["images"]), pool


def _differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(v, b["modules"]["gen_ab"][k]) for k, v in a["modules"]["gen_ab"].items())


def test_sigterm_then_resume_equals_uninterrupted(domains: Path, tmp_path: Path) -> None:
    full = subprocess.run(_train_cmd(domains, tmp_path / "full", "--save-every", "20"), capture_output=True, text=True, env=_env(), cwd=REPO)
    assert full.returncode == 0, full.stderr

    run_dir = tmp_path / "cut"
    proc = subprocess.Popen(_train_cmd(domains, run_dir, "--save-every", "1000"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        if lines and json.loads(lines[-1])["step"] >= 20:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Resume with: i2i train --resume" in stderr
    saved = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    assert len(saved) == 1
    cut_step = _state(saved[0])["step"]
    assert 20 <= cut_step < 40, cut_step
    assert not (run_dir / "model").exists()  # no export for an interrupted run
    shutil.copytree(run_dir, tmp_path / "control")

    resumed = subprocess.run([sys.executable, "-m", "i2icli", "train", "--resume", str(run_dir), "--device", "cpu"], capture_output=True, text=True, env=_env(), cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr
    final_full = _state(tmp_path / "full" / "checkpoints" / "step_00000040.pt")
    final_cut = _state(run_dir / "checkpoints" / "step_00000040.pt")
    _assert_states_equal(final_full, final_cut)
    assert _differs(final_full, _state(tmp_path / "full" / "checkpoints" / "step_00000020.pt"))
    # The exported models hold the same tensors (header key order is not fixed by safetensors).
    from safetensors.torch import load_file

    exported_cut = load_file(str(run_dir / "model" / "model.safetensors"))
    exported_full = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    assert exported_cut.keys() == exported_full.keys()
    assert all(torch.equal(exported_cut[k], exported_full[k]) for k in exported_full)

    # Negative control: the same resume without the saved RNG state draws other pool choices.
    torch.manual_seed(12345)
    run(read_spec(tmp_path / "control"), tmp_path / "control", torch.device("cpu"), resume=True, restore_rng=False)
    control = _state(tmp_path / "control" / "checkpoints" / "step_00000040.pt")
    assert _differs(final_full, control)


def test_run_folder_contents_and_export(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    result = runner.invoke(app, [
        "train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(run_dir), "--max-steps", "4",
        "--sample-every", "2", "--save-every", "2", "--keep-last", "1", "--device", "cpu", "--domains", "cats", "dogs",
        "--set", "lambda_identity=0", "--quiet", "--log-every", "1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads((run_dir / "run.json").read_text())
    assert info["spec"]["config"]["lambda_identity"] == 0.0 and info["torch"] == torch.__version__
    assert info["spec"]["preset"] == "cpu-tiny" and info["device"] == "cpu"
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_00000004.pt"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_00000002.png", "step_00000004.png"]
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    config = read_config(run_dir / "model")
    assert config.domains == ("cats", "dogs") and config.training["steps"] == 4
    again = runner.invoke(app, ["train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(run_dir), "--device", "cpu"])
    assert again.exit_code == 2 and "already holds a run" in again.output


def test_init_from_a_model_fine_tunes(domains: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    ok = runner.invoke(app, ["train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(first), "--max-steps", "2", "--sample-every", "0", "--device", "cpu", "--quiet"])
    assert ok.exit_code == 0, ok.output
    tuned = runner.invoke(app, ["train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(tmp_path / "t"), "--max-steps", "2", "--sample-every", "0", "--device", "cpu", "--quiet", "--init-from", str(first / "model")])
    assert tuned.exit_code == 0, tuned.output
    mismatch = runner.invoke(app, ["train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(tmp_path / "m"), "--max-steps", "2", "--device", "cpu", "--quiet", "--set", "arch.ngf=8", "--init-from", str(first / "model")])
    assert mismatch.exit_code == 2 and "differs from this run's" in mismatch.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "lambda_cycle=3"], "unknown config key 'lambda_cycle'"),
        (["--set", "gan_mode=wgan"], "is not one of"),
        (["--preset", "huge"], "--preset 'huge'"),
        (["--method", "pix2pix"], "--method 'pix2pix'"),
        (["--max-steps", "0"], "--max-steps 0"),
        (["--set", "data.crop_size=8"], "too small for a PatchGAN"),
    ],
)
def test_train_usage_errors(domains: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(tmp_path / "r"), "--device", "cpu", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_missing_data_folder_is_named(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--dataroot", str(tmp_path / "nope"), "--device", "cpu"])
    assert result.exit_code == 2 and "nope" in result.output


def test_unreadable_training_files_are_named_and_counted(tmp_path: Path) -> None:
    for i in range(3):
        write_rgb(tmp_path / "A" / f"{i}.png", (20, 20), seed=i)
        write_rgb(tmp_path / "B" / f"{i}.png", (20, 20), seed=9 + i)
    (tmp_path / "A" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "B" / "notes.jpg").write_text("not an image")
    result = runner.invoke(app, [
        "train", "--preset", "cpu-tiny", "--domain-a", str(tmp_path / "A"), "--domain-b", str(tmp_path / "B"),
        "--run-dir", str(tmp_path / "r"), "--max-steps", "1", "--sample-every", "0", "--device", "cpu", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == 2 and any("broken.png" in w for w in warnings) and any("notes.jpg" in w for w in warnings)
    report = json.loads((tmp_path / "r" / "data.json").read_text())
    assert report["images_a"] == 3 and report["images_b"] == 3 and len(report["skipped"]) == 2


@pytest.mark.skipif(not cpu_features().native_bf16, reason="bf16 training is refused on a CPU without native bf16")
def test_bf16_on_cpu_trains_and_logs_finite_losses(domains: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, [
        "train", "--preset", "cpu-tiny", "--dataroot", str(domains), "--run-dir", str(tmp_path / "r"), "--max-steps", "2",
        "--sample-every", "0", "--device", "cpu", "--precision", "bf16", "--log-every", "1", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    # A resumed run keeps its precision: another one is refused in one line.
    again = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "--max-steps", "3", "--precision", "fp32"])
    assert again.exit_code == 2 and "--precision fp32: this run was started with bf16" in again.stderr
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]
    assert all(abs(v) < 1e6 for r in records for k, v in r.items() if k.startswith("loss_"))


def test_run_or_resume_trains_once_then_returns_the_model(domains: Path, tmp_path: Path) -> None:
    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    calls = []

    def new_spec():  # type: ignore[no-untyped-def]
        calls.append(1)
        return build_spec(
            method="cyclegan", preset="cpu-tiny", config_file=None, overrides=[],
            data=DataSpec(str(domains / "trainA"), str(domains / "trainB")), batch_size=None, lr=None, max_steps=2,
            loop_kwargs=dict(sample_every=0), init_from=None, steps_per_epoch=lambda bs: 1,
        )  # fmt: skip

    first = run_or_resume(tmp_path / "r", new_spec, torch.device("cpu"))
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    again = run_or_resume(tmp_path / "r", new_spec, torch.device("cpu"))
    assert again == first and len(calls) == 2  # the second call only compares the recipe
    assert (again / "model.safetensors").stat().st_mtime_ns == stamp


def test_run_or_resume_refuses_a_folder_that_holds_another_recipe(domains: Path, tmp_path: Path) -> None:
    """A finished run is not handed back for a changed recipe (a make script whose variant changed
    would otherwise export the old model under the new description)."""
    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    def spec(*overrides: str):  # type: ignore[no-untyped-def]
        return lambda: build_spec(
            method="cyclegan", preset="cpu-tiny", config_file=None, overrides=list(overrides),
            data=DataSpec(str(domains / "trainA"), str(domains / "trainB")), batch_size=None, lr=None, max_steps=2,
            loop_kwargs=dict(sample_every=0), init_from=None, steps_per_epoch=lambda bs: 1,
        )  # fmt: skip

    first = run_or_resume(tmp_path / "r", spec(), torch.device("cpu"))
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(UsageError, match=r"another recipe \(config\.lambda_identity differ\)"):
        run_or_resume(tmp_path / "r", spec("lambda_identity=0.1"), torch.device("cpu"))
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp

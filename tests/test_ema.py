"""``i2i train --ema``: the running average of the inference weights (a labelled option)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import tiny_train_args, write_domains
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2icli.checkpoint import safe_torch_load
from i2icli.cli.app import app
from i2icli.train.ema import WeightAverage, step_decay

runner = CliRunner()


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domains(tmp_path_factory.mktemp("data"), 4, seed_b=50)


def _ckpt(run_dir: Path, step: int) -> dict:
    return safe_torch_load(run_dir / "checkpoints" / f"step_{step:08d}.pt", map_location="cpu")


def test_the_average_is_its_formula_with_the_warmup() -> None:
    net = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in net.state_dict().items()}
    avg = WeightAverage(net, 0.9)
    expected = {k: v.clone() for k, v in start.items()}
    for t in range(5):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        avg.update(net)
        d = min(0.9, (1 + t) / (10 + t))
        expected = {k: d * expected[k] + (1 - d) * v for k, v in net.state_dict().items()}
    assert step_decay(0.9, 0) == pytest.approx(0.1) and step_decay(0.9, 1000) == 0.9
    for k in expected:
        torch.testing.assert_close(avg.shadow[k], expected[k], rtol=0, atol=1e-6)
    # Applied for a block only: the raw weights come back.
    raw = {k: v.clone() for k, v in net.state_dict().items()}
    with avg.applied(net):
        assert torch.equal(net.weight, avg.shadow["weight"])
    assert all(torch.equal(v, raw[k]) for k, v in net.state_dict().items())


def test_the_exported_model_is_the_average_and_a_resume_continues_it_exactly(domains: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    result = runner.invoke(app, tiny_train_args(domains, full, 6, "--ema", "0.5", "--save-every", "3", "--quiet"))
    assert result.exit_code == 0, result.output
    last = _ckpt(full, 6)
    assert last["ema"]["updates"] == 6 and last["ema"]["decay"] == 0.5
    exported = load_file(str(full / "model" / "model.safetensors"))
    average = last["ema"]["weights"]
    assert exported.keys() == average.keys()
    assert all(torch.equal(exported[k], average[k]) for k in exported)
    raw = {f"{m}.{k}": v for m in ("gen_ab", "gen_ba") for k, v in last["modules"][m].items()}
    assert any(not torch.equal(exported[k], raw[k]) for k in exported)  # the average, not the last iterate

    # A run killed after step 3 resumes its average from the checkpoint: same step-6 state.
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "checkpoints" / "step_00000006.pt").unlink()
    shutil.rmtree(cut / "model")
    resumed = runner.invoke(app, ["train", "--resume", str(cut), "--device", "cpu", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    again = _ckpt(cut, 6)
    assert again["ema"]["updates"] == 6
    assert all(torch.equal(again["ema"]["weights"][k], average[k]) for k in average)
    # `i2i export-checkpoint` of an earlier step exports that step's average.
    out = tmp_path / "step3"
    exported3 = runner.invoke(app, ["export-checkpoint", str(full), "--step", "3", "--output", str(out), "--device", "cpu"])
    assert exported3.exit_code == 0, exported3.output
    at3 = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(at3[k], _ckpt(full, 3)["ema"]["weights"][k]) for k in at3)


@pytest.mark.parametrize("value", ["1", "-0.1", "1.5"])
def test_a_decay_outside_0_1_is_one_usage_line_before_any_folder(domains: Path, tmp_path: Path, value: str) -> None:
    result = runner.invoke(app, tiny_train_args(domains, tmp_path / "r", 2, "--ema", value, "--quiet"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()] and "--ema" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


def test_a_resume_refuses_a_new_decay(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    assert runner.invoke(app, tiny_train_args(domains, run_dir, 2, "--quiet")).exit_code == 0
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--ema", "0.9", "--device", "cpu", "--quiet"])
    assert result.exit_code == 2 and "--ema" in result.output
    assert "ema" not in _ckpt(run_dir, 2)


def test_a_preset_brings_its_weight_average_and_the_command_line_overrides_it(domains: Path, tmp_path: Path) -> None:
    from i2icli.methods import load_method
    from i2icli.runs.spec import DataSpec, build_spec

    assert load_method("munit").presets["cpu-fast"].ema == 0.995  # the recipe chosen with it on

    def loop(**given: float):  # type: ignore[no-untyped-def]
        spec = build_spec(
            method="munit", preset="cpu-fast", config_file=None, overrides=[], batch_size=None, lr=None,
            data=DataSpec(str(domains / "trainA"), str(domains / "trainB")), max_steps=2, loop_kwargs=dict(given),
            init_from=None, steps_per_epoch=lambda bs: 1,
        )  # fmt: skip
        return spec.loop

    assert loop().ema == 0.995
    assert loop(ema=0.0).ema == 0.0
    # `i2i train` passes --ema only when typed: the preset's average is recorded in run.json.
    run_dir = tmp_path / "r"
    args = ["train", "--method", "munit", "--preset", "cpu-fast", "--dataroot", str(domains), "--run-dir", str(run_dir),
            "--max-steps", "1", "--device", "cpu", "--sample-every", "0", "--quiet", "--set", "data.crop_size=16",
            "--set", "data.load_size=16", "--set", "arch.dis.n_layer=2"]  # fmt: skip (16 px: a 2-layer D)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert _ckpt(run_dir, 1)["ema"]["decay"] == 0.995

"""``i2i train`` fits the data and the machine: channels from the data, the paper preset's CPU
estimate, the live progress line, labelled sample grids."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_args, write_domains
from PIL import Image
from typer.testing import CliRunner

from i2icli.checkpoint import read_config
from i2icli.cli.app import app
from i2icli.cli.train_cmd import TrainDisplay

runner = CliRunner()


def _write_gray(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 20), dtype=np.uint8), mode="L").save(path)


@pytest.fixture(scope="module")
def gray(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gray")
    for i in range(4):
        _write_gray(root / "trainA" / f"{i}.png", i)
        _write_gray(root / "trainB" / f"{i}.png", 40 + i)
    return root


@pytest.fixture(scope="module")
def rgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domains(tmp_path_factory.mktemp("rgb"), 4, seed_b=40)


def _train(data: Path, run_dir: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, tiny_train_args(data, run_dir, 2, *extra))


def test_gray_folders_train_a_one_channel_model_unless_set(gray: Path, tmp_path: Path) -> None:
    result = _train(gray, tmp_path / "auto")
    assert result.exit_code == 0, result.output
    arch = read_config(tmp_path / "auto" / "model").arch
    assert (arch["channels_a"], arch["channels_b"]) == (1, 1)
    assert "1-channel (gray images" in result.output
    forced = _train(gray, tmp_path / "forced", "--set", "arch.channels_a=3", "--set", "arch.channels_b=3", "--quiet")
    assert forced.exit_code == 0, forced.output
    arch = read_config(tmp_path / "forced" / "model").arch
    assert (arch["channels_a"], arch["channels_b"]) == (3, 3)


def test_colour_folders_keep_three_channels(rgb: Path, tmp_path: Path) -> None:
    result = _train(rgb, tmp_path / "r", "--quiet")
    assert result.exit_code == 0, result.output
    assert read_config(tmp_path / "r" / "model").arch["channels_a"] == 3


def test_paper_preset_on_a_cpu_states_the_time_and_the_cpu_presets(rgb: Path, tmp_path: Path) -> None:
    # The paper recipe shrunk so the test is fast; the line is about the preset's name and the step rate.
    small = ["--set", "data.load_size=20", "--set", "data.crop_size=16", "--set", "arch.ngf=4", "--set", "arch.n_blocks=1",
             "--set", "ndf=4", "--set", "n_layers_d=2"]  # fmt: skip
    result = runner.invoke(app, [
        "train", "--preset", "paper", "--dataroot", str(rgb), "--run-dir", str(tmp_path / "p"), "--max-steps", "4",
        "--device", "cpu", "--sample-every", "0", *small,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "paper preset on a CPU" in line]
    assert len(lines) == 1, result.output
    assert "s/step" in lines[0] and "4 steps would take" in lines[0] and "cpu-small" in lines[0] and "cpu-tiny" in lines[0]
    tiny = _train(rgb, tmp_path / "t")
    assert tiny.exit_code == 0 and "paper preset on a CPU" not in tiny.output


def test_progress_is_quiet_when_piped(rgb: Path, tmp_path: Path) -> None:
    result = _train(rgb, tmp_path / "r", "--log-every", "1")
    assert result.exit_code == 0, result.output
    # Before: one "step N/M loss_..." line per logged step on a pipe.
    assert not [line for line in result.output.splitlines() if line.startswith("step ")]
    assert result.output.splitlines()[-1].startswith("done: 2 steps")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_on_a_terminal_shows_step_rate_eta_and_losses() -> None:
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    stream = _Terminal()
    display = TrainDisplay(10, stream=stream, clock=lambda: next(clock))
    display.tick(1)
    display.losses(1, {"loss_gen": 1.5, "loss_dis": 0.25, "cyc_a": 3.0})
    display.tick(2)
    display.tick(3)
    text = stream.getvalue().split("\r")[-1]
    assert "step 3/10" in text and "1.00 steps/s" in text and "ETA 7 s" in text
    assert "gen 1.500" in text and "dis 0.250" in text and "cyc_a" not in text
    piped = io.StringIO()
    quiet = TrainDisplay(10, stream=piped, clock=lambda: 0.0)
    quiet.tick(1)
    assert piped.getvalue() == ""


def test_sample_grids_label_their_rows(rgb: Path, tmp_path: Path) -> None:
    result = _train(rgb, tmp_path / "r", "--sample-every", "2", "--quiet")
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(tmp_path / "r" / "samples" / "step_00000002.png").convert("L"))
    rows, cols = 6, 2  # CycleGAN: A, A->B, A->B->A, B, B->A, B->A->B; batch 2 of 16^2 crops
    assert grid.shape[0] == rows * 16
    margin = grid.shape[1] - cols * 16
    assert margin >= 16  # a label column left of the images (before: none)
    labels = grid[:, :margin].reshape(rows, 16, margin)
    assert all(row.max() > 128 for row in labels)  # every row has light label pixels
    assert len({row.tobytes() for row in labels}) == rows  # and each its own label

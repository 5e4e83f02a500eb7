"""Hints that lead somewhere: a run folder as --model, exporting a training checkpoint, convert on
files that are not official checkpoints, and an unreachable Hub that fails fast."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_train_args, write_domains, write_rgb
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hints")
    data = write_domains(root / "data", 3, seed_b=7)
    result = runner.invoke(app, tiny_train_args(data, root / "run", 4, "--save-every", "2", "--quiet"))
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_rgb(tmp_path / "in.png", (16, 16), seed=3)


def _translate(image: Path, model: Path | str, out: Path):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["translate", str(image), "-o", str(out), "--model", str(model), "--device", "cpu", "--quiet"])


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_a_run_folder_as_model_uses_its_exported_model(run_dir: Path, image: Path, tmp_path: Path) -> None:
    via_run = _translate(image, run_dir, tmp_path / "a.png")
    assert via_run.exit_code == 0, via_run.output  # before: "folder has no model.safetensors"
    assert _translate(image, run_dir / "model", tmp_path / "b.png").exit_code == 0
    assert np.array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "b.png"))


def test_a_run_without_its_model_names_the_export_command(run_dir: Path, image: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    shutil.rmtree(cut / "model")
    result = _translate(image, cut, tmp_path / "o.png")
    assert result.exit_code == 1  # it exists but holds no model yet
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"i2i export-checkpoint {cut}" in lines[0]


def test_a_training_checkpoint_names_the_export_command(run_dir: Path, image: Path, tmp_path: Path) -> None:
    result = _translate(image, run_dir / "checkpoints" / "step_00000002.pt", tmp_path / "o.png")
    assert result.exit_code == 1  # a file of the wrong kind, like any PyTorch pickle
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "training checkpoint" in lines[0]
    assert f"i2i export-checkpoint {run_dir} --step 2" in lines[0]


def test_export_checkpoint_writes_the_model_of_that_step(run_dir: Path, image: Path, tmp_path: Path) -> None:
    last = runner.invoke(app, ["export-checkpoint", str(run_dir), "--step", "4", "-o", str(tmp_path / "m4"), "--device", "cpu"])
    assert last.exit_code == 0, last.output
    assert _translate(image, tmp_path / "m4", tmp_path / "a.png").exit_code == 0
    assert _translate(image, run_dir / "model", tmp_path / "b.png").exit_code == 0
    assert np.array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "b.png"))  # step 4 is the run's end
    earlier = runner.invoke(app, ["export-checkpoint", str(run_dir), "--step", "2", "-o", str(tmp_path / "m2"), "--device", "cpu"])
    assert earlier.exit_code == 0, earlier.output
    assert _translate(image, tmp_path / "m2", tmp_path / "c.png").exit_code == 0
    assert not np.array_equal(_pixels(tmp_path / "a.png"), _pixels(tmp_path / "c.png"))  # another step, other weights
    missing = runner.invoke(app, ["export-checkpoint", str(run_dir), "--step", "3", "-o", str(tmp_path / "m3")])
    assert missing.exit_code == 2 and "steps 2, 4" in missing.output


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d, run: (d / "notes.txt", (d / "notes.txt").write_text("hello\n")), "not a PyTorch checkpoint (looks like text)"),
        (lambda d, run: (d / "pic.png", write_rgb(d / "pic.png", (4, 4))), "not a PyTorch checkpoint (an image)"),
        (lambda d, run: (run / "model" / "model.safetensors", None), "already an i2i checkpoint"),
        (lambda d, run: (run / "checkpoints" / "step_00000004.pt", None), "i2i export-checkpoint"),
    ],
)
def test_convert_says_what_a_file_is(run_dir: Path, tmp_path: Path, make, fragment: str) -> None:  # type: ignore[no-untyped-def]
    path, _ = make(tmp_path, run_dir)
    result = runner.invoke(app, ["convert", "--from", "cyclegan", str(path), "-o", str(tmp_path / "out.safetensors")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and path.name in lines[0]


@pytest.mark.parametrize("endpoint", ["http://i2i-test.invalid", "http://127.0.0.1:9"])
def test_an_unreachable_hub_fails_fast_with_one_line(
    image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, endpoint: str
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    import huggingface_hub

    download = huggingface_hub.hf_hub_download
    cache_only: list[bool] = []

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        cache_only.append(kwargs.get("local_files_only", False))
        return download(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", spy)
    result = _translate(image, "hf-hub:org/name", tmp_path / "o.png")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "not in the local cache" in lines[0]
    # The probe found the Hub unreachable, so only the cache was asked: no HTTP request and none of
    # huggingface_hub's ~25 s of retries.
    assert cache_only and all(cache_only), cache_only

"""Feedback on long work: progress on a terminal (sample, exemplar, interpolate, eval model) and
translate's one-line summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import write_rgb
from test_multimodal import make_tiny_munit
from typer.testing import CliRunner

from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli import common
from i2icli.cli.app import app
from i2icli.config import to_dict

runner = CliRunner()
BAR = "━"  # what a rich progress bar draws


@pytest.fixture(scope="module")
def munit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = make_tiny_munit()
    config = ModelConfig(method="munit", arch=to_dict(model.arch), domains=("day", "night"), image_size=32)
    return save_model(tmp_path_factory.mktemp("m") / "munit.safetensors", model, config)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(3):
        write_rgb(tmp_path / "in" / f"{i}.png", (16, 16), seed=i)
    return tmp_path / "in"


def test_translate_ends_with_a_summary_unless_quiet_or_json(tiny_model_file: Path, folder: Path, tmp_path: Path) -> None:
    (folder / "bad.png").write_text("not an image")
    base = ["translate", str(folder), "-o", str(tmp_path / "out"), "-m", str(tiny_model_file), "--device", "cpu"]
    result = runner.invoke(app, base)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"translate: 3 file\(s\) written, 1 of 4 inputs failed in \d+\.\d s(; .*)?", last), last
    quiet = runner.invoke(app, [*base, "--quiet", "--skip-existing"])
    assert "written" not in quiet.stderr and "error:" in quiet.stderr  # failures are still named
    as_json = runner.invoke(app, [*base, "--json"])
    assert "written" not in as_json.stderr


@pytest.mark.parametrize("command", ["sample", "exemplar", "interpolate", "eval"])
def test_long_commands_show_progress_on_a_terminal(
    munit: Path, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    img = str(folder / "0.png")
    out = str(tmp_path / "out")
    argv = {
        "sample": ["sample", str(folder), "-n", "2", "-o", out, "-m", str(munit)],
        "exemplar": ["exemplar", str(folder), "--style", img, "-o", out, "-m", str(munit)],
        "interpolate": ["interpolate", img, "--steps", "3", "-o", out, "-m", str(munit)],
        "eval": ["eval", "model", "--data", str(_dataset(tmp_path)), "-m", str(munit), "--styles", "2"],
    }[command]
    piped = runner.invoke(app, [*argv, "--device", "cpu"])
    assert piped.exit_code == 0, piped.output
    assert BAR not in piped.stderr  # no bar when stderr is not a terminal
    monkeypatch.setattr(common, "stderr_is_terminal", lambda: True)
    shown = runner.invoke(app, [*argv, "--device", "cpu"])
    assert shown.exit_code == 0, shown.output
    assert BAR in shown.stderr  # before: nothing until the end


def _dataset(root: Path) -> Path:
    """A tiny dataset layout with the shipped digit judges named in i2i-dataset.json."""
    import json

    data = root / "data"
    for folder in ("testA", "testB"):
        for i in range(3):
            write_rgb(data / folder / f"{i:05d}.png", (28, 28), seed=i + (9 if folder == "testB" else 0))
    info = {"format_version": 1, "recipe": "tiny", "domains": ["day", "night"], "class_judges": {"a": None, "b": None},
            "keeps_labels": False, "domain_judge": None, "paired": False}  # fmt: skip
    (data / "i2i-dataset.json").write_text(json.dumps(info))
    return data

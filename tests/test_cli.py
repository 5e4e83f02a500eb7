"""Small commands: help without torch, --version, models list/info, multimodal capability errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from conftest import REPO, write_rgb
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()


def test_help_does_not_import_torch() -> None:
    code = "import sys; from i2icli.cli.app import app; app(['--help'], standalone_mode=False); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False")
    for command in ("translate", "train", "sample-styles", "sample", "interpolate", "exemplar", "convert", "push", "models", "data", "eval"):
        assert command in out.stdout


def test_version_is_pasteable() -> None:
    import torch

    import i2icli

    # One version: the package's, as pyproject.toml (what pip installs) states it.
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"] == i2icli.__version__
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"i2i {i2icli.__version__} | python ") and f"torch {torch.__version__}" in result.stdout
    assert "device cpu" in result.stdout or "device cuda" in result.stdout


def test_models_list_and_info(tiny_model_file: Path) -> None:
    listed = runner.invoke(app, ["models", "list", "--json"])
    assert listed.exit_code == 0
    names = [m["name"] for m in json.loads(listed.stdout)]
    assert "cyclegan-digits" in names
    table = runner.invoke(app, ["models", "list"])
    assert table.exit_code == 0 and "cyclegan-digits" in table.stdout and "cyclegan" in table.stdout
    info = runner.invoke(app, ["models", "info", str(tiny_model_file), "--json"])
    assert info.exit_code == 0, info.output
    config = json.loads(info.stdout)["config"]
    assert config["method"] == "cyclegan" and config["domains"] == ["day", "night"]
    card = runner.invoke(app, ["models", "info", str(tiny_model_file)])
    assert card.exit_code == 0 and "`day` (a) and `night` (b)" in card.stdout and "## Use it with i2i" in card.stdout
    missing = runner.invoke(app, ["models", "info", "nope"])
    assert missing.exit_code == 2 and "unknown model 'nope'" in missing.output


@pytest.mark.parametrize(
    "args",
    [
        ["sample-styles", "IMG", "--n", "4"],
        ["sample", "IMG", "--n", "8"],
        ["exemplar", "IMG", "--style", "IMG"],
        ["interpolate", "IMG", "--from-seed", "1", "--to-seed", "2"],
    ],
)
def test_multimodal_commands_refuse_cyclegan(tiny_model_file: Path, tmp_path: Path, args: list[str]) -> None:
    img = str(write_rgb(tmp_path / "img.png", (8, 8)))
    argv = [img if a == "IMG" else a for a in args] + ["--model", str(tiny_model_file), "-o", str(tmp_path / "o")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "a cyclegan model cannot" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "IMG", "--n", "0"], "--n 0"),
        (["interpolate", "IMG", "--steps", "1"], "--steps 1"),
        (["interpolate", "IMG", "--mode", "cubic"], "--mode 'cubic'"),
        (["interpolate", "IMG", "IMG", "IMG"], "one input"),
        (["exemplar", "IMG"], "at least one --style"),
    ],
)
def test_multimodal_usage_errors(tiny_model_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    img = str(write_rgb(tmp_path / "img.png", (8, 8)))
    argv = [img if a == "IMG" else a for a in args] + ["--model", str(tiny_model_file)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2 and message in result.output

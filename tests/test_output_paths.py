"""``-o``: a file name with one input, a clear line for a file where a folder is needed, and no
binary on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, write_rgb
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    return [write_rgb(tmp_path / "in" / f"{i}.png", (12, 10), seed=i) for i in range(3)]


def _translate(model: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["translate", *args, "--model", str(model), "--device", "cpu"])


def test_one_input_to_a_file_name_writes_that_file(tiny_model_file: Path, inputs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "result.png"
    result = _translate(tiny_model_file, str(inputs[0]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file()  # before: a folder named result.png
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (12, 10)
    jpeg = tmp_path / "deep" / "result.jpg"
    assert _translate(tiny_model_file, str(inputs[0]), "-o", str(jpeg)).exit_code == 0
    with Image.open(jpeg) as img:
        assert img.format == "JPEG"
    clash = _translate(tiny_model_file, str(inputs[0]), "-o", str(tmp_path / "x.png"), "--format", "jpg")
    assert clash.exit_code == 2 and "--format jpg" in clash.output


def test_a_file_name_with_several_inputs_is_one_line(tiny_model_file: Path, inputs: list[Path], tmp_path: Path) -> None:
    result = _translate(tiny_model_file, str(tmp_path / "in"), "-o", str(tmp_path / "result.png"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "3 inputs" in lines[0] and "folder" in lines[0]
    assert not (tmp_path / "result.png").exists()


def test_an_existing_file_as_output_folder_is_one_line(tiny_model_file: Path, inputs: list[Path], tmp_path: Path) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = _translate(tiny_model_file, str(tmp_path / "in"), "-o", str(existing))
    assert result.exit_code == 2, result.output  # before: a NotADirectoryError traceback
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "notes.txt" in lines[0] and "existing file" in lines[0]
    assert "Traceback" not in result.output and existing.read_text() == "keep me"


@pytest.mark.parametrize("command", [["sample", "-n", "2"], ["interpolate", "--steps", "2"]])
def test_multimodal_commands_refuse_a_file_as_output_folder(tmp_path: Path, inputs: list[Path], command: list[str]) -> None:
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = runner.invoke(app, [command[0], str(inputs[0]), *command[1:], "-o", str(existing), "--device", "cpu"])
    assert result.exit_code == 2 and "existing file" in result.output and "Traceback" not in result.output


def test_png_to_a_terminal_is_refused(tiny_model_file: Path, inputs: list[Path]) -> None:
    primary, replica = pty.openpty()
    try:
        out = subprocess.run(
            [sys.executable, "-m", "i2icli", "translate", str(inputs[0]), "-o", "-", "--model", str(tiny_model_file),
             "--device", "cpu"],
            stdout=replica, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    finally:
        os.close(replica)
        os.close(primary)
    assert out.returncode == 2
    assert "terminal" in out.stderr and len(out.stderr.strip().splitlines()) == 1

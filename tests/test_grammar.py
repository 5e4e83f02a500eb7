"""One grammar across commands: stdin, --size/--json/--quiet/--batch-size on the multimodal
commands, failures in --json, flags without <bool>, --to and direction spellings, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_tiny_cyclegan, save_tiny, write_rgb
from PIL import Image
from test_multimodal import make_tiny_munit
from typer.testing import CliRunner

from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli.app import app
from i2icli.config import to_dict

runner = CliRunner()
MULTIMODAL = {
    "sample": ["sample", "-n", "2"],
    "exemplar": ["exemplar", "--style", "STYLE"],
    "interpolate": ["interpolate", "--steps", "2"],
}


@pytest.fixture(scope="module")
def munit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = make_tiny_munit()
    config = ModelConfig(method="munit", arch=to_dict(model.arch), domains=("day", "night"), image_size=32)
    return save_model(tmp_path_factory.mktemp("m") / "munit.safetensors", model, config)


def _args(command: str, style: Path) -> list[str]:
    return [str(style) if a == "STYLE" else a for a in MULTIMODAL[command]]


@pytest.mark.parametrize("command", list(MULTIMODAL))
def test_multimodal_commands_read_stdin(munit: Path, tmp_path: Path, command: str) -> None:
    src = write_rgb(tmp_path / "in.png", (20, 16))
    out = tmp_path / "out"
    result = runner.invoke(
        app, [*_args(command, src), "-", "-o", str(out), "--model", str(munit), "--device", "cpu"], input=src.read_bytes()
    )
    assert result.exit_code == 0, result.output  # before: "- (stdin) is not supported here"
    written = sorted(p.name for p in out.iterdir())
    assert written and all(name.startswith(("stdin", "grid")) for name in written)


@pytest.mark.parametrize("command", list(MULTIMODAL))
def test_multimodal_json_size_quiet_batch_size(munit: Path, tmp_path: Path, command: str) -> None:
    src = write_rgb(tmp_path / "in.png", (40, 32))
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    inputs = [str(src)] if command == "interpolate" else [str(src), str(bad)]
    result = runner.invoke(app, [
        *_args(command, src), *inputs, "-o", str(tmp_path / "out"), "--model", str(munit), "--device", "cpu",
        "--size", "16", "--json", "--quiet", "--batch-size", "1",
    ])  # fmt: skip
    assert result.exit_code == (0 if command == "interpolate" else 1), result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    written = [r for r in records if "output" in r]
    assert written and all(r["input"] == str(src) and Path(r["output"]).is_file() for r in written)
    assert all(r["size"] == [20, 16] for r in written)  # short side 32 -> 16
    with Image.open(written[0]["output"]) as img:
        assert img.size == (20, 16)
    failed = [r for r in records if "error" in r]
    if command != "interpolate":
        assert failed == [{"input": str(bad), "status": "failed", "error": failed[0]["error"]}] and "bad.png" in failed[0]["error"]


def test_translate_json_lists_failures(tiny_model_file: Path, tmp_path: Path) -> None:
    write_rgb(tmp_path / "in" / "good.png", (8, 8))
    (tmp_path / "in" / "bad.png").write_text("nope")
    result = runner.invoke(app, ["translate", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-m", str(tiny_model_file), "--json"])
    assert result.exit_code == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["input"] for r in records} == {str(tmp_path / "in" / "good.png"), str(tmp_path / "in" / "bad.png")}
    bad = next(r for r in records if r["input"].endswith("bad.png"))
    assert set(bad) == {"input", "status", "error"} and "not an image" in bad["error"]


def test_flags_show_no_bool_metavar() -> None:
    for command in (["translate"], ["train"], ["interpolate"], ["eval", "model"], ["data", "prepare"], []):
        out = runner.invoke(app, [*command, "--help"], terminal_width=200)
        assert out.exit_code == 0
        assert "<bool>" not in out.output, command
        assert "--help" in out.output


@pytest.mark.parametrize("spelling", ["AtoB", "atob", "A2B", "a2b"])
def test_direction_spellings(tiny_model_file: Path, tmp_path: Path, spelling: str) -> None:
    src = write_rgb(tmp_path / "in.png", (8, 8))
    result = runner.invoke(app, ["translate", str(src), "-o", str(tmp_path / "o"), "-m", str(tiny_model_file), "-d", spelling])
    assert result.exit_code == 0, result.output


def test_domain_names_are_case_insensitive_and_to_errors_name_to(tmp_path: Path) -> None:
    ckpt = save_tiny(tmp_path / "one.safetensors", make_tiny_cyclegan(directions=("a2b",)))  # day -> night only
    src = write_rgb(tmp_path / "in.png", (8, 8))
    ok = runner.invoke(app, ["translate", str(src), "-o", str(tmp_path / "o"), "-m", str(ckpt), "--to", "NIGHT"])
    assert ok.exit_code == 0, ok.output
    wrong = runner.invoke(app, ["translate", str(src), "-o", str(tmp_path / "o"), "-m", str(ckpt), "--to", "Day"])
    assert wrong.exit_code == 2 and "--to Day" in wrong.output and "--direction" not in wrong.output


@pytest.mark.parametrize(
    "argv",
    [
        ["translate", "IMG", "-m", "no-such-model"],
        ["translate", "IMG", "-m", "nowhere/model.safetensors"],
        ["sample", "IMG", "-m", "no-such-model"],
        ["exemplar", "IMG", "--style", "IMG", "-m", "cyclegan-digit"],
        ["eval", "model", "--data", "DATA", "-m", "no-such-model"],
        ["models", "info", "no-such-model"],
    ],
)
def test_unknown_models_exit_2(tmp_path: Path, argv: list[str]) -> None:
    src = write_rgb(tmp_path / "in.png", (8, 8))
    data = tmp_path / "data"
    for folder in ("testA", "testB"):
        write_rgb(data / folder / "0.png", (8, 8))
    args = [str(src) if a == "IMG" else str(data) if a == "DATA" else a for a in argv]
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "o")] if argv[0] not in ("eval", "models") else args)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["translate", "IMG", "--style", "missing.png"],
        ["exemplar", "IMG", "--style", "missing.png"],
        ["interpolate", "IMG", "--style-a", "missing.png"],
    ],
)
def test_missing_style_file_exits_2_before_work(munit: Path, tmp_path: Path, argv: list[str]) -> None:
    src = write_rgb(tmp_path / "in.png", (8, 8))
    args = [str(src) if a == "IMG" else str(tmp_path / a) if a.endswith(".png") else a for a in argv]
    result = runner.invoke(app, [*args, "-m", str(munit), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "missing.png" in result.output and "--style" in result.output
    assert not (tmp_path / "o").exists()


def test_missing_optional_package_exits_2(tmp_path: Path) -> None:
    for i in range(2):
        write_rgb(tmp_path / "trainA" / f"{i}.png", (20, 20), seed=i)
        write_rgb(tmp_path / "trainB" / f"{i}.png", (20, 20), seed=5 + i)
    code = (
        "import sys; sys.modules['torch.utils.tensorboard'] = None; sys.modules['tensorboard'] = None\n"
        "from i2icli.cli.app import main; sys.argv = ['i2i', 'train', '--preset', 'cpu-tiny', '--dataroot', sys.argv[1],"
        " '--run-dir', sys.argv[2], '--max-steps', '1', '--device', 'cpu', '--tensorboard', '--quiet']; main()"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "r")], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2, out.stderr
    assert "i2icli[tb]" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()

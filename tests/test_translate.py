"""``i2i translate`` and the inference library: native sizes, odd inputs, bad inputs, pipelines."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, make_tiny_cyclegan, save_tiny, write_rgb
from PIL import Image
from typer.testing import CliRunner

from i2icli.api import load_model
from i2icli.cli.app import app
from i2icli.inference import translate_tensors

runner = CliRunner()


def _reference_pad(x: np.ndarray, multiple: int, min_size: int) -> np.ndarray:
    """Independent padding as documented: edge-replicate up to min_size, then mirror to the multiple,
    all at the bottom/right (numpy, not the library's code)."""
    h, w = x.shape[-2:]
    x = np.pad(x, ((0, 0), (0, 0), (0, max(min_size - h, 0)), (0, max(min_size - w, 0))), mode="edge")
    h, w = x.shape[-2:]
    th, tw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    mode_h = "edge" if h == 1 else "reflect"
    x = np.pad(x, ((0, 0), (0, 0), (0, th - h), (0, 0)), mode=mode_h)
    mode_w = "edge" if w == 1 else "reflect"
    return np.pad(x, ((0, 0), (0, 0), (0, 0), (0, tw - w)), mode=mode_w)


@pytest.mark.parametrize("hw", [(37, 53), (1, 1), (3, 700), (16, 16)])
def test_native_size_equals_crop_of_net_of_pad(tiny_model_file: Path, hw: tuple[int, int]) -> None:
    model = load_model(str(tiny_model_file), device="cpu")
    torch.manual_seed(0)
    x = torch.rand(3, *hw) * 2 - 1
    (y,) = translate_tensors(model, [x], "a2b")
    assert y.shape == x.shape
    padded = torch.from_numpy(_reference_pad(x[None].numpy(), model.net.stride, model.net.min_size))
    assert padded.shape[-1] % 4 == 0 and padded.shape[-2] % 4 == 0 and min(padded.shape[-2:]) >= model.net.min_size
    with torch.no_grad():
        expected = model.net.translate(padded, "a2b")[0, :, : hw[0], : hw[1]]
    assert torch.equal(y, expected)


def test_batch_size_does_not_change_results(tiny_model_file: Path) -> None:
    model = load_model(str(tiny_model_file), device="cpu")
    torch.manual_seed(1)
    xs = [torch.rand(3, 20, 24) * 2 - 1 for _ in range(3)] + [torch.rand(3, 9, 13) * 2 - 1]
    one = translate_tensors(model, xs, "b2a", batch_size=1)
    four = translate_tensors(model, xs, "b2a", batch_size=4)
    # Convolution kernels sum in a different order per batch size: equal up to float32 noise.
    assert all(torch.allclose(a, b, atol=1e-5, rtol=0) for a, b in zip(one, four))


def _make_inputs(folder: Path) -> dict[str, Path]:
    """The inputs the spine issue says must translate."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    out = {}
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray((rng.integers(0, 65536, (21, 17))).astype(np.uint16)).save(folder / "deep16.png")
    pal = Image.fromarray(rgb).quantize(16)
    pal.info["transparency"] = 0
    pal.save(folder / "palette.png", transparency=0)
    rgba = np.dstack([rgb, np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif)
    Image.fromarray(rgb[:1, :1]).save(folder / "one.png")
    Image.fromarray(rng.integers(0, 256, (3, 700, 3), dtype=np.uint8)).save(folder / "thin.png")
    for p in folder.iterdir():
        out[p.stem] = p
    return out


def _make_bad(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    good = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(good, format="PNG")
    (folder / "truncated.png").write_bytes(good.getvalue()[:60])
    (folder / "notes.jpg").write_text("this is not a picture\n")
    (folder / "page.png").write_text("<!DOCTYPE html><html><body>404</body></html>")
    return [folder / n for n in ("empty.png", "truncated.png", "notes.jpg", "page.png")]


def test_odd_inputs_translate(tiny_model_file: Path, tmp_path: Path) -> None:
    inputs = _make_inputs(tmp_path / "in")
    result = runner.invoke(app, ["translate", str(tmp_path / "in"), "-m", str(tiny_model_file), "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(inputs)
    sizes = {Path(r["input"]).stem: tuple(r["size"]) for r in records}
    assert sizes["rotated"] == (30, 40)  # upright: the EXIF rotation swapped width and height
    assert sizes["one"] == (1, 1) and sizes["thin"] == (700, 3) and sizes["deep16"] == (17, 21)
    rgba_in = Image.open(inputs["rgba"])
    rgba_out = Image.open(tmp_path / "out" / "rgba.png")
    assert rgba_out.mode == "RGBA"
    assert np.array_equal(np.asarray(rgba_out)[..., 3], np.asarray(rgba_in)[..., 3])  # alpha carried unchanged
    assert Image.open(tmp_path / "out" / "palette.png").mode == "RGBA"
    assert Image.open(tmp_path / "out" / "cmyk.png").mode == "RGB"


def test_mixed_folder_writes_valid_ones_and_names_failures(tiny_model_file: Path, tmp_path: Path) -> None:
    _make_inputs(tmp_path / "in")
    bad = _make_bad(tmp_path / "in")
    result = runner.invoke(app, ["translate", str(tmp_path / "in"), "-m", str(tiny_model_file), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == len(bad)
    for path in bad:
        assert sum(path.name in line for line in error_lines) == 1
    written = sorted(p.stem for p in (tmp_path / "out").iterdir())
    assert written == ["cmyk", "deep16", "one", "palette", "rgba", "rotated", "thin"]


def test_stdin_to_stdout_matches_file_output(tiny_model_file: Path, tmp_path: Path) -> None:
    src = write_rgb(tmp_path / "img.png", (23, 17))
    to_file = runner.invoke(app, ["translate", str(src), "-m", str(tiny_model_file), "-o", str(tmp_path / "out")])
    assert to_file.exit_code == 0, to_file.output
    cmd = [sys.executable, "-m", "i2icli", "translate", "-", "-m", str(tiny_model_file), "-o", "-", "--device", "cpu"]
    piped = subprocess.run(cmd, input=src.read_bytes(), capture_output=True, cwd=REPO)
    assert piped.returncode == 0, piped.stderr
    from_pipe = np.asarray(Image.open(io.BytesIO(piped.stdout)))
    from_file = np.asarray(Image.open(tmp_path / "out" / "img.png"))
    assert np.array_equal(from_pipe, from_file)


def test_layout_suffix_format_and_skip_existing(tiny_model_file: Path, tmp_path: Path) -> None:
    write_rgb(tmp_path / "in" / "x" / "deep.png", (16, 16))
    write_rgb(tmp_path / "in" / "top.jpg", (16, 12))
    args = ["translate", str(tmp_path / "in"), "-r", "-m", str(tiny_model_file), "-o", str(tmp_path / "out"), "--suffix", "_b", "--format", "webp"]
    first = runner.invoke(app, args + ["--json"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "out" / "x" / "deep_b.webp").is_file() and (tmp_path / "out" / "top_b.webp").is_file()
    assert len(first.stdout.splitlines()) == 2
    again = runner.invoke(app, args + ["--json", "--skip-existing"])
    assert again.exit_code == 0
    assert sorted(json.loads(line)["status"] for line in again.stdout.splitlines()) == ["kept", "kept"]


def test_direction_by_domain_name_and_size(tiny_model_file: Path, tmp_path: Path) -> None:
    src = write_rgb(tmp_path / "img.png", (40, 20))
    by_name = runner.invoke(app, ["translate", str(src), "-m", str(tiny_model_file), "--to", "day", "-o", str(tmp_path / "a"), "--size", "10"])
    by_dir = runner.invoke(app, ["translate", str(src), "-m", str(tiny_model_file), "-d", "b2a", "-o", str(tmp_path / "b"), "--size", "10"])
    assert by_name.exit_code == 0 and by_dir.exit_code == 0, by_name.output + by_dir.output
    a, b = Image.open(tmp_path / "a" / "img.png"), Image.open(tmp_path / "b" / "img.png")
    assert a.size == (20, 10)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    bad = runner.invoke(app, ["translate", str(src), "-m", str(tiny_model_file), "--to", "dusk", "-o", str(tmp_path / "c")])
    assert bad.exit_code == 2 and "'day' and 'night'" in bad.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "-o", "-"], "--json cannot be combined with -o -"),
        (["--format", "gif"], "--format 'gif'"),
        (["--batch-size", "0"], "--batch-size 0"),
        (["-d", "sideways"], "--direction 'sideways'"),
    ],
)
def test_usage_errors_exit_2_before_work(tiny_model_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    src = write_rgb(tmp_path / "img.png", (8, 8))
    out = tmp_path / "never"
    result = runner.invoke(app, ["translate", str(src), "-m", str(tiny_model_file), "-o", str(out), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() or args[-1] == "-"


def test_one_direction_model_refuses_the_other(tmp_path: Path) -> None:
    ckpt = save_tiny(tmp_path / "one.safetensors", make_tiny_cyclegan(directions=("a2b",)))
    src = write_rgb(tmp_path / "img.png", (8, 8))
    result = runner.invoke(app, ["translate", str(src), "-m", str(ckpt), "-d", "b2a", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "only has a2b" in result.output


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no-such-model", "unknown model 'no-such-model'"),
        ("cyclegan-digit", "did you mean cyclegan-digits"),
        ("nowhere/model.safetensors", "no such file or folder"),
    ],
)
def test_bad_model_references_give_one_line(tmp_path: Path, model: str, message: str) -> None:
    src = write_rgb(tmp_path / "img.png", (8, 8))
    result = runner.invoke(app, ["translate", str(src), "-m", model, "-o", str(tmp_path / "o")])
    assert result.exit_code == 2  # a usage error, like every reference that names nothing
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_checkpoint_of_unavailable_method_gives_one_line(tmp_path: Path) -> None:
    from i2icli.checkpoint import ModelConfig, save_model

    ckpt = save_model(tmp_path / "other.safetensors", make_tiny_cyclegan(), ModelConfig(method="pix2pixhd", arch={}))
    src = write_rgb(tmp_path / "img.png", (8, 8))
    result = runner.invoke(app, ["translate", str(src), "-m", str(ckpt), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "method 'pix2pixhd' is not available" in result.output


def test_grayscale_model_converts_inputs_and_writes_gray(tmp_path: Path) -> None:
    ckpt = save_tiny(tmp_path / "gray.safetensors", make_tiny_cyclegan(channels=1))
    src = write_rgb(tmp_path / "img.png", (12, 12))
    result = runner.invoke(app, ["translate", str(src), "-m", str(ckpt), "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "o" / "img.png").mode == "L"


def test_two_inputs_with_one_output_name_are_refused(tiny_model_file: Path, tmp_path: Path) -> None:
    a = write_rgb(tmp_path / "a" / "x.png", (8, 8))
    b = write_rgb(tmp_path / "b" / "x.jpg", (8, 8))
    result = runner.invoke(app, ["translate", str(a), str(b), "-m", str(tiny_model_file), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "would both be written to" in result.output
    assert not (tmp_path / "o").exists()

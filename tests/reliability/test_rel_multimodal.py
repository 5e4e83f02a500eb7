"""Reliability of ``i2i sample`` / ``exemplar`` / ``interpolate``: the inputs that must work, the
ones that must fail (one line each, the rest written, exit 1), existing outputs, bombs and a full
disk, on a tiny randomly initialised MUNIT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from faults import (
    assert_clean_failure,
    assert_complete_images,
    error_lines,
    i2i,
    leftovers,
    make_bad_inputs,
    make_good_inputs,
    rgb_array,
    run,
)  # fmt: skip
from PIL import Image
from typer.testing import CliRunner

from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli.app import app
from i2icli.config import to_dict
from i2icli.methods.munit import MunitArch, MunitModel
from i2icli.nn.adain import init_weights

runner = CliRunner()


@pytest.fixture(scope="module")
def munit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = MunitModel(MunitArch(dim=4, n_res=1, mlp_dim=16))
    init_weights(model, "kaiming")
    config = ModelConfig(method="munit", arch=to_dict(model.arch), domains=("day", "night"), image_size=32)
    return save_model(tmp_path_factory.mktemp("m") / "munit.safetensors", model.eval(), config)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[int, int]], dict[str, str]]:
    folder = tmp_path_factory.mktemp("in")
    good = make_good_inputs(folder)
    os.remove(folder / "thin.png")  # 3x5000 is exercised alone below: as a grid cell it is slow
    del good["thin.png"]
    return folder, good, make_bad_inputs(folder)


def _names(folder: Path) -> set[str]:
    return {os.fsdecode(n) for n in os.listdir(os.fsencode(folder))}


def test_sample_writes_every_good_input_and_names_every_bad_one(munit: Path, inputs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, good, bad = inputs
    out = tmp_path / "out"
    result = run(i2i("sample", folder, "-m", munit, "-n", "2", "-o", out, "--device", "cpu"))
    assert_clean_failure(result, 1)
    lines = error_lines(result.stderr)
    assert len(lines) == len(bad), result.stderr
    for name, words in bad.items():
        assert sum(f"/{name}:" in line and words in line for line in lines) == 1, (name, lines)
    expected = {f"{Path(n).stem}_s{k}.png" for n in good for k in range(2)} | {"grid.png"}
    assert _names(out) == expected
    for name in good:
        with Image.open(os.path.join(out, f"{Path(name).stem}_s0.png")) as img:
            assert img.size == good[name], name
    assert_complete_images(out)
    assert not leftovers(out)


def test_exemplar_with_bad_references_and_inputs(munit: Path, inputs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder, good, bad = inputs
    refs = [folder / "cmyk.jpg", folder / "zero.png", folder / "loop.png", folder / "anim.gif"]
    args = ["exemplar", str(folder / "rgba.png"), str(folder / "page.png"), "-m", str(munit), "-o", str(tmp_path / "o")]
    for r in refs:
        args += ["--style", str(r)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 3, result.stderr
    assert any("zero.png" in line for line in lines) and any("loop.png: symbolic link loop" in line for line in lines)
    assert any("page.png" in line and "HTML" in line for line in lines)
    assert _names(tmp_path / "o") == {"rgba_cmyk.png", "rgba_anim.png", "grid.png"}


@pytest.mark.parametrize("name", ["cmyk.jpg", "deep16.png", "palette.png", "gray_alpha.png", "rotated.jpg", "anim.gif", "anim_webp.webp", "one.png", "zèbre_🦓.png"])
def test_interpolate_accepts_each_odd_input(munit: Path, inputs, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    folder, good, _ = inputs
    result = runner.invoke(app, ["interpolate", str(folder / name), "-m", str(munit), "--steps", "2", "-o", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    stem = Path(name).stem
    assert _names(tmp_path / "o") == {f"{stem}_f0.png", f"{stem}_f1.png", f"{stem}_strip.png"}
    assert Image.open(tmp_path / "o" / f"{stem}_f0.png").size == good[name]


def test_thin_image_works_in_every_multimodal_command(munit: Path, tmp_path: Path) -> None:
    thin = tmp_path / "thin.png"
    Image.fromarray(rgb_array(5000, 3)).save(thin)
    for args in (["sample", "-n", "1"], ["exemplar", "--style", str(thin)], ["interpolate", "--steps", "2"]):
        result = runner.invoke(app, [args[0], str(thin), "-m", str(munit), "-o", str(tmp_path / args[0]), *args[1:]])
        assert result.exit_code == 0, (args, result.output)
        assert all(Image.open(p).size[1] >= 5000 for p in (tmp_path / args[0]).iterdir())


@pytest.mark.parametrize("name", ["zero.png", "cut.png", "notes.jpg", "bomb.png", "loop.png", "fifo.png"])
def test_interpolate_refuses_each_bad_input_with_one_line(munit: Path, inputs, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    folder, _, bad = inputs
    result = runner.invoke(app, ["interpolate", str(folder / name), "-m", str(munit), "--steps", "2", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = error_lines(result.stderr)
    assert name in line and bad[name] in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["sample", "exemplar", "interpolate"])
def test_max_pixels_is_an_option_of_every_multimodal_command(munit: Path, tmp_path: Path, command: str) -> None:
    src = tmp_path / "x.png"
    Image.fromarray(rgb_array(30, 30)).save(src)
    extra = ["--style", str(src)] if command == "exemplar" else []
    refused = runner.invoke(app, [command, str(src), "-m", str(munit), "-o", str(tmp_path / "o"), "--max-pixels", "899", *extra])
    assert refused.exit_code == 1
    assert all("over 899 pixels: 30x30 = 900" in line for line in error_lines(refused.stderr))
    bad = runner.invoke(app, [command, str(src), "-m", str(munit), "-o", str(tmp_path / "o"), "--max-pixels", "-1", *extra])
    assert bad.exit_code == 2 and "--max-pixels -1" in bad.output


@pytest.mark.parametrize("command", ["sample", "exemplar", "interpolate"])
def test_existing_outputs_kept_and_stated_unless_overwrite(munit: Path, tmp_path: Path, command: str) -> None:
    src = tmp_path / "x.png"
    Image.fromarray(rgb_array(16, 16)).save(src)
    extra = {"sample": ["-n", "1"], "exemplar": ["--style", str(src)], "interpolate": ["--steps", "2"]}[command]
    args = [command, str(src), "-m", str(munit), "-o", str(tmp_path / "o"), *extra]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    written = sorted((tmp_path / "o").iterdir())
    for p in written:
        p.write_bytes(b"keep")
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert f"kept {len(written)} existing outputs" in again.stderr and "--overwrite" in again.stderr
    assert all(p.read_bytes() == b"keep" for p in written)
    forced = runner.invoke(app, [*args, "--overwrite"])
    assert forced.exit_code == 0 and "kept" not in forced.stderr
    assert_complete_images(tmp_path / "o")


def test_full_disk_during_sample_costs_only_what_does_not_fit(munit: Path, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for k in range(2):
        Image.fromarray(rgb_array(40, 40, k)).save(tmp_path / "in" / f"{k}.png")
    out = tmp_path / "out"
    # Each 40x40 output is ~5 KB; the grid (2 rows x 4 cells) is ~30 KB and does not fit in 12 KiB.
    result = run(i2i("sample", tmp_path / "in", "-m", munit, "-n", "3", "-o", out, "--device", "cpu"), fsize=12 * 1024)
    assert_clean_failure(result, 1)
    (line,) = error_lines(result.stderr)
    assert "grid.png: cannot write (File too large)" in line
    assert _names(out) == {f"{k}_s{s}.png" for k in range(2) for s in range(3)}
    assert_complete_images(out)
    assert not leftovers(out)

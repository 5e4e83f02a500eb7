"""Inference checkpoints: truncated or bit-flipped files, another method's config, shape
mismatches, format versions from the future or the past, pinned sha256 mismatches and atomic
writes. Every failure is one ``error:`` line, exit 1, and nothing is ever unpickled."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
import torch
from conftest import REPO, make_tiny_cyclegan, save_tiny
from faults import rgb_array
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

import i2icli.checkpoint as checkpoint
from i2icli.checkpoint import FORMAT_VERSION, ModelConfig, read_config, save_model
from i2icli.cli.app import app
from i2icli.config import to_dict
from i2icli.errors import CheckpointError
from i2icli.methods.load import load_checkpoint
from i2icli.registry import PRETRAINED

runner = CliRunner()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "x.png"
    Image.fromarray(rgb_array(12, 12)).save(path)
    return path


def _translate(model: Path, image: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["translate", str(image), "-m", str(model), "-o", str(tmp_path / "out")])
    assert "Traceback" not in result.output
    return result


def _one_line(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _rewrite(path: Path, *, config: dict | None = None, meta: dict | None = None, tensors: dict | None = None) -> None:
    """Write ``path`` again with a changed config / metadata / tensors (sha256 recomputed)."""
    from i2icli.checkpoint import read_tensors, tensor_digest

    old, old_meta = read_tensors(path)
    tensors = old if tensors is None else tensors
    new_meta = dict(old_meta, i2i_sha256=tensor_digest(tensors))
    if config is not None:
        new_meta["i2i_config"] = json.dumps(config)
    new_meta |= meta or {}
    save_file(tensors, str(path), metadata=new_meta)


def _header_end(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


@pytest.mark.parametrize("damage", ["truncated", "bit-flip-data", "bit-flip-header", "zero-byte", "html"])
def test_damaged_safetensors_is_one_line(tmp_path: Path, image: Path, damage: str) -> None:
    model = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    data = bytearray(model.read_bytes())
    if damage == "truncated":
        model.write_bytes(bytes(data[: len(data) * 2 // 3]))
        words = "not a readable safetensors file"
    elif damage == "bit-flip-data":
        data[_header_end(data) + 100] ^= 0x10
        model.write_bytes(bytes(data))
        words = "does not match its recorded sha256 (file corrupted)"
    elif damage == "bit-flip-header":
        data[20] ^= 0x01
        model.write_bytes(bytes(data))
        words = "m.safetensors"
    elif damage == "zero-byte":
        model.write_bytes(b"")
        words = "not a readable safetensors file"
    else:
        model.write_text("<!DOCTYPE html><html>rate limited</html>")
        words = "not a readable safetensors file"
    line = _one_line(_translate(model, image, tmp_path))
    assert str(model) in line and words in line, line
    assert not (tmp_path / "out").exists()


def test_config_of_another_method_is_one_line(tmp_path: Path, image: Path) -> None:
    model = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    config = to_dict(read_config(model))
    config["method"] = "munit"  # CycleGAN arch fields and tensors, labelled MUNIT
    _rewrite(model, config=config)
    line = _one_line(_translate(model, image, tmp_path))
    assert "m.safetensors: arch: unknown config key" in line and "MunitArch" in line


def test_tensors_of_another_method_are_one_line(tmp_path: Path, image: Path) -> None:
    model = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    _rewrite(model, tensors={"gen_a.enc_style.model.0.conv.weight": torch.zeros(4, 3, 7, 7)})
    line = _one_line(_translate(model, image, tmp_path))
    assert "m.safetensors: missing key" in line


def test_shape_mismatch_names_key_and_shapes(tmp_path: Path, image: Path) -> None:
    model = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    config = to_dict(read_config(model))
    config["arch"]["ngf"] = 8  # the tensors were made for ngf 4
    _rewrite(model, config=config)
    line = _one_line(_translate(model, image, tmp_path))
    assert "has shape" in line and "the config expects" in line


@pytest.mark.parametrize("where", ["config", "metadata"])
def test_a_format_from_the_future_is_refused(tmp_path: Path, image: Path, where: str) -> None:
    model = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    config = to_dict(read_config(model))
    if where == "config":
        config["format_version"] = FORMAT_VERSION + 1
        _rewrite(model, config=config)
    else:
        _rewrite(model, meta={"format_version": str(FORMAT_VERSION + 1)})
    line = _one_line(_translate(model, image, tmp_path))
    assert f"format_version {FORMAT_VERSION + 1} is newer than this i2i reads ({FORMAT_VERSION}); upgrade" in line


def test_an_older_format_is_refused_with_its_version_named_or_migrated(
    tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    config = to_dict(read_config(model))
    config["format_version"] = 0
    config["domain_names"] = config.pop("domains")  # how a hypothetical version 0 spelled it
    _rewrite(model, config=config)
    line = _one_line(_translate(model, image, tmp_path))
    assert "format_version 0 is older than this i2i reads (1) and has no migration" in line

    def v0_to_v1(data: dict) -> dict:
        data["domains"] = data.pop("domain_names")
        return data | {"format_version": 1}

    monkeypatch.setitem(checkpoint._MIGRATIONS, 0, v0_to_v1)
    net, migrated = load_checkpoint(model)
    assert migrated.format_version == 1 and migrated.domains == ("day", "night")
    assert _translate(model, image, tmp_path).exit_code == 0


def test_a_pinned_sha256_mismatch_refuses_to_load(tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "weights"
    shutil.copytree(REPO / "weights" / "cyclegan-digits", weights / "cyclegan-digits")
    target = weights / "cyclegan-digits" / "model.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01  # one bit of the last weight: still a valid file, not the pinned one
    target.write_bytes(bytes(data))
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(weights))
    line = _one_line(runner.invoke(app, ["translate", str(image), "-m", "cyclegan-digits", "-o", str(tmp_path / "o")]))
    pinned = PRETRAINED["cyclegan-digits"].sha256
    assert pinned is not None and f"sha256 mismatch (expected {pinned[:12]}" in line
    assert not (tmp_path / "o").exists()


def test_save_is_atomic_and_a_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.safetensors"
    save_tiny(path, make_tiny_cyclegan(seed=0))
    before = path.read_bytes()
    real_replace = os.replace

    def crash(src, dst):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # Ctrl-C between writing the temp file and renaming it

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_tiny(path, make_tiny_cyclegan(seed=1))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.safetensors"]

    def full(src, dst):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.os, "replace", full)
    with pytest.raises(CheckpointError, match=r"m\.safetensors: cannot write \(No space left on device\)"):
        save_tiny(path, make_tiny_cyclegan(seed=1))
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.safetensors"]
    load_checkpoint(path)


def test_folder_checkpoint_config_json_is_not_trusted_over_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    model = make_tiny_cyclegan()
    save_model(folder, model, ModelConfig(method="cyclegan", arch=to_dict(model.arch)))
    (folder / "config.json").write_text('{"method": "evil", "format_version": 99}')  # only a copy for humans
    _, config = load_checkpoint(folder)
    assert config.method == "cyclegan"

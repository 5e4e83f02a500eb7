"""Checkpoint format v1: round trips, integrity, strict loading, config handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, make_tiny_cyclegan, save_tiny
from safetensors import safe_open

from i2icli.checkpoint import ModelConfig, read_config, save_model
from i2icli.config import ConfigError, apply_overrides, from_dict, to_dict
from i2icli.errors import CheckpointError
from i2icli.methods.cyclegan import CycleGANConfig
from i2icli.methods.load import load_checkpoint

_RUN = """
import sys, torch
from i2icli.methods.load import load_checkpoint
torch.manual_seed(5)
x = torch.rand(2, 3, 20, 24) * 2 - 1
model, _ = load_checkpoint(sys.argv[1])
with torch.no_grad():
    y = model.translate(x, "a2b")
torch.save(y, sys.argv[2])
"""


def _outputs_in_fresh_process(ckpt: Path, out: Path) -> torch.Tensor:
    proc = subprocess.run([sys.executable, "-c", _RUN, str(ckpt), str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return torch.load(out, weights_only=True)


def test_save_load_fresh_process_bit_identical(tmp_path: Path) -> None:
    model = make_tiny_cyclegan()
    ckpt = save_tiny(tmp_path / "m.safetensors", model)
    torch.manual_seed(5)
    x = torch.rand(2, 3, 20, 24) * 2 - 1
    with torch.no_grad():
        expected = model.translate(x, "a2b")
    got = _outputs_in_fresh_process(ckpt, tmp_path / "y.pt")
    assert torch.equal(got, expected)


def test_flipped_byte_fails_the_load(tmp_path: Path) -> None:
    ckpt = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    data = bytearray(ckpt.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    data[8 + header_len + 100] ^= 0x01  # a byte inside the tensor data
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(ckpt)


def test_flipped_header_byte_fails_the_load(tmp_path: Path) -> None:
    ckpt = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    data = bytearray(ckpt.read_bytes())
    data[9] ^= 0xFF  # inside the JSON header
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt)


def test_folder_layout_has_config_json(tmp_path: Path) -> None:
    model = make_tiny_cyclegan()
    written = save_tiny(tmp_path / "folder", model)
    assert written == tmp_path / "folder" / "model.safetensors"
    on_disk = json.loads((tmp_path / "folder" / "config.json").read_text())
    assert on_disk == to_dict(read_config(written))
    assert on_disk["format_version"] == 1 and on_disk["method"] == "cyclegan"
    assert on_disk["domains"] == ["day", "night"]


def _resave_without(src: Path, dst: Path, drop: str) -> None:
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if k != drop}
    meta.pop("i2i_sha256")
    save_file(tensors, str(dst), metadata=meta)


def test_strict_loading_rejects_a_missing_key(tmp_path: Path) -> None:
    ckpt = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    _resave_without(ckpt, tmp_path / "missing.safetensors", "gen_ba.model.1.bias")
    with pytest.raises(CheckpointError, match=r"missing key 'gen_ba\.model\.1\.bias'.*|.*missing.safetensors.*") as e:
        load_checkpoint(tmp_path / "missing.safetensors")
    assert "missing.safetensors" in str(e.value) and "gen_ba.model.1.bias" in str(e.value)


def test_shape_mismatch_names_key_and_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    ckpt = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.pop("i2i_sha256")
    tensors["gen_ab.model.1.bias"] = torch.zeros(7)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: key 'gen_ab\.model\.1\.bias' has shape \(7,\)"):
        load_checkpoint(tmp_path / "bad.safetensors")


def test_fp16_storage_halves_size_and_loads_close(tmp_path: Path) -> None:
    model = make_tiny_cyclegan()
    config = ModelConfig(method="cyclegan", arch=to_dict(model.arch))
    full = save_model(tmp_path / "f32.safetensors", model, config)
    half = save_model(tmp_path / "f16.safetensors", model, config, fp16=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_checkpoint(half)
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.translate(x, "a2b"), model.translate(x, "a2b"), atol=2e-2)


def test_the_same_model_exports_to_the_same_bytes(tmp_path: Path) -> None:
    # safetensors writes its metadata from a hash map, in an order that changes between calls;
    # save_model sorts the header, so an embedded model's sha256 pin survives a re-export.
    model = make_tiny_cyclegan()
    config = ModelConfig(method="cyclegan", arch=to_dict(model.arch))
    files = [save_model(tmp_path / f"m{i}.safetensors", model, config, fp16=True).read_bytes() for i in range(6)]
    assert len(set(files)) == 1
    header = files[0][8 : 8 + int.from_bytes(files[0][:8], "little")]
    assert len(header) % 8 == 0 and list(json.loads(header)) == sorted(json.loads(header))
    loaded, _ = load_checkpoint(tmp_path / "m0.safetensors")  # still a valid, strictly loadable file
    assert loaded.state_dict().keys() == model.state_dict().keys()


def test_unknown_config_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'lambda_cycle'"):
        apply_overrides(CycleGANConfig(), ["lambda_cycle=3"])
    with pytest.raises(ConfigError, match="expected a number"):
        apply_overrides(CycleGANConfig(), ["optim.lr=fast"])
    cfg = apply_overrides(CycleGANConfig(), ["arch.n_blocks=6", "gan_mode=hinge"])
    assert cfg.arch.n_blocks == 6 and cfg.gan_mode == "hinge"
    with pytest.raises(ConfigError, match="is not one of"):
        apply_overrides(CycleGANConfig(), ["gan_mode=wgan"])
    assert from_dict(CycleGANConfig, to_dict(cfg)) == cfg


def test_checkpoint_with_unknown_config_field_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    ckpt = save_tiny(tmp_path / "m.safetensors", make_tiny_cyclegan())
    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["i2i_config"])
    cfg["arch"]["wings"] = 2
    meta["i2i_config"] = json.dumps(cfg)
    save_file(tensors, str(tmp_path / "odd.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="odd.safetensors: arch: unknown config key 'wings'"):
        load_checkpoint(tmp_path / "odd.safetensors")


def test_not_a_checkpoint(tmp_path: Path) -> None:
    bad = tmp_path / "junk.safetensors"
    bad.write_bytes(b"hello world, not safetensors")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        read_config(bad)

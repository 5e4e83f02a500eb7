"""``i2i convert --from cyclegan``: official-output parity and key-manifest conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2icli.checkpoint import read_config
from i2icli.cli.app import app
from i2icli.convert.cyclegan import convert_cyclegan
from i2icli.errors import CheckpointError
from i2icli.methods.load import load_checkpoint

CG = FIXTURES / "cyclegan"
runner = CliRunner()


def test_official_outputs_reproduced_within_1e5(tmp_path: Path) -> None:
    out = tmp_path / "small.safetensors"
    result = runner.invoke(app, ["convert", "--from", "cyclegan", str(CG / "cyclegan_G_small.pth"), "-o", str(out), "--domains", "horse", "zebra"])
    assert result.exit_code == 0, result.output
    model, config = load_checkpoint(out)
    assert config.domains == ("horse", "zebra")
    assert config.arch["ngf"] == 8 and config.arch["n_blocks"] == 3 and config.arch["directions"] == ["a2b"]
    io = load_file(str(CG / "cyclegan_small_io.safetensors"))
    with torch.no_grad():
        fake = model.translate(io["x"], "a2b")
    assert fake.shape == io["fake"].shape == (2, 3, 36, 44)
    torch.testing.assert_close(fake, io["fake"], atol=1e-5, rtol=1e-5)


def _synthetic(manifest: str, path: Path, *, prefix: str = "") -> Path:
    keys = json.loads((CG / manifest).read_text())["keys"]
    gen = torch.Generator().manual_seed(0)
    state = {}
    for entry in keys:
        dtype = getattr(torch, entry["dtype"])
        shape = entry["shape"]
        state[prefix + entry["key"]] = (
            torch.randn(shape, generator=gen).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
        )
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("manifest", "n_blocks", "dropout"),
    [
        ("cyclegan_keys_full.json", 9, False),
        ("cyclegan_keys_full_6blocks.json", 6, False),
        ("cyclegan_keys_full_dropout.json", 9, True),
        ("cyclegan_keys_full_legacy_trs.json", 9, False),
        ("cyclegan_keys_small.json", 3, False),
    ],
)
def test_manifests_convert_with_inferred_config(tmp_path: Path, manifest: str, n_blocks: int, dropout: bool) -> None:
    src = _synthetic(manifest, tmp_path / "g.pth")
    model = convert_cyclegan(src)
    assert model.arch.n_blocks == n_blocks and model.arch.dropout is dropout
    assert model.arch.ngf == (8 if "small" in manifest else 64)
    # Loaded strictly; every stored parameter came from the file (running stats dropped, nothing else).
    params = {k.removeprefix("gen_ab."): v for k, v in model.state_dict().items()}
    original = torch.load(src, weights_only=True)
    kept = {k: v for k, v in original.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert params.keys() == kept.keys()
    assert all(torch.equal(params[k], kept[k]) for k in kept)


def test_two_files_give_a_bidirectional_model(tmp_path: Path) -> None:
    out = tmp_path / "both"
    g = str(CG / "cyclegan_G_small.pth")
    result = runner.invoke(app, ["convert", "--from", "cyclegan", g, "--gen-ba", g, "-o", str(out)])
    assert result.exit_code == 0, result.output
    config = read_config(out)
    assert config.arch["directions"] == ["a2b", "b2a"]
    assert (out / "config.json").is_file()


def test_dataparallel_prefix_is_stripped(tmp_path: Path) -> None:
    src = _synthetic("cyclegan_keys_small.json", tmp_path / "g.pth", prefix="module.")
    assert convert_cyclegan(src).arch.n_blocks == 3


def test_unmapped_key_is_named(tmp_path: Path) -> None:
    state = torch.load(CG / "cyclegan_G_small.pth", weights_only=True)
    state["model.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match=r"unmapped key 'model\.99\.weight'"):
        convert_cyclegan(tmp_path / "g.pth")
    result = runner.invoke(app, ["convert", "--from", "cyclegan", str(tmp_path / "g.pth"), "-o", str(tmp_path / "o.safetensors")])
    assert result.exit_code == 1
    assert "unmapped key 'model.99.weight'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.safetensors").exists()


def test_pickled_object_is_refused_without_unpickling(tmp_path: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"model.1.weight": Evil()}))
    with pytest.raises(CheckpointError, match="evil.pth: not a loadable tensor-only PyTorch file"):
        convert_cyclegan(tmp_path / "evil.pth")


def test_unknown_source_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", "--from", "pix2pixhd", str(CG / "cyclegan_G_small.pth"), "-o", str(tmp_path / "o.safetensors")])
    assert result.exit_code == 2
    assert "supported sources" in result.output

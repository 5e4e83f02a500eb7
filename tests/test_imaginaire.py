"""The improved MUNIT/UNIT generators of NVlabs/imaginaire: parity with imaginaire's own outputs,
conversion of its trainer's checkpoint layout, and the released configs' full-size layouts.

Fixtures (tests/fixtures/imaginaire/README.md) were written by imaginaire's code itself."""

from __future__ import annotations

import json
from pathlib import Path

import hd  # benchmarks/hd.py (on the path through conftest): the released layouts with random values
import pytest
import torch
from conftest import FIXTURES, write_rgb
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.convert import load_converter
from i2icli.convert.imaginaire import convert_imaginaire, fold_spectral_norm
from i2icli.errors import CheckpointError
from i2icli.methods import load_method

F = FIXTURES / "imaginaire"
# imaginaire's outputs reach magnitude 9: on the CPU that wrote the fixtures they match within 1e-5;
# on one with another instruction set (AVX2 vs AVX-512) convolutions sum in another order and
# they differ by up to 5e-5. A wrong layer or weight moves them by 0.1 or more.
ATOL = 1e-4
runner = CliRunner()
TINY = [("munit_d2", "munit"), ("munit_d3", "munit"), ("unit_d2", "unit")]


def _outputs(model: torch.nn.Module, ref: dict[str, torch.Tensor], method: str) -> dict[str, torch.Tensor]:
    x_a, x_b = ref["x_a"], ref["x_b"]
    with torch.no_grad():
        if method == "munit":
            c_a, s_a = model.encode(x_a, "a")
            c_b, s_b = model.encode(x_b, "b")
            return {
                "content_a": c_a, "style_a": s_a, "content_b": c_b, "style_b": s_b,
                "recon_a": model.decode(c_a, s_a, "a"), "recon_b": model.decode(c_b, s_b, "b"),
                # a style batch of 1 is applied to each image, as imaginaire's expanded fixed style
                "ab": model.translate(x_a, "a2b", ref["style_fixed_b"]),
                "ba": model.translate(x_b, "b2a", ref["style_fixed_a"]),
            }  # fmt: skip
        c_a, c_b = model.encode_latent(x_a, "a"), model.encode_latent(x_b, "b")
        return {
            "content_a": c_a, "content_b": c_b, "recon_a": model.decode_latent(c_a, "a"),
            "recon_b": model.decode_latent(c_b, "b"), "ab": model.translate(x_a, "a2b"), "ba": model.translate(x_b, "b2a"),
        }  # fmt: skip


def _check(path: Path, name: str, method: str, copy: str) -> str:
    converted = load_converter(method)([path])
    model = load_method(method).build_model(converted.arch)
    model.load_state_dict(converted.state, strict=True)
    ref = load_file(F / f"{name}_ref.safetensors")
    for key, value in _outputs(model.eval(), ref, method).items():
        expected = ref[f"{copy}.{key}"]
        assert value.shape == expected.shape, key
        torch.testing.assert_close(value, expected, atol=ATOL, rtol=0, msg=f"{name} {copy} {key}")
    return converted.summary


@pytest.mark.parametrize(("name", "method"), TINY)
def test_parity_with_imaginaire_model_average(name: str, method: str) -> None:
    summary = _check(F / f"{name}.pt", name, method, "avg")
    assert "model average" in summary


@pytest.mark.parametrize(("name", "method"), TINY)
def test_training_copy_is_folded_in_eval_mode(name: str, method: str, tmp_path: Path) -> None:
    """Without the average (model_average disabled), the training copy's spectral norms are folded."""
    full = torch.load(F / f"{name}.pt", weights_only=True)
    # model_average off: the trainer's net_G is WrappedModel(Generator) -> keys 'module.autoencoder_...'
    net_g = {k.replace("module.module.", "module.", 1): v for k, v in full["net_G"].items() if k.startswith("module.module.")}
    torch.save({**full, "net_G": net_g}, tmp_path / "no_average.pt")
    summary = _check(tmp_path / "no_average.pt", name, method, "train")
    assert "training copy" in summary
    # The two copies really differ, so taking the wrong one cannot pass.
    ref = load_file(F / f"{name}_ref.safetensors")
    assert (ref["avg.ab"] - ref["train.ab"]).abs().max() > 0.1


def test_spectral_norm_fold_matches_torch_eval_mode() -> None:
    torch.manual_seed(0)
    conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 5, 3))
    conv.train()
    conv(torch.randn(1, 3, 8, 8))  # one power iteration
    conv.eval()
    with torch.no_grad():
        conv(torch.randn(1, 3, 8, 8))  # eval: recomputes weight from the stored u, v
    folded = fold_spectral_norm({f"c.{k}": v for k, v in conv.state_dict().items()}, "")
    torch.testing.assert_close(folded["c.weight"], conv.weight, atol=1e-7, rtol=0)
    assert set(folded) == {"c.weight", "c.bias"}


def test_wrong_method_and_missing_key_are_one_line_errors(tmp_path: Path) -> None:
    obj = torch.load(F / "munit_d2.pt", weights_only=True)
    with pytest.raises(CheckpointError, match="imaginaire MUNIT checkpoint; convert it with --from munit"):
        convert_imaginaire(obj, "unit", "")
    net_g = dict(obj["net_G"])
    del net_g["module.averaged_model.autoencoder_b.decoder.decoder.0.conv_block_1.layers.norm.fc.layers.conv.bias"]
    with pytest.raises(CheckpointError, match=r"missing key 'dec.model.0.conv_block_1.norm.fc.bias' of generator 'b'"):
        convert_imaginaire({**obj, "net_G": net_g}, "munit", "")
    path = tmp_path / "ck.pt"
    torch.save(obj, path)
    result = runner.invoke(app, ["convert", "--from", "unit", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code != 0 and "--from munit" in result.output and "Traceback" not in result.output


def test_cli_convert_translate_sample_exemplar(tmp_path: Path) -> None:
    out = tmp_path / "m"
    done = runner.invoke(app, ["convert", "--from", "munit", str(F / "munit_d3.pt"), "-o", str(out)])
    assert done.exit_code == 0, done.output
    config = json.loads((out / "config.json").read_text())
    assert config["arch"]["variant"] == "imaginaire" and config["arch"]["n_downsample"] == 3
    image = write_rgb(tmp_path / "x.png", (24, 16))  # not a multiple of 8: padded and cropped back
    for argv in (
        ["translate", str(image), "--model", str(out), "-o", str(tmp_path / "t"), "--seed", "1"],
        ["sample-styles", str(image), "--model", str(out), "--n", "3", "-o", str(tmp_path / "s")],
        ["exemplar", str(image), "--style", str(image), "--model", str(out), "-o", str(tmp_path / "e")],
        ["interpolate", str(image), str(image), "--model", str(out), "--steps", "3", "-o", str(tmp_path / "i")],
    ):
        result = runner.invoke(app, [*argv, "--device", "cpu"])
        assert result.exit_code == 0, (argv, result.output)
    assert any((tmp_path / "t").iterdir()) and any((tmp_path / "s").rglob("*.png"))


def test_cli_unit_translate_and_interpolate(tmp_path: Path) -> None:
    out = tmp_path / "u"
    assert runner.invoke(app, ["convert", "--from", "unit", str(F / "unit_d2.pt"), "-o", str(out)]).exit_code == 0
    image, other = write_rgb(tmp_path / "x.png", (20, 16)), write_rgb(tmp_path / "y.png", (20, 16), seed=1)
    for argv in (
        ["translate", str(image), "--model", str(out), "-o", str(tmp_path / "t"), "--direction", "b2a"],
        ["interpolate", str(image), str(other), "--model", str(out), "--steps", "3", "-o", str(tmp_path / "i")],
    ):
        result = runner.invoke(app, [*argv, "--device", "cpu"])
        assert result.exit_code == 0, (argv, result.output)


# ------------------------------------------------------------------ the released configs, full size


def manifest_net_g(manifest: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    state = hd.manifest_net_g(manifest, seed)
    assert [r["key"] for r in json.loads(manifest.read_text())["keys"]] == list(state)
    return state


REAL = {
    "munit_afhq_dog2cat": ("munit", {"n_downsample": 2, "dim": 64, "max_dim": 256, "style_dim": 8, "mlp_dim": 256, "mlp_blocks": 2, "n_res": 4}),
    "munit_edges2shoes": ("munit", {"n_downsample": 2, "dim": 64, "style_dim": 8, "mlp_dim": 256, "mlp_blocks": 2, "n_res": 4}),
    "munit_summer2winter_hd": ("munit", {"n_downsample": 3, "dim": 64, "max_dim": 256, "style_dim": 8, "mlp_dim": 256, "n_res": 4}),
    "unit_winter2summer": ("unit", {"n_downsample": 2, "dim": 48, "max_dim": 192, "n_res": 4}),
}


def _convert_real(name: str, tmp_path: Path) -> Path:
    method, expected = REAL[name]
    net_g = manifest_net_g(F / f"manifest_{name}.json")
    release = tmp_path / f"{name}.pt"
    torch.save({"net_G": net_g, "net_D": {}, "opt_G": {}, "opt_D": {}, "current_epoch": 1, "current_iteration": 2}, release)
    del net_g
    out = tmp_path / "converted"
    done = runner.invoke(app, ["convert", "--from", method, str(release), "-o", str(out)])  # loads strictly
    assert done.exit_code == 0, done.output
    arch = json.loads((out / "config.json").read_text())["arch"]
    assert arch["variant"] == "imaginaire"
    assert {k: arch[k] for k in expected} == expected
    return out


@pytest.mark.parametrize("name", ["munit_afhq_dog2cat", "unit_winter2summer"])
def test_released_layout_converts_loads_strictly_and_translates_256(name: str, tmp_path: Path) -> None:
    out = _convert_real(name, tmp_path)
    image = write_rgb(tmp_path / "x.png", (256, 256))
    result = runner.invoke(app, ["translate", str(image), "--model", str(out), "-o", str(tmp_path / "t"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t" / "x.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["munit_edges2shoes", "munit_summer2winter_hd"])
def test_released_layout_full_size_slow(name: str, tmp_path: Path) -> None:
    out = _convert_real(name, tmp_path)
    side = 1024 if "summer2winter" in name else 256
    image = write_rgb(tmp_path / "x.png", (side, side))
    result = runner.invoke(app, ["translate", str(image), "--model", str(out), "-o", str(tmp_path / "t"), "--device", "cpu"])
    assert result.exit_code == 0, result.output


def test_tiles_share_every_norm_of_the_imaginaire_generator(tmp_path: Path) -> None:
    """Tiled inference intercepts every statistics layer of the improved generator (affine instance
    norms, AdaIN): replaying a pass's statistics changes nothing, another image's statistics do."""
    from i2icli.api import load_model
    from i2icli.tiling import FrozenNorms

    out = tmp_path / "m"
    assert runner.invoke(app, ["convert", "--from", "munit", str(F / "munit_d3.pt"), "-o", str(out)]).exit_code == 0
    model = load_model(str(out), device="cpu")
    style = torch.randn(1, model.net.arch.style_dim, 1, 1, generator=torch.Generator().manual_seed(0))
    run = model.eager_fn("a2b")
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        plain = run(x, style)
        with FrozenNorms(model.net) as recorder:
            run(x, style)
        with FrozenNorms(model.net, use=recorder.recorded()):
            replayed = run(x, style)
        with FrozenNorms(model.net) as other:
            run(x.flip(-1) * 0.5, style)
        with FrozenNorms(model.net, use=other.recorded()):
            foreign = run(x, style)
    norms = sum(isinstance(m, torch.nn.InstanceNorm2d) for m in model.net.gen_a.enc_content.modules())
    norms += sum(isinstance(m, torch.nn.InstanceNorm2d) for m in model.net.gen_b.dec.modules())
    assert len(recorder.recorded()) == norms
    # outputs reach ~10 with these random weights (no tanh): float rounding of the replayed moments
    torch.testing.assert_close(replayed, plain, atol=1e-5 * float(plain.abs().max()), rtol=0)
    assert (foreign - plain).abs().max() > 1e-2

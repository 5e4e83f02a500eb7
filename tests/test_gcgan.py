"""GcGAN: the geometric transforms, the geometry-consistency loss, the variants, training, conversion."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, write_domains
from objective_steps import TensorData, run_steps
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.config import ConfigError, from_dict
from i2icli.convert.gcgan import convert_official
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.base import Optim
from i2icli.methods.gcgan import (
    METHOD,
    GcGANArch,
    GcGANConfig,
    GcGANModel,
    gcgan_linear_decay,
    geo_fwd,
    geo_inv,
    geometry_loss,
)
from i2icli.train.schedule import linear_decay

CG = FIXTURES / "cyclegan"
runner = CliRunner()
ATOL = 1e-5  # never loosen


def _images(n: int = 8, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [-1, 1]: (n, c, h, w)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h + 2, w + 2, generator=g)
    return torch.nn.functional.avg_pool2d(x, 3, 1)[:, :, :h, :w] * 2 - 1


# --- f and f⁻¹ -----------------------------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["rot", "vflip"])
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 1, 8, 12), (1, 3, 5, 7)])
def test_transforms_are_exact_inverses(geometry: str, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    assert torch.equal(geo_inv(geo_fwd(x, geometry), geometry), x)  # type: ignore[arg-type]
    assert torch.equal(geo_fwd(geo_inv(x, geometry), geometry), x)  # type: ignore[arg-type]
    fx = geo_fwd(x, geometry)  # type: ignore[arg-type]
    h, w = shape[2:]
    assert fx.shape[2:] == ((w, h) if geometry == "rot" else (h, w))
    assert not torch.equal(fx if geometry == "vflip" else fx.transpose(2, 3), x)  # f is not the identity


def test_rot_is_clockwise_and_vflip_upside_down() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])[None, None]  # (1, 1, 2, 3)
    # Clockwise: the left column (1, 4), read bottom-up, becomes the top row.
    assert geo_fwd(x, "rot")[0, 0].tolist() == [[4.0, 1.0], [5.0, 2.0], [6.0, 3.0]]
    assert geo_fwd(x, "vflip")[0, 0].tolist() == [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]]
    assert torch.equal(geo_fwd(x, "rot"), torch.rot90(x, -1, (2, 3)))


# --- the geometry-consistency loss ---------------------------------------------------------------


@pytest.mark.parametrize("geometry", ["rot", "vflip"])
def test_geometry_loss_zero_for_commuting_generator(geometry: str) -> None:
    x = _images(4, h=8, w=12)
    identity = lambda t: t  # noqa: E731  (commutes with every f)
    assert geometry_loss(identity(x), identity(geo_fwd(x, geometry)), geometry).item() == 0.0  # type: ignore[arg-type]
    # A pixelwise map commutes too: the loss depends on geometry, not on appearance.
    tone = lambda t: torch.tanh(2 * t + 0.3)  # noqa: E731
    assert geometry_loss(tone(x), tone(geo_fwd(x, geometry)), geometry).item() == pytest.approx(0.0, abs=1e-7)  # type: ignore[arg-type]


@pytest.mark.parametrize("geometry", ["rot", "vflip"])
def test_geometry_loss_positive_for_non_commuting_generator(geometry: str) -> None:
    x = _images(4, h=8, w=12)

    def gen(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W): a gain that grows down the rows moves under f
        return t * torch.linspace(0, 1, t.shape[2])[:, None]

    assert geometry_loss(gen(x), gen(geo_fwd(x, geometry)), geometry).item() > 0.05  # type: ignore[arg-type]
    # A random GcGAN generator does not commute with f either.
    model = GcGANModel(GcGANArch(ngf=4, n_blocks=1))
    with torch.no_grad():
        assert geometry_loss(model.gen_ab(x), model.gen_ab(geo_fwd(x, geometry)), geometry).item() > 0  # type: ignore[arg-type]


def test_each_consistency_term_has_a_detached_target() -> None:
    x = _images(2, h=8, w=8)
    u = (x * 0.5).requires_grad_()
    v = (geo_fwd(x, "rot") * 0.3).requires_grad_()
    geometry_loss(u, v, "rot").backward()
    # Each branch gets only the gradient of its own term: d/du L1(u, const) and d/dv L1(v, const).
    expect_u = torch.sign(u.detach() - geo_inv(v.detach(), "rot")) / u.numel()
    expect_v = torch.sign(v.detach() - geo_fwd(u.detach(), "rot")) / v.numel()
    torch.testing.assert_close(u.grad, expect_u)
    torch.testing.assert_close(v.grad, expect_v)


# --- bad input -----------------------------------------------------------------------------------


def test_unknown_geometry_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="geometry: 'hflip' is not one of rot, vflip"):
        GcGANConfig(geometry="hflip")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="geometry"):
        from_dict(GcGANConfig, {"geometry": "hflip"})
    with pytest.raises(UsageError, match="geometry"):
        geo_fwd(torch.zeros(1, 1, 4, 4), "hflip")  # type: ignore[arg-type]


def test_one_sided_model_refuses_b2a() -> None:
    model = GcGANModel(GcGANArch(ngf=4, n_blocks=1))
    assert model.directions == ("a2b",)
    with pytest.raises(UsageError, match="one-sided and translates a2b only"):
        model.translate(torch.zeros(1, 3, 8, 8), "b2a")
    with pytest.raises(UsageError, match="one-sided"):
        GcGANArch(directions=("a2b", "b2a"))


def test_identity_with_unequal_channels_is_refused() -> None:
    cfg = METHOD.test_presets["share-rot"].config
    cfg = replace(cfg, arch=replace(cfg.arch, channels_a=1))
    data = TensorData(_images(4, c=1), _images(4), 2)
    with pytest.raises(ValueError, match="identity loss needs equal channel counts"):
        METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)


# --- the objective -------------------------------------------------------------------------------


def test_rot_trains_on_non_square_crops() -> None:
    cfg = METHOD.test_presets["share-rot"].config
    torch.manual_seed(0)
    model = METHOD.build_model(cfg.arch)
    data = TensorData(_images(4, h=16, w=24), _images(4, h=16, w=24, seed=1), 2)
    objective = METHOD.build_objective(cfg, model, data, 0)
    out = objective.phases()[0].loss_fn(data[0], {})
    assert out.carry["x_ab"].shape == (2, 3, 16, 24) and out.carry["x_ab_gc"].shape == (2, 3, 24, 16)
    assert torch.isfinite(out.loss) and out.scalars["geo_ab"] > 0
    d = objective.phases()[1].loss_fn(data[0], out.carry)
    assert torch.isfinite(d.loss)


@pytest.mark.parametrize("name", ["share-rot", "share-vflip", "cross", "cycle"])
def test_short_training_lowers_the_geometry_loss(name: str) -> None:
    # A large init makes the untrained generator clearly non-commuting; a raised lr makes 40 steps enough.
    cfg = replace(METHOD.test_presets[name].config, init_gain=1.0, optim=Optim(lr=2e-3))
    torch.manual_seed(0)
    a = _images(16)
    data = TensorData(a, -a.flip(1), 4)
    objective = METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)
    history = run_steps(objective, data.__getitem__, 40)
    first = sum(h["geo_ab"] for h in history[:3]) / 3
    last = sum(h["geo_ab"] for h in history[-3:]) / 3
    assert last < 0.5 * first, (first, last)


def test_cross_variant_trains_and_keeps_its_own_second_generator() -> None:
    cfg = METHOD.test_presets["cross"].config
    torch.manual_seed(0)
    model = METHOD.build_model(cfg.arch)
    a = _images(8)
    data = TensorData(a, -a, 2)
    objective = METHOD.build_objective(cfg, model, data, 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run_steps(objective, data.__getitem__, 2)
    state = model.state_dict()
    gc_keys = [k for k in state if k.startswith("gen_ab_gc.")]
    assert gc_keys and len(gc_keys) == sum(k.startswith("gen_ab.") for k in state)
    # Both generators trained, and they are different networks (not one saved under two names).
    assert not torch.equal(state["gen_ab_gc.model.1.weight"], before["gen_ab_gc.model.1.weight"])
    assert not torch.equal(state["gen_ab_gc.model.1.weight"], state["gen_ab.model.1.weight"])
    assert set(objective.training_modules()) == {"gen_ab", "gen_ab_gc", "dis_b", "dis_b_gc"}
    reloaded = GcGANModel(cfg.arch)
    reloaded.load_state_dict(state, strict=True)
    assert torch.equal(reloaded.gen_ab_gc.model[1].weight, model.gen_ab_gc.model[1].weight)  # type: ignore[union-attr]


def test_cycle_variant_has_the_backward_half_but_exports_a2b_only() -> None:
    cfg = METHOD.test_presets["cycle"].config
    model = METHOD.build_model(cfg.arch)
    objective = METHOD.build_objective(cfg, model, TensorData(_images(4), _images(4, seed=1), 2), 0)
    assert set(objective.training_modules()) == {"gen_ab", "gen_ba", "dis_b", "dis_b_gc", "dis_a", "dis_a_gc"}
    assert not any(k.startswith("gen_ba") for k in model.state_dict())
    out = objective.phases()[0].loss_fn(TensorData(_images(4), _images(4, seed=1), 2)[0], {})
    assert {"cyc_a", "cyc_b", "geo_ba", "idt_ba_gc"} <= set(out.scalars)
    assert all(v > 0 for v in out.scalars.values())


def test_discriminator_for_f_images_sees_f_of_real_b() -> None:
    cfg = METHOD.test_presets["share-rot"].config
    objective = METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), TensorData(_images(4), _images(4), 2), 0)
    seen: list[torch.Tensor] = []
    objective.dis_b_gc.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    batch = {"a": _images(2, h=16, w=24), "b": _images(2, h=16, w=24, seed=3)}
    carry = objective.phases()[0].loss_fn(batch, {}).carry
    seen.clear()
    objective.phases()[1].loss_fn(batch, carry)
    assert torch.equal(seen[0], geo_fwd(batch["b"], "rot"))  # real: f(b), (2, 3, 24, 16)


@pytest.mark.parametrize("geometry", ["rot", "vflip"])
def test_ensemble_is_the_mean_of_both_frames(geometry: str) -> None:
    torch.manual_seed(0)
    plain = GcGANModel(GcGANArch(ngf=4, n_blocks=1)).eval()
    ens = GcGANModel(GcGANArch(ngf=4, n_blocks=1, ensemble=geometry)).eval()  # type: ignore[arg-type]
    ens.load_state_dict(plain.state_dict())
    x = _images(2, h=8, w=12)
    with torch.no_grad():
        g_x = plain.translate(x, "a2b")
        back = geo_inv(plain.gen_ab(geo_fwd(x, geometry)), geometry)  # type: ignore[arg-type]
        torch.testing.assert_close(ens.translate(x, "a2b"), 0.5 * (g_x + back))
        assert not torch.allclose(ens.translate(x, "a2b"), g_x)  # a random G does not commute


def test_schedule_decays_one_step_earlier_and_ends_at_zero() -> None:
    n = 10
    factors = [gcgan_linear_decay(s, n) for s in range(n)]
    assert factors[0] == 1.0 and factors[-1] == 0.0
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    first_decay = next(s for s, f in enumerate(factors) if f < 1)
    assert first_decay == next(s for s in range(n) if linear_decay(s, n) < 1) - 1


# --- conversion ----------------------------------------------------------------------------------


def test_official_generator_reproduces_official_outputs() -> None:
    # GcGAN's G_AB uses the CycleGAN layout; this file and its outputs come from the official code.
    converted = convert_official([CG / "cyclegan_G_small.pth"])
    assert converted.arch.variant == "share" and converted.arch.ngf == 8 and converted.arch.n_blocks == 3
    model = METHOD.build_model(converted.arch)
    model.load_state_dict(converted.state, strict=True)
    io = load_file(str(CG / "cyclegan_small_io.safetensors"))
    with torch.no_grad():
        torch.testing.assert_close(model.eval().translate(io["x"], "a2b"), io["fake"], atol=ATOL, rtol=ATOL)


def _manifest_state(manifest: str, seed: int) -> dict[str, torch.Tensor]:
    """Random values for every documented key of an official generator (CycleGAN layout, §2.7)."""
    keys = json.loads((CG / manifest).read_text())["keys"]
    g = torch.Generator().manual_seed(seed)
    return {e["key"]: torch.randn(e["shape"], generator=g) for e in keys if e["dtype"].startswith("float")}


def test_cross_files_convert_to_two_generators(tmp_path: Path) -> None:
    torch.save(_manifest_state("cyclegan_keys_small.json", 0), tmp_path / "G_AB.pth")
    torch.save(_manifest_state("cyclegan_keys_small.json", 1), tmp_path / "G_gc_AB.pth")
    converted = convert_official([tmp_path / "G_AB.pth", tmp_path / "G_gc_AB.pth"])
    assert converted.arch.variant == "cross" and "same generator" not in converted.summary
    model = GcGANModel(converted.arch)
    model.load_state_dict(converted.state, strict=True)
    second = torch.load(tmp_path / "G_gc_AB.pth", weights_only=True)
    assert all(torch.equal(model.gen_ab_gc.state_dict()[k], v) for k, v in second.items())  # type: ignore[union-attr]
    # The official cross model saves netG_AB twice: converting such a pair says so.
    same = convert_official([tmp_path / "G_AB.pth", tmp_path / "G_AB.pth"])
    assert "same generator" in same.summary


def test_full_size_official_layout_converts(tmp_path: Path) -> None:
    state = _manifest_state("cyclegan_keys_full.json", 0)  # resnet_9blocks, ngf 64: the paper's G
    torch.save(state, tmp_path / "latest_net_G_AB.pth")
    converted = convert_official([tmp_path / "latest_net_G_AB.pth"])
    assert (converted.arch.ngf, converted.arch.n_blocks) == (64, 9)
    assert converted.state.keys() == {f"gen_ab.{k}" for k in state}
    assert all(torch.equal(converted.state[f"gen_ab.{k}"], v) for k, v in state.items())


@pytest.mark.parametrize(
    ("files", "error", "match"),
    [
        (["a.pth", "b.pth", "c.pth"], UsageError, "expected 1 file"),
        (["missing.pth"], CheckpointError, "no such file"),
    ],
)
def test_bad_converter_input(tmp_path: Path, files: list[str], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        convert_official([tmp_path / f for f in files])


def test_dropout_generator_is_refused(tmp_path: Path) -> None:
    torch.save(_manifest_state("cyclegan_keys_full_dropout.json", 0), tmp_path / "g.pth")
    with pytest.raises(CheckpointError, match="dropout"):
        convert_official([tmp_path / "g.pth"])


# --- the CLI -------------------------------------------------------------------------------------


def _folders(root: Path, n: int = 3) -> list[str]:
    write_domains(root, n, seed_b=50)
    return ["--domain-a", str(root / "trainA"), "--domain-b", str(root / "trainB")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "gcgan", "--geometry", "hflip"], "geometry: 'hflip' is not one of 'rot', 'vflip'"),
        (["--method", "gcgan", "--set", "geometry=shear"], "geometry"),
        (["--method", "cyclegan", "--geometry", "vflip"], "--geometry: not an option of --method cyclegan"),
        (["--method", "distancegan", "--geometry", "rot"], "--geometry: not an option of --method distancegan"),
    ],
)
def test_bad_geometry_on_the_command_line_is_one_line_exit_2_no_run_folder(tmp_path: Path, args: list[str], message: str) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(app, ["train", *_folders(tmp_path), *args, "--preset", "cpu-tiny", "--run-dir", str(run_dir)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not run_dir.exists()


def test_trains_and_translates_through_the_cli(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["train", *_folders(tmp_path), "--method", "gcgan", "--geometry", "vflip", "--preset", "cpu-tiny"]
    result = runner.invoke(app, [*args, "--max-steps", "2", "--sample-every", "0", "--run-dir", str(run_dir), "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "run.json").read_text())["spec"]["config"]["geometry"] == "vflip"
    out = tmp_path / "out"
    result = runner.invoke(app, ["translate", str(tmp_path / "trainA" / "0.png"), "-m", str(run_dir / "model"), "-o", str(out)])
    assert result.exit_code == 0 and (out / "0.png").is_file()
    result = runner.invoke(app, ["translate", str(tmp_path / "trainA" / "0.png"), "-m", str(run_dir / "model"), "-d", "b2a", "-o", str(out)])
    assert result.exit_code == 2 and "b2a" in result.output

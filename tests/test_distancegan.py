"""DistanceGAN: distances, statistics, the normalised loss, variants, training, conversion."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import write_domains
from objective_steps import TensorData, run_steps
from torch import nn
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.config import ConfigError, from_dict
from i2icli.convert.distancegan import convert_official
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.distancegan import (
    METHOD,
    DistanceGANArch,
    DistanceGANConfig,
    DistanceGANModel,
    DistanceStats,
    distance_loss,
    distancegan_linear_decay,
    halves,
    pair_distances,
    sample_distances,
)

ATOL = 1e-5  # never loosen
runner = CliRunner()


def _images(n: int = 8, c: int = 3, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [-1, 1]: (n, c, h, w)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h + 2, w + 2, generator=g)
    return torch.nn.functional.avg_pool2d(x, 3, 1)[:, :, :h, :w] * 2 - 1


def _d(u: torch.Tensor, v: torch.Tensor) -> float:
    return float((u - v).abs().mean())


# --- distances and statistics --------------------------------------------------------------------


def test_pair_distances_cover_every_pair_once() -> None:
    x = _images(5, h=6, w=7)
    expected = [_d(x[i], x[j]) for i, j in itertools.combinations(range(5), 2)]
    torch.testing.assert_close(pair_distances(x), torch.tensor(expected))
    torch.testing.assert_close(sample_distances(x, "pairwise"), torch.tensor(expected))


def test_halves_are_top_and_bottom_and_skip_an_odd_middle_row() -> None:
    x = torch.arange(5.0)[None, None, :, None].expand(1, 1, 5, 2)  # row index as value: (1, 1, 5, 2)
    top, bottom = halves(x)
    assert top[0, 0, :, 0].tolist() == [0.0, 1.0] and bottom[0, 0, :, 0].tolist() == [3.0, 4.0]


@pytest.mark.parametrize("mode", ["pairwise", "self"])
def test_statistics_equal_a_direct_computation(mode: str) -> None:
    a, b = _images(6, h=8, w=8), _images(5, c=1, h=9, w=8, seed=1)

    def direct(x: torch.Tensor) -> tuple[float, float]:
        if mode == "pairwise":
            ds = [_d(x[i], x[j]) for i, j in itertools.combinations(range(len(x)), 2)]
        else:
            h = x.shape[2] // 2
            ds = [_d(img[:, :h], img[:, x.shape[2] - h :]) for img in x]
        mean = sum(ds) / len(ds)
        return mean, (sum((d - mean) ** 2 for d in ds) / len(ds)) ** 0.5  # population std

    stats = DistanceStats()
    stats.fit(a, b, mode)  # type: ignore[arg-type]
    for domain, x in (("a", a), ("b", b)):
        mean, std = stats.stats(domain)
        assert (float(mean), float(std)) == pytest.approx(direct(x), rel=1e-5)


def test_statistics_come_from_a_bounded_sample_and_live_in_a_training_module() -> None:
    cfg = METHOD.test_presets["pairwise"].config
    data = TensorData(_images(40), _images(40, seed=1), 4)
    objective = METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)
    [stage] = objective.stages()
    assert stage.start == 0
    stage.enter(data)
    assert data.sampled == [("a", cfg.stat_images), ("b", cfg.stat_images)]
    saved = objective.training_modules()["distance_stats"].state_dict()
    assert set(saved) == {"dist_mean_a", "dist_std_a", "dist_mean_b", "dist_std_b", "fitted"}
    # A resumed run restores them from the checkpoint instead of sampling again.
    fresh = METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.generator_loss(data[0], {})
    fresh.training_modules()["distance_stats"].load_state_dict(saved)
    assert torch.isfinite(fresh.generator_loss(data[0], {}).loss)
    assert len(data.sampled) == 2


# --- the loss ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["pairwise", "self"])
def test_distance_loss_is_zero_for_an_exactly_distance_preserving_map(mode: str) -> None:
    # Domain b is an affine image of domain a, so its normalised distances match a's exactly, and
    # G = that affine map preserves them: the loss vanishes. Another map does not.
    a = _images(12)
    affine = lambda x: -0.5 * x + 0.2  # noqa: E731
    stats = DistanceStats()
    stats.fit(a, affine(a), mode)  # type: ignore[arg-type]
    x = _images(4, seed=7)
    s_a, s_b = stats.stats("a"), stats.stats("b")
    assert float(distance_loss(x, affine(x), mode, s_a, s_b)) == pytest.approx(0.0, abs=1e-5)  # type: ignore[arg-type]
    squash = lambda x: torch.tanh(3 * x) * x  # noqa: E731
    assert float(distance_loss(x, squash(x), mode, s_a, s_b)) > 0.1  # type: ignore[arg-type]


def test_pairwise_loss_needs_two_images() -> None:
    one = _images(1)
    stats = (torch.tensor(0.5), torch.tensor(0.1))
    with pytest.raises(ValueError, match="at least 2 images"):
        distance_loss(one, one, "pairwise", stats, stats)


def test_batch_size_one_is_refused_before_training() -> None:
    cfg = METHOD.test_presets["pairwise"].config
    data = TensorData(_images(8), _images(8), 1)
    with pytest.raises(ValueError, match="batch size 1: the pairwise distance loss .* needs at least 2"):
        METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)
    # The self-distance variant works on single images.
    self_cfg = METHOD.test_presets["self-a2b"].config
    METHOD.build_objective(self_cfg, METHOD.build_model(self_cfg.arch), data, 0)


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"distance": "diagonal"}, ConfigError, "distance"),
        ({"geometry": "rot"}, ConfigError, "unknown config key 'geometry'"),
        ({"arch": {"generator": "unet"}}, ConfigError, "generator"),
        ({"arch": {"directions": []}}, UsageError, "directions"),
        ({"stat_images": 2}, UsageError, "stat_images"),
    ],
)
def test_bad_config_is_a_clear_error(changes: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        from_dict(DistanceGANConfig, changes)


def test_cycle_needs_both_directions() -> None:
    cfg = METHOD.test_presets["self-a2b"].config
    cfg = replace(cfg, lambda_cycle=10.0)
    with pytest.raises(ValueError, match="lambda_cycle > 0 needs both generators"):
        METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), TensorData(_images(4), _images(4), 2), 0)


def test_one_direction_model_refuses_the_other() -> None:
    model = DistanceGANModel(DistanceGANArch(ngf=4, n_blocks=1, directions=("b2a",)))
    assert model.directions == ("b2a",) and model.gen_ab is None
    with pytest.raises(UsageError, match="trained for b2a only and cannot translate a2b"):
        model.translate(torch.zeros(1, 3, 8, 8), "a2b")


# --- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHOD.test_presets))
def test_short_training_lowers_the_distance_loss(name: str) -> None:
    cfg = replace(METHOD.test_presets[name].config, stat_images=16)
    torch.manual_seed(0)
    a = _images(16)
    data = TensorData(a, -0.8 * a.flip(1), 4)
    objective = METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)
    objective.stages()[0].enter(data)
    history = run_steps(objective, data.__getitem__, 40)
    tag = "ab" if "a2b" in cfg.arch.directions else "ba"
    first = sum(h[f"dist_{tag}"] for h in history[:3]) / 3
    last = sum(h[f"dist_{tag}"] for h in history[-3:]) / 3
    assert last < 0.5 * first, (first, last)


def test_schedule_is_the_2017_forks() -> None:
    n = 10
    factors = [distancegan_linear_decay(s, n) for s in range(n)]
    assert factors[:6] == [1.0] * 6  # constant through step n/2 (the first decay comes after it)
    assert factors[-1] == pytest.approx(1 / 5)  # lr0 / n_d at the last step, 0 after it
    assert all(a > b for a, b in zip(factors[5:], factors[6:]))


# --- conversion: the official 2017 layer order, written from the documented keys ---------------


class _OfficialBlock(nn.Module):
    """RB-C with zero padding and affine IN: conv_block.{0,1,3,4} (docs/methods/distancegan.md)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1), nn.InstanceNorm2d(dim, affine=True), nn.ReLU(True),
            nn.Conv2d(dim, dim, 3, padding=1), nn.InstanceNorm2d(dim, affine=True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class _OfficialGenerator(nn.Module):
    """The fork's generator as a flat ``model`` Sequential: 7x7 zero-pad conv at model.0, blocks
    from model.9, ConvTs, last conv at model.(15 + n_blocks)."""

    def __init__(self, in_ch: int, out_ch: int, ngf: int, n_blocks: int) -> None:
        super().__init__()

        def norm(c: int) -> nn.Module:
            return nn.InstanceNorm2d(c, affine=True)

        layers: list[nn.Module] = [nn.Conv2d(in_ch, ngf, 7, padding=3), norm(ngf), nn.ReLU(True)]
        layers += [nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), norm(2 * ngf), nn.ReLU(True)]
        layers += [nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1), norm(4 * ngf), nn.ReLU(True)]
        layers += [_OfficialBlock(4 * ngf) for _ in range(n_blocks)]
        layers += [nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1), norm(2 * ngf), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1), norm(ngf), nn.ReLU(True)]
        layers += [nn.Conv2d(ngf, out_ch, 7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _official_file(path: Path, seed: int, *, in_ch: int = 3, out_ch: int = 3, ngf: int = 4, n_blocks: int = 2) -> _OfficialGenerator:
    torch.manual_seed(seed)
    net = _OfficialGenerator(in_ch, out_ch, ngf, n_blocks)
    with torch.no_grad():
        for p in net.parameters():  # random everything, affine norms included
            p.copy_(torch.randn_like(p) * 0.3)
    state = dict(net.state_dict())
    # PyTorch 0.2-era InstanceNorm stored running statistics: old files carry them.
    state["model.1.running_mean"] = torch.zeros(ngf)
    state["model.1.running_var"] = torch.ones(ngf)
    torch.save(state, path)
    return net.eval()


def test_documented_keys_of_the_official_layout() -> None:
    keys = set(_OfficialGenerator(3, 3, 64, 9).state_dict())
    blocks = {int(k.split(".")[1]) for k in keys if ".conv_block." in k}
    assert blocks == set(range(9, 18))
    assert {k.split(".")[3] for k in keys if k.startswith("model.9.")} == {"0", "1", "3", "4"}
    assert "model.24.weight" in keys and "model.25.weight" not in keys
    converted_keys = set(DistanceGANModel(DistanceGANArch(generator="resnet2017", directions=("a2b",))).state_dict())
    assert converted_keys == {f"gen_ab.{k}" for k in keys}


def test_official_files_convert_and_reproduce_outputs(tmp_path: Path) -> None:
    g_a = _official_file(tmp_path / "latest_net_G_A.pth", 0)
    g_b = _official_file(tmp_path / "latest_net_G_B.pth", 1)
    converted = convert_official([tmp_path / "latest_net_G_A.pth", tmp_path / "latest_net_G_B.pth"])
    assert converted.arch.generator == "resnet2017" and converted.arch.directions == ("a2b", "b2a")
    assert (converted.arch.ngf, converted.arch.n_blocks) == (4, 2)
    model = METHOD.build_model(converted.arch).eval()
    model.load_state_dict(converted.state, strict=True)
    x = torch.rand(2, 3, 20, 28, generator=torch.Generator().manual_seed(3)) * 2 - 1  # non-square, odd bottleneck
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x, "a2b"), g_a(x), atol=ATOL, rtol=ATOL)
        torch.testing.assert_close(model.translate(x, "b2a"), g_b(x), atol=ATOL, rtol=ATOL)
        assert not torch.allclose(g_a(x), g_b(x))


def test_modern_layout_file_converts_to_the_resnet_generator(tmp_path: Path) -> None:
    source = DistanceGANModel(DistanceGANArch(ngf=4, n_blocks=2, directions=("a2b",)))
    torch.save({k.removeprefix("gen_ab."): v for k, v in source.state_dict().items()}, tmp_path / "g.pth")
    converted = convert_official([tmp_path / "g.pth"])
    assert converted.arch.generator == "resnet" and converted.arch.directions == ("a2b",)
    assert all(torch.equal(converted.state[k], v) for k, v in source.state_dict().items())


def test_mismatched_pair_is_refused(tmp_path: Path) -> None:
    _official_file(tmp_path / "a.pth", 0, n_blocks=2)
    _official_file(tmp_path / "b.pth", 1, n_blocks=3)
    with pytest.raises(CheckpointError, match="does not mirror"):
        convert_official([tmp_path / "a.pth", tmp_path / "b.pth"])
    torch.save({"model.0.weight": torch.zeros(4, 3, 7, 7), "extra": torch.zeros(1)}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError):
        convert_official([tmp_path / "c.pth"])


def test_too_few_images_for_statistics_are_refused_before_training() -> None:
    cfg = METHOD.test_presets["pairwise"].config
    data = TensorData(_images(2), _images(8), 2)
    with pytest.raises(ValueError, match="domain a has 2 images; the pairwise distance statistics need 3"):
        METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), data, 0)
    # Identical images pass the count but have no spread: one clear line when the statistics are fitted.
    same = TensorData(_images(1).expand(4, -1, -1, -1), _images(4), 2)
    objective = METHOD.build_objective(cfg, METHOD.build_model(cfg.arch), same, 0)
    with pytest.raises(UsageError, match="domain a: the pairwise distances have zero spread"):
        objective.stages()[0].enter(same)


# --- the CLI -------------------------------------------------------------------------------------


def _folders(root: Path, n: int = 4) -> list[str]:
    write_domains(root, n, seed_b=50)
    return ["--domain-a", str(root / "trainA"), "--domain-b", str(root / "trainB")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "1"], "batch size 1: the pairwise distance loss compares images within a batch"),
        (["--set", "distance=diagonal"], "distance"),
        (["--set", "lambda_cycle=10", "--set", "arch.directions=[\"a2b\"]"], "lambda_cycle > 0 needs both generators"),
    ],
)
def test_bad_input_on_the_command_line_is_one_line_exit_2_no_run_folder(tmp_path: Path, args: list[str], message: str) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(
        app, ["train", *_folders(tmp_path), "--method", "distancegan", "--preset", "cpu-tiny", *args, "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not run_dir.exists()


def test_one_sided_run_trains_fits_statistics_and_translates_one_way(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ["train", *_folders(tmp_path), "--method", "distancegan", "--preset", "cpu-tiny", "--set", "distance=self"]
    args += ["--set", 'arch.directions=["a2b"]', "--max-steps", "2", "--sample-every", "0", "--run-dir", str(run_dir), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    checkpoint = torch.load(sorted((run_dir / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    stats = checkpoint["modules"]["distance_stats"]
    assert bool(stats["fitted"]) and float(stats["dist_std_a"]) > 0 and float(stats["dist_std_b"]) > 0
    image = str(tmp_path / "trainA" / "0.png")
    assert runner.invoke(app, ["translate", image, "-m", str(run_dir / "model"), "-o", str(tmp_path / "o")]).exit_code == 0
    result = runner.invoke(app, ["translate", image, "-m", str(run_dir / "model"), "-d", "b2a", "-o", str(tmp_path / "o2")])
    assert result.exit_code == 2 and "b2a" in result.output

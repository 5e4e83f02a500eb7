"""Tiled inference: coverage, frozen normalisation statistics, fidelity against the whole image."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import REPO, make_tiny_cyclegan, save_tiny
from typer.testing import CliRunner

from i2icli.api import load_model
from i2icli.cli.app import app
from i2icli.eval.metrics import psnr
from i2icli.imageio import read_image, to_tensor
from i2icli.inference import LoadedModel, translate_tensors
from i2icli.listing import list_images
from i2icli.multimodal import named_style
from i2icli.padding import pad_for_network
from i2icli.tiling import FrozenNorms, TileOptions, _ramp, tile_starts, translate_tiled

runner = CliRunner()


def _mosaic(name: str, rows: int, cols: int) -> torch.Tensor:
    """A (1, H, W) page of a model's example images (28 px each), the scale it was trained at."""
    files = list_images([str(REPO / "examples" / name)], recursive=False)
    ims = [to_tensor(read_image(path, channels=1).image) for path, _ in files]
    return torch.cat([torch.cat([ims[(r * cols + c) % len(ims)] for c in range(cols)], 2) for r in range(rows)], 1)


def _runner(model: LoadedModel):  # type: ignore[no-untyped-def]
    style = named_style(model, "page", 0)[None] if model.needs_style else None
    run = model.eager_fn("a2b")
    return style, lambda t: run(t, None if style is None else style.expand(t.shape[0], -1, -1, -1))


@pytest.mark.parametrize("length,tile,overlap", [(64, 64, 16), (100, 32, 8), (224, 96, 40), (36, 16, 4)])
def test_tiles_cover_the_axis_on_stride_multiples(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap, 4)
    assert starts[0] == 0 and starts[-1] + min(tile, length) == length
    assert all(s % 4 == 0 for s in starts)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # neighbours overlap enough


def test_blend_weights_ramp_only_towards_neighbours() -> None:
    w = _ramp(32, 8, before=True, after=False)
    assert w[0] < 0.05 and torch.all(w[8:] == 1) and torch.all(w[1:8] > w[:7])
    assert torch.all(_ramp(32, 8, before=False, after=False) == 1)  # image borders keep full weight


@pytest.mark.parametrize("name", ["cyclegan-digits", "munit-fashion"])
def test_replayed_statistics_reproduce_the_plain_forward(name: str) -> None:
    """Recording the statistics of a pass and normalising the same input with them changes nothing
    (instance norm, AdaIN and MUNIT's layer norm all intercepted), while statistics of another
    image do change the output (they are really used)."""
    model = load_model(name, device="cpu")
    _, run = _runner(model)
    x = _mosaic(name, 2, 2)[None]  # (1, 1, 56, 56)
    with torch.inference_mode():
        plain = run(x)
        with FrozenNorms(model.net) as recorder:
            recorded = run(x)
        with FrozenNorms(model.net, use=recorder.recorded()):
            replayed = run(x)
        with FrozenNorms(model.net) as other:
            run(x.flip(-1) * 0.5)
        with FrozenNorms(model.net, use=other.recorded()):
            foreign = run(x)
    assert len(recorder.recorded()) > 5
    assert torch.equal(plain, recorded)
    assert torch.allclose(plain, replayed, atol=1e-5)
    assert (foreign - plain).abs().max() > 1e-2


@pytest.mark.parametrize("name", ["cyclegan-digits", "munit-fashion"])
def test_tiled_matches_untiled_and_beats_per_tile_statistics(name: str) -> None:
    """A 224^2 page in 96^2 tiles: >= 30 dB against the whole-image translation with whole-image
    statistics and the measured overlap; naive tiles (own statistics) are clearly worse."""
    model = load_model(name, device="cpu")
    style, run = _runner(model)
    x = _mosaic(name, 8, 8)[None]  # (1, 1, 224, 224)
    net = model.net
    with torch.inference_mode():
        padded, padding = pad_for_network(x, net.stride, net.min_size)
        whole = padding.crop(run(padded))
        overlap = model.receptive_radius("a2b", style)
        kw = dict(stride=net.stride, min_size=net.min_size, tile=96, overlap=overlap, stats_pixels=224 * 224)
        tiled = translate_tiled(run, net, x, **kw)
        naive = translate_tiled(run, net, x, statistics="tile", **kw)
    assert tiled.shape == whole.shape
    assert psnr(tiled, whole) >= 30
    assert psnr(naive, whole) < psnr(tiled, whole) - 5


def test_auto_tiling_above_the_memory_budget_keeps_fidelity() -> None:
    """With a budget too small for the whole page, translate_tensors tiles by itself (the output
    differs from the untiled one, so tiling did run) and stays >= 30 dB from the untiled output."""
    model = load_model("cyclegan-digits", device="cpu")
    page = _mosaic("cyclegan-digits", 6, 6)  # (1, 168, 168)
    budget = int(model.bytes_per_pixel("a2b", None) * 100 * 100)  # fits a 100^2 tile, not the page
    (untiled,) = translate_tensors(model, [page], "a2b")
    (tiled,) = translate_tensors(model, [page], "a2b", tiling=TileOptions(memory_budget=budget, stats_pixels=168 * 168))
    assert not torch.equal(tiled, untiled)
    assert psnr(tiled[None], untiled[None]) >= 30


def test_batches_split_to_fit_the_budget_give_the_same_results(tiny_model_file: Path) -> None:
    model = load_model(str(tiny_model_file), device="cpu")
    torch.manual_seed(0)
    xs = [torch.rand(3, 40, 40) * 2 - 1 for _ in range(4)]
    per_image = model.bytes_per_pixel("a2b", None) * 40 * 40
    split = translate_tensors(model, xs, "a2b", batch_size=4, tiling=TileOptions(memory_budget=int(per_image * 1.5)))
    whole = translate_tensors(model, xs, "a2b", batch_size=4)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(split, whole))


def test_cli_tile_option_and_its_usage_errors(tiny_model_file: Path, tmp_path: Path) -> None:
    from conftest import write_rgb

    write_rgb(tmp_path / "in" / "big.png", (120, 88))
    ok = runner.invoke(app, ["translate", str(tmp_path / "in"), "-m", str(tiny_model_file), "-o", str(tmp_path / "out"), "--tile", "48"])
    assert ok.exit_code == 0, ok.output
    assert read_image(tmp_path / "out" / "big.png").image.size == (120, 88)
    for args, message in [(["--tile", "8"], "--tile 8"), (["--tile", "32", "--overlap", "16"], "--overlap 16")]:
        bad = runner.invoke(app, ["translate", str(tmp_path / "in"), "-m", str(tiny_model_file), "-o", str(tmp_path / "o2"), *args])
        assert bad.exit_code == 2 and message in bad.stderr
        assert not (tmp_path / "o2").exists()


def test_receptive_radius_grows_with_depth(tmp_path: Path) -> None:
    shallow = load_model(str(save_tiny(tmp_path / "a.safetensors", make_tiny_cyclegan())), device="cpu")
    deep = load_model("cyclegan-digits", device="cpu")  # 3 residual blocks instead of 1
    r_shallow, r_deep = shallow.receptive_radius("a2b", None), deep.receptive_radius("a2b", None)
    # 1 block: 7x7, two stride-2 3x3, 2 block convs at 1/4 res, two up-convs, 7x7 -> at most ~30 px.
    assert 10 <= r_shallow <= 32 < r_deep


def test_over_the_budget_statistics_are_pooled_from_plain_tiles() -> None:
    """When the whole image is over the statistics budget, statistics pooled from a plain tiled pass
    stay >= 30 dB from the untiled output; a downscaled pass (the rejected alternative) falls far
    below, since the network was trained at another scale."""
    model = load_model("cyclegan-digits", device="cpu")
    _, run = _runner(model)
    x = _mosaic("cyclegan-digits", 8, 8)[None]  # (1, 1, 224, 224)
    net = model.net
    with torch.inference_mode():
        whole = run(x)
        kw = dict(stride=net.stride, min_size=net.min_size, tile=112, overlap=model.receptive_radius("a2b", None), stats_pixels=112 * 112)
        pooled = translate_tiled(run, net, x, **kw)
        shrunk = translate_tiled(run, net, x, statistics="downscaled", **kw)
    assert psnr(pooled, whole) >= 30
    assert psnr(shrunk, whole) < psnr(pooled, whole) - 10

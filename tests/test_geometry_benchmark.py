"""The geometry benchmark: its pairs' ground truth, the variant table, --smoke (table shape,
resuming) and its RESULTS.md block against the committed JSON."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import geometry  # benchmarks/geometry.py, on the path through conftest
import numpy as np
import pytest
import torch
from results_md import read_block

from i2icli.config import apply_overrides
from i2icli.methods import load_method


def _ink_moments(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre (2,) and covariance (2, 2) of an (H, W) intensity map, in (x, y-down) pixel units."""
    ys, xs = np.mgrid[: ink.shape[0], : ink.shape[1]].astype(np.float64)
    w = ink / ink.sum()
    centre = np.array([(w * xs).sum(), (w * ys).sum()])
    dx, dy = xs - centre[0], ys - centre[1]
    cov = np.array([[(w * dx * dx).sum(), (w * dx * dy).sum()], [(w * dx * dy).sum(), (w * dy * dy).sum()]])
    return centre, cov


def test_warp_squeezes_then_rotates_counter_clockwise_and_inverts() -> None:
    ys, xs = np.mgrid[:32, :32] - 15.5
    blob = 255 * np.exp(-(xs**2 / (2 * 6.0**2) + ys**2 / (2 * 2.0**2)))  # a horizontal bar, (32, 32)
    warped = geometry.warp(blob.round().astype(np.uint8)[None])[0]
    assert warped[0, 0] == 255 and warped.max() == 255  # background turned white
    centre, cov = _ink_moments(255.0 - warped)
    _, cov_in = _ink_moments(blob)
    a = math.radians(geometry.WARP_DEGREES)
    rotate = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # ccw on screen, y down
    m = rotate @ np.diag([geometry.WARP_SQUEEZE, 1.0])
    np.testing.assert_allclose(centre, [15.5, 15.5], atol=0.1)  # about the centre
    np.testing.assert_allclose(cov, m @ cov_in @ m.T, rtol=0.06, atol=0.3)
    # The long axis of the bar now points up-right (counter-clockwise): negative x-y covariance.
    assert cov[0, 1] < -1


def test_mnistm_is_the_difference_with_a_background_fixed_by_split_and_index() -> None:
    blank, full = np.zeros((2, 32, 32), np.uint8), np.full((2, 32, 32), 255, np.uint8)
    idx = np.array([7, 8])
    background = geometry.mnistm(blank, idx, "train")  # |bg - 0| = bg
    assert background.shape == (2, 32, 32, 3) and background.std() > 10
    np.testing.assert_array_equal(geometry.mnistm(full, idx, "train"), 255 - background)
    np.testing.assert_array_equal(geometry.mnistm(blank[:1], idx[1:], "train")[0], background[1])  # per image
    assert not np.array_equal(geometry.mnistm(blank, idx, "test"), background)  # test draws its own


@pytest.mark.parametrize("name", list(geometry.PAIRS))
def test_pairs_are_unpaired_in_training_and_carry_their_truth(tmp_path: Path, name: str) -> None:
    from i2icli.eval.datasets import load_split

    pair = geometry.PAIRS[name]
    data = geometry.prepare_pair(pair, tmp_path, small=True)
    assert geometry.prepare_pair(pair, tmp_path, small=True) == data  # reused
    n = geometry.SMOKE_TEST
    a, b = load_split(data, "testA", pair.channels), load_split(data, "testB", pair.channels)
    assert len(a.images) == len(b.images) == n and a.images[0].shape == (pair.channels, 32, 32)
    train_a, train_b = load_split(data, "trainA", pair.channels), load_split(data, "trainB", pair.channels)
    assert len(train_a.images) == len(train_b.images) == geometry.SMOKE_TRAIN
    # Domain a is the plain digit: equal channels (grey) and a black background.
    assert all(float((x - x[:1]).abs().max()) == 0 and float(x[0, 0, 0]) == -1 for x in a.images)
    assert set(geometry.TRUTH_DIRS[d] for d in pair.truth) == {p.name for p in data.iterdir() if p.name.endswith("_truth")}
    to_uint8 = lambda x: ((x + 1) * 127.5).round().to(torch.uint8).numpy()  # noqa: E731
    if "b2a" in pair.truth:  # the truth of b image k is a plain digit whose b rendering is b image k
        truth = load_split(data, geometry.TRUTH_DIRS["b2a"], pair.channels)
        assert torch.equal(truth.labels, b.labels)
        if name == "mnist-warped":
            rendered = geometry.warp(np.stack([to_uint8(x)[0] for x in truth.images]))
            np.testing.assert_array_equal(rendered, np.stack([to_uint8(x)[0] for x in b.images]))
    if "a2b" in pair.truth:
        truth = load_split(data, geometry.TRUTH_DIRS["a2b"], pair.channels)
        rendered = geometry.warp(np.stack([to_uint8(x)[0] for x in a.images]))
        np.testing.assert_array_equal(rendered, np.stack([to_uint8(x)[0] for x in truth.images]))


def test_variants_are_data_and_every_override_fits_its_method() -> None:
    assert [v for v in geometry.VARIANTS] == [
        "do-nothing", "target-mean", "cyclegan", "gcgan-rot", "gcgan-vflip", "distancegan-pairwise",
        "distancegan-self", "munit", "transgaga", "transgaga-equiv", "transgaga-shared", "transgaga-affine",
    ]  # fmt: skip
    for variant, pair in geometry.all_cells():
        if variant.method is None:
            assert variant.baseline is not None
            continue
        preset = load_method(variant.method).presets[geometry.PRESET]
        cfg = apply_overrides(preset.config, variant.settings(pair, geometry.STEPS))  # unknown keys raise
        assert (cfg.arch.channels_a, cfg.data.crop_size, cfg.data.flip) == (pair.channels, 32, False)
    staged = apply_overrides(
        load_method("transgaga").presets[geometry.PRESET].config,
        geometry.VARIANTS["transgaga"].settings(geometry.PAIRS["mnist-warped"], geometry.STEPS),
    )
    # Every stage is non-empty within the shared budget, as in cpu-small's 1500 + 200 of 3000.
    assert 0 < staged.steps_disentangle and 0 < staged.steps_pca
    assert staged.translate_start < geometry.STEPS
    assert load_method("transgaga").budget_overrides(3) == ("steps_disentangle=1", "steps_pca=1", "sep_warmup_steps=1")
    assert load_method("cyclegan").budget_overrides(3) == ()
    assert {p.name for v, p in geometry.all_cells() if v.name == "transgaga"} == {"mnist-warped"}
    with pytest.raises(SystemExit, match="unknown variant 'pix2pix'"):
        geometry.select_cells("pix2pix", None, None)
    chosen = geometry.select_cells(None, None, "munit:mnist-warped,do-nothing:mnist-mnistm")
    assert [(v.name, p.name) for v, p in chosen] == [("munit", "mnist-warped"), ("do-nothing", "mnist-mnistm")]


def test_the_domain_judge_sees_the_same_digits_rendered_both_ways() -> None:
    pair = geometry.PAIRS["mnist-warped"]
    images, labels = geometry.domain_data(pair, "test", small=True)
    n = len(images) // 2
    assert images.shape == (2 * n, 32, 32) and images.dtype == np.uint8
    assert labels.tolist() == [0] * n + [1] * n
    # Domain b is domain a's digit warped: the same digits, rendered the other way.
    np.testing.assert_array_equal(images[n:], geometry.warp(images[:n]))


def test_check_shape_names_what_is_missing() -> None:
    pair = geometry.PAIRS["mnist-mnistm"]
    cells = [(geometry.VARIANTS["gcgan-rot"], pair), (geometry.VARIANTS["cyclegan"], pair)]

    def direction(name: str, metrics: dict[str, float]) -> dict:
        return {"direction": name, "n": 4, "metrics": metrics, "reference": {}}

    results = {"cells": {"gcgan-rot:mnist-mnistm": {"directions": [direction("a2b", {"class-kept": 0.5})]}}}
    assert geometry.check_shape(results, cells) == [
        "gcgan-rot:mnist-mnistm a2b: lacks ['fid-digits-mnistm']",
        "cyclegan:mnist-mnistm: missing",
    ]
    full = {"class-kept": 0.5, "fid-digits-mnist": 1.0, "psnr": 9.0, "ssim": 0.1}
    results["cells"]["cyclegan:mnist-mnistm"] = {"directions": [direction("b2a", full)]}  # a2b is missing
    assert geometry.check_shape(results, cells[1:]) == ["cyclegan:mnist-mnistm: needs a2b and b2a with images, got ['b2a']"]


def test_smoke_builds_the_whole_table_and_a_second_run_trains_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.process_time()  # CPU time: other jobs on the shared machine do not count
    assert geometry.main(["--smoke", "--work", str(tmp_path)]) == 0
    assert time.process_time() - start < 60
    results = json.loads((tmp_path / "geometry.json").read_text())
    assert geometry.check_shape(results, geometry.all_cells()) == []
    assert set(results["cells"]) == {geometry.cell_key(v.name, p.name) for v, p in geometry.all_cells()}
    trained = [c for c in results["cells"].values() if c["method"]]
    assert {(c["steps"], c["batch_size"]) for c in trained} == {(geometry.SMOKE_STEPS, geometry.BATCH)}
    assert read_block(tmp_path / "RESULTS.md", geometry.BLOCK) == geometry.render_section(results)
    for pair in geometry.PAIRS:
        assert (tmp_path / "figures" / f"samples-{pair}-a2b.png").is_file()
        assert {f"digits-{geometry.PAIRS[pair].domains[1]}", f"domain-{pair}"} <= set(results["judges"][pair])
    # Every direction is also judged by the domain judge (a share of the translations).
    assert all(0 <= d["metrics"]["looks-like-target"] <= 1 for c in results["cells"].values() for d in c["directions"])
    # TransGaGa cells draw their landmarks (input beside its translation, 8 rows), and only they do.
    for key, cell in results["cells"].items():
        for d in cell["directions"]:
            strip = tmp_path / "figures" / "cells" / cell["pair"] / d["direction"] / cell["variant"] / "landmarks.png"
            assert d.get("landmarks", False) == (cell["method"] == "transgaga") == strip.is_file(), key
            if strip.is_file():
                from PIL import Image

                w, h = Image.open(strip).size
                assert h == geometry.SAMPLE_ROWS * 4 * 32 and w == 2 * 4 * 32 + 4
    # The baselines score what they are: do-nothing returns the plain digit, far from its inverted
    # truth; the mean page is much closer in PSNR while keeping no digit's shape.
    plain = geometry._dirs(results["cells"]["do-nothing:mnist-warped"])["a2b"]["metrics"]
    mean = geometry._dirs(results["cells"]["target-mean:mnist-warped"])["a2b"]["metrics"]
    assert plain["psnr"] < 5 < plain["psnr"] + 5 < mean["psnr"]
    capsys.readouterr()

    assert geometry.main(["--smoke", "--work", str(tmp_path)]) == 0
    log = capsys.readouterr().out
    assert "training" not in log and log.count("done earlier, skipped") == len(geometry.all_cells())
    assert json.loads((tmp_path / "geometry.json").read_text()) == results


def test_committed_results_fill_the_table() -> None:
    results = json.loads(geometry.RESULTS.read_text(encoding="utf-8"))
    cells = [(v, p) for v, p in geometry.all_cells() if geometry.cell_key(v.name, p.name) in results["cells"]]
    assert {p.name for _, p in cells} >= {"mnist-warped"}  # the pair with truth both ways ran first
    assert geometry.check_shape(results, cells) == []
    for cell in results["cells"].values():
        if cell["method"]:
            assert (cell["steps"], cell["batch_size"], cell["preset"]) == (geometry.STEPS, geometry.BATCH, "cpu-small")
            assert cell["train_cpu_seconds"] < 15 * 60  # the per-cell cap, in CPU time of one thread
            assert cell["machine"]["threads"] == 1
    assert read_block(geometry.MARKDOWN, geometry.BLOCK) == geometry.render_section(results)
    assert read_block(geometry.README, "geometry-summary") == geometry.readme_table(results)


def test_seeds_are_cells_of_their_own_and_the_tables_show_their_mean_and_sd(tmp_path: Path) -> None:
    cells = "do-nothing:mnist-warped,cyclegan:mnist-warped"
    assert geometry.main(["--smoke", "--work", str(tmp_path), "--cells", cells, "--seeds", "0,1"]) == 0
    results = json.loads((tmp_path / "geometry.json").read_text())
    # The baseline has no seed (one cell); the trained variant one cell and one run folder per seed.
    assert set(results["cells"]) == {"do-nothing:mnist-warped", "cyclegan:mnist-warped", "cyclegan:mnist-warped@seed1"}
    seed1 = results["cells"]["cyclegan:mnist-warped@seed1"]
    assert seed1["seed"] == 1 and seed1["command"].endswith("--cells cyclegan:mnist-warped --seeds 1")
    assert (tmp_path / "runs" / f"cyclegan-mnist-warped-{geometry.SMOKE_STEPS}-seed1" / "model").is_dir()
    assert (tmp_path / "figures" / "cells" / "mnist-warped" / "a2b" / "cyclegan-seed1" / "output.png").is_file()
    # Fill in known values: the several-seeds table and the README copy show mean ± sample sd.
    for key, kept in (("cyclegan:mnist-warped", 0.6), ("cyclegan:mnist-warped@seed1", 0.8)):
        geometry._dirs(results["cells"][key])["a2b"]["metrics"]["class-kept"] = kept
    section = geometry.render_section(results)
    assert "| cyclegan | 0, 1 | 70.0% ± 14.1% |" in section
    assert "- cyclegan class kept per seed: seed 0: a2b 60.0%" in section
    assert "| cyclegan | 0, 1 | 70.0% ± 14.1% |" in geometry.readme_table(results)
    assert "| do-nothing | – |" in geometry.readme_table(results)
    # Asking for seed 1 again finds its cell (and no seed-1 baseline is made).
    before = json.loads((tmp_path / "geometry.json").read_text())
    assert geometry.main(["--smoke", "--work", str(tmp_path), "--cells", cells, "--seeds", "1"]) == 0
    assert json.loads((tmp_path / "geometry.json").read_text()) == before


@pytest.mark.parametrize("seeds", ["0,x", "1,-2", ","])
def test_a_bad_seed_list_is_a_usage_error_before_any_work(seeds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        geometry.main(["--smoke", "--work", str(tmp_path / "w"), "--seeds", seeds])
    assert exit_info.value.code == 2 and "argument --seeds" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("script", ["quality", "adaptation"])
def test_the_other_benchmarks_refuse_a_bad_seed_list_the_same_way(script: str, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib

    module = importlib.import_module(script)  # benchmarks/<script>.py, on the path through conftest
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--seeds", "1,x", "--report"])
    assert exit_info.value.code == 2 and "argument --seeds: '1,x': give comma-separated integers" in capsys.readouterr().err

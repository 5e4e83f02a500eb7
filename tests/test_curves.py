"""The learning-curve benchmark: its --smoke run, the validation split it carves, that scoring
checkpoints leaves training unchanged, and RESULTS.md against the committed JSON."""

from __future__ import annotations

import json
from pathlib import Path

import curves  # benchmarks/curves.py, on the path through conftest
import pytest
import torch
from results_md import read_block

from i2icli.losses import low_pass_l1


def test_results_md_block_is_generated_from_the_curves_json() -> None:
    results = json.loads(curves.RESULTS.read_text(encoding="utf-8"))  # committed: a missing file fails
    block = read_block(curves.MARKDOWN, "curves")
    assert block == curves.render_results(results)
    # Every table is unbroken: its header row, separator and rows are consecutive lines.
    lines = block.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and lines[i + 1].strip():
            assert lines[i + 1].startswith("|"), f"a table is broken after: {line[:60]}"


def test_smoke_scores_every_checkpoint_on_a_validation_split_and_resumes(tmp_path: Path) -> None:
    assert curves.main(["--smoke", "--work", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "curves.json").read_text())
    assert curves.check_smoke(results) == []
    (run,) = results["runs"].values()
    assert "finished" in run and run["n_val"] == curves.SMOKE_VAL
    # Class kept is read by the dataset's content judge, and the do-nothing row is kept under its name.
    assert run["class_kept_judge"] == "digits"
    assert set(results["baselines"][curves.baseline_key("mnist-uci-digits", "digits")]["directions"]) == {"a2b", "b2a"}
    assert "kept-as-target" in results["baselines"][curves.baseline_key("mnist-uci-digits", "digits")]["directions"]["a2b"]
    assert read_block(tmp_path / "RESULTS.md", "curves") == curves.render_results(results)
    assert (tmp_path / run["samples"]).is_file()  # inputs above each scored step's translations
    # The validation images were taken out of the training folders, and the test split is not there.
    carved = tmp_path / "curves-data" / "mnist-uci-digits" / f"val{curves.SMOKE_VAL}"
    for train, val in (("trainA", "testA"), ("trainB", "testB")):
        held = {p.name for p in (carved / "val" / val).iterdir()}
        kept = {p.name for p in (carved / "train" / train).iterdir()}
        assert len(held) == curves.SMOKE_VAL and kept and not held & kept
        assert len((carved / "val" / f"{val}_labels.csv").read_text().splitlines()) == curves.SMOKE_VAL + 1
    assert not (carved / "train" / "testA").exists()
    # A second run trains and scores nothing more.
    assert curves.main(["--smoke", "--work", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "curves.json").read_text())["runs"] == results["runs"]

    # Scoring checkpoints mid-run does not change training: a plain run of the same spec ends with the same weights.
    from i2icli.runs.run import run
    from i2icli.runs.spec import read_spec
    from i2icli.train.state import load_training_state

    scored_dir = tmp_path / "curves-runs" / f"cyclegan-small-mnist-uci-digits-{curves.SMOKE_STEPS}"
    plain_dir = tmp_path / "plain"
    run(read_spec(scored_dir), plain_dir, torch.device("cpu"), log=lambda line: None)
    name = f"step_{curves.SMOKE_STEPS:08d}.pt"
    scored = load_training_state(scored_dir / "checkpoints" / name, torch.device("cpu"))["modules"]
    plain = load_training_state(plain_dir / "checkpoints" / name, torch.device("cpu"))["modules"]
    for module, state in plain.items():
        for key, value in state.items():
            assert torch.equal(value, scored[module][key]), (module, key)


def test_unknown_variant_is_one_line() -> None:
    with pytest.raises(SystemExit, match="unknown variant 'nope'"):
        curves.main(["--runs", "nope:mnist-uci-digits", "--list"])


def test_low_pass_l1_compares_layout_not_texture() -> None:
    torch.manual_seed(0)
    x = torch.zeros(2, 1, 8, 8)
    x[:, :, 2:6, 2:6] = 1.0
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 0.2 - 0.1  # zero-mean in every 2x2
    assert float(low_pass_l1(x + checker, x, 2)) < 1e-6  # texture below the pooling scale is ignored
    assert float(low_pass_l1(x.expand(-1, 3, -1, -1), x, 4)) < 1e-6  # channel counts may differ
    moved = torch.roll(x, 3, dims=3)
    assert float(low_pass_l1(moved, x, 2)) > 0.1  # a moved shape is not


def test_a_seeded_run_trains_with_its_seed_under_its_own_key(tmp_path: Path) -> None:
    results = curves.run_curves(
        curves._select("cyclegan-small:mnist-uci-digits"), steps=curves.SMOKE_STEPS, every=curves.SMOKE_EVERY,
        n_val=curves.SMOKE_VAL, work=tmp_path, results_path=tmp_path / "curves.json", markdown=tmp_path / "RESULTS.md",
        figure=tmp_path / "figures" / "curves.png", smoke=True, seed=3,
    )  # fmt: skip
    key = curves.run_key("cyclegan-small", "mnist-uci-digits", curves.SMOKE_STEPS, 3)
    assert list(results["runs"]) == [key] and key.endswith("@seed3")
    assert curves.run_key("cyclegan-small", "mnist-uci-digits", curves.SMOKE_STEPS) == key.removesuffix("@seed3")
    record = results["runs"][key]
    assert record["seed"] == 3 and record["command"].endswith("--seed 3")
    spec = json.loads((tmp_path / "curves-runs" / f"cyclegan-small-mnist-uci-digits-{curves.SMOKE_STEPS}-seed3" / "run.json").read_text())
    assert spec["spec"]["loop"]["seed"] == 3


def test_synthetic_validation_split_carries_the_true_translation(tmp_path: Path) -> None:
    """The synthetic pair's validation truths (testB_paired) are the domain-B renderings of the very
    digits the held-out trainA images show: the same source index renders back to the trainA file."""
    import numpy as np
    from PIL import Image
    from quality import BENCHMARKS, SMOKE_TRAIN, _small_even

    from i2icli.data.builders import render_synthetic
    from i2icli.data.layout import PAIRED_DIR
    from i2icli.data.shipped import load_mnist

    bench = BENCHMARKS["synthetic-colored-digits"]
    full = tmp_path / "data"
    bench.build_small(full, SMOKE_TRAIN, 4)
    assert bench.train_truth is not None
    _, val = curves.carve_validation(full, tmp_path / "carved", 4, truth=lambda names: bench.train_truth(names, True))
    held = sorted(p.name for p in (val / "testA").iterdir())
    assert sorted(p.name for p in (val / PAIRED_DIR).iterdir()) == held
    digits, _ = load_mnist("train")
    source = _small_even(len(digits), SMOKE_TRAIN)[[int(Path(n).stem) for n in held]]
    as_a = render_synthetic(digits[source], source, "A")
    for name, image in zip(held, as_a):
        np.testing.assert_array_equal(np.asarray(Image.open(val / "testA" / name)), image)
        truth = np.asarray(Image.open(val / PAIRED_DIR / name))
        assert truth.shape == (32, 32, 3) and not np.array_equal(truth, image)  # recoloured, on a texture
    # The full build (what the benchmark trains on): trainA/{i:05d}.png shows train digit 2i, so its
    # truth is digit 2i rendered as B.
    from i2icli.data.builders import build_synthetic

    build_synthetic(tmp_path / "whole", None)
    names = ["00000.png", "00003.png", "01999.png"]
    source = np.array([0, 6, 3998])
    for name, image in zip(names, render_synthetic(digits[source], source, "A")):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "whole" / "trainA" / name)), image)
    np.testing.assert_array_equal(bench.train_truth(names, False), render_synthetic(digits[source], source, "B"))

"""The embedded geometry defaults (weights/make_*_digits.py through weights/geometry_default.py):
pinned in the registry, small, their cards carry the measured figures, and they translate their
shipped examples towards the known true answer."""

from __future__ import annotations

import json
from pathlib import Path

import geometry  # benchmarks/geometry.py: the pair the defaults were trained on
import numpy as np
import pytest
from conftest import REPO
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.registry import PRETRAINED
from i2icli.sources import fetch, resolve

NAMES = [name for name in ("distancegan-digits", "transgaga-digits") if name in PRETRAINED]
MAX_BYTES = 4 * 1024 * 1024


@pytest.mark.parametrize("name", NAMES)
def test_registry_entry_is_pinned_small_and_its_card_has_the_measured_figures(name: str) -> None:
    from i2icli.checkpoint import read_config

    entry = PRETRAINED[name]
    path = fetch(resolve(name))  # checks the pinned sha256
    assert entry.sha256 is not None and entry.local == f"{name}/model.safetensors"
    assert path.stat().st_size <= MAX_BYTES
    config = read_config(path)
    assert (config.method, config.domains, config.image_size) == (entry.method, entry.domains, 32)
    assert (config.arch["channels_a"], config.arch["channels_b"]) == (1, 1)
    figures = json.loads((path.parent / "metrics.json").read_text())
    card = (path.parent / "README.md").read_text()
    from i2icli.eval.catalogue import format_metric

    for direction in config.arch.get("directions", ["a2b", "b2a"]):
        rows = figures["directions"][direction]["metrics"]
        assert set(rows) == {name, "do-nothing", "target-mean"}
        for key in ("class-kept", "looks-like-target", "psnr", "ssim"):
            assert f"| {name} | " in card and format_metric(key, rows[name][key]) in card
        # What the card claims to have measured: the model beats doing nothing on every metric.
        assert rows[name]["class-kept"] > rows["do-nothing"]["class-kept"] or rows["do-nothing"]["class-kept"] > 0.9
        assert rows[name]["psnr"] > rows["do-nothing"]["psnr"]


def test_embedded_weights_stay_under_30_mb() -> None:
    total = sum(p.stat().st_size for p in (REPO / "weights").rglob("*") if p.is_file())
    assert total <= 30 * 1024 * 1024


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert (image.mode, image.size) == ("L", (32, 32)), path
        return np.asarray(image, dtype=np.float64)


@pytest.mark.parametrize("name", NAMES)
def test_translates_its_examples_towards_their_true_warped_counterparts(name: str, tmp_path: Path) -> None:
    examples = sorted((REPO / "examples" / name).glob("*.png"))
    assert len(examples) == 10 and len({p.read_bytes() for p in examples}) == 10
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["translate", str(REPO / "examples" / name), "--model", name, "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    inputs = np.stack([_pixels(p) for p in examples])  # (10, 32, 32) plain digits, 0-255
    outputs = np.stack([_pixels(out / p.name) for p in examples])
    truths = geometry.warp(inputs.astype(np.uint8)).astype(np.float64)  # the known a -> b answer
    # Far nearer to the truth than the untranslated input (dark ink on light paper, like the truth).
    assert np.abs(outputs - truths).mean() < 0.25 * np.abs(inputs - truths).mean()
    # Each output depends on its input: not one page for every digit.
    assert np.abs(outputs - outputs.mean(axis=0)).mean() > 5
    # The same examples translate to the same bytes.
    again = tmp_path / "again"
    CliRunner().invoke(app, ["translate", str(examples[0]), "--model", name, "-o", str(again), "--device", "cpu"])
    assert (again / examples[0].name).read_bytes() == (out / examples[0].name).read_bytes()

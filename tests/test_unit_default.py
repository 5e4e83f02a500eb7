"""The embedded UNIT model ``unit-digits``: pinned in the registry, small, its examples, its card's
figures, and ``i2i translate`` / ``interpolate`` with it (weights/make_unit_digits.py makes it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import REPO
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.registry import PRETRAINED
from i2icli.sources import fetch, resolve

runner = CliRunner()
NAME = "unit-digits"
EXAMPLES = REPO / "examples" / NAME
CARD = REPO / "weights" / NAME
MAX_BYTES = 4 * 1024 * 1024


def _pixels(path: Path, side: int | None = None) -> np.ndarray:
    """(H, W) in [-1, 1]; ``side``: resized (bicubic) to side x side first."""
    from PIL import Image

    image = Image.open(path).convert("L")
    if side is not None:
        image = image.resize((side, side), Image.BICUBIC)
    return np.asarray(image, dtype=np.float64) / 127.5 - 1.0


def test_registry_entry_is_pinned_small_and_the_master_network_at_32px() -> None:
    from i2icli.checkpoint import read_config

    entry = PRETRAINED[NAME]
    assert (entry.method, entry.domains, entry.local, entry.image_size) == ("unit", ("mnist", "uci"), f"{NAME}/model.safetensors", 28)
    path = fetch(resolve(NAME))  # checks the pinned sha256
    assert entry.sha256 is not None and path.stat().st_size <= MAX_BYTES
    config = read_config(path)
    assert config.method == "unit" and config.domains == ("mnist", "uci")
    assert config.arch["variant"] == "master" and (config.arch["channels_a"], config.arch["channels_b"]) == (1, 1)
    assert config.image_size == 32  # 28 px digits resized to the recipe's smallest size for training


def test_examples_are_distinct_gray_28px_digits_of_both_domains() -> None:
    from PIL import Image

    files = sorted(EXAMPLES.rglob("*.png"))
    assert {f.name.split("_")[0] for f in files} == {"mnist", "uci"} and len(files) == 10
    for f in files:
        with Image.open(f) as image:
            assert (image.mode, image.size) == ("L", (28, 28)), f
    assert len({f.read_bytes() for f in files}) == len(files)


def test_card_shows_the_measured_figures() -> None:
    figures = json.loads((CARD / "metrics.json").read_text())
    card = (CARD / "README.md").read_text()
    for direction in ("a2b", "b2a"):
        for who in ("model", "do-nothing"):
            assert f"{figures[f'{direction}:{who}:class-kept']:.1%}" in card
            assert f"{figures[f'{direction}:{who}:fid']:.1f}" in card


def test_translate_both_ways_changes_the_digits_deterministically(tmp_path: Path) -> None:
    for domain, direction in (("mnist", "a2b"), ("uci", "b2a")):
        inputs = sorted(EXAMPLES.rglob(f"{domain}_*.png"))
        outs = []
        for run in ("first", "again"):
            out = tmp_path / f"{direction}-{run}"
            args = ["translate", *map(str, inputs), "--model", NAME, "--direction", direction, "-o", str(out), "--device", "cpu"]
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            outs.append(sorted(out.iterdir()))
        assert [p.name for p in outs[0]] == [p.name for p in outs[1]] and len(outs[0]) == len(inputs)
        for first, again, source in zip(outs[0], outs[1], inputs):
            assert first.read_bytes() == again.read_bytes()  # no noise at inference
            translated, original = _pixels(first), _pixels(source, 32)
            assert translated.shape == (32, 32)  # --size auto: the 32 px training scale
            assert np.abs(translated - original).mean() > 0.02  # restyled, not copied


def test_interpolate_between_two_examples(tmp_path: Path) -> None:
    first, second = sorted(EXAMPLES.glob("mnist_*.png"))[:2]
    out = tmp_path / "walk"
    args = ["interpolate", str(first), str(second), "--model", NAME, "--steps", "4", "-o", str(out), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    frames = sorted(out.glob("*_f*.png"))
    assert len(frames) == 4 and np.abs(_pixels(frames[0]) - _pixels(frames[-1])).mean() > 0.05

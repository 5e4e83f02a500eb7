"""The embedded MNIST <-> UCI models made with a working recipe: on their own benchmark (the whole
held-out test split, figures measured and written by weights/make_<name>.py) each beats doing
nothing by at least 20 points on "kept and looks like target" in every direction it translates and
its card shows it beside do-nothing and is judged as the target at least 95% of the time."""

from __future__ import annotations

import json

import pytest
from conftest import REPO

from i2icli.checkpoint import read_config

WORKING = ("cyclegan-digits", "gcgan-digits", "unit-digits")
MARGIN, LOOKS = 0.20, 0.95


@pytest.mark.parametrize("name", WORKING)
def test_card_shows_the_margin_over_doing_nothing(name: str) -> None:
    folder = REPO / "weights" / name
    figures = json.loads((folder / "metrics.json").read_text())
    card = (folder / "README.md").read_text()
    directions = read_config(folder / "model.safetensors").arch.get("directions", ["a2b", "b2a"])
    for d in directions:
        model, base = figures[f"{d}:model:kept-as-target"], figures[f"{d}:do-nothing:kept-as-target"]
        looks = figures[f"{d}:model:looks-like-target"]
        assert model - base >= MARGIN, (name, d, model, base)
        assert looks >= LOOKS, (name, d, looks)
        row = f"| kept and looks like target (higher is better) | {model:.1%} | {base:.1%} |"
        assert row in card, (name, d)
        assert f"| looks like target (higher is better) | {looks:.1%} |" in card, (name, d)

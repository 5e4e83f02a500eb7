"""benchmarks/judge_ceiling.py: its rendering is the UCI rendering, and its block comes from its JSON."""

from __future__ import annotations

import json

import numpy as np
from conftest import REPO
from judge_ceiling import BLOCK, MARKDOWN, RESULTS, render
from results_md import read_block

from i2icli.data.shipped import load_mnist, load_uci, mnist_in_uci_style


def test_the_oracle_rendering_keeps_uci_digits_and_changes_mnist_digits() -> None:
    # A UCI digit is already in the UCI rendering: rendering it again only re-blurs and rounds it
    # (7.5 levels mean when written), far less than it changes an MNIST digit (20.4).
    def change(images: np.ndarray) -> float:
        again = mnist_in_uci_style(images, fill=False, gain=1.0)
        assert again.shape == images.shape and again.dtype == np.uint8
        return float(np.abs(again.astype(float) - images.astype(float)).mean())

    uci, mnist = change(load_uci("test")[0][:50]), change(load_mnist("test")[0][:50])
    assert uci < 10 and mnist > 2 * uci, (uci, mnist)


def test_committed_block_is_rendered_from_the_committed_json() -> None:
    record = json.loads(RESULTS.read_text(encoding="utf-8"))
    assert read_block(MARKDOWN, BLOCK) == render(record).strip("\n") + "\n"
    for d in record["directions"].values():
        rows = d["class kept"]
        assert "do-nothing" in rows and all(0 <= v <= 1 for row in rows.values() for v in row.values())
        oracles = [row for k, row in rows.items() if k.startswith("oracle: ") and "ink x1.0" in k]
        # The point of the block: the content judge reads the style-perfect renderings, the target judge does not.
        assert all(row["content judge (digits)"] > row["target judge"] + 0.2 for row in oracles)
    assert str(REPO) not in RESULTS.read_text(encoding="utf-8")

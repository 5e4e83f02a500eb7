"""benchmarks/transgaga_stages.py: the true-map probe, its --smoke run and its RESULTS.md block."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import transgaga_stages as stages  # benchmarks/, on the path through conftest
from results_md import read_block


def test_warp_matrix_moves_a_point_where_the_pair_draws_it() -> None:
    """A bright dot of a plain digit lands, in the warped rendering, where ``warp_matrix`` puts it."""
    from geometry import PAIRS

    image = np.zeros((1, 32, 32), np.uint8)
    image[0, 9:12, 21:24] = 255  # a dot right of and above the centre: (x, y) = (22, 10) px
    warped = 255.0 - PAIRS["mnist-warped"].render_b(image, np.array([0]), "test")[0].astype(np.float64)
    ys, xs = np.mgrid[:32, :32]
    found = np.array([(warped * xs).sum(), (warped * ys).sum()]) / warped.sum()  # ink centre, px
    point = torch.tensor([22.0, 10.0]) / 15.5 - 1  # grid units, ±1 at the edges
    moved = (stages.warp_matrix() @ point + 1) * 15.5
    assert np.abs(moved.numpy() - found).max() < 0.6


def test_smoke_measures_every_column_and_the_block_is_its_json(tmp_path: Path) -> None:
    assert stages.main(["--smoke", "--work", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "transgaga_stages.json").read_text())
    (record,) = results["runs"].values()
    assert [p["step"] for p in record["curve"]] == [0, 3, 6]
    for point in record["curve"]:
        for key, _, _ in stages.COLUMNS:
            assert len(point[key]) == 2 and all(np.isfinite(point[key]))
    assert record["stages"]["pca"] < record["stages"]["translate"] <= stages.SMOKE_STEPS
    assert read_block(tmp_path / "RESULTS.md", stages.BLOCK) == stages.render(results)
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_committed_block_is_written_from_the_committed_json() -> None:
    results = json.loads(stages.RESULTS.read_text(encoding="utf-8"))
    assert results["runs"], "no recorded run"
    for record in results["runs"].values():
        assert record["steps"] == stages.STEPS and record["n"] == stages.N_TEST
        assert record["machine"]["threads"] == 1
    assert read_block(stages.MARKDOWN, stages.BLOCK) == stages.render(results)

"""benchmarks/transgaga_stages.py: the true-map probe, its --smoke run and its RESULTS.md block."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
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


@pytest.mark.parametrize("setting", ["no_such_key=1", "equiv_w=-1"])
def test_a_bad_set_is_one_usage_line_before_any_folder(setting: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    with pytest.raises(SystemExit) as stop:
        stages.main(["--smoke", "--work", str(work), "--set", setting])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "error: --set:" in err[-1] and setting.split("=")[0] in err[-1]
    assert "Traceback" not in "\n".join(err) and not work.exists()


def test_scripts_show_a_library_error_as_one_line(tmp_path: Path) -> None:
    """A benchmark whose run folder holds another recipe (``run_or_resume``'s refusal) exits with
    the error's code and one line, no traceback."""
    import subprocess
    import sys

    from conftest import REPO

    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); from entry import run_script\n"
        "from i2icli.errors import UsageError\n"
        "def main():\n    raise UsageError('runs/x: holds a run of another recipe (config.a differ)')\n"
        "run_script(main)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: runs/x: holds a run of another recipe (config.a differ)"]

"""benchmarks/adaptation.py: the gap-closed formula over seed means, the seed keys, the mean ± sd
table, notes from the JSON, and a --smoke run of every cell (<= 60 s)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import adaptation  # noqa: E402


def _cells(accuracies: dict[str, list[float]], direction: str = "mnist-uci") -> dict[str, dict[str, object]]:
    """Cells of one direction, seed i of a kind holding its i-th accuracy."""
    return {
        adaptation.cell_key(direction, kind, seed): {
            "accuracy": acc,
            "seconds": 10.0 + seed,
            "cpu_seconds": 5.0,
            "load": [1.0, 2.0],
        }
        for kind, values in accuracies.items()
        for seed, acc in enumerate(values)
    }


def test_gap_closed_by_hand() -> None:
    cells = _cells({k: [v] for k, v in zip(adaptation.KINDS, (0.6, 0.75, 0.9))})
    assert adaptation.gap_closed(cells, "mnist-uci") == pytest.approx(0.5)
    assert adaptation.gap_closed(cells, "uci-mnist") is None  # missing cells: no figure


def test_seed_keys_and_gap_from_means() -> None:
    assert adaptation.cell_key("mnist-uci", "unit", 0) == "mnist-uci:unit"  # the key before seeds existed
    assert adaptation.cell_key("uci-mnist", "oracle", 2) == "uci-mnist:oracle@seed2"
    assert (
        adaptation.budget_key("da32-cpu", 800, ["cls_trans_w=0", "optim.lr=0.0005"])
        == "da32-cpu:800:cls_trans_w=0:optim.lr=0.0005"
    )
    # Seeds 10 and 11 share the prefix "1": each must be read as its own seed.
    cells = {adaptation.cell_key("mnist-uci", "unit", s): {"accuracy": 0.5} for s in (0, 1, 10, 11)}
    assert adaptation.seeds_of(cells, "mnist-uci", "unit") == [0, 1, 10, 11]
    assert adaptation.seeds_of(cells, "mnist-uci", "oracle") == []
    cells = _cells({"source-only": [0.6, 0.7], "unit": [0.7, 0.8, 0.9], "oracle": [0.9, 1.0]})
    mean, sd, n = adaptation.summary(cells, "mnist-uci", "unit")  # type: ignore[misc]
    assert (mean, sd, n) == (pytest.approx(0.8), pytest.approx(statistics.stdev([0.7, 0.8, 0.9])), 3)
    # The gap pairs the seeds all three kinds have (0 and 1), not the unit cell's third seed.
    assert adaptation.common_seeds(cells, "mnist-uci") == [0, 1]
    assert adaptation.gap_closed(cells, "mnist-uci") == pytest.approx((0.75 - 0.65) / (0.95 - 0.65))


def test_table_shows_mean_sd_and_notes(tmp_path: Path) -> None:
    cells = _cells({"source-only": [0.6, 0.7, 0.8], "unit": [0.75, 0.85, 0.95], "oracle": [0.9, 1.0]})
    budget = {"steps": 800, "batch": 16, "preset": "da32-cpu", "overrides": ["cls_trans_w=0"], "command": "python x.py --set cls_trans_w=0",
              "machine": {"cpu": "test cpu", "threads": 1, "python": "3", "torch": "2"}, "cells": cells}  # fmt: skip
    key = adaptation.budget_key("da32-cpu", 800, ["cls_trans_w=0"])
    results = {"format": adaptation.FORMAT, "budgets": {key: budget}, "notes": {key: "NOTE-A", adaptation.GENERAL: "NOTE-B"}}
    text = adaptation.render(results)
    row = next(line for line in text.splitlines() if line.startswith("| mnist-uci |"))
    sd = statistics.stdev([0.6, 0.7, 0.8])
    assert (
        f"| 0,1,2 | 0.7000 ± {sd:.4f} | 0.8500 ± {sd:.4f} | 0.9500 ± {statistics.stdev([0.9, 1.0]):.4f} (n=2) | 0.50 (seeds 0,1) |"
        in row
    )
    assert "| uci-mnist | - | - | - | - | - |" in text  # nothing measured there
    assert "set `cls_trans_w=0`" in text and "--seeds 0,1,2" in text
    assert text.index("NOTE-A") < text.index("| mnist-uci |") < text.index("NOTE-B")


def test_trajectory_line_averages_each_step_over_seeds() -> None:
    cells = _cells({"unit": [0.7, 0.8, 0.9]})
    for seed, points in enumerate(([0.5, 0.7], [0.6, 0.8], [])):
        cells[adaptation.cell_key("mnist-uci", "unit", seed)]["trajectory"] = [
            {"step": step, "accuracy": acc} for step, acc in zip((640, 800), points)
        ]
    assert adaptation.trajectory_line(cells, "mnist-uci") == "mnist-uci 0.5500 (640) / 0.7500 (800)"
    assert adaptation.trajectory_line(cells, "uci-mnist") is None


def test_markdown_block_is_replaced_not_appended(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nquality table\n")
    adaptation.write_markdown(md, "first")
    adaptation.write_markdown(md, "second")
    text = md.read_text()
    assert "quality table" in text and "second" in text and "first" not in text and text.count("<!-- adaptation:begin -->") == 1


def test_smoke_runs_every_cell() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "adaptation.py"), "--smoke", "--seeds", "1", "--set", "cls_trans_w=0"],
        capture_output=True, text=True, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    folder = Path(out.stdout.strip().splitlines()[-1].split(" in ", 1)[1])
    results = json.loads((folder / "adaptation.json").read_text())
    ((key, budget),) = results["budgets"].items()
    assert key == f"{adaptation.PRESET}:{adaptation.SMOKE['steps']}:cls_trans_w=0"
    assert (budget["steps"], budget["preset"], budget["overrides"]) == (
        adaptation.SMOKE["steps"],
        adaptation.PRESET,
        ["cls_trans_w=0"],
    )
    assert set(budget["cells"]) == {f"{d}:{k}@seed1" for d in adaptation.DIRECTIONS for k in adaptation.KINDS}
    assert all(0.0 <= c["accuracy"] <= 1.0 and c["cpu_seconds"] >= 0 for c in budget["cells"].values())
    assert "| mnist-uci | 1 |" in (folder / "RESULTS.md").read_text()
    # Each UNIT cell keeps its classifier's confusion matrix (rows: true digit), drawn from the JSON.
    for direction in adaptation.DIRECTIONS:
        confusion = budget["cells"][f"{direction}:unit@seed1"]["confusion"]
        assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
        correct = sum(confusion[i][i] for i in range(10)) / sum(map(sum, confusion))
        assert correct == pytest.approx(budget["cells"][f"{direction}:unit@seed1"]["accuracy"])
        assert (folder / "figures" / adaptation.confusion_name(key, direction, 1)).is_file()
        # ... and the accuracy at each checkpoint its run kept, the last one the cell's own.
        trajectory = budget["cells"][f"{direction}:unit@seed1"]["trajectory"]
        steps = [p["step"] for p in trajectory]
        assert steps == sorted(steps) and steps[-1] == adaptation.SMOKE["steps"] and len(steps) >= 2
        assert trajectory[-1]["accuracy"] == pytest.approx(budget["cells"][f"{direction}:unit@seed1"]["accuracy"])
    text = (folder / "RESULTS.md").read_text()
    assert "Confusion matrices of the adapted classifiers" in text and "UNIT's accuracy at the checkpoints" in text


def test_bad_override_fails_before_training() -> None:
    with pytest.raises(SystemExit, match="no_such_weight"):
        adaptation.main(["--smoke", "--set", "no_such_weight=1"])


def test_baselines_of_the_same_classifier_are_copied_not_retrained(tmp_path: Path) -> None:
    def budget(overrides: list[str], cells: dict[str, object]) -> dict[str, object]:
        return {"steps": 800, "batch": 16, "preset": adaptation.PRESET, "overrides": overrides, "machine": {"flags": "avx2"},
                "cells": cells}  # fmt: skip

    measured = {"accuracy": 0.75, "seconds": 1.0, "cpu_seconds": 1.0, "load": [1.0, 1.0]}
    base = budget([], {"mnist-uci:source-only": measured})
    assert adaptation.same_classifier(base, budget(["cls_trans_w=0"], {}))  # a UNIT loss weight only
    assert not adaptation.same_classifier(base, budget(["optim.lr=0.0005"], {}))  # the classifier's optimiser
    assert not adaptation.same_classifier(base, {**budget([], {}), "steps": 1600})
    variant = budget(["cls_trans_w=0"], {})
    saved: list[int] = []
    adaptation.run_cells(
        [("mnist-uci", "source-only")], [0], "da32-cpu:800:cls_trans_w=0", variant, tmp_path, limit=None,
        budgets=lambda: {"da32-cpu:800": base}, save=lambda: saved.append(1), log=lambda s: None,
    )  # fmt: skip
    assert variant["cells"] == {"mnist-uci:source-only": {**measured, "same_as": "da32-cpu:800"}} and saved == [1]


def test_baselines_are_copied_only_from_the_same_kind_of_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    def budget(flags: str, cells: dict[str, dict[str, object]], overrides: list[str]) -> dict[str, object]:
        return {"steps": 800, "batch": 16, "preset": "da32-cpu", "overrides": overrides, "machine": {"flags": flags}, "cells": cells}

    measured: list[int] = []

    def fake_cell(train_on: str, test_on: str, steps: int, batch: int, limit: object, config: object, seed: int) -> float:
        measured.append(seed)
        return 0.42

    monkeypatch.setattr(adaptation, "supervised_cell", fake_cell)
    avx2 = budget("avx2", _cells({"source-only": [0.75, 0.72]}), [])
    avx512 = budget("avx2, avx512f", _cells({"source-only": [0.80]}), ["lambda_content=10"])
    mine = budget("avx2, avx512f", {adaptation.cell_key("mnist-uci", "source-only", 0): {"accuracy": 0.75, "same_as": "old"}},
                  ["lambda_content=5"])  # fmt: skip
    others = {"old": avx2, "new": avx512}
    adaptation.run_cells([("mnist-uci", "source-only")], [0, 1], "mine", mine, Path("unused"), limit=None,
                         budgets=lambda: others, save=lambda: None, log=lambda s: None)  # fmt: skip
    seed0, seed1 = (mine["cells"][adaptation.cell_key("mnist-uci", "source-only", s)] for s in (0, 1))  # type: ignore[index]
    # Seed 0: the AVX2 copy is dropped for the AVX-512 twin's figure; seed 1: only an AVX2 cell
    # exists, so it is measured here and records the CPU it ran on.
    assert (seed0["accuracy"], seed0["same_as"]) == (0.80, "new")
    assert seed1["accuracy"] == 0.42 and "same_as" not in seed1 and measured == [1]
    assert seed1["cpu_flags"] == adaptation.machine()["flags"]
    # A budget whose columns come from two kinds of CPU (its own UNIT cell, a copied baseline) says so.
    cells = {adaptation.cell_key("mnist-uci", "source-only", 0): {"accuracy": 0.75, "same_as": "old"},
             **_cells({"unit": [0.7]})}  # fmt: skip
    mixed = {"format": adaptation.FORMAT, "notes": {}, "budgets": {
        "old": {**avx2, "command": "x"}, "mine": {**budget("avx2, avx512f", cells, ["lambda_content=5"]), "command": "x"}}}  # fmt: skip
    assert "different instruction sets (avx2; avx2, avx512f)" in adaptation.render(mixed)
    mixed["budgets"]["mine"]["cells"].pop(adaptation.cell_key("mnist-uci", "source-only", 0))
    assert "different instruction sets" not in adaptation.render(mixed)


def test_readme_table_is_written_from_the_committed_json() -> None:
    from results_md import read_block

    results = adaptation.load_results(adaptation.RESULTS)
    table = adaptation.readme_table(results)
    assert read_block(adaptation.README, "adaptation-summary") == table
    # One row per budget and direction with a UNIT cell, the gap as render() computes it.
    rows = table.splitlines()[2:]
    expected = sum(1 for b in results["budgets"].values() for d in adaptation.DIRECTIONS if adaptation.seeds_of(b["cells"], d, "unit"))
    assert len(rows) == expected

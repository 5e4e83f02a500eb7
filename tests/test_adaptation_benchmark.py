"""benchmarks/adaptation.py: the gap-closed formula and a --smoke run of every cell (<= 60 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import adaptation  # noqa: E402


def test_gap_closed_by_hand() -> None:
    cells = {f"mnist-uci:{k}": {"accuracy": v} for k, v in zip(adaptation.KINDS, (0.6, 0.75, 0.9))}
    assert adaptation.gap_closed(cells, "mnist-uci") == pytest.approx(0.5)
    assert adaptation.gap_closed(cells, "uci-mnist") is None  # missing cells: no figure


def test_markdown_block_is_replaced_not_appended(tmp_path: Path) -> None:
    md = tmp_path / "RESULTS.md"
    md.write_text("# Results\n\nquality table\n")
    adaptation.write_markdown(md, "first")
    adaptation.write_markdown(md, "second")
    text = md.read_text()
    assert "quality table" in text and "second" in text and "first" not in text and text.count("<!-- adaptation:begin -->") == 1


def test_smoke_runs_every_cell() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "adaptation.py"), "--smoke"],
        capture_output=True, text=True, timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    folder = Path(out.stdout.strip().splitlines()[-1].split(" in ", 1)[1])
    results = json.loads((folder / "adaptation.json").read_text())
    (budget,) = results["budgets"].values()
    assert (budget["steps"], budget["preset"]) == (adaptation.SMOKE["steps"], adaptation.PRESET)
    assert set(budget["cells"]) == {f"{d}:{k}" for d in adaptation.DIRECTIONS for k in adaptation.KINDS}
    assert all(0.0 <= c["accuracy"] <= 1.0 and c["cpu_seconds"] >= 0 for c in budget["cells"].values())
    assert "| mnist-uci |" in (folder / "RESULTS.md").read_text()

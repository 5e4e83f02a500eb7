"""benchmarks/hd.py --smoke: the tiny imaginaire fixture through the user's command, fp32 and bf16,
figures and machine written to a temp folder (never the committed results)."""

from __future__ import annotations

import json
from pathlib import Path

import hd
import pytest

from i2icli.precision import cpu_features


def test_smoke_measures_each_precision_the_cpu_runs_and_names_the_machine(tmp_path: Path) -> None:
    assert hd.main(["--smoke", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "hd.json").read_text())
    # bf16 runs where the CPU has it natively; elsewhere i2i refuses it and the table says why.
    measured = {"fp32", "bf16"} if cpu_features().native_bf16 else {"fp32"}
    assert set(result["runs"]) == measured and set(result["refused"]) == {"fp32", "bf16"} - measured
    for run in result["runs"].values():
        assert run["seconds"] > 0 and run["peak_rss_gb"] > 0 and run["output_size"] == [64, 64]
        assert "load_before" in run and run["summary"].startswith("translate: 1 file(s) written")
    text = (tmp_path / "RESULTS.md").read_text()
    assert "<!-- hd:begin -->" in text and "bf16" in text and "python benchmarks/hd.py" in text


def test_smoke_refuses_to_write_the_committed_results() -> None:
    with pytest.raises(SystemExit):
        hd.main(["--smoke"])

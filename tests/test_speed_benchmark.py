"""benchmarks/speed.py --smoke: every cell runs at tiny sizes and the RESULTS block is rendered from the JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from conftest import REPO
from results_md import read_block


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("speed", REPO / "benchmarks" / "speed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["speed"] = module
    spec.loader.exec_module(module)
    return module


speed = _load()


def test_smoke_measures_every_cell_and_resumes(tmp_path: Path) -> None:
    assert speed.main(["--smoke", "--threads", "1", "--work", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "speed.json").read_text())
    assert set(results["cells"]) == set(speed.CELLS)
    a = results["cells"]["a"]["result"]
    rows = {r["variant"]: r for r in a["rows"]}
    assert rows["plain eager fp32, batch 1"]["vs_plain"] == 1.0 and all(r["img_per_s"] > 0 for r in rows.values())
    assert a["gflop_per_image"] > 0 and a["matmul_gflops"]["fp32"] > 0
    assert results["cells"]["c"]["result"]["ratio"] > 0
    d = results["cells"]["d"]["result"]
    assert {"plain", "loop", "loop_preload"} <= set(d["steps_per_s"])
    e = results["cells"]["e"]["result"]
    assert all(run["peak_rss_gb"] > 0 for run in e["runs"]) and len(e["fidelity"]) == 8
    assert {"cpu", "flags", "threads"} <= set(results["cells"]["a"]["machine"]) and len(results["cells"]["a"]["load_before"]) == 3
    if not results["cells"]["f"]["result"]["measured"]:
        assert "no GPU" in results["cells"]["f"]["result"]["why"]
    assert read_block(tmp_path / "RESULTS.md", "speed") == speed.render(results)
    seconds = {k: c["seconds"] for k, c in results["cells"].items()}
    assert speed.main(["--smoke", "--threads", "1", "--work", str(tmp_path)]) == 0  # finished cells are kept
    assert {k: c["seconds"] for k, c in json.loads((tmp_path / "speed.json").read_text())["cells"].items()} == seconds


def test_committed_results_have_every_cell_with_its_machine() -> None:
    assert speed.RESULTS.is_file(), f"{speed.RESULTS} is committed: the README's speed figures come from it"
    results = json.loads(speed.RESULTS.read_text())
    assert set(results["cells"]) == set(speed.CELLS)
    assert read_block(speed.MARKDOWN, "speed") == speed.render(results)

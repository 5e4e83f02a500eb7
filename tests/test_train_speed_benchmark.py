"""benchmarks/train_speed.py --smoke: cells run at tiny sizes, resume, and the RESULTS block is rendered from the JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO
from results_md import read_block


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_speed", REPO / "benchmarks" / "train_speed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_speed"] = module
    spec.loader.exec_module(module)
    return module


train_speed = _load()


def _run(work: Path, cells: str) -> dict:
    assert train_speed.main(["--smoke", "--threads", "1", "--work", str(work), "--cells", cells]) == 0
    return json.loads((work / "train_speed.json").read_text())


def test_smoke_measures_speed_and_curves_and_resumes(tmp_path: Path) -> None:
    results = _run(tmp_path, "speed:cyclegan,curves:cyclegan")
    speed = results["cells"]["speed:cyclegan"]
    rows = {r["path"]: r for r in speed["result"]["rows"]}
    assert rows["default"]["vs_default"] == 1.0 and all(r["steps_per_s"] > 0 for r in rows.values())
    assert {"preload", "channels_last"} <= set(rows)
    assert set(rows) | set(speed["result"]["skipped"]) == {p.name for p in train_speed.PATHS}
    assert speed["result"]["gflop_per_step"] > 0 and 0 < rows["default"]["peak_fraction"] < 1
    assert speed["result"]["profile"] and {"cpu", "native_bf16", "threads"} <= set(speed["machine"])
    assert len(speed["load_before"]) == 3
    curves = results["cells"]["curves:cyclegan"]["result"]
    # --preload gives the same batches to the bit, so its curve is fp32's own.
    assert curves["paths"]["preload"]["curve"] == curves["fp32"][0] and curves["paths"]["preload"]["matches"]
    assert curves["fp32"][0] != curves["fp32"][1]  # another seed, another curve: a spread to compare with
    assert read_block(tmp_path / "RESULTS.md", train_speed.BLOCK) == train_speed.render(results)
    seconds = {k: c["seconds"] for k, c in results["cells"].items()}
    again = _run(tmp_path, "speed:cyclegan,curves:cyclegan")  # finished cells are kept
    assert {k: c["seconds"] for k, c in again["cells"].items()} == seconds


@pytest.mark.slow
def test_smoke_every_cell(tmp_path: Path) -> None:
    """Every method's cells, the two-process ones through `i2i train --procs 2` (about two minutes)."""
    results = _run(tmp_path, ",".join(train_speed.CELLS))
    assert set(results["cells"]) == set(train_speed.CELLS)
    for method in train_speed.METHODS:
        procs = results["cells"][f"procs:{method}"]["result"]
        layouts = procs["layouts"]
        assert all(x["steps_per_s"] > 0 for x in layouts.values()) and layouts["1x2"]["vs_before"] == 1.0
        assert layouts["default"]["processes"] == 2 and layouts["1x2"]["processes"] == 1
        curves = results["cells"][f"curves:{method}"]["result"]
        assert train_speed.procs_vs_spread(procs, curves) is not None
        assert set(procs["curves"]) == {x.name for x in train_speed.LAYOUTS if x.curve and x.name in layouts}
        assert layouts["default+channels_last"]["processes"] == 2
    assert read_block(tmp_path / "RESULTS.md", train_speed.BLOCK) == train_speed.render(results)


def test_render_flags_timings_taken_under_load() -> None:
    cell = {"result": {}, "machine": {"threads": 2}, "load_before": [3.0, 2.0, 1.0], "load_after": [1.0, 1.0, 1.0],
            "seconds": 1.0}  # fmt: skip
    assert not train_speed.quiet(cell)
    assert train_speed.quiet({**cell, "load_before": [1.1, 2.0, 1.0]})
    # The cell's own two busy threads are not other work; a third process's load is.
    assert train_speed.quiet({**cell, "load_before": [0.3, 0, 0], "load_after": [3.1, 0, 0]})
    assert not train_speed.quiet({**cell, "load_before": [0.3, 0, 0], "load_after": [3.3, 0, 0]})


def test_the_defaults_curve_is_set_against_fp32s_seed_spread() -> None:
    """compare_curves: spread = largest distance of another seed from seed 0; procs_vs_spread: the
    default's worst distance from seed 0 over that spread (None until the curves cell exists)."""
    fp32 = [{"loss_g": [1.0, 0.5]}, {"loss_g": [1.2, 0.5]}, {"loss_g": [0.9, 0.7]}]
    curves = train_speed.compare_curves({"method": "m", "steps": 4, "windows": 2, "fp32": fp32,
                                         "paths": {"p": {"curve": {"loss_g": [1.1, 0.9]}}}})  # fmt: skip
    assert curves["spread"] == {"loss_g": [pytest.approx(0.2), pytest.approx(0.2)]}
    assert curves["paths"]["p"]["vs_spread"] == pytest.approx(2.0) and not curves["paths"]["p"]["matches"]
    procs = {"curve_steps": 4, "curves": {"default": {"loss_g": [1.05, 0.55]}, "fast": {"loss_g": [1.0, 0.5]},
                                          "faster": {"loss_g": [1.5, 0.5]}},
             "layouts": {"default": {"steps_per_s": 2.0}, "fast": {"steps_per_s": 3.0}, "faster": {"steps_per_s": 4.0}}}
    assert train_speed.procs_vs_spread(procs, curves) == pytest.approx(0.25)
    assert train_speed.procs_vs_spread(procs, curves, "fast") == 0.0
    assert train_speed.procs_vs_spread(procs, None) is None
    assert train_speed.procs_vs_spread({**procs, "curve_steps": 8}, curves) is None  # another run length
    # The fastest layout within the spread: "faster" learns differently (2.5x the spread), "fast" is fp32's own curve.
    assert train_speed.fastest_layout(procs, curves) == "fast"
    assert train_speed.fastest_layout(procs, None) is None

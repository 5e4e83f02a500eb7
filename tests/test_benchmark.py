"""The quality benchmark: its --smoke run (the table's shape, resuming), and RESULTS.md against the JSON."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from conftest import REPO
from results_md import read_block

import i2icli.methods
from i2icli.config import apply_overrides
from i2icli.methods import METHOD_MODULES, load_method


def _load_quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quality", REPO / "benchmarks" / "quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["quality"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


quality = _load_quality()
CYCLEGAN_BENCHMARKS = ("mnist-uci-digits", "synthetic-colored-digits", "fashion-sneaker-boot")


def test_results_md_is_generated_from_the_results_json() -> None:
    results = json.loads(quality.RESULTS.read_text(encoding="utf-8"))
    assert read_block(quality.MARKDOWN, "quality") == quality.render_results(results)


def test_committed_results_fill_the_cyclegan_rows() -> None:
    results = json.loads(quality.RESULTS.read_text(encoding="utf-8"))
    plans = quality._method_plans()
    cells = [(plans[m], quality.BENCHMARKS[b]) for b in CYCLEGAN_BENCHMARKS for m in ("do-nothing", "cyclegan")]
    assert quality.check_shape(results, cells) == []
    for bench in CYCLEGAN_BENCHMARKS:
        cell = results["cells"][f"cyclegan:{bench}"]
        # The cell ran the method's recipe for that benchmark (cpu-small at the shared budget unless RECIPES says).
        assert (cell["preset"], cell["steps"]) == quality.cell_budget(plans["cyclegan"], quality.BENCHMARKS[bench])
        assert cell["train_seconds"] < 15 * 60  # the per-cell cap
        assert {"cpu", "cores", "threads", "torch"} <= set(cell["machine"])
        # What was measured: CycleGAN beats the do-nothing row somewhere on every benchmark.
        assert quality.beats(cell, results["cells"][f"do-nothing:{bench}"]), bench
        assert (quality.FIGURES / f"samples-{bench}-a2b.png").is_file()
    assert (quality.FIGURES / "quality.png").is_file()


def test_smoke_builds_the_whole_table_and_a_second_run_trains_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.process_time()
    assert quality.main(["--smoke", "--work", str(tmp_path)]) == 0
    assert time.process_time() - start < 60
    results = json.loads((tmp_path / "quality.json").read_text())
    plans = quality._method_plans()
    available = [b for b in quality.BENCHMARKS.values() if b.unavailable() is None]
    expected = {quality.cell_key(m, b.name) for m in plans for b in available}
    assert set(results["cells"]) == expected
    assert all(c["steps"] == quality.SMOKE_STEPS for c in results["cells"].values() if c["method"] not in quality.BASELINES)
    assert read_block(tmp_path / "RESULTS.md", "quality") == quality.render_results(results)
    for b in available:
        for direction in ("a2b", "b2a"):
            assert (tmp_path / "figures" / f"samples-{b.name}-{direction}.png").is_file()
    capsys.readouterr()

    assert quality.main(["--smoke", "--work", str(tmp_path)]) == 0
    log = capsys.readouterr().out
    assert "training" not in log and log.count("done earlier, skipped") == len(expected)
    assert json.loads((tmp_path / "quality.json").read_text()) == results


def test_cells_are_chosen_from_the_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    plans = quality._method_plans()
    assert list(plans) == ["do-nothing", "target-mean", *METHOD_MODULES]
    chosen = quality.select_cells(plans, "cyclegan,do-nothing", "mnist-uci-digits", None)
    expected = [("cyclegan", "mnist-uci-digits"), ("do-nothing", "mnist-uci-digits")]
    assert [(p.name, b.name) for p, b in chosen] == expected
    chosen = quality.select_cells(plans, None, None, "munit:fashion-sneaker-boot")
    assert [(p.name, b.name) for p, b in chosen] == [("munit", "fashion-sneaker-boot")]
    with pytest.raises(SystemExit, match="unknown method 'pix2pix'"):
        quality.select_cells(plans, "pix2pix", None, None)
    # The table follows the one list of method modules.
    monkeypatch.setattr(i2icli.methods, "METHOD_MODULES", ("cyclegan",))
    assert list(quality._method_plans()) == ["do-nothing", "target-mean", "cyclegan"]


def test_budgets_are_the_same_for_every_method_and_overrides_fit_the_data() -> None:
    plans = quality._method_plans()
    for bench in quality.BENCHMARKS.values():
        for name in METHOD_MODULES:  # each method's own plan, config and model
            plan, impl = plans[name], load_method(name)
            assert plan.preset == quality.BENCH_PRESET
            overrides = plan.overrides(bench, bench.steps)
            cfg = apply_overrides(impl.presets[plan.preset].config, overrides)
            assert (cfg.arch.channels_a, cfg.arch.channels_b, cfg.data.flip) == (bench.channels, bench.channels, False), name
            model = impl.build_model(cfg.arch)
            side = cfg.data.crop_size
            # The whole image, resized up only as far as the network's stride and minimum size need.
            assert side % model.stride == 0 and side >= max(bench.size, model.min_size), (name, side)
            assert side < bench.size + model.stride or side == model.min_size, (name, side)
            # Stages (if any) fit into the shared budget, leaving steps for the last one.
            budget = list(impl.budget_overrides(bench.steps))
            assert overrides[len(overrides) - len(budget) :] == budget, name

            assert sum(int(o.split("=")[1]) for o in budget if o.startswith("steps_")) < bench.steps, name
    assert quality.BENCHMARKS["fashion-sneaker-boot"].needs is not None

def test_recipes_name_real_presets_and_say_what_a_cell_runs() -> None:
    plans = quality._method_plans()
    for (method, bench), recipe in quality.RECIPES.items():
        assert recipe.preset in load_method(method).presets and recipe.steps > 0, (method, bench)
        assert quality.cell_budget(plans[method], quality.BENCHMARKS[bench]) == (recipe.preset, recipe.steps)
        overrides = quality.cell_overrides(plans[method], quality.BENCHMARKS[bench], recipe.steps)
        assert overrides[len(overrides) - len(recipe.overrides) :] == list(recipe.overrides)
        apply_overrides(load_method(method).presets[recipe.preset].config, overrides)  # every key is the config's
    assert quality.cell_budget(plans["do-nothing"], quality.BENCHMARKS["mnist-uci-digits"]) == (None, 0)
    plain = next(m for m in METHOD_MODULES if (m, "synthetic-colored-digits") not in quality.RECIPES)
    assert quality.cell_budget(plans[plain], quality.BENCHMARKS["synthetic-colored-digits"]) == (quality.BENCH_PRESET, 800)


def test_several_seeds_show_mean_and_sample_sd() -> None:
    def cell(seed: int, kept: float) -> dict:
        return {"method": "cyclegan", "benchmark": "mnist-uci-digits", "seed": seed, "steps": 8, "batch_size": 8,
                "preset": "cpu-fast", "train_seconds": 60.0, "resumed": False, "eval_seconds": 1.0,
                "directions": [{"direction": "a2b", "source": "mnist", "target": "uci", "n": 4,
                                "metrics": {"class-kept": kept}, "reference": {}, "skipped": [], "notes": []}]}  # fmt: skip

    results = {"cells": {quality.cell_key("cyclegan", "mnist-uci-digits", s): cell(s, k) for s, k in ((0, 0.8), (1, 0.9), (2, 1.0))}}
    assert set(results["cells"]) == {"cyclegan:mnist-uci-digits", "cyclegan:mnist-uci-digits@seed1", "cyclegan:mnist-uci-digits@seed2"}
    (merged,) = quality._cells_of(results, quality.BENCHMARKS["mnist-uci-digits"])
    a2b = merged["directions"][0]
    assert merged["seeds"] == [0, 1, 2] and merged["train_seconds"] == 180.0
    assert a2b["metrics"]["class-kept"] == pytest.approx(0.9) and a2b["sd"]["class-kept"] == pytest.approx(0.1)
    assert quality.metric_text(a2b["metrics"], "class-kept", a2b["sd"]) == "90.0% ± 10.0%"


def test_check_shape_names_what_is_missing() -> None:
    plans = quality._method_plans()
    bench = quality.BENCHMARKS["mnist-uci-digits"]

    def cell(method: str, metrics: dict[str, float]) -> dict:
        return {"method": method, "directions": [
            {"direction": d, "n": 3, "metrics": metrics, "reference": {}, "skipped": []} for d in ("a2b", "b2a")
        ]}  # fmt: skip

    results = {"cells": {"do-nothing:mnist-uci-digits": cell("do-nothing", {"class-kept": 0.5, "l1": 0.2}),
                         "cyclegan:mnist-uci-digits": cell("cyclegan", {"class-kept": 0.7})}}  # fmt: skip
    cells = [(plans["do-nothing"], bench), (plans["cyclegan"], bench), (plans["munit"], bench)]
    problems = quality.check_shape(results, cells)
    assert problems == [
        "cyclegan:mnist-uci-digits a2b: lacks ['l1'] that do-nothing has",
        "cyclegan:mnist-uci-digits b2a: lacks ['l1'] that do-nothing has",
        "munit:mnist-uci-digits: missing",
    ]
    won = quality.beats(results["cells"]["cyclegan:mnist-uci-digits"], results["cells"]["do-nothing:mnist-uci-digits"])
    assert won == ["a2b class kept", "b2a class kept"]

"""Torch threads: the choice (--threads, OMP_NUM_THREADS, CPUs minus load), --threads on every heavy
command, the record in run.json, the command line's wait policy, and the measured benchmark."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, write_rgb
from typer.testing import CliRunner

from i2icli import threads
from i2icli.cli.app import app
from i2icli.errors import UsageError

runner = CliRunner()


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Four CPUs available; the load is set by each test."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def with_load(load: float) -> None:
        monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))

    return with_load


def test_auto_uses_the_available_cpus_minus_the_load(machine) -> None:  # type: ignore[no-untyped-def]
    machine(0.2)
    assert threads.choose_threads().threads == 4
    machine(1.4)
    choice = threads.choose_threads()
    assert (choice.threads, choice.source, choice.cpus, choice.load) == (3, "auto", 4, 1.4)
    machine(9.0)
    assert threads.choose_threads().threads == 1  # never zero, whatever the load


def test_explicit_choices_win(machine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    machine(9.0)
    assert threads.choose_threads(3) == threads.ThreadChoice(3, "--threads", 4, 9.0, os.environ.get("OMP_WAIT_POLICY", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert (threads.choose_threads().threads, threads.choose_threads().source) == (2, "OMP_NUM_THREADS")
    with pytest.raises(UsageError, match="--threads 0: must be at least 1"):
        threads.choose_threads(0)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from conftest import make_tiny_cyclegan, save_tiny

    root = tmp_path_factory.mktemp("threads")
    for i in range(3):
        write_rgb(root / "data" / "trainA" / f"{i}.png", (20, 20), seed=i)
        write_rgb(root / "data" / "trainB" / f"{i}.png", (20, 20), seed=9 + i)
    return {
        "data": root / "data",
        "img": write_rgb(root / "in.png", (16, 16)),
        "cyclegan": save_tiny(root / "tiny.safetensors", make_tiny_cyclegan()),
        "root": root,
    }


def _munit(root: Path) -> Path:
    from test_multimodal import make_tiny_munit  # the tiny MUNIT of the multimodal tests

    from i2icli.checkpoint import ModelConfig, save_model
    from i2icli.config import to_dict

    model = make_tiny_munit()
    config = ModelConfig(method="munit", arch=to_dict(model.arch), domains=("day", "night"), image_size=32)
    return save_model(root / "munit.safetensors", model, config)


@pytest.mark.parametrize("command", ["translate", "sample", "exemplar", "interpolate", "eval-folders", "train"])
def test_every_heavy_command_takes_threads(files: dict[str, Path], tmp_path: Path, command: str) -> None:
    img, out = str(files["img"]), str(tmp_path / "out")
    argv = {
        "translate": ["translate", img, "-o", out, "--model", str(files["cyclegan"])],
        "sample": ["sample", img, "-n", "2", "-o", out, "--model", str(_munit(tmp_path))],
        "exemplar": ["exemplar", img, "--style", img, "-o", out, "--model", str(_munit(tmp_path))],
        "interpolate": ["interpolate", img, "--steps", "2", "-o", out, "--model", str(_munit(tmp_path))],
        "eval-folders": ["eval", "folders", "--real", str(files["data"] / "trainA"), "--fake",
                         str(files["data"] / "trainB"), "--metrics", "psnr"],
        "train": ["train", "--preset", "cpu-tiny", "--dataroot", str(files["data"]), "--run-dir", out,
                  "--max-steps", "1", "--sample-every", "0", "--quiet"],
    }[command]  # fmt: skip
    torch.set_num_threads(2)
    try:
        result = runner.invoke(app, [*argv, "--device", "cpu", "--threads", "1"] if command != "eval-folders" else [*argv, "--threads", "1"])
        assert result.exit_code == 0, result.output
        assert torch.get_num_threads() == 1
        bad = runner.invoke(app, [*argv, "--threads", "0"])
        assert bad.exit_code == 2 and "--threads 0: must be at least 1" in bad.output
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("command", [["eval", "model", "--do-nothing"], ["eval", "adapt", "--model", "m"]])
def test_eval_model_and_adapt_take_threads(tmp_path: Path, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--data", str(tmp_path), "--threads", "0"])
    assert result.exit_code == 2 and "--threads 0" in result.output


def test_train_records_the_choice_and_the_command_line_sleeps_waiting_threads(files: dict[str, Path], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    run_dir = tmp_path / "r"
    out = subprocess.run(
        [sys.executable, "-m", "i2icli", "train", "--preset", "cpu-tiny", "--dataroot", str(files["data"]),
         "--run-dir", str(run_dir), "--max-steps", "1", "--sample-every", "0", "--device", "cpu", "--quiet"],
        capture_output=True, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    recorded = json.loads((run_dir / "run.json").read_text())["threads"]
    assert recorded["source"] == "auto" and recorded["wait_policy"] == "PASSIVE"
    assert 1 <= recorded["threads"] <= recorded["cpus"]
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir), "--max-steps", "2", "--threads", "1", "--device", "cpu", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    history = json.loads((run_dir / "run.json").read_text())["resumed"]
    assert history[-1]["step"] == 1 and history[-1]["threads"]["threads"] == 1 and history[-1]["threads"]["source"] == "--threads"


def _load_benchmark():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("threads_bench", REPO / "benchmarks" / "threads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_measurements_show_the_collapse_and_the_default_avoids_it() -> None:
    bench = _load_benchmark()
    results = json.loads(bench.RESULTS.read_text())
    seconds = {(r["config"], r["contention"]): r["seconds"] for r in results["runs"]}
    assert set(seconds) == {(c, k) for c in bench.CONFIGS for k in ("idle", "busy")}
    assert results["steps"] == 40 and results["machine"]["cpu"]
    # What was measured: beside a busy process, torch's default threads are several times slower
    # than one thread, and the command line's default is not.
    assert seconds[("torch default", "busy")] > 3 * seconds[("1 thread", "busy")]
    assert seconds[("i2i default", "busy")] < seconds[("torch default", "busy")] / 2
    assert bench.render(results) in (REPO / "benchmarks" / "RESULTS.md").read_text()


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path) -> None:
    bench = _load_benchmark()
    assert bench.main(["--smoke", "--work", str(tmp_path), "--results", str(tmp_path / "t.json")]) == 0
    runs = json.loads((tmp_path / "t.json").read_text())["runs"]
    assert [r["config"] for r in runs] == list(bench.CONFIGS) and all(r["seconds"] > 0 for r in runs)

"""Quality benchmark: a table of cells (method x benchmark), each trained, translated and evaluated.

A cell trains the method with its labelled CPU recipe for the benchmark (``cpu-small`` at the
benchmark's step budget, unless ``RECIPES`` names the method's working recipe for it), translates
the whole test split, and scores it with ``i2icli.eval.report``; ``--seeds`` repeats a cell with
other seeds and the tables show mean +- sd. Every benchmark also has a ``do-nothing`` cell (each input returned
unchanged), the floor a method has to beat.

Finished cells are kept in ``benchmarks/results/quality.json`` and skipped, so an interrupted run
continues where it stopped and a second run trains nothing; a half-trained cell resumes from its
last checkpoint under ``--work``. ``benchmarks/RESULTS.md`` and ``benchmarks/figures/`` are
regenerated from the JSON (RESULTS.md after every cell, the figures at the end of a run).

    python benchmarks/quality.py                                  # every missing cell
    python benchmarks/quality.py --methods do-nothing,cyclegan    # some methods
    python benchmarks/quality.py --cells cyclegan:mnist-uci-digits
    python benchmarks/quality.py --cells cyclegan:mnist-uci-digits --seeds 0,1,2   # mean +- sd over seeds
    python benchmarks/quality.py --quick     # 200 steps per cell, results under runs/ (local use)
    python benchmarks/quality.py --smoke     # 3 steps on tiny data in a temp folder: checks the table (CI)
    python benchmarks/quality.py --report    # only rewrite RESULTS.md and the figures from the JSON

Needs ``pip install -e '.[bench]'`` (shipped data) and matplotlib for the chart.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from entry import seed_list
from machine_info import describe, machine
from results_md import Paths, cell_directions, locked, metric_text, read_block, smoke_status, write_block

if TYPE_CHECKING:  # torch and i2icli load inside the functions, so --help stays fast
    import torch
    from PIL import Image

    from i2icli.eval.report import Subject

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "quality.json"
MARKDOWN = HERE / "RESULTS.md"
README = REPO / "README.md"
FIGURES = HERE / "figures"
RESULTS_VERSION = 1
SEED = 0
SAMPLE_ROWS = 8  # test inputs shown in each sample grid
SMOKE_STEPS, SMOKE_TRAIN, SMOKE_TEST = 3, 16, 16  # smoke: steps (a staged method needs 3), train and test images per domain
QUICK_STEPS = 200
DO_NOTHING = "do-nothing"
TARGET_MEAN = "target-mean"  # every input answered by the mean training image of the target domain
BASELINES = (DO_NOTHING, TARGET_MEAN)

Record = dict[str, Any]


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Benchmark:
    """A dataset recipe with its step budget; ``headline`` picks the metrics shown in the summary and chart."""

    name: str  # an `i2i data prepare` recipe
    size: int  # image side; training uses whole images (no resize, crop or flip: digits must not mirror)
    channels: int
    steps: int  # the same budget for every method
    batch_size: int
    headline: tuple[str, ...]  # metric keys; "fid"/"kid" mean the judge-named key of each direction
    build_small: Callable[[Path, int, int], None]  # (out, train per domain, test per domain) for --smoke
    needs: str | None = None  # what must be installed besides the Python packages
    # (trainA file names, built small?) -> the true a2b translations (N, H, W[, 3]) uint8, where the
    # data has them: validation truths for tuning (benchmarks/curves.py) without the test split.
    train_truth: Callable[[Sequence[str], bool], np.ndarray] | None = None

    def unavailable(self) -> str | None:
        """Why this benchmark cannot run here, or None."""
        if self.needs is None:
            return None
        from i2icli.data.shipped import fashion_dir

        return None if fashion_dir().is_dir() else f"needs {self.needs}"


def _small_digits(out: Path, n_train: int, n_test: int) -> None:
    from i2icli.data.layout import write_images
    from i2icli.data.recipes import RECIPES, write_dataset_info
    from i2icli.data.shipped import load_mnist, load_uci

    for split, n in (("train", n_train), ("test", n_test)):
        for folder, (images, labels) in ((f"{split}A", load_mnist(split)), (f"{split}B", load_uci(split))):
            pick = np.linspace(0, len(images) - 1, n).astype(int)  # spread over the (class-sorted) split
            write_images(out, folder, images[pick], labels[pick])
    write_dataset_info(RECIPES["mnist-uci-digits"], out)


def _small_even(total: int, n: int) -> np.ndarray:
    """The ``n`` even digit indices (of ``total``) a small synthetic build paints as domain A."""
    return np.linspace(0, total // 2 - 1, n).astype(int) * 2


def _small_synthetic(out: Path, n_train: int, n_test: int) -> None:
    from i2icli.data.builders import render_synthetic
    from i2icli.data.layout import PAIRED_DIR, write_images
    from i2icli.data.recipes import RECIPES, write_dataset_info
    from i2icli.data.shipped import load_mnist

    for split, n in (("train", n_train), ("test", n_test)):
        digits, labels = load_mnist(split)
        even = _small_even(len(digits), n)  # A takes even indices, B odd ones
        odd = even + 1
        write_images(out, f"{split}A", render_synthetic(digits[even], even, "A"), labels[even])
        write_images(out, f"{split}B", render_synthetic(digits[odd], odd, "B"), labels[odd])
        if split == "test":
            write_images(out, PAIRED_DIR, render_synthetic(digits[even], even, "B"), labels[even])
    write_dataset_info(RECIPES["synthetic-colored-digits"], out)


def _synthetic_train_truth(names: Sequence[str], small: bool) -> np.ndarray:
    """The domain-B rendering of the trainA images ``names``: trainA/{i:05d}.png shows train digit 2i
    in the full build (``i2icli.data.builders.build_synthetic``), the i-th of ``_small_even`` in a small one."""
    from i2icli.data.builders import render_synthetic
    from i2icli.data.shipped import load_mnist

    digits, _ = load_mnist("train")
    even = _small_even(len(digits), SMOKE_TRAIN) if small else np.arange(0, len(digits), 2)
    source = even[[int(Path(name).stem) for name in names]]
    return render_synthetic(digits[source], source, "B")


def _small_fashion(recipe: str, class_a: int, class_b: int, out: Path, n_train: int, n_test: int) -> None:
    from i2icli.data.layout import write_images
    from i2icli.data.recipes import RECIPES, write_dataset_info
    from i2icli.data.shipped import load_fashion

    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = load_fashion(split, classes=(class_a, class_b))
        for folder, cls in ((f"{split}A", class_a), (f"{split}B", class_b)):
            keep = np.flatnonzero(labels == cls)[:n]
            write_images(out, folder, images[keep], labels[keep])
    write_dataset_info(RECIPES[recipe], out)


# Budget: 800 steps of batch 8 for every method. The costliest planned method is MUNIT cpu-small:
# measured 0.45-0.78 s per step at 28-32 px with 1 torch thread on this 2-core machine while other
# jobs ran (CycleGAN cpu-small 0.27-0.49 s), so a MUNIT cell takes 6-11 minutes, under the
# 15-minute cap with evaluation (under a minute). On a busy machine 2 threads were 5x slower than
# 1 (they wait on each other), hence --threads.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("mnist-uci-digits", 28, 1, 800, 8, ("kept-as-target", "class-kept", "looks-like-target", "fid"),
                  _small_digits),
        Benchmark("synthetic-colored-digits", 32, 3, 800, 8, ("psnr", "ssim", "pixel-acc"), _small_synthetic,
                  train_truth=_synthetic_train_truth),
        Benchmark("fashion-sneaker-boot", 28, 1, 800, 8, ("looks-like-target", "fid"),
                  functools.partial(_small_fashion, "fashion-sneaker-boot", 7, 9),
                  needs="the Debian package dataset-fashion-mnist"),
        # No recipe was tuned on this pair: its cells run the sneaker <-> boot recipes unchanged.
        Benchmark("fashion-sandal-sneaker", 28, 1, 800, 8, ("looks-like-target", "fid"),
                  functools.partial(_small_fashion, "fashion-sandal-sneaker", 5, 7),
                  needs="the Debian package dataset-fashion-mnist"),
    )
}


@dataclass(frozen=True)
class MethodPlan:
    """How a method is trained on a benchmark: its labelled CPU preset plus per-benchmark overrides."""

    name: str  # a registry method, or "do-nothing"
    preset: str | None
    overrides: Callable[[Benchmark, int], list[str]]  # (benchmark, step budget) -> --set overrides


def _whole_image_overrides(method: str, b: Benchmark, steps: int) -> list[str]:
    """Every method trains on whole images (no flip: digits must not mirror), the same overrides for
    every method, and a staged method fits its stages into the budget (``budget_overrides``). A network whose stride does not divide the image side (e.g. a U-Net with three
    downsamplings at 28 px) trains on the image resized up to the next multiple of its stride;
    translate then pads at evaluation (reflect), as for any image."""
    from i2icli.config import apply_overrides
    from i2icli.methods import load_method

    method_impl = load_method(method)
    channels = [f"arch.channels_a={b.channels}", f"arch.channels_b={b.channels}"]
    arch = apply_overrides(method_impl.presets[BENCH_PRESET].config, channels).arch
    model = method_impl.build_model(arch)
    side = max(-(-b.size // model.stride) * model.stride, model.min_size)
    # A crop of the whole (possibly resized) image is the image itself.
    mode = "crop" if side == b.size else "resize_and_crop"
    whole = [f"data.mode={mode}", "data.flip=false", f"data.crop_size={side}", f"data.load_size={side}"]
    return [*channels, *whole, *method_impl.budget_overrides(steps)]


BENCH_PRESET = "cpu-small"  # every method's labelled CPU preset at the shared step budget


@dataclass(frozen=True)
class CellRecipe:
    """A method's working recipe on one benchmark: its labelled preset and step budget."""

    preset: str
    steps: int
    overrides: tuple[str, ...] = ()  # --set overrides applied after the whole-image ones


# 28 px images resized to 32 for training: at 28 px a 3-layer MUNIT (or UNIT cpu-fast) discriminator's
# score map would be 3x3, below the 4x4 MUNIT's scales need (munit.dis_scales); translation stays at 28 px.
AT_32 = ("data.mode=resize_and_crop", "data.load_size=32", "data.crop_size=32")


# Where a method has a recipe tuned on the benchmark's validation split (benchmarks/curves.py), its
# cell runs that recipe instead of cpu-small at the shared budget.
RECIPES: dict[tuple[str, str], CellRecipe] = {
    ("cyclegan", "mnist-uci-digits"): CellRecipe("cpu-fast", 800),
    ("gcgan", "mnist-uci-digits"): CellRecipe("cpu-fast", 800),
    ("distancegan", "mnist-uci-digits"): CellRecipe("cpu-fast", 800),
    ("unit", "mnist-uci-digits"): CellRecipe("cpu-fast", 1200, AT_32),
    ("munit", "mnist-uci-digits"): CellRecipe("cpu-fast", 1200, AT_32),
    ("cyclegan", "fashion-sneaker-boot"): CellRecipe("cpu-small", 1600),
    ("distancegan", "fashion-sneaker-boot"): CellRecipe("cpu-small", 3600),
    ("munit", "fashion-sneaker-boot"): CellRecipe("cpu-fast", 3000, AT_32),
    ("unit", "fashion-sneaker-boot"): CellRecipe("cpu-fast", 3600, AT_32),
}
# A pair nothing was tuned on (users' data are): each shape-change recipe carried over as it is.
RECIPES |= {(m, "fashion-sandal-sneaker"): r for (m, b), r in list(RECIPES.items()) if b == "fashion-sneaker-boot"}


def cell_budget(plan: MethodPlan, bench: Benchmark) -> tuple[str | None, int]:
    """(preset, steps) of a full-size cell."""
    if plan.name in BASELINES:
        return None, 0
    recipe = RECIPES.get((plan.name, bench.name))
    return (recipe.preset, recipe.steps) if recipe else (plan.preset, bench.steps)


def cell_overrides(plan: MethodPlan, bench: Benchmark, steps: int) -> list[str]:
    """The --set overrides of a cell: the shared whole-image ones, then its recipe's own."""
    recipe = RECIPES.get((plan.name, bench.name))
    return [*plan.overrides(bench, steps), *(recipe.overrides if recipe else ())]


def _method_plans() -> dict[str, MethodPlan]:
    from i2icli.methods import METHOD_MODULES

    plans = [MethodPlan(name, None, lambda b, steps: []) for name in BASELINES]
    plans += [MethodPlan(name, BENCH_PRESET, functools.partial(_whole_image_overrides, name)) for name in METHOD_MODULES]
    return {p.name: p for p in plans}


def cell_key(method: str, benchmark: str, seed: int = SEED) -> str:
    """``method:benchmark`` for the first seed, ``method:benchmark@seedN`` for the repeats."""
    return f"{method}:{benchmark}" + ("" if seed == SEED else f"@seed{seed}")


def select_cells(
    plans: dict[str, MethodPlan], methods: str | None, benchmarks: str | None, cells: str | None
) -> list[tuple[MethodPlan, Benchmark]]:
    """The (method, benchmark) cells asked for, in table order; unknown names exit with one line."""

    def names(text: str | None, known: Sequence[str], what: str) -> list[str]:
        chosen = [n.strip() for n in text.split(",") if n.strip()] if text else list(known)
        unknown = [n for n in chosen if n not in known]
        if unknown:
            raise SystemExit(f"error: unknown {what} {unknown[0]!r} (known: {', '.join(known)})")
        return chosen

    if cells:
        keys = names(cells, [cell_key(m, b) for m in plans for b in BENCHMARKS], "cell")
        return [(plans[k.split(":")[0]], BENCHMARKS[k.split(":")[1]]) for k in keys]
    ms, bs = names(methods, list(plans), "method"), names(benchmarks, list(BENCHMARKS), "benchmark")
    return [(plans[m], BENCHMARKS[b]) for b in bs for m in ms]


# --------------------------------------------------------------------------- running a cell


def prepare_data(bench: Benchmark, root: Path, small: bool) -> Path:
    """The benchmark's dataset under ``root`` (full recipe, or tiny for --smoke); reused when present."""
    out = root / bench.name
    if (out / "testB").is_dir():
        return out
    if small:
        bench.build_small(out, SMOKE_TRAIN, SMOKE_TEST)
    else:
        from i2icli.data.recipes import prepare

        prepare(bench.name, out)
    return out


def train(
    plan: MethodPlan, bench: Benchmark, data: Path, run_dir: Path, steps: int, log: Callable[[str], None],
    preset: str, seed: int,
) -> tuple[Path, float]:
    """Train (or resume) one cell; returns the exported model folder and this session's seconds."""
    import torch

    from i2icli.eval.datasets import read_dataset_info
    from i2icli.runs.run import run
    from i2icli.runs.spec import DataSpec, build_spec, read_spec
    from i2icli.train.state import latest_checkpoint

    if (run_dir / "model" / "model.safetensors").is_file():
        return run_dir / "model", 0.0
    resume = latest_checkpoint(run_dir) is not None
    if resume:
        spec = read_spec(run_dir)
    else:
        spec = build_spec(
            method=plan.name, preset=preset, config_file=None, overrides=cell_overrides(plan, bench, steps),
            data=DataSpec(str(data / "trainA"), str(data / "trainB"), read_dataset_info(data).domains),
            batch_size=bench.batch_size, lr=None, max_steps=steps,
            loop_kwargs=dict(seed=seed, save_every=100, sample_every=0, log_every=50),
            init_from=None, steps_per_epoch=lambda bs: 0,
        )  # fmt: skip
    start = time.perf_counter()

    def progress(step: int, values: dict[str, float]) -> None:
        log(f"  {plan.name}:{bench.name} step {step}/{steps} ({time.perf_counter() - start:.0f} s)")

    _, exported = run(spec, run_dir, torch.device("cpu"), resume=resume, on_step=progress, log=log)
    if exported is None:
        raise SystemExit(f"{plan.name}:{bench.name}: interrupted; run again to resume from {run_dir}")
    return exported, time.perf_counter() - start


def _strip(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """(C, H, W) images -> one column image (C, N*H, W)."""
    import torch

    return torch.cat(list(images), dim=1)


def write_sample_strips(subject: Subject, bench: Benchmark, data: Path, figures: Path) -> None:
    """Save the subject's translations of SAMPLE_ROWS fixed test inputs (and those inputs, and the
    ground truth where it exists) as column images under ``figures/cells/<benchmark>/<direction>/``."""
    from i2icli.data.layout import PAIRED_DIR
    from i2icli.eval.datasets import load_split, read_dataset_info
    from i2icli.imageio import to_pil

    info = read_dataset_info(data)
    for direction, source in (("a2b", "testA"), ("b2a", "testB")):
        if direction not in subject.directions:  # one-sided models (GcGAN, one-way DistanceGAN)
            continue
        c_in, c_out = subject.channels(direction)
        inputs = load_split(data, source, c_in, SAMPLE_ROWS, SEED)
        folder = figures / "cells" / bench.name / direction
        folder.mkdir(parents=True, exist_ok=True)
        to_pil(_strip(inputs.images)).save(folder / "input.png")
        if direction == "a2b" and info.paired:
            truths = load_split(data, PAIRED_DIR, c_out)
            truth = dict(zip(truths.names, truths.images))
            to_pil(_strip([truth[n] for n in inputs.names])).save(folder / "truth.png")
        if subject.name != DO_NOTHING:  # its column would repeat the inputs
            to_pil(_strip(subject.translate(inputs.images, direction))).save(folder / f"{subject.name}.png")


def target_mean_subject(data: Path) -> Subject:
    """The baseline that answers every input with the mean training image of the target domain: the
    best constant answer in L2, so a PSNR near its figure can come from painting the average image."""
    import torch
    import torch.nn.functional as F

    from i2icli.eval.datasets import image_channels, load_split
    from i2icli.eval.report import Subject

    ch = {"A": image_channels(data / "trainA"), "B": image_channels(data / "trainB")}
    # (C, H, W) mean of each target domain's training images.
    means = {d: torch.stack(load_split(data, f"train{t}", ch[t]).images).mean(0) for d, t in (("a2b", "B"), ("b2a", "A"))}

    def channels(direction: str) -> tuple[int, int]:
        return (ch["A"], ch["B"]) if direction == "a2b" else (ch["B"], ch["A"])

    def translate(images: list[torch.Tensor], direction: str) -> list[torch.Tensor]:
        mean = means[direction]
        return [mean if x.shape[-2:] == mean.shape[-2:] else F.interpolate(mean[None], size=x.shape[-2:], mode="bilinear")[0]
                for x in images]  # fmt: skip

    return Subject(TARGET_MEAN, ("a2b", "b2a"), channels, translate, None, "the target-mean baseline has no styles")


def run_cell(
    plan: MethodPlan, bench: Benchmark, data: Path, work: Path, figures: Path, steps: int, log: Callable[[str], None],
    preset: str | None = None, seed: int = SEED,
) -> Record:
    """Train (unless do-nothing) with ``preset`` and ``seed``, evaluate on the test split, save
    sample strips (first seed only); the cell's record."""
    from i2icli.api import load_model
    from i2icli.eval.report import EvalOptions, do_nothing_subject, evaluate, model_subject
    from i2icli.train.state import latest_checkpoint

    load_before = os.getloadavg()[0]
    train_seconds, resumed = 0.0, False
    if plan.name == DO_NOTHING:
        subject = do_nothing_subject(data)
    elif plan.name == TARGET_MEAN:
        subject = target_mean_subject(data)
    else:
        assert preset is not None
        run_dir = work / "runs" / (f"{plan.name}-{bench.name}-{preset}-{steps}" + ("" if seed == SEED else f"-seed{seed}"))
        resumed = latest_checkpoint(run_dir) is not None
        model_dir, train_seconds = train(plan, bench, data, run_dir, steps, log, preset, seed)
        subject = model_subject(load_model(str(model_dir / "model.safetensors"), device="cpu"), plan.name, seed=SEED)
    start = time.perf_counter()
    report = evaluate(subject, data, EvalOptions(seed=SEED))
    eval_seconds = time.perf_counter() - start
    if seed == SEED:
        write_sample_strips(subject, bench, data, figures)
    return {
        "method": plan.name,
        "benchmark": bench.name,
        "preset": preset,
        "overrides": cell_overrides(plan, bench, steps) if plan.name not in BASELINES else [],
        "steps": steps if plan.name not in BASELINES else 0,
        "batch_size": bench.batch_size if plan.name not in BASELINES else None,
        "seed": seed,
        "train_seconds": round(train_seconds, 1),
        "resumed": resumed,
        "eval_seconds": round(eval_seconds, 1),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine() | {"load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "command": f"python benchmarks/quality.py --cells {cell_key(plan.name, bench.name)}"
        + ("" if seed == SEED else f" --seeds {seed}"),
        "directions": [
            {k: d[k] for k in ("direction", "source", "target", "n", "metrics", "reference", "skipped", "notes")}
            for d in report.to_dict()["directions"]
        ],
    }


# --------------------------------------------------------------------------- results file


def load_results(path: Path) -> Record:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"format_version": RESULTS_VERSION, "cells": {}}


def save_results(path: Path, results: Record, mine: Sequence[str] = ()) -> Record:
    """Merge this run's cells ``mine`` into what is on disk and write atomically (an interrupted write
    never loses finished cells; runs in parallel processes keep each other's); returns the merged table."""
    with locked(path):
        on_disk = load_results(path)
        on_disk["cells"] |= {k: results["cells"][k] for k in mine}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(on_disk, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return on_disk


def check_shape(results: Record, cells: Sequence[tuple[MethodPlan, Benchmark]]) -> list[str]:
    """Problems with the table: a missing cell, a missing direction, a direction without metrics, or
    a trained method scored on fewer metrics than the do-nothing row of its benchmark."""
    problems = []
    for plan, bench in cells:
        key = cell_key(plan.name, bench.name)
        dirs = cell_directions(results, key, ["a2b"] if _one_sided(plan.name) else ["a2b", "b2a"], problems)
        if dirs is None:
            continue
        if not dirs["a2b"]["metrics"]:
            problems.append(f"{key}: a2b has no metrics")
        floor = results["cells"].get(cell_key(DO_NOTHING, bench.name))
        if floor is not None:
            for d in floor["directions"]:
                if d["direction"] not in dirs:
                    continue
                missing = set(d["metrics"]) - set(dirs[d["direction"]]["metrics"])
                if missing:
                    problems.append(f"{key} {d['direction']}: lacks {sorted(missing)} that do-nothing has")
    return problems


def _dirs(cell: Record) -> dict[str, Record]:
    """A cell's direction reports by name; a one-sided method's cell has only a2b."""
    return {d["direction"]: d for d in cell["directions"]}


def _one_sided(method: str) -> bool:
    from i2icli.methods import read_info

    return method not in BASELINES and read_info(method).one_sided


def _direction_names(cells: Sequence[Record]) -> list[str]:
    return [name for name in ("a2b", "b2a") if any(name in _dirs(c) for c in cells)]


# --------------------------------------------------------------------------- RESULTS.md


def _headline_key(metrics: Record, kind: str) -> str | None:
    """The metric key a headline names: "fid" / "kid" stand for the judge-named key of a direction."""
    if kind in ("fid", "kid"):
        return next((k for k in metrics if k.startswith(f"{kind}-") and k != f"{kind}-inception"), None)
    return kind if kind in metrics else None


def _is_better(key: str, value: float, other: float) -> bool:
    from i2icli.eval.catalogue import metric_info

    better = metric_info(key).better
    return (better == "higher" and value > other) or (better == "lower" and value < other)


def beats(cell: Record, floor: Record) -> list[str]:
    """``direction metric`` entries where ``cell`` is strictly better than the do-nothing ``floor``."""
    from i2icli.eval.catalogue import metric_info

    won = []
    bases = _dirs(floor)
    for mine in cell["directions"]:
        base = bases[mine["direction"]]
        for key, value in mine["metrics"].items():
            if key in base["metrics"] and _is_better(key, value, base["metrics"][key]):
                won.append(f"{mine['direction']} {metric_info(key).label}")
    return won


def _method_order(results: Record) -> list[str]:
    seen = list(dict.fromkeys(c["method"] for c in results["cells"].values()))
    return sorted(seen, key=lambda m: (BASELINES.index(m) if m in BASELINES else len(BASELINES), m))


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: Sequence[str]) -> list[str]:
    return [_row(cells), "|" + "---|" * len(cells)]


def _label(key: str) -> str:
    """A metric's column title with its direction arrow."""
    from i2icli.eval.catalogue import metric_info

    info = metric_info(key)
    return f"{info.label} {'↑' if info.better == 'higher' else '↓'}"


def _cells_of(results: Record, bench: Benchmark) -> list[Record]:
    """The benchmark's finished cells, do-nothing first; a method run with several seeds is one cell
    whose metrics are the mean over its seeds (``seeds`` lists them, ``sd`` per direction holds the
    sample standard deviations)."""
    out = []
    for m in _method_order(results):
        runs = [c for c in results["cells"].values() if c["method"] == m and c["benchmark"] == bench.name]
        if len(runs) == 1:
            out.append(runs[0])
        elif runs:
            out.append(_mean_cell(sorted(runs, key=lambda c: c["seed"])))
    return out


def _mean_cell(runs: list[Record]) -> Record:
    """One record for several seeds of a cell: mean metrics, their sd, summed train time."""
    first = runs[0]
    directions = []
    for d in first["directions"]:
        per_seed = [_dirs(r)[d["direction"]]["metrics"] for r in runs]
        keys = [k for k in d["metrics"] if all(k in m for m in per_seed)]
        values = {k: np.array([m[k] for m in per_seed], dtype=float) for k in keys}
        directions.append(d | {"metrics": {k: float(v.mean()) for k, v in values.items()},
                               "sd": {k: float(v.std(ddof=1)) for k, v in values.items()}})  # fmt: skip
    return first | {
        "seeds": [r["seed"] for r in runs], "directions": directions,
        "train_seconds": sum(r["train_seconds"] for r in runs), "resumed": any(r["resumed"] for r in runs),
    }


_EXPLAINED = """\
## What the figures mean

Every cell trains one method on one benchmark with a labelled CPU preset (small networks, not the
papers' recipes) for the benchmark's fixed step budget, then translates the **whole held-out test
split** in both directions (a2b: testA -> B, b2a: testB -> A). Judges are small classifiers trained
here on the shipped data (`i2icli/eval/judges`); nothing downloaded.

- **class kept** ↑: a class judge reads the translation, scored against the source image's label
  (does the digit stay the same digit?). On mnist-uci-digits the judge is the content judge `digits`
  (trained on both data sets' writers, and on MNIST drawn in UCI's style), which reads real digits of
  either set at about 98%: returning the input unchanged keeps nearly every class, so class kept alone
  cannot show a translation (`benchmarks/results/judge_ceiling.json`). Elsewhere: the target domain's
  class judge.
- **looks like target** ↑: the share of translations the domain judge assigns to the target domain.
- **kept and looks like target** ↑: the share that do both at once, per image: the measure of a
  translation that doing nothing (0%) and drawing a target-style digit of a random class (one in ten) both fail.
- **FID-<judge>** / **KID-<judge>** ↓: Fréchet / kernel distance between translations and real
  target test images, on that judge's 128-d penultimate features (not Inception FID, and not
  comparable with published FIDs).
- **PSNR** ↑, **SSIM** ↑, **L1** ↓, **pixel acc** ↑ (share of pixels whose channels all differ by
  less than 16 levels): against the known true translation (`testB_paired`, a2b of the synthetic
  set only).
- **diversity** ↑ (style models only): mean pairwise judge-feature distance between 8 styles
  sampled for one input, beside the same figure for groups of 8 real target images.
- **do-nothing**: each input returned unchanged, the floor a trained method has to beat.
- **target-mean**: every input answered by the mean training image of the target domain (the best
  constant answer in L2): a PSNR near its figure can come from painting the average image.
"""


def render_results(results: Record) -> str:
    """RESULTS.md, generated from the results JSON alone (so a test can regenerate and compare)."""
    lines = [
        "## Quality benchmark", "",
        "Generated by `python benchmarks/quality.py` from `benchmarks/results/quality.json`; do not edit by hand.", "",
        _EXPLAINED, *_summary(results), *_how_section(results),
    ]  # fmt: skip
    for bench in BENCHMARKS.values():
        lines += _benchmark_section(bench, _cells_of(results, bench))
    return "\n".join(lines).rstrip() + "\n"


def _summary(results: Record) -> list[str]:
    """One row per (benchmark, direction, headline metric), one column per method."""
    methods = _method_order(results)
    lines = ["## Summary", "", *_header(["benchmark", "direction", "metric", *methods])]
    for bench in BENCHMARKS.values():
        here = {c["method"]: c for c in _cells_of(results, bench)}
        for name in _direction_names(list(here.values())):
            d = next(_dirs(c)[name] for c in here.values() if name in _dirs(c))
            for key in filter(None, (_headline_key(d["metrics"], kind) for kind in bench.headline)):
                values = [
                    metric_text(_dirs(here[m])[name]["metrics"], key, _dirs(here[m])[name].get("sd"))
                    if m in here and name in _dirs(here[m]) else "–"
                    for m in methods
                ]  # fmt: skip
                lines.append(_row([bench.name, f"{d['source']} → {d['target']}", _label(key), *values]))
    return [*lines, "", *_reading(results)]


def _reading(results: Record) -> list[str]:
    """What the summary table says, computed from it: per trained method the range of looks-like-target
    and of its FID-<judge> against do-nothing's, and the best method of each summary row."""
    from i2icli.eval.catalogue import format_metric, metric_info

    methods = [m for m in _method_order(results) if m not in BASELINES]
    pairs: dict[str, list[tuple[Record, Record]]] = {m: [] for m in methods}  # (method's, do-nothing's) metrics
    best: list[str] = []
    for bench in BENCHMARKS.values():
        here = {c["method"]: c for c in _cells_of(results, bench)}
        floor = _dirs(here[DO_NOTHING]) if DO_NOTHING in here else {}
        for name in _direction_names(list(here.values())):
            mine = {m: _dirs(here[m])[name]["metrics"] for m in methods if m in here and name in _dirs(here[m])}
            pairs_here = {m: (v, floor[name]["metrics"]) for m, v in mine.items() if name in floor}
            for m, pair in pairs_here.items():
                pairs[m].append(pair)
            d = next(_dirs(c)[name] for c in here.values() if name in _dirs(c))
            for key in filter(None, (_headline_key(d["metrics"], kind) for kind in bench.headline)):
                scored = {m: v[key] for m, v in mine.items() if key in v}
                if scored:
                    top = (min if metric_info(key).better == "lower" else max)(scored.values())
                    winners = ", ".join(m for m, v in scored.items() if format_metric(key, v) == format_metric(key, top))
                    best.append(f"{bench.name} {d['source']} → {d['target']} {_label(key)}: {winners} ({format_metric(key, top)})")
    lines = ["Read from the table (trained methods against do-nothing, over every direction they translate):", ""]
    for m in methods:
        looks = [(v["looks-like-target"], f["looks-like-target"]) for v, f in pairs[m] if "looks-like-target" in v]
        fid = [f[k] / v[k] for v, f in pairs[m] for k in v if k.startswith("fid-") and k in f and v[k] > 0]
        parts = []
        if looks:
            parts.append(
                f"looks like target {min(x for x, _ in looks):.0%}-{max(x for x, _ in looks):.0%}"
                f" (do-nothing {min(y for _, y in looks):.0%}-{max(y for _, y in looks):.0%})"
            )
        if fid:
            parts.append(f"do-nothing's FID-<judge> over its own {min(fid):.1f}-{max(fid):.1f} (above 1: lower FID than do-nothing)")
        if parts:
            lines.append(f"- {m}: {'; '.join(parts)}.")
    return [*lines, "", "Best trained method of each row:", "", *(f"- {b}" for b in best), ""]


def _how_section(results: Record) -> list[str]:
    cells = list(results["cells"].values())
    machines = sorted(describe(c["machine"]) for c in cells)
    dates = sorted(c["finished"] for c in cells)
    budgets = [f"{b.name} {b.steps} steps x batch {b.batch_size}" for b in BENCHMARKS.values()]
    lines = [
        "## How they were made", "",
        "```",
        "pip install -e '.[bench]'",
        "python benchmarks/quality.py --methods do-nothing,cyclegan  # missing cells only; finished ones are kept",
        "python benchmarks/quality.py --cells cyclegan:mnist-uci-digits  # one cell",
        "```", "",
        *(f"- Machine: {m}." for m in dict.fromkeys(machines)),
        f"- Dates: {dates[0]} to {dates[-1]}." if dates else "- No cells yet.",
        f"- Budgets: {'; '.join(budgets)}; seed 0; the same for every method on a benchmark, except where a method"
        " runs its working recipe (the preset and steps columns of each benchmark say so).",
        "- Several seeds: metrics are mean ± sample sd over the seeds listed; train time sums them.",
        "- The machine was shared with other jobs during these runs (1-minute load averages are in the JSON),",
        "  so training times are upper bounds.", "",
    ]  # fmt: skip
    return lines


def _benchmark_section(bench: Benchmark, here: list[Record]) -> list[str]:
    """Per benchmark: the cells' budgets and times, then one metric table per direction."""
    from i2icli.eval.catalogue import format_metric, metric_info

    needs = f" (needs {bench.needs})" if bench.needs else ""
    lines = [f"## {bench.name}{needs}", ""]
    if not here:
        return [*lines, "No cells run yet.", ""]
    lines += _header(["method", "preset", "steps x batch", "seeds", "train time", "eval time"])
    for c in here:
        trained = bool(c["steps"])
        resumed = " (resumed)" if c["resumed"] else ""
        seeds = ", ".join(map(str, c.get("seeds", [c["seed"]]))) if trained else "–"
        per = " (all seeds)" if len(c.get("seeds", [])) > 1 else ""
        lines.append(_row([
            c["method"], c["preset"] or "–", f"{c['steps']} x {c['batch_size']}" if trained else "–", seeds,
            f"{c['train_seconds'] / 60:.1f} min{resumed}{per}" if trained else "–", f"{c['eval_seconds']:.0f} s",
        ]))  # fmt: skip
    lines.append("")
    for name in _direction_names(here):
        with_it = [c for c in here if name in _dirs(c)]  # one-sided methods have no b2a row
        per_cell = [_dirs(c)[name] for c in with_it]
        d = per_cell[0]
        keys = list(dict.fromkeys(k for x in per_cell for k in x["metrics"]))
        lines += [f"### {d['source']} → {d['target']} ({d['direction']}, {d['n']} test images)", ""]
        if not keys:
            lines += [f"No metric applies: {'; '.join(d['skipped'])}.", ""]
            continue
        lines += _header(["method", *map(_label, keys)])
        lines += [_row([c["method"], *(metric_text(x["metrics"], k, x.get("sd")) for k in keys)]) for c, x in zip(with_it, per_cell)]
        # Real-image references depend on the data (and the judge) only: the first cell that has one speaks for all.
        refs = {k: v for x in reversed(per_cell) for k, v in x["reference"].items()}
        lines += [f"\nReference: {metric_info(k).label} = {format_metric(k, v)}." for k, v in refs.items()]
        # Caveats (e.g. FID from fewer images than feature dimensions) hold for every cell of the same N.
        notes = dict.fromkeys(n for x in per_cell for n in x.get("notes", []))
        lines += [f"\nNote: {n}." for n in notes]
        lines.append("")
    floor = next((c for c in here if c["method"] == DO_NOTHING), None)
    for c in here if floor is not None else []:
        if c is not floor:
            won = beats(c, floor)
            listed = f": {', '.join(won)}." if won else "."
            lines.append(f"- {c['method']} beats do-nothing on {len(won)} metric(s){listed}")
    truth = "truth, " if any("psnr" in c["directions"][0]["metrics"] for c in here) else ""
    figures = f"[a2b](figures/samples-{bench.name}-a2b.png), [b2a](figures/samples-{bench.name}-b2a.png)"
    return [*lines, "", f"Samples (rows: test inputs; columns: input, {truth}each method): {figures}.", ""]


# --------------------------------------------------------------------------- figures


def write_markdown(results: Record, markdown: Path) -> None:
    """This benchmark's block of RESULTS.md; for the repository's RESULTS.md also the README's
    copy of its summary (block ``quality-summary``: the table and each row's best method)."""
    text = render_results(results)
    write_block(markdown, "quality", text)
    if markdown == MARKDOWN and read_block(README, "quality-summary") is not None:
        write_block(README, "quality-summary", text.split("## Summary", 1)[1].split("## How they were made", 1)[0])


def render_figures(results: Record, figures: Path) -> None:
    """The sample grids (inputs x methods) from the saved strips, and the headline-metric chart."""
    for bench in BENCHMARKS.values():
        for direction in ("a2b", "b2a"):
            grid = _sample_grid(figures / "cells" / bench.name / direction, _method_order(results))
            if grid is not None:
                grid.save(figures / f"samples-{bench.name}-{direction}.png")
    _chart(results, figures / "quality.png")


def _sample_grid(folder: Path, methods: list[str]) -> Image.Image | None:
    """Columns input | truth | methods..., each scaled 3x, with a name above; None if nothing is saved."""
    from PIL import Image, ImageDraw

    names = ["input", "truth", *[m for m in methods if m != DO_NOTHING]]
    columns = [(n, Image.open(folder / f"{n}.png").convert("RGB")) for n in names if (folder / f"{n}.png").is_file()]
    if len(columns) < 2:
        return None
    scale, header, gap = 3, 14, 4
    width, height = columns[0][1].width * scale, columns[0][1].height * scale
    grid = Image.new("RGB", (len(columns) * (width + gap) - gap, height + header), "white")
    draw = ImageDraw.Draw(grid)
    for i, (name, column) in enumerate(columns):
        x = i * (width + gap)
        draw.text((x + 2, 1), name, fill="black")
        grid.paste(column.resize((width, height), Image.Resampling.NEAREST), (x, header))
    return grid


def _chart(results: Record, path: Path) -> None:
    """One panel per (benchmark, headline metric): one bar per method for each direction it applies to."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install matplotlib)", file=sys.stderr)
        return
    panels = []  # (title, direction names, keys per direction, cells)
    for bench in BENCHMARKS.values():
        here = _cells_of(results, bench)
        for kind in bench.headline if here else ():
            first = {name: next(_dirs(c)[name] for c in here if name in _dirs(c)) for name in _direction_names(here)}
            dirs = [(name, _headline_key(d["metrics"], kind)) for name, d in first.items()]
            dirs = [(name, key) for name, key in dirs if key is not None]
            labels = sorted({_label(key) for _, key in dirs})
            # FID keys differ by direction (each is named after its target's judge).
            title = labels[0] if len(labels) == 1 else f"{kind.upper()}-<target judge> ↓"
            if dirs:
                panels.append((f"{bench.name}\n{title}", here, dirs))
    if not panels:
        return
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, here, dirs) in zip(axes.flat, panels):
        width = 0.8 / len(here)
        x = np.arange(len(dirs))
        for j, cell in enumerate(here):
            values = [_dirs(cell)[name]["metrics"].get(key, np.nan) if name in _dirs(cell) else np.nan for name, key in dirs]
            ax.bar(x + j * width, values, width, label=cell["method"])
        ax.set_xticks(x + width * (len(here) - 1) / 2)
        names = [next(_dirs(c)[name] for c in here if name in _dirs(c)) for name, _ in dirs]
        ax.set_xticklabels([f"{d['source']}→{d['target']}" for d in names], fontsize=8)
        ax.set_title(title, fontsize=9)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower right", fontsize=9)  # one legend: every panel has the same methods
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def _paths(args: argparse.Namespace) -> Paths:
    if args.smoke:
        work = args.work or Path(tempfile.mkdtemp(prefix="i2i-quality-smoke-"))
        return Paths(work / "quality.json", work / "RESULTS.md", work / "figures", work)
    if args.quick:
        work = args.work or REPO / "runs" / "benchmarks-quick"
        return Paths(work / "quality.json", work / "RESULTS.md", work / "figures", work)
    return Paths(RESULTS, MARKDOWN, FIGURES, args.work or REPO / "runs" / "benchmarks")


def run_table(
    cells: Sequence[tuple[MethodPlan, Benchmark]], paths: Paths, *, smoke: bool, quick: bool,
    log: Callable[[str], None] = print, seeds: Sequence[int] = (SEED,),
) -> tuple[Record, list[str]]:  # fmt: skip
    """Run every missing cell (skipping finished ones); returns the results and the keys run now."""
    results = load_results(paths.results)
    ran = []
    for plan, bench, seed in ((p, b, s) for p, b in cells for s in (seeds if p.name not in BASELINES else (SEED,))):
        key = cell_key(plan.name, bench.name, seed)
        if key in results["cells"]:
            log(f"{key}: done earlier, skipped")
            continue
        reason = bench.unavailable()
        if reason:
            log(f"{key}: skipped, {reason}")
            continue
        preset, steps = cell_budget(plan, bench)
        steps = SMOKE_STEPS if smoke else QUICK_STEPS if quick else steps
        log(f"{key}: preparing data")
        data = prepare_data(bench, paths.work / "data", small=smoke)
        log(f"{key}: {'evaluating' if plan.name in BASELINES else f'training {preset} for {steps} steps, seed {seed}'}")
        results["cells"][key] = run_cell(plan, bench, data, paths.work, paths.figures, steps, log, preset, seed)
        ran.append(key)
        results = save_results(paths.results, results, ran)
        write_markdown(results, paths.markdown)
        log(f"{key}: finished")
    if ran:  # the chart takes seconds, so figures are drawn once per run (--report redraws them)
        render_figures(results, paths.figures)
    return results, ran


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", help="comma-separated methods (default: every method in the table)")
    parser.add_argument("--benchmarks", help="comma-separated benchmarks (default: all)")
    parser.add_argument("--cells", help="comma-separated method:benchmark cells (overrides the two above)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="3 steps on tiny data in a temp folder; checks the table")
    mode.add_argument("--quick", action="store_true", help=f"{QUICK_STEPS} steps per cell, results under runs/")
    mode.add_argument("--report", action="store_true", help="only regenerate RESULTS.md and figures from the JSON")
    parser.add_argument("--work", type=Path, help="data, run folders (and for --smoke/--quick the results)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--seeds", type=seed_list, default=str(SEED),
                        help="comma-separated training seeds (default 0); tables show mean +- sd")  # fmt: skip
    args = parser.parse_args(argv)
    seeds = args.seeds
    paths = _paths(args)
    cells = select_cells(_method_plans(), args.methods, args.benchmarks, args.cells)
    if args.report:
        results = load_results(paths.results)
        write_markdown(results, paths.markdown)
        render_figures(results, paths.figures)
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results, _ = run_table(cells, paths, smoke=args.smoke, quick=args.quick, seeds=seeds)
    if args.smoke:
        available = [(p, b) for p, b in cells if b.unavailable() is None]
        return smoke_status(check_shape(results, available), len(available), paths.markdown)
    return 0


if __name__ == "__main__":
    from entry import run_script

    run_script(main)

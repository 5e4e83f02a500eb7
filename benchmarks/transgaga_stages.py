"""TransGaGa stage by stage on mnist-warped: where does the digit's class get lost?

Trains the geometry benchmark's TransGaGa cell (preset ``cpu-small`` with the cell's overrides:
32 px gray, 1500 steps of batch 8 split into the three stages by the method's ``budget_overrides``)
in this process on the same unpaired split (even MNIST-5k training digits plain, odd ones warped),
and every ``--every`` steps measures, on the first ``--n`` test digits of each domain:

- ``rec`` a / b: the domain's digit judge reads the reconstruction (own landmarks, μ_a).
- ``tracking`` a / b: landmark tracking error under a 3 px shift (0: the landmarks move with the
  digit; 1: they stay put).
- ``true-map`` b→a / a→b: one domain's decoder renders the *other* domain's landmarks moved by the
  pair's known warp (its inverse for b→a), with the appearance of a real image of its own domain.
  The class survives only if landmark k marks the same part of a digit in both domains; chance
  (about 10 %) means the two estimators' landmark indices do not correspond, so no geometry
  transformer that keeps landmark identity could keep the class either.
- ``kept`` a2b / b2a, ``looks`` a2b / b2a: class kept by the translations (the target domain's digit
  judge) and the share the domain judge assigns to the target (the geometry benchmark's judges).
- ``diversity`` a2b / b2a: mean per-pixel standard deviation over the translated test digits (one
  image for every input gives 0); the real target test digits' figure is recorded beside it.

``--set KEY=VALUE`` (repeatable) adds TransGaGa config overrides; each set is its own run, keyed by
them in ``benchmarks/results/transgaga_stages.json``. The RESULTS.md block and the curve figure are
written from that JSON (``--report`` rewrites only them).

    python benchmarks/transgaga_stages.py                      # the cell's recipe
    python benchmarks/transgaga_stages.py --set equiv_w=50     # with our equivariance term
    python benchmarks/transgaga_stages.py --smoke              # a few steps on tiny data (CI)

Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from machine_info import describe, machine
from results_md import write_block

if TYPE_CHECKING:
    import torch
    from geometry import Judges

    from i2icli.methods.transgaga import TransGaGaModel

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "transgaga_stages.json"
MARKDOWN = HERE / "RESULTS.md"
FIGURE = HERE / "figures" / "transgaga-stages.png"
BLOCK = "transgaga-stages"
PAIR, SEED, SHIFT = "mnist-warped", 0, 3
STEPS, EVERY, N_TEST = 1500, 125, 200
SMOKE_STEPS, SMOKE_EVERY, SMOKE_N = 6, 3, 16

COLUMNS = (  # (key, header, format): one table column each, both domains / directions in one cell
    ("rec", "rec kept a / b", "pct"),
    ("tracking", "tracking error a / b", "num"),
    ("true_map", "true-map kept b→a / a→b", "pct"),
    ("kept", "kept a2b / b2a", "pct"),
    ("looks", "looks a2b / b2a", "pct"),
    ("diversity", "diversity a2b / b2a", "num"),
)


# --------------------------------------------------------------------------- data


class Pairs:
    """Unpaired training batches of the two domains (step data for the loop), seeded by the step."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, batch: int) -> None:
        self.images = {"a": a, "b": b}
        self.batch = batch

    def __getitem__(self, step: int) -> dict[str, Any]:
        import torch

        g = torch.Generator().manual_seed(SEED * 1_000_003 + step)
        ia, ib = (torch.randint(len(self.images[d]), (self.batch,), generator=g) for d in ("a", "b"))
        return {"a": self.images["a"][ia], "b": self.images["b"][ib], "index_a": ia, "index_b": ib, "step": step}

    def __len__(self) -> int:
        return 10**9

    def sample(self, domain: str, n: int, seed: int) -> torch.Tensor:
        import torch

        images = self.images[domain]
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]


def _as_input(images: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(images).float().div(127.5).sub(1.0)[:, None]  # (N, 1, 32, 32) in [-1, 1]


def pair_tensors(limit: int | None) -> dict[str, Any]:
    """The geometry benchmark's mnist-warped split in memory: train/test images of both domains
    (even digits plain, odd digits warped) and the test labels."""
    import torch
    from geometry import PAIRS, pad_digits

    from i2icli.data.shipped import load_mnist

    pair, out = PAIRS[PAIR], {}
    for split in ("train", "test"):
        digits, labels = load_mnist(split)
        index = np.arange(len(digits))[: None if limit is None else 2 * limit]
        even, odd = index[0::2], index[1::2]
        padded = pad_digits(digits)
        out[f"{split}_a"] = _as_input(pair.render_a(padded[even]))
        out[f"{split}_b"] = _as_input(pair.render_b(padded[odd], odd, split))
        out[f"{split}_labels_a"] = torch.from_numpy(np.asarray(labels[even], np.int64))
        out[f"{split}_labels_b"] = torch.from_numpy(np.asarray(labels[odd], np.int64))
    return out


def warp_matrix() -> torch.Tensor:
    """(2, 2): a point (x, y) of a plain digit -> where the warp puts it in domain b (grid
    coordinates, x right, y down; the moments' ±1-at-pixel-centres convention differs from the
    warp's ±1-at-edges by 31/32, well under a landmark's width)."""
    import torch
    from geometry import WARP_DEGREES, WARP_SQUEEZE

    t = math.radians(WARP_DEGREES)
    rotate = torch.tensor([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    return rotate @ torch.diag(torch.tensor([WARP_SQUEEZE, 1.0]))


# --------------------------------------------------------------------------- measurements


def tracking_error(model: TransGaGaModel, x: torch.Tensor, domain: str) -> float:
    """|μ(shift(x)) - μ(x) - shift| / |shift| for a SHIFT px shift right (background filled in)."""
    import torch

    _, mu = model.landmarks(x, domain)
    shifted = torch.roll(x, shifts=SHIFT, dims=3)
    shifted[..., :SHIFT] = x[..., :1].mean()  # the page colour of the domain's left edge
    _, mu_s = model.landmarks(shifted, domain)
    expected = 2 * SHIFT / (x.shape[3] - 1)
    return float(((mu_s[..., 0] - mu[..., 0] - expected).abs() + (mu_s[..., 1] - mu[..., 1]).abs()).mean() / expected)


def measure(model: TransGaGaModel, data: dict[str, Any], judges: Judges, n: int) -> dict[str, list[float]]:
    """Every column of the table for the model as it is now (eval mode, no gradients)."""
    import torch

    from i2icli.eval.judges import predict
    from i2icli.methods.transgaga import moments

    def kept(images: torch.Tensor, labels: torch.Tensor, judge: Any) -> float:
        return float((predict(judge, images) == labels).double().mean())

    x = {d: data[f"test_{d}"][:n] for d in ("a", "b")}
    labels = {d: data[f"test_labels_{d}"][:n] for d in ("a", "b")}
    judge = {"a": judges.digits[0], "b": judges.digits[1]}
    forward = warp_matrix()
    # Another real image's appearance for each input (a fixed derangement), in its own domain.
    other = torch.roll(torch.arange(n), 1)
    rec, tracking, true_map, trans = {}, {}, {}, {}
    for d in ("a", "b"):
        dom = model.domain(d)
        points = dom.geometry(x[d])  # (n, K, 2): PCA-projected once the PCA is fitted
        mu, _ = dom.appearance(x[d], points)
        rec[d] = kept(dom.decode(points, mu, 32, 32), labels[d], judge[d])
        tracking[d] = tracking_error(model, x[d], d)
    for source, target, matrix in (("b", "a", torch.linalg.inv(forward)), ("a", "b", forward)):
        src, tgt = model.domain(source), model.domain(target)
        moved = moments(src.heatmaps(x[source]))[0] @ matrix.T  # (n, K, 2) in the target's frame
        moved = tgt.pca.project(moved) if tgt.pca.is_fitted else moved
        mu_t, _ = tgt.appearance(x[target][other], tgt.geometry(x[target][other]))
        true_map[f"{source}2{target}"] = kept(tgt.decode(moved, mu_t, 32, 32), labels[source], judge[target])
    looks, diversity = {}, {}
    for direction, source, target in (("a2b", "a", "b"), ("b2a", "b", "a")):
        y = model.translate(x[source], direction)  # type: ignore[arg-type]
        trans[direction] = kept(y, labels[source], judge[target])
        looks[direction] = float((predict(judges.domain, y) == (1 if target == "b" else 0)).double().mean())
        diversity[direction] = float(y.std(0).mean())
    return {
        "rec": [rec["a"], rec["b"]], "tracking": [tracking["a"], tracking["b"]],
        "true_map": [true_map["b2a"], true_map["a2b"]], "kept": [trans["a2b"], trans["b2a"]],
        "looks": [looks["a2b"], looks["b2a"]], "diversity": [diversity["a2b"], diversity["b2a"]],
    }  # fmt: skip


# --------------------------------------------------------------------------- the run


def run_key(overrides: Sequence[str]) -> str:
    return ":".join(["cpu-small", str(STEPS), *overrides])


def run(overrides: Sequence[str], steps: int, every: int, n: int, work: Path, small: bool, log: Any) -> dict[str, Any]:
    """Train once, measuring every ``every`` steps (and at step 0): the run's record."""
    import torch
    from geometry import PAIRS, VARIANTS, load_judges

    from i2icli.config import apply_overrides
    from i2icli.methods.transgaga import METHOD, TransGaGaModel, TransGaGaObjective
    from i2icli.train.loop import LoopOptions, train

    pair = PAIRS[PAIR]
    cfg = apply_overrides(METHOD.presets["cpu-small"].config, [*VARIANTS["transgaga"].settings(pair, steps), *overrides])
    data = pair_tensors(SMOKE_N if small else None)
    judges, _ = load_judges(pair, work, small, log)
    torch.manual_seed(SEED)
    model = TransGaGaModel(cfg.arch)
    objective = TransGaGaObjective(cfg, model, Pairs(data["train_a"], data["train_b"], 8), SEED)
    curve: list[dict[str, Any]] = []

    @torch.no_grad()
    def probe(step: int) -> None:
        modules = list(objective.training_modules().values())
        modes, rng = [m.training for m in modules], torch.get_rng_state()
        for m in modules:
            m.eval()
        try:
            curve.append({"step": step, **measure(model, data, judges, n)})
        finally:
            torch.set_rng_state(rng)  # measuring draws nothing the training would have drawn
            for m, mode in zip(modules, modes):
                m.train(mode)
        log(f"step {step}: " + ", ".join(f"{k} {v[0]:.3f}/{v[1]:.3f}" for k, v in curve[-1].items() if k != "step"))

    probe(0)
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="i2i-transgaga-stages-") as run_dir:
        train(objective, Pairs(data["train_a"], data["train_b"], 8),
              LoopOptions(max_steps=steps, seed=SEED, save_every=0, sample_every=0, log_every=every),
              run_dir=Path(run_dir), device=torch.device("cpu"),
              on_step=lambda step, values: probe(step), log=log)  # fmt: skip
    real = {d: float(data[f"test_{d}"][:n].std(0).mean()) for d in ("a", "b")}
    return {
        "overrides": list(overrides), "steps": steps, "every": every, "n": n, "seed": SEED,
        "stages": {"disentangle": 0, "pca": cfg.steps_disentangle, "translate": cfg.translate_start},
        "real_diversity": [real["b"], real["a"]],  # the targets of a2b and b2a
        "curve": curve,
        "train_seconds": round(time.perf_counter() - wall, 1), "train_cpu_seconds": round(time.process_time() - cpu, 1),
        "machine": machine() | {"load_avg_1m": round(os.getloadavg()[0], 2)},
        "command": "python benchmarks/transgaga_stages.py" + "".join(f" --set {o}" for o in overrides),
    }  # fmt: skip


# --------------------------------------------------------------------------- the report


def _cell(values: list[float], kind: str) -> str:
    return " / ".join(f"{v:.0%}" if kind == "pct" else f"{v:.3f}" for v in values)


def _stage(record: dict[str, Any], step: int) -> str:
    starts = sorted(record["stages"].items(), key=lambda kv: kv[1])
    return [name for name, start in starts if start <= max(step - 1, 0)][-1]


def render(results: dict[str, Any]) -> str:
    lines = [
        "## TransGaGa stage by stage (`benchmarks/transgaga_stages.py`)", "",
        "The geometry benchmark's TransGaGa cell (cpu-small, mnist-warped, batch 8, seed 0) trained again with "
        "measurements along the way, on the first test digits of each domain. **rec**: the digit judge reads "
        "the reconstruction. **tracking error**: landmarks under a 3 px shift (0 = they follow the digit, "
        "1 = they stay put). **true-map**: one domain's decoder renders the other domain's landmarks moved by "
        "the pair's *known* warp: chance (~10%) means landmark k does not mark the same part of a digit in both "
        "domains, so even the true geometry map cannot carry the class through the landmarks. **kept**, "
        "**looks**: the translations' class kept and judged-as-target (the geometry benchmark's judges). "
        "**diversity**: mean per-pixel std over the translations (0 = one image for every input).", "",
    ]  # fmt: skip
    for record in (results["runs"][k] for k in sorted(results["runs"])):
        sets = ", ".join(f"`{o}`" for o in record["overrides"]) or "none"
        real = record["real_diversity"]
        lines += [
            f"### overrides: {sets}", "",
            f"{record['steps']} steps (stages start at {', '.join(f'{k} {v}' for k, v in record['stages'].items())}), "
            f"{record['n']} test digits per domain; real target digits' diversity {real[0]:.3f} / {real[1]:.3f}; "
            f"trained in {record['train_seconds'] / 60:.1f} min ({describe(record['machine'])}, load "
            f"{record['machine']['load_avg_1m']}). Command: `{record['command']}`.", "",
            "| step | stage | " + " | ".join(h for _, h, _ in COLUMNS) + " |",
            "|---|---|" + "---|" * len(COLUMNS),
        ]  # fmt: skip
        for point in record["curve"]:
            cells = [_cell(point[k], kind) for k, _, kind in COLUMNS]
            lines.append(f"| {point['step']} | {_stage(record, point['step'])} | " + " | ".join(cells) + " |")
        lines.append("")
    for note in results.get("notes", []):
        lines += [note, ""]
    lines.append(f"Curves: [figures/{FIGURE.name}](figures/{FIGURE.name}).")
    return "\n".join(lines) + "\n"


def render_figure(results: dict[str, Any], path: Path) -> None:
    """One row per run: class kept (translation, true map, reconstruction) and diversity vs step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(results["runs"].items())
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 3.2 * len(runs)), squeeze=False)
    for (_, record), (left, right) in zip(runs, axes):
        steps = [p["step"] for p in record["curve"]]
        names = {"kept": ("a2b", "b2a"), "true_map": ("b2a", "a2b"), "rec": ("a", "b")}  # the order of each pair
        for k, label in (("kept", "translation kept"), ("true_map", "true-map kept"), ("rec", "reconstruction kept")):
            for i, (name, style) in enumerate(zip(names[k], ("-", "--"))):
                left.plot(steps, [p[k][i] for p in record["curve"]], style, label=f"{label} {name}")
        right.plot(steps, [p["diversity"][0] for p in record["curve"]], "-", label="diversity a2b")
        right.plot(steps, [p["diversity"][1] for p in record["curve"]], "--", label="diversity b2a")
        right.plot(steps, [p["tracking"][0] for p in record["curve"]], ":", label="tracking error a")
        for ax in (left, right):
            for start in record["stages"].values():
                ax.axvline(start, color="grey", lw=0.5)
            ax.set_xlabel("step")
            ax.legend(fontsize=6)
        left.set_ylim(0, 1)
        name = ", ".join(record["overrides"]) or "the cell's recipe"
        left.set_title(f"{name}: class kept", fontsize=7)
        right.set_title(f"{name}: diversity, tracking", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"runs": {}, "notes": []}


def report(results: dict[str, Any], markdown: Path, figure: Path) -> None:
    write_block(markdown, BLOCK, render(results))
    render_figure(results, figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="TransGaGa config override (repeatable); each set of overrides is its own run")  # fmt: skip
    parser.add_argument("--every", type=int, default=EVERY, help=f"steps between measurements (default {EVERY})")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--work", type=Path, help="judges (default runs/geometry, shared with the geometry benchmark)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help=f"{SMOKE_STEPS} steps on tiny data in a temp folder")
    mode.add_argument("--report", action="store_true", help="only rewrite the RESULTS.md block and the figure")
    mode.add_argument("--note", help="record a paragraph of diagnosis below the tables (no training)")
    args = parser.parse_args(argv)
    if args.overrides:  # a bad --set stops here, before any folder or training
        from i2icli.config import ConfigError, apply_overrides
        from i2icli.errors import UsageError
        from i2icli.methods.transgaga import METHOD

        try:
            apply_overrides(METHOD.presets["cpu-small"].config, args.overrides)
        except (ConfigError, UsageError) as e:
            parser.error(f"--set: {e}")
    if args.report or args.note:
        results = load(RESULTS)
        if args.note:
            results["notes"].append(args.note)
            RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        report(results, MARKDOWN, FIGURE)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    if args.smoke:
        work = args.work or Path(tempfile.mkdtemp(prefix="i2i-transgaga-stages-smoke-"))
        results_path, markdown, figure = work / "transgaga_stages.json", work / "RESULTS.md", work / "figure.png"
        steps, every, n = SMOKE_STEPS, SMOKE_EVERY, SMOKE_N
    else:
        work = args.work or HERE.parent / "runs" / "geometry"
        results_path, markdown, figure = RESULTS, MARKDOWN, FIGURE
        steps, every, n = STEPS, args.every, N_TEST
    record = run(args.overrides, steps, every, n, work, args.smoke, lambda line: print(line, file=sys.stderr, flush=True))
    results = load(results_path)  # read after training: another run may have finished meanwhile
    results["runs"][run_key(args.overrides)] = record
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    report(results, markdown, figure)
    if args.smoke:
        expected = steps // every + 1 + (steps % every > 0)
        problems = [] if len(record["curve"]) == expected else [f"{len(record['curve'])} measurements, expected {expected}"]
        print(f"smoke: {len(record['curve'])} measurements, table in {markdown}")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    from entry import run_script

    run_script(main)

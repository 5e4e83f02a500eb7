"""Learning curves: metrics against training step, on a validation split carved from the training data.

A run trains one variant (a method, its preset, and labelled ``--set`` overrides) on one benchmark
of ``benchmarks/quality.py`` (same data, whole-image overrides and batch), keeps a checkpoint every
``--every`` steps and scores each one as it appears on the **validation split**: ``--val`` images
per domain taken (seeded) out of the training folders before training starts, so the model never
trains on them and the test split is never looked at. The judges only judge: no label reaches
training. Each point records class kept, looks like target, FID on judge features and (style
models) diversity per direction, beside a do-nothing row scored on the same validation images.

Finished points are kept in ``benchmarks/results/curves.json``; an interrupted run resumes from its
last checkpoint under ``--work`` and scores only the points it lacks. ``benchmarks/RESULTS.md``
(block ``curves``) and ``benchmarks/figures/curves.png`` are regenerated from the JSON.

    python benchmarks/curves.py --runs cyclegan-small:mnist-uci-digits --steps 3000 --every 250
    python benchmarks/curves.py --list          # the variants
    python benchmarks/curves.py --report        # only rewrite RESULTS.md and the figure from the JSON
    python benchmarks/curves.py --smoke         # 4 steps on tiny data in a temp folder (CI)

Needs ``pip install -e '.[bench]'`` (shipped data, matplotlib for the figure).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import describe, machine
from quality import AT_32, BENCHMARKS, Benchmark, _whole_image_overrides, prepare_data
from results_md import locked, smoke_status, write_block

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "curves.json"
MARKDOWN = HERE / "RESULTS.md"
FIGURE = HERE / "figures" / "curves.png"
RESULTS_VERSION = 1
SEED = 0
VAL_IMAGES = 500  # per domain, carved out of the training folders
SMOKE_STEPS, SMOKE_EVERY, SMOKE_VAL = 4, 2, 6
DO_NOTHING = "do-nothing"

Record = dict[str, Any]


@dataclass(frozen=True)
class Variant:
    """A method trained with a preset plus labelled overrides (applied after the benchmark's own);
    ``ema``: the loop's weight average (``i2i train --ema``; None: the preset's, 0: off)."""

    name: str
    method: str
    preset: str
    overrides: tuple[str, ...] = ()
    note: str = ""
    ema: float | None = None

    def labels(self) -> list[str]:
        """The overrides as a reader sees them, the loop's option included."""
        return [*self.overrides, *([f"--ema {self.ema}"] if self.ema is not None else [])]


# MUNIT's first CPU candidate on top of cpu-small (lr halved every 1000 steps, explicit cycle at 10):
# the munit-fast-* variants were measured on it; the recipe they led to is now MUNIT's cpu-fast.
MUNIT_CYCLE = ("step_size=1000", "recon_x_cyc_w=10")
# MUNIT's cpu-fast before 2026-12-07 (cpu-small with these, EMA 0.995): the base of the munit-cpufast-* runs made then.
MUNIT_FORMER_FAST = (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3", "optim.lr=5e-4")

# UNIT's cpu-fast before 2026-12-07 (cpu-small with these): the base of the unit-fast* runs made then.
UNIT_FORMER_FAST = ("arch.dis_layers=2", "gan_w=3", "lambda_content=10")
# UNIT's master network at CPU widths trained as MUNIT's cpu-fast (its D, loss scale, lr plan and
# loose content term): the recipe that let MUNIT change shapes and keep digits; now UNIT's cpu-fast.
UNIT_MASTER_MUNIT_FAST = (
    "arch.variant=master", "arch.n_res=2", "arch.dis_layers=3", "arch.dis_scales=1", "gan_type=lsgan", "init=kaiming",
    "gan_w=3", "kl_w=0.01", "recon_x_w=10", "kl_cyc_w=0.01", "cyc_w=10", "kl_cyc_on_input=false",
    "lambda_content=1", "content_pool=8", "lr_policy=step", "step_size=1000", *AT_32,
)

# TransGaGa's options of ours that make landmark indices correspond across domains (the geometry
# benchmark's variant transgaga-shared; benchmarks/transgaga_stages.py measures why).
TRANSGAGA_SHARED = ("equiv_w=50", "arch.shared_estimator=true", "arch.geo_tf_base=true")

# Each option beyond a preset is its own labelled variant, so it can be measured on and off.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("cyclegan-small", "cyclegan", "cpu-small", note="cpu-small as the quality table runs it"),
        Variant("cyclegan-small-noidt", "cyclegan", "cpu-small", ("lambda_identity=0",), "identity term off"),
        Variant("cyclegan-small-const", "cyclegan", "cpu-small", ("lr_policy=constant",), "constant lr, no decay"),
        Variant("cyclegan-small-content", "cyclegan", "cpu-small", ("lambda_content=10",), "content term (4x low-pass L1) on"),
        Variant("cyclegan-small-sn", "cyclegan", "cpu-small", ("spectral_norm_d=true",), "spectral norm on D"),
        Variant("cyclegan-small-d2", "cyclegan", "cpu-small", ("n_layers_d=2",), "2-layer D (5x5 patches at 28 px)"),
        Variant(
            "cyclegan-small-content3-d2",
            "cyclegan",
            "cpu-small",
            ("lambda_content=3", "n_layers_d=2"),
            "content term at weight 3 and 2-layer D",
        ),
        Variant(
            "cyclegan-small-content3-d2-cyca2",
            "cyclegan",
            "cpu-small",
            ("lambda_content=3", "n_layers_d=2", "lambda_a=2.5"),
            "content term 3, 2-layer D, a->b->a cycle weight 2.5 (MNIST->UCI loses detail the cycle would make G hide)",
        ),
        Variant(
            "cyclegan-small-content-d2",
            "cyclegan",
            "cpu-small",
            ("lambda_content=10", "n_layers_d=2"),
            "content term and 2-layer D",
        ),
        Variant("cyclegan-fast3", "cyclegan", "cpu-fast", ("lambda_content=3",), "content term 3 and 2-layer D"),
        Variant("cyclegan-fast", "cyclegan", "cpu-fast", note="the cpu-fast recipe (2-layer D, content term 10)"),
        Variant("gcgan-small", "gcgan", "cpu-small", note="cpu-small as the quality table runs it"),
        Variant("gcgan-fast", "gcgan", "cpu-fast", note="the cpu-fast recipe (2-layer D, content term 10)"),
        Variant(
            "gcgan-small-ema", "gcgan", "cpu-small",
            note="cpu-small with the generator's weights averaged (EMA, decay 0.995): its outputs swing from step to step",
            ema=0.995,
        ),
        Variant(
            "gcgan-small-content1p8-ema", "gcgan", "cpu-small", ("lambda_content=1", "content_pool=8"),
            "gcgan-small-ema plus a loose content term (1 after 8x pooling): without a cycle nothing tied the boots to "
            "their sneakers (one boot for every input)",
            ema=0.995,
        ),
        Variant(
            "gcgan-small-cycle", "gcgan", "cpu-small", ("cycle=true",),
            "cpu-small with the paper's GC + cycle variant (official gc_cycle_gan: a second generator b -> a and "
            "both cycle terms), which ties each boot to its sneaker where the geometry term alone did not",
        ),
        Variant("distancegan-small", "distancegan", "cpu-small", note="cpu-small as the quality table runs it"),
        # cpu-fast had the content term at 10 until distancegan-fast-content30 was adopted (now 30).
        Variant("distancegan-fast", "distancegan", "cpu-fast", ("lambda_content=10",),
                "the earlier cpu-fast recipe (2-layer D, content term 10)"),
        Variant("distancegan-fast-content30", "distancegan", "cpu-fast", ("lambda_content=30",),
                "the earlier cpu-fast recipe with the content term at 30 (then 10; now cpu-fast itself)"),
        Variant("distancegan-fast-content30-p8", "distancegan", "cpu-fast", ("lambda_content=30", "content_pool=8"),
                "the earlier cpu-fast recipe with the content term at 30 after 8x pooling (then 10 after 4x)"),
        Variant(
            "distancegan-fast-ema", "distancegan", "cpu-fast", ("lambda_content=10",),
            note="the earlier cpu-fast recipe (content term 10) with the generators' weights averaged (EMA, decay 0.995)", ema=0.995,
        ),
        Variant("munit-small", "munit", "cpu-small", note="cpu-small as the quality table runs it"),
        Variant("munit-fast", "munit", "cpu-small", MUNIT_CYCLE, "cpu-small with the lr halved every 1000 steps and the explicit cycle at 10"),
        Variant(
            "munit-fast-content", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10"),
            "munit-fast plus the content term at 10 (4x low-pass L1 between input and translation)",
        ),
        Variant(
            "munit-fast-content-lr4", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "optim.lr=4e-4"),
            "munit-fast plus the content term at 10 and Adam lr 4e-4 (paper 1e-4)",
        ),
        Variant(
            "munit-fast-content-gan3", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3"),
            "munit-fast plus the content term at 10 and the GAN weight at 3 (paper 1), as UNIT's cpu-fast",
        ),
        Variant(
            "munit-fast-content-gan3-s2", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3", "arch.style_dim=2"),
            "munit-fast-content-gan3 with a 2-number style code (paper 8), so the style cannot carry the shape",
        ),
        Variant(
            "munit-fast-content-gan10", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "gan_w=10"),
            "munit-fast plus the content term at 10 and the GAN weight at 10 (paper 1)",
        ),
        Variant(
            "munit-fast-content-gan3-lr5", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3", "optim.lr=5e-4"),
            "munit-fast-content-gan3 with Adam lr 5e-4 (paper 1e-4), as UNIT's CPU presets",
        ),
        Variant(
            "munit-fast-content-gan10-lr5", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "gan_w=10", "optim.lr=5e-4"),
            "munit-fast plus the content term at 10, the GAN weight at 10 (paper 1) and Adam lr 5e-4 (paper 1e-4)",
        ),
        Variant(
            "munit-fast-content-gan3-lr5-ema", "munit", "cpu-small", (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3", "optim.lr=5e-4"),
            "munit-fast-content-gan3-lr5 with the generators' weights averaged (EMA, decay 0.995)", ema=0.995,
        ),
        Variant(
            "munit-fast-content-gan3-lr5-nocyc", "munit", "cpu-small",
            (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3", "optim.lr=5e-4", "recon_x_cyc_w=0"),
            "munit-fast-content-gan3-lr5 without the explicit cycle (paper default 0; munit-fast 10)",
        ),
        Variant(
            "munit-fast-content3p8-gan3-lr5-ema", "munit", "cpu-small",
            (*MUNIT_CYCLE, "lambda_content=3", "content_pool=8", "gan_w=3", "optim.lr=5e-4"),
            "munit-fast-content-gan3-lr5-ema with a looser content term (weight 3 after 8x pooling)", ema=0.995,
        ),
        Variant(
            "munit-fast-content-gan3-lr5-ema-c01", "munit", "cpu-small",
            (*MUNIT_CYCLE, "lambda_content=10", "gan_w=3", "optim.lr=5e-4", "recon_c_w=0.1"),
            "munit-fast-content-gan3-lr5-ema with the content-code reconstruction at 0.1 (paper 1)", ema=0.995,
        ),
        Variant(
            "munit-fast-gan3-lr5-ema", "munit", "cpu-small", (*MUNIT_CYCLE, "gan_w=3", "optim.lr=5e-4"),
            "munit-fast with the GAN weight at 3, Adam lr 5e-4 and EMA 0.995, no content term", ema=0.995,
        ),
        Variant(
            "munit-fast-lr5-ema", "munit", "cpu-small", (*MUNIT_CYCLE, "optim.lr=5e-4"),
            "munit-fast with Adam lr 5e-4 and EMA 0.995 (GAN weight 1 as the paper), no content term", ema=0.995,
        ),
        Variant("munit-cpufast-d1", "munit", "cpu-small", (*MUNIT_FORMER_FAST, "arch.dis.num_scales=1"),
                "the cpu-fast recipe (= munit-fast-content-gan3-lr5-ema) with the discriminator's finest scale only (num_scales 1)",
                ema=0.995),
        Variant(
            "munit-cpufast-content1p8", "munit", "cpu-small", (*MUNIT_FORMER_FAST, "lambda_content=1", "content_pool=8"),
            "the cpu-fast recipe with a loose content term (weight 1 after 8x pooling) for a pair whose shapes differ", ema=0.995,
        ),
        Variant(
            "munit-cpufast-content1p8-prior1", "munit", "cpu-small",
            (*MUNIT_FORMER_FAST, "lambda_content=1", "content_pool=8", "style_prior_w=1"),
            "munit-cpufast-content1p8 with the encoded styles' batch mean and variance pulled to the prior's (weight 1)",
            ema=0.995,
        ),
        Variant(
            "munit-cpufast-content1p8-prior1-d3", "munit", "cpu-small",
            (*MUNIT_FORMER_FAST, "lambda_content=1", "content_pool=8", "style_prior_w=1", "arch.dis.n_layer=3", *AT_32),
            "munit-cpufast-content1p8-prior1 trained at 32 px with 3 layers per discriminator scale: at 28 px the "
            "2-layer D keeps one scale (the second's map would be 3x3) of 10 px patches, less than a shoe, so it "
            "cannot tell a boot's shaft from a sneaker; 3 layers at 32 px see 22 px", ema=0.995,
        ),
        Variant(
            "munit-cpufast-d3", "munit", "cpu-small", (*MUNIT_FORMER_FAST, "arch.dis.n_layer=3", *AT_32),
            "the cpu-fast recipe trained at 32 px with 3 layers per discriminator scale (22 px patches, 28 px: 10 px)",
            ema=0.995,
        ),
        Variant(
            "munit-cpufast-content0-prior1-d3", "munit", "cpu-fast",
            ("lambda_content=0", "style_prior_w=1", "arch.dis.n_layer=3", *AT_32),
            "munit-cpufast-content1p8-prior1-d3 without the content term (today's cpu-fast with lambda_content=0)",
        ),
        Variant(
            "munit-fast-noprior", "munit", "cpu-fast", ("style_prior_w=0", *AT_32),
            "today's cpu-fast (= munit-cpufast-content1p8-prior1-d3) without the style prior term",
        ),
        Variant("unit-small", "unit", "cpu-small", note="cpu-small as the quality table runs it"),
        Variant(
            "unit-small-d4", "unit", "cpu-small", ("arch.dis_layers=4",),
            "cpu-small with a 4-layer D: 31 px patches (3 layers: 15 px) see a whole shoe, for pairs whose shapes differ",
        ),
        Variant(
            "unit-small-d4-step", "unit", "cpu-small", ("arch.dis_layers=4", "lr_policy=step", "step_size=1200"),
            "unit-small-d4 with the learning rate halved every 1200 steps (cpu-small: constant)",
        ),
        Variant(
            "unit-small-d4-gan3", "unit", "cpu-small", ("arch.dis_layers=4", "gan_w=3"),
            "unit-small-d4 with λ0 3 (cpu-small 1, paper 10), as cpu-fast",
        ),
        Variant(
            "unit-fast-d4-content1p8", "unit", "cpu-small", (*UNIT_FORMER_FAST, "arch.dis_layers=4", "lambda_content=1", "content_pool=8"),
            "the former cpu-fast recipe with a 4-layer D (31 px patches) and a loose content term (1 after 8x pooling)",
        ),
        Variant(
            "unit-master-munitfast", "unit", "cpu-small", UNIT_MASTER_MUNIT_FAST,
            "UNIT's master network (no shared blocks, LSGAN multi-scale D) at CPU widths with MUNIT's cpu-fast recipe: "
            "one 3-layer scale (22 px patches) at 32 px, master's loss weights (λ 1/0.01/10/0.01/10) with GAN 3, "
            "lr 5e-4 halved every 1000, the loose content term (1 after 8x pooling), EMA 0.995",
            ema=0.995,
        ),
        Variant("unit-small-content", "unit", "cpu-small", ("lambda_content=10",), "content term (4x low-pass L1) at 10"),
        Variant(
            "unit-small-content-d2", "unit", "cpu-small", ("lambda_content=10", "arch.dis_layers=2"),
            "content term at 10 and a 2-layer D",
        ),
        Variant("unit-fast", "unit", "cpu-small", UNIT_FORMER_FAST, note="the former cpu-fast recipe (2-layer D, λ0 3, content term 10)"),
        Variant("unit-fast-gan3", "unit", "cpu-small", (*UNIT_FORMER_FAST, "gan_w=3"), "2-layer D, content term 10 and λ0 3 (paper 10), the former cpu-fast recipe"),
        Variant("unit-fast-ema", "unit", "cpu-small", UNIT_FORMER_FAST, "the former cpu-fast recipe with the model's weights averaged (EMA, decay 0.995)",
                ema=0.995),
        Variant("unit-fast-d3", "unit", "cpu-small", (*UNIT_FORMER_FAST, "arch.dis_layers=3"), "the former cpu-fast recipe with a 3-layer D (former cpu-fast: 2)"),
        Variant("unit-fast-lr2", "unit", "cpu-small", (*UNIT_FORMER_FAST, "optim.lr=2e-4"), "the former cpu-fast recipe with Adam lr 2e-4 (former cpu-fast: 5e-4)"),
        Variant("unit-fast-content30", "unit", "cpu-small", (*UNIT_FORMER_FAST, "lambda_content=30"), "the former cpu-fast recipe with the content term at 30 (former cpu-fast: 10)"),
        Variant("transgaga-small", "transgaga", "cpu-small", note="cpu-small as the quality table runs it"),
        Variant("transgaga-small-shared", "transgaga", "cpu-small", TRANSGAGA_SHARED,
                "equivariance term, one landmark estimator on edge maps, geometry transformer started at the landmark identity"),
        Variant("transgaga-small-kl", "transgaga", "cpu-small", ("kl_w=0.1",),
                "cpu-small with the appearance KL weight at 0.1 (paper and preset: 0.01): prior styles gave half the "
                "per-input spread that real boots' posterior codes give; a stronger KL pulls the posteriors to the prior"),
        Variant("transgaga-small-app64", "transgaga", "cpu-small", ("arch.app_code=64",),
                "cpu-small with the paper's appearance code length, 64 (cpu-small: 8): does a longer code give the "
                "styles more to change?"),
        Variant("transgaga-small-adain", "transgaga", "cpu-small", ("arch.app_fusion=adain",),
                "cpu-small with the appearance code set through AdaIN in every decoder residual block (ours; cpu-small: "
                "tiled and concatenated once): does a code that reaches every block change the styles more?"),
        Variant("transgaga-small-adain-res2", "transgaga", "cpu-small", ("arch.app_fusion=adain", "arch.dec_res=2"),
                "transgaga-small-adain with two decoder residual blocks (cpu-small: 1), so four AdaIN layers as in "
                "MUNIT's CPU presets: is one block too few for the code to shape the output?"),
        Variant("transgaga-small-adain-res2-kl3", "transgaga", "cpu-small", ("arch.app_fusion=adain", "arch.dec_res=2", "kl_w=0.001"),
                "transgaga-small-adain-res2 with a ten times weaker KL (0.001; cpu-small: 0.01): a stronger KL cut the "
                "diversity, does a weaker one let the code carry more?"),
        Variant("transgaga-small-res2", "transgaga", "cpu-small", ("arch.dec_res=2",),
                "cpu-small with two decoder residual blocks and the concatenated code (the control of "
                "transgaga-small-adain-res2: is its gain the second block or AdaIN?)"),
        Variant("transgaga-small-affine", "transgaga", "cpu-small", (*TRANSGAGA_SHARED, "arch.geo_tf_affine=true"),
                "transgaga-small-shared with the transformer's base moving the landmarks by the affine map between the "
                "domains' mean landmark shapes"),
    )
}


def run_key(variant: str, bench: str, steps: int, seed: int = SEED) -> str:
    """``variant:benchmark:steps``, with ``@seedN`` for a training seed other than the default."""
    return f"{variant}:{bench}:{steps}" + (f"@seed{seed}" if seed != SEED else "")


# --------------------------------------------------------------------------- data


def _labels(csv_path: Path) -> dict[str, int]:
    if not csv_path.is_file():
        return {}
    with csv_path.open(newline="", encoding="utf-8") as f:
        return {row["filename"]: int(row["label"]) for row in csv.DictReader(f)}


def _write_labels(csv_path: Path, names: Sequence[str], table: dict[str, int]) -> None:
    if table:
        rows = "".join(f"{n},{table[n]}\n" for n in names)
        csv_path.write_text("filename,label\n" + rows, encoding="utf-8")


def carve_validation(
    full: Path, out: Path, n_val: int, seed: int = SEED, truth: Callable[[Sequence[str]], np.ndarray] | None = None
) -> tuple[Path, Path]:
    """Split ``full``'s training folders into ``out/train/{trainA,trainB}`` (training) and
    ``out/val/{testA,testB}`` (validation, a seeded random ``n_val`` per domain, labels kept for
    the judges) with the dataset's ``i2i-dataset.json``; the test split is not copied. ``truth``
    (trainA names -> their true a2b translations) fills ``out/val/testB_paired`` for PSNR/SSIM.
    Reused when present."""
    from PIL import Image

    from i2icli.data.layout import PAIRED_DIR
    from i2icli.eval.datasets import DATASET_INFO

    train, val = out / "train", out / "val"
    if (val / "testB").is_dir() and (train / "trainB").is_dir():
        return train, val
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for src, dst in (("trainA", "testA"), ("trainB", "testB")):
        names = sorted(p.name for p in (full / src).iterdir() if p.is_file())
        if len(names) <= n_val:
            raise SystemExit(f"error: {full / src} has {len(names)} images, too few to hold back {n_val}")
        pick = set(np.random.default_rng(seed).permutation(len(names))[:n_val].tolist())
        held = [n for i, n in enumerate(names) if i in pick]
        kept = [n for i, n in enumerate(names) if i not in pick]
        table = _labels(full / f"{src}_labels.csv")
        for folder, chosen in ((tmp / "val" / dst, held), (tmp / "train" / src, kept)):
            folder.mkdir(parents=True)
            for n in chosen:
                shutil.copyfile(full / src / n, folder / n)
        _write_labels(tmp / "val" / f"{dst}_labels.csv", held, table)
        if truth is not None and src == "trainA":
            (tmp / "val" / PAIRED_DIR).mkdir()
            for name, image in zip(held, truth(held)):
                Image.fromarray(image).save(tmp / "val" / PAIRED_DIR / name)
    shutil.copyfile(full / DATASET_INFO, tmp / "val" / DATASET_INFO)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return train, val


# --------------------------------------------------------------------------- scoring


def _score(subject: Any, val: Path) -> dict[str, dict[str, float]]:
    """{direction: metrics} of ``subject`` on the validation folders."""
    from i2icli.eval.report import EvalOptions, evaluate

    report = evaluate(subject, val, EvalOptions(seed=SEED))
    # References (the judge on real images, real images' diversity) sit beside the metrics they explain.
    return {d.direction: {k: round(v, 5) for k, v in (d.metrics | d.reference).items()} for d in report.directions}


SAMPLES = 8  # validation inputs whose translations are saved at every point


def _save_samples(subject: Any, val: Path, out: Path) -> None:
    """The translations of SAMPLES fixed validation inputs per direction as one row image each,
    ``out/<direction>.png`` (and ``out/../input_<direction>.png``, the inputs)."""
    import torch

    from i2icli.data.layout import TEST_SPLITS
    from i2icli.eval.datasets import load_split
    from i2icli.imageio import to_pil

    out.mkdir(parents=True, exist_ok=True)
    for direction, folder in zip(("a2b", "b2a"), TEST_SPLITS):
        if direction not in subject.directions:
            continue
        inputs = load_split(val, folder, subject.channels(direction)[0], SAMPLES, SEED).images
        to_pil(torch.cat(inputs, dim=2)).save(out.parent / f"input_{direction}.png")
        to_pil(torch.cat(subject.translate(inputs, direction), dim=2)).save(out / f"{direction}.png")


def _score_checkpoint(run_dir: Path, step: int, val: Path) -> dict[str, dict[str, float]]:
    """Export checkpoint ``step`` to a temporary folder, score it and save its sample rows under
    ``run_dir/curve-samples/step_N``. Training's random state is saved and restored around it
    (building the objective draws initial weights), so a scored run trains exactly as an unscored one."""
    import torch

    from i2icli.api import load_model
    from i2icli.eval.report import model_subject
    from i2icli.runs.run import export_checkpoint

    saved = torch.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        with tempfile.TemporaryDirectory(prefix="i2i-curve-") as tmp:
            folder = export_checkpoint(run_dir, step, Path(tmp) / "model", torch.device("cpu"))
            model = load_model(str(folder / "model.safetensors"), device="cpu")
            subject = model_subject(model, "model", seed=SEED)
            _save_samples(subject, val, run_dir / "curve-samples" / f"step_{step:08d}")
            return _score(subject, val)
    finally:
        torch.set_rng_state(saved[0])
        random.setstate(saved[1])
        np.random.set_state(saved[2])


def _train_and_score(
    variant: Variant, bench: Benchmark, train_dir: Path, val: Path, run_dir: Path, steps: int, every: int,
    record: Record, save: Callable[[], None], log: Callable[[str], None], seed: int = SEED,
) -> None:  # fmt: skip
    """Train (or resume) the run with training seed ``seed``, scoring each checkpoint not yet in ``record['points']`` as it appears."""
    import torch

    from i2icli.eval.datasets import read_dataset_info
    from i2icli.runs.run import run
    from i2icli.runs.spec import DataSpec, build_spec, read_spec
    from i2icli.train.state import checkpoint_path, checkpoint_step, latest_checkpoint

    points = record["points"]
    clock = {"last": time.perf_counter(), "train": record["train_seconds"]}

    def score_new(final: bool) -> None:
        clock["train"] += time.perf_counter() - clock["last"]
        for path in sorted((run_dir / "checkpoints").glob("step_*.pt")):
            step = checkpoint_step(path)
            if str(step) in points or (step % every and step != steps):
                continue
            load = os.getloadavg()[0]
            start = time.perf_counter()
            dirs = _score_checkpoint(run_dir, step, val)
            points[str(step)] = {
                "train_seconds": round(clock["train"], 1), "eval_seconds": round(time.perf_counter() - start, 1),
                "load_avg_1m": round(load, 2), "directions": dirs,
            }  # fmt: skip
            record["train_seconds"] = round(clock["train"], 1)
            save()
            log(f"  {record['key']} step {step}: " + _one_line(dirs))
        clock["last"] = time.perf_counter()

    if not (run_dir / "model" / "model.safetensors").is_file():
        resume = latest_checkpoint(run_dir) is not None
        if resume:
            spec = read_spec(run_dir)
        else:
            overrides = [*_whole_image_overrides(variant.method, bench, steps), *variant.overrides]
            spec = build_spec(
                method=variant.method, preset=variant.preset, config_file=None, overrides=overrides,
                data=DataSpec(str(train_dir / "trainA"), str(train_dir / "trainB"), read_dataset_info(val).domains),
                batch_size=bench.batch_size, lr=None, max_steps=steps,
                loop_kwargs=dict(seed=seed, save_every=every, keep_last=3, sample_every=0, log_every=50)
                | ({} if variant.ema is None else {"ema": variant.ema}),
                init_from=None, steps_per_epoch=lambda bs: 0,
            )  # fmt: skip
        record["resumed"] = record["resumed"] or resume
        result, _ = run(
            spec, run_dir, torch.device("cpu"), resume=resume, log=log,
            on_tick=lambda step: score_new(False) if step % every == 1 else None,
        )  # fmt: skip
        if result.interrupted:
            save()
            raise SystemExit(f"{record['key']}: interrupted; run again to resume from {run_dir}")
    if checkpoint_path(run_dir, steps).is_file():
        score_new(True)


def _one_line(dirs: dict[str, dict[str, float]]) -> str:
    parts = []
    for d, m in dirs.items():
        shown = [
            f"{k} {v:.3g}" for k, v in m.items()
            if k in ("class-kept", "looks-like-target", "kept-as-target", "diversity", "psnr", "ssim") or k.startswith("fid-")
        ]
        parts.append(f"{d}: " + ", ".join(shown))
    return "; ".join(parts)


# --------------------------------------------------------------------------- results


def load_results(path: Path) -> Record:
    if not path.is_file():
        return {"version": RESULTS_VERSION, "baselines": {}, "runs": {}}
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != RESULTS_VERSION:
        raise SystemExit(f"error: {path}: results version {data.get('version')}, expected {RESULTS_VERSION}")
    return data


def save_results(path: Path, results: Record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# "fid": the judge-named fid-* key; psnr/ssim where the validation split has the true translation.
METRICS = ("class-kept", "looks-like-target", "kept-as-target", "fid", "diversity", "psnr", "ssim")


def _metric_key(metrics: dict[str, float], kind: str) -> str | None:
    if kind == "fid":
        return next((k for k in metrics if k.startswith("fid-") and k != "fid-inception"), None)
    return kind if kind in metrics else None


def _fmt(key: str | None, metrics: dict[str, float]) -> str:
    if key is None or key not in metrics:
        return "–"
    v = metrics[key]
    return f"{100 * v:.1f}%" if key in ("class-kept", "looks-like-target", "kept-as-target") else f"{v:.2f}"


TARGET_JUDGES = "target"  # class kept read by the target domain's own class judge (runs before content judges)


def baseline_key(bench: str, class_judge: str) -> str:
    """Where a benchmark's do-nothing row lives: runs scored by different class-kept judges need their own."""
    return bench if class_judge == TARGET_JUDGES else f"{bench}:{class_judge}"


def _run_baseline_key(r: Record) -> str:
    return baseline_key(r["benchmark"], r.get("class_kept_judge", TARGET_JUDGES))


def _judge_words(r: Record) -> str:
    judge = r.get("class_kept_judge", TARGET_JUDGES)
    if judge == TARGET_JUDGES:
        return "class kept read by the target domain's own judge (scored before the content judge existed)"
    return f"class kept read by the content judge `{judge}`"


def render_results(results: Record) -> str:
    """The ``curves`` block of RESULTS.md, from the JSON alone."""
    lines = [
        "## Learning curves", "",
        "Generated by `python benchmarks/curves.py` from `benchmarks/results/curves.json`; do not edit by hand.",
        "Scored on a **validation split** carved from the training folders (never trained on; the test",
        "split is not used). Each run's metric per direction against training step; do-nothing is the",
        "same validation images returned unchanged. The judges were trained on the training split, so their",
        "accuracy on these real images (`real-class-acc` in the JSON) is optimistic; translations are new to them.",
        "Figure: [curves.png](figures/curves.png).", "",
        "MUNIT's `cpu-fast` changed on 2026-12-07 (3-layer D, loose content term, style prior term). MUNIT",
        "runs recorded with preset `cpu-fast` before then (`munit-cpufast-d1`, `munit-cpufast-content1p8`,",
        "`munit-cpufast-content1p8-prior1`, `munit-cpufast-d3` and `munit-cpufast-content1p8-prior1-d3`)",
        "used the former one, which is `cpu-small` with `step_size=1000`, `recon_x_cyc_w=10`,",
        "`lambda_content=10`, `gan_w=3`, `optim.lr=5e-4` and EMA 0.995; those variants are now defined on",
        "that base, so they rerun as recorded.", "",
        "UNIT's `cpu-fast` changed on 2026-12-07 too: it is now `unit-master-munitfast` (the master network",
        "trained as MUNIT's cpu-fast). UNIT runs recorded with preset `cpu-fast` before then (`unit-fast*`,",
        "`unit-fast-d4-content1p8`) used the former one, `cpu-small` with `arch.dis_layers=2`, `gan_w=3` and",
        "`lambda_content=10`; those variants are now defined on that base.", "",
    ]  # fmt: skip
    runs = list(results["runs"].values())
    if not runs:
        return "\n".join([*lines, "No runs yet.", ""])
    lines += [*(f"- Machine: {m}." for m in dict.fromkeys(describe(r["machine"]) for r in runs)), ""]
    for r in runs:
        base = results["baselines"].get(_run_baseline_key(r), {}).get("directions", {})
        dirs = sorted({d for p in r["points"].values() for d in p["directions"]})
        header = ["step", "train time", "load"]
        keys: list[tuple[str, str]] = []
        for d in dirs:
            for kind in (*METRICS, "real-diversity"):
                # Every metric any point has (points scored by an older version may lack some).
                seen = {k: 0.0 for p in r["points"].values() for k in p["directions"].get(d, {})}
                key = _metric_key(seen, kind)
                if key is not None:
                    keys.append((d, key))
                    header.append(f"{d} {_short(key)}")
        overrides = ", ".join(f"`{o}`" for o in r["variant_overrides"]) or "none"
        lines += [
            f"### {r['variant']} on {r['benchmark']} ({r['steps']} steps x batch {r['batch_size']})", "",
            f"{r['method']} preset `{r['preset']}`; variant overrides: {overrides}"
            f"{'; ' + r['note'] if r['note'] else ''}; {_judge_words(r)}. Command: `{r['command']}`."
            + (f" Samples at each step: [{r['samples'].split('/')[-1]}]({r['samples']})." if "samples" in r else ""), "",
        ]  # fmt: skip
        if r["key"] in results.get("notes", {}):  # above the table: a line inside it would end the table
            lines += [f"Diagnosis: {results['notes'][r['key']]}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        if base:
            row = ["do-nothing", "–", "–", *(_fmt(k, base.get(d, {})) for d, k in keys)]
            lines.append("| " + " | ".join(row) + " |")
        for step in sorted(r["points"], key=int):
            p = r["points"][step]
            row = [step, f"{p['train_seconds'] / 60:.1f} min", f"{p['load_avg_1m']:.1f}"]
            row += [_fmt(k, p["directions"].get(d, {})) for d, k in keys]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _short(key: str) -> str:
    return {"class-kept": "class kept", "looks-like-target": "looks like target", "real-diversity": "real images' diversity"}.get(
        key, key
    )


def sample_sheet(run_dir: Path, path: Path) -> bool:
    """Per direction, the inputs above each scored step's translations (2x), side by side; False
    when the run saved no samples."""
    from PIL import Image, ImageDraw

    folder = run_dir / "curve-samples"
    steps = sorted(folder.glob("step_*"))
    directions = [d for d in ("a2b", "b2a") if (folder / f"input_{d}.png").is_file()]
    if not steps or not directions:
        return False
    label, gap, scale = 70, 6, 2
    panels = []
    for d in directions:
        rows = [("input", Image.open(folder / f"input_{d}.png"))]
        rows += [(f"{d} {int(s.name[5:])}", Image.open(s / f"{d}.png")) for s in steps if (s / f"{d}.png").is_file()]
        w, h = rows[0][1].width * scale, rows[0][1].height * scale
        panel = Image.new("RGB", (label + w, len(rows) * h), "white")
        draw = ImageDraw.Draw(panel)
        for i, (name, row) in enumerate(rows):
            panel.paste(row.convert("RGB").resize((w, h), Image.Resampling.NEAREST), (label, i * h))
            draw.text((2, i * h + h // 2 - 5), name, fill="black")
        panels.append(panel)
    sheet = Image.new("RGB", (sum(p.width for p in panels) + gap * (len(panels) - 1), max(p.height for p in panels)), "white")
    x = 0
    for p in panels:
        sheet.paste(p, (x, 0))
        x += p.width + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return True


def render_figure(results: Record, path: Path) -> None:
    """One row per benchmark, one panel per metric; a line per (run, direction), do-nothing dotted."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no figure (pip install matplotlib)", file=sys.stderr)
        return
    benches = list(dict.fromkeys(_run_baseline_key(r) for r in results["runs"].values()))
    if not benches:
        return
    fig, axes = plt.subplots(len(benches), len(METRICS), figsize=(4 * len(METRICS) + 3, 3.2 * len(benches)), squeeze=False)
    for row, bench in zip(axes, benches):
        runs = [r for r in results["runs"].values() if _run_baseline_key(r) == bench]
        base = results["baselines"].get(bench, {}).get("directions", {})
        for ax, kind in zip(row, METRICS):
            drawn = False
            for i, r in enumerate(runs):
                steps = sorted(r["points"], key=int)
                for d, style in (("a2b", "-"), ("b2a", "--")):
                    pts = [(int(s), r["points"][s]["directions"].get(d, {})) for s in steps]
                    xy = [(s, m[_metric_key(m, kind)]) for s, m in pts if _metric_key(m, kind) is not None]
                    if xy:
                        ax.plot(*zip(*xy), style, color=f"C{i}", marker=".", label=f"{r['variant']} {d}")
                        drawn = True
            for d, style in (("a2b", ":"), ("b2a", "-.")) if kind == "diversity" else ():  # the real images' figure
                refs = [p["directions"].get(d, {}).get("real-diversity") for r in runs for p in r["points"].values()]
                ref = next((v for v in refs if v is not None), None)
                if ref is not None:
                    ax.axhline(ref, color="black", linestyle=style, linewidth=1, label=f"real images {d}")
            for d, style in (("a2b", ":"), ("b2a", "-.")):
                key = _metric_key(base.get(d, {}), kind)
                if drawn and key is not None:
                    ax.axhline(base[d][key], color="gray", linestyle=style, linewidth=1, label=f"do-nothing {d}")
            name, _, judge = bench.partition(":")
            read_by = ((f" (read by {judge})" if judge else " (target judges)") if kind in ("class-kept", "kept-as-target")
                       else "")  # fmt: skip
            ax.set_title(f"{name}\n{kind}{read_by}", fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            if not drawn:
                ax.axis("off")
        # One legend per row, outside its last panel, so no curve is hidden behind it.
        shown = [ax for ax in row if ax.lines]
        if shown:
            handles, labels = max((ax.get_legend_handles_labels() for ax in shown), key=lambda hl: len(hl[0]))
            row[-1].legend(handles, labels, fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def run_curves(
    wanted: Sequence[tuple[Variant, Benchmark]], *, steps: int, every: int, n_val: int, work: Path,
    results_path: Path, markdown: Path, figure: Path, smoke: bool, log: Callable[[str], None] = print, seed: int = SEED,
) -> Record:  # fmt: skip
    results = load_results(results_path)

    def save() -> None:
        # Several runs may go at once (one per core): merge into what is on disk rather than overwrite it.
        with locked(results_path):
            on_disk = load_results(results_path)
            on_disk["baselines"] |= results["baselines"]
            on_disk["runs"] |= {k: r for k, r in results["runs"].items() if k in mine}
            results["baselines"], results["runs"] = on_disk["baselines"], on_disk["runs"]
            save_results(results_path, on_disk)
            write_block(markdown, "curves", render_results(on_disk))

    mine: set[str] = set()

    for variant, bench in wanted:
        reason = bench.unavailable()
        if reason:
            log(f"{variant.name}:{bench.name}: skipped, {reason}")
            continue
        full = prepare_data(bench, work / "data", small=smoke)
        truth = None if bench.train_truth is None else functools.partial(bench.train_truth, small=smoke)
        train_dir, val = carve_validation(full, work / "curves-data" / bench.name / f"val{n_val}", n_val, truth=truth)
        from i2icli.eval.datasets import read_dataset_info

        class_judge = read_dataset_info(val).content_judge or TARGET_JUDGES
        if baseline_key(bench.name, class_judge) not in results["baselines"]:
            from i2icli.eval.report import do_nothing_subject

            base = {"n_val": n_val, "directions": _score(do_nothing_subject(val), val)}
            results["baselines"][baseline_key(bench.name, class_judge)] = base
            save()
        key = run_key(variant.name, bench.name, steps, seed)
        tag = f"{variant.name}-{bench.name}-{steps}" + (f"-seed{seed}" if seed != SEED else "")
        record = results["runs"].setdefault(key, {
            "key": key, "variant": variant.name, "method": variant.method, "preset": variant.preset,
            "variant_overrides": variant.labels(), "note": variant.note, "benchmark": bench.name,
            "steps": steps, "every": every, "batch_size": bench.batch_size, "seed": seed, "n_val": n_val,
            "points": {}, "train_seconds": 0.0, "resumed": False, "machine": machine(), "class_kept_judge": class_judge,
            "command": f"python benchmarks/curves.py --runs {variant.name}:{bench.name} --steps {steps} --every {every}"
            + (f" --val {n_val}" if n_val != VAL_IMAGES else "") + (f" --seed {seed}" if seed != SEED else ""),
        })  # fmt: skip
        if "finished" in record:
            log(f"{key}: done earlier, skipped")
            continue
        mine.add(key)
        log(f"{key}: training, scored every {every} steps on {n_val} validation images per domain")
        run_dir = work / "curves-runs" / tag
        _train_and_score(variant, bench, train_dir, val, run_dir, steps, every, record, save, log, seed)
        record["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        sheet = figure.parent / "curves" / f"{tag}.png"
        if sample_sheet(run_dir, sheet):
            record["samples"] = sheet.relative_to(figure.parent.parent).as_posix()
        save()
    render_figure(results, figure)
    return results


def _select(text: str) -> list[tuple[Variant, Benchmark]]:
    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, bench = item.partition(":")
        if name not in VARIANTS:
            raise SystemExit(f"error: unknown variant {name!r} (known: {', '.join(VARIANTS)})")
        if bench not in BENCHMARKS:
            raise SystemExit(f"error: unknown benchmark {bench!r} in {item!r} (known: {', '.join(BENCHMARKS)})")
        out.append((VARIANTS[name], BENCHMARKS[bench]))
    return out


def check_smoke(results: Record) -> list[str]:
    """Problems with a smoke run's results (an empty list when it has the expected shape)."""
    problems = []
    for r in results["runs"].values():
        want = {str(s) for s in range(SMOKE_EVERY, SMOKE_STEPS + 1, SMOKE_EVERY)}
        if set(r["points"]) != want:
            problems.append(f"{r['key']}: points at steps {sorted(r['points'])}, expected {sorted(want)}")
        for step, p in r["points"].items():
            for d in ("a2b", "b2a"):
                m = p["directions"].get(d, {})
                if not {"class-kept", "looks-like-target"} <= set(m) or _metric_key(m, "fid") is None:
                    problems.append(f"{r['key']} step {step} {d}: metrics {sorted(m)}")
    if not results["runs"]:
        problems.append("no run recorded")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="cyclegan-small:mnist-uci-digits", help="comma-separated variant:benchmark")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per run")
    parser.add_argument("--every", type=int, default=250, help="score a checkpoint every N steps")
    parser.add_argument("--val", type=int, default=VAL_IMAGES, help="validation images per domain")
    parser.add_argument("--work", type=Path, help="data and run folders (default runs/benchmarks)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"training seed (default {SEED}; the validation split stays the same)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="4 steps on tiny data in a temp folder")
    mode.add_argument("--report", action="store_true", help="only regenerate RESULTS.md and the figure")
    mode.add_argument("--list", action="store_true", help="list the variants")
    mode.add_argument("--note", nargs=2, metavar=("RUN_KEY", "TEXT"), help="record a diagnosis under a run's table")
    args = parser.parse_args(argv)
    wanted = _select(args.runs)
    if args.steps < 1 or args.every < 1 or args.val < 2:
        parser.error("--steps and --every must be >= 1 and --val >= 2")
    if args.list:
        for v in VARIANTS.values():
            print(f"{v.name}: {v.method} {v.preset} {' '.join(v.labels())}  {v.note}")
        return 0
    if args.note:
        with locked(RESULTS):
            results = load_results(RESULTS)
            if args.note[0] not in results["runs"]:
                raise SystemExit(f"error: {RESULTS}: no run {args.note[0]!r} (runs: {', '.join(results['runs'])})")
            results.setdefault("notes", {})[args.note[0]] = args.note[1]
            save_results(RESULTS, results)
    if args.report or args.note:
        results = load_results(RESULTS)
        write_block(MARKDOWN, "curves", render_results(results))
        render_figure(results, FIGURE)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    if args.smoke:
        work = args.work or Path(tempfile.mkdtemp(prefix="i2i-curves-smoke-"))
        results = run_curves(
            _select("cyclegan-small:mnist-uci-digits"), steps=SMOKE_STEPS, every=SMOKE_EVERY, n_val=SMOKE_VAL,
            work=work, results_path=work / "curves.json", markdown=work / "RESULTS.md",
            figure=work / "figures" / "curves.png", smoke=True,
        )  # fmt: skip
        return smoke_status(check_smoke(results), len(results["runs"]), work / "RESULTS.md")
    run_curves(
        wanted, steps=args.steps, every=args.every, n_val=args.val, work=args.work or REPO / "runs" / "benchmarks",
        results_path=RESULTS, markdown=MARKDOWN, figure=FIGURE, smoke=False, seed=args.seed,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    from entry import run_script

    run_script(main)

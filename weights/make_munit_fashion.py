"""Make the embedded default multimodal model ``munit-fashion`` (Fashion-MNIST sneaker <-> ankle boot).

Reproducible: ``python weights/make_munit_fashion.py [--work DIR]`` (needs ``pip install -e '.[bench]'``
and the Debian package ``dataset-fashion-mnist``). Steps, each skipped when its output exists (so an
interrupted run continues):
  1. ``i2i data prepare fashion-sneaker-boot`` into WORK/data (Fashion-MNIST class 7 "Sneaker" as
     domain a, class 9 "Ankle boot" as domain b, 28x28 gray; the official test split held out),
  2. train MUNIT with the labelled CPU preset ``cpu-small`` adapted to 1-channel 28 px images
     (28 px crops of 28 px images, i.e. no crop; the official random flip kept: a mirrored shoe is
     still a shoe), the lr halving interval stretched to the run length, seed 0, resumable,
  3. export fp16 weights to weights/munit-fashion/ and copy varied held-out test sneakers to
     examples/munit-fashion/,
  4. measure on the held-out test splits, beside do-nothing and real-image references: "looks like
     target" (the sneaker-vs-boot domain judge), FID-fashion (Frechet distance on the ``fashion``
     judge's penultimate features) and diversity (mean pairwise feature distance among 8 styles per
     input), and write the model card and metrics.json.

Threads: run with OMP_NUM_THREADS=1 on a shared 2-core machine (two threads were 5-10x slower per step
there while other jobs ran); the numbers in the card were made that way.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from i2icli.eval.judges import Judge
    from i2icli.inference import LoadedModel
    from i2icli.methods.base import Direction

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME = "munit-fashion"
RECIPE = "fashion-sneaker-boot"
DOMAINS = ("sneaker", "boot")
OVERRIDES = [
    "arch.input_dim_a=1", "arch.input_dim_b=1", "data.load_size=28", "data.crop_size=28",
    "step_size=1000",
]  # fmt: skip
STEPS = 4000
SEED = 0
N_STYLES = 8  # styles per input for the diversity figure (and the CLI test)
N_EXAMPLES = 10
EXAMPLE_POOL = 500  # examples are picked among the first this-many test sneakers


def prepare(work: Path) -> Path:
    from i2icli.data.recipes import prepare as prepare_recipe

    data = work / "data"
    if not (data / "testB").is_dir():
        prepare_recipe(RECIPE, data)
    return data


def train(work: Path, data: Path) -> Path:
    """Train (or continue) the run in WORK/run; returns its exported model folder."""
    from i2icli.train.loop import latest_checkpoint
    from i2icli.train.run import DataSpec, build_spec, read_spec, run

    run_dir = work / "run"
    if (run_dir / "model" / "model.safetensors").is_file():
        return run_dir / "model"
    if latest_checkpoint(run_dir) is not None:
        spec, resume = read_spec(run_dir), True
    else:
        spec = build_spec(
            method="munit", preset="cpu-small", config_file=None, overrides=OVERRIDES,
            data=DataSpec(str(data / "trainA"), str(data / "trainB"), DOMAINS),
            batch_size=None, lr=None, max_steps=STEPS,
            loop_kwargs=dict(seed=SEED, save_every=250, sample_every=500, log_every=50),
            init_from=None, steps_per_epoch=lambda bs: 0,
        )  # fmt: skip
        resume = False
    started = time.time()
    _, exported = run(spec, run_dir, torch.device("cpu"), resume=resume, on_step=lambda s, v: print(f"step {s}", v))
    assert exported is not None, "interrupted; run the script again to continue"
    # Wall time of the session that finished the run (a resumed run counts only its last part).
    (work / "train_seconds.txt").write_text(f"{time.time() - started:.0f}\n")
    return exported


def export(model_dir: Path) -> Path:
    from i2icli.checkpoint import load_model, save_model

    net, config = load_model(model_dir)
    out = HERE / NAME
    save_model(out, net, config, fp16=True)
    return out / "model.safetensors"


def _split(data: Path, folder: str) -> list[Path]:
    with open(data / f"{folder}_labels.csv") as f:
        return [data / folder / row["filename"] for row in csv.DictReader(f)]


def _images(files: list[Path]) -> torch.Tensor:
    """Gray PNGs -> (N, 1, 28, 28) in [-1, 1]."""
    from PIL import Image

    from i2icli.imageio import to_tensor

    return torch.stack([to_tensor(Image.open(p).convert("L")) for p in files])


def farthest_points(feats: torch.Tensor, k: int) -> list[int]:
    """Greedy farthest-point picks among features (N, D): start at the row nearest the mean, then
    repeatedly take the row farthest from everything picked so far. Deterministic."""
    first = int((feats - feats.mean(dim=0)).norm(dim=1).argmin())
    picked = [first]
    nearest = (feats - feats[first]).norm(dim=1)  # (N,) distance to the closest picked row
    while len(picked) < k:
        nxt = int(nearest.argmax())
        picked.append(nxt)
        nearest = torch.minimum(nearest, (feats - feats[nxt]).norm(dim=1))
    return picked


def examples(data: Path) -> None:
    """Varied held-out test sneakers: farthest-point picks in the ``fashion`` judge's feature space."""
    from i2icli.eval.judges import extract_features, load_judge

    files = _split(data, "testA")[:EXAMPLE_POOL]
    feats = extract_features(load_judge("fashion"), _images(files))  # (N, 128)
    out = REPO / "examples" / NAME
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for rank, index in enumerate(farthest_points(feats, N_EXAMPLES)):
        shutil.copy(files[index], out / f"sneaker_{rank}_{files[index].name}")


def _styled(model: LoadedModel, images: torch.Tensor, direction: Direction, seed: int) -> torch.Tensor:
    """Each image (N, C, H, W) translated with its own N_STYLES prior styles: (N, N_STYLES, C, H, W)."""
    from i2icli.styles import prior_styles, translate_with_styles

    styles = prior_styles(model, len(images) * N_STYLES, seed).view(len(images), N_STYLES, -1, 1, 1)  # (N, K, S, 1, 1)
    return torch.stack([torch.stack(translate_with_styles(model, x, s, direction)) for x, s in zip(images, styles)])


def _rate(judge: Judge, images: torch.Tensor, index: int) -> float:
    """Fraction of images (N, C, H, W) the judge assigns to class ``index``."""
    from i2icli.eval.judges import predict

    return float((predict(judge, images) == index).double().mean())


def measure(data: Path, model_file: Path) -> dict[str, float]:
    """Looks-like-target, FID-fashion and diversity for both directions on the held-out test splits."""
    from i2icli.api import load_model
    from i2icli.eval.judges import extract_features, load_judge
    from i2icli.eval.metrics import diversity, fid_from_features

    model = load_model(str(model_file), device="cpu")
    domain_judge = load_judge("domain-fashion-sneaker-boot")  # classes ("Sneaker", "Ankle boot") = (a, b)
    fashion = load_judge("fashion")
    tests = {"a": _images(_split(data, "testA")), "b": _images(_split(data, "testB"))}
    figures: dict[str, float] = {}
    directions: tuple[tuple[Direction, str, str, int], ...] = (("a2b", "a", "b", 1), ("b2a", "b", "a", 0))
    for direction, source, target, index in directions:
        inputs, real = tests[source], tests[target]
        outputs = _styled(model, inputs, direction, SEED)  # (N, K, 1, 28, 28)
        flat = outputs.flatten(0, 1)  # (N*K, 1, 28, 28)
        real_feats = extract_features(fashion, real)
        out_feats = extract_features(fashion, flat)
        figures[f"{direction}_n_inputs"] = len(inputs)
        figures[f"{direction}_looks_like_target"] = _rate(domain_judge, flat, index)
        figures[f"{direction}_looks_like_target_do_nothing"] = _rate(domain_judge, inputs, index)
        figures[f"{direction}_looks_like_target_real"] = _rate(domain_judge, real, index)
        figures[f"{direction}_fid_fashion"] = fid_from_features(real_feats, out_feats)
        figures[f"{direction}_fid_fashion_do_nothing"] = fid_from_features(real_feats, extract_features(fashion, inputs))
        figures[f"{direction}_diversity"] = diversity(list(out_feats.view(len(inputs), N_STYLES, -1)))
        # Reference: the same figure for groups of N_STYLES real target images (consecutive files).
        groups = len(real) // N_STYLES
        figures[f"{direction}_diversity_real"] = diversity(list(real_feats[: groups * N_STYLES].view(groups, N_STYLES, -1)))
    return figures


def card(figures: dict[str, float], train_seconds: int | None) -> None:
    """Write README.md (the model card) and metrics.json beside the weights."""
    from i2icli.checkpoint import read_config

    file = HERE / NAME / "model.safetensors"
    config = read_config(file)
    arch = config.arch
    minutes = f"{train_seconds / 60:.0f} minutes" if train_seconds is not None else "time not recorded"
    f = figures

    def row(direction: str, label: str) -> str:
        return (
            f"| {label} | {f[f'{direction}_looks_like_target']:.1%} | {f[f'{direction}_looks_like_target_do_nothing']:.1%} "
            f"| {f[f'{direction}_looks_like_target_real']:.1%} | {f[f'{direction}_fid_fashion']:.2f} "
            f"| {f[f'{direction}_fid_fashion_do_nothing']:.2f} | {f[f'{direction}_diversity']:.2f} "
            f"| {f[f'{direction}_diversity_real']:.2f} |"
        )

    text = f"""# {NAME}

MUNIT translating Fashion-MNIST sneakers (domain `sneaker`, a) and ankle boots (domain `boot`, b),
28x28 grayscale, with a random or example style per output. The embedded default of `i2i sample`
(`sample-styles`), `i2i exemplar` and `i2i interpolate`.

- **Data**: `i2i data prepare {RECIPE}` - the 6,000 Fashion-MNIST training images of class 7
  (Sneaker) and the 6,000 of class 9 (Ankle boot); the official test split ({int(f['a2b_n_inputs'])}
  sneakers, {int(f['b2a_n_inputs'])} boots) was never trained on. Unpaired; labels unused in training.
- **Training**: `python weights/make_munit_fashion.py` - preset `cpu-small` (labelled CPU preset,
  not the paper's recipe: dim {arch['dim']}, {arch['n_res']} residual blocks, mlp {arch['mlp_dim']},
  style {arch['style_dim']}, 2-layer discriminator, which at 28 px keeps one scale; batch
  {config.training['batch_size']}) with `{' '.join(OVERRIDES)}`; {config.training['steps']} steps, seed
  {SEED}, LSGAN, weights gan 1 / image recon 10 / content 1 / style 1, Adam lr 1e-4 (0.5, 0.999),
  weight decay 1e-4, lr halved every 1000 steps, random horizontal flip. {minutes} on a shared
  {platform.machine()} CPU machine ({os.cpu_count()} cores, one torch thread, other jobs running).
- **Stored**: fp16 safetensors, {file.stat().st_size / 1024:.0f} KiB.
- **Measured** on the held-out test splits by the same script (CPU). Every test image is translated
  with {N_STYLES} styles of its own from the N(0, I) prior (seed {SEED}), so each row scores
  {N_STYLES} x {int(f['a2b_n_inputs'])} outputs. *Looks like target*: the rate at which the shipped
  sneaker-vs-boot domain judge (`i2icli/eval/judges`) calls an output a target-domain image; beside it
  the same rate for the untranslated inputs (do-nothing) and for real target test images.
  *FID-fashion*: Frechet distance between the `fashion` judge's penultimate features (128-d) of the
  outputs and of the real target test images (lower is closer; not comparable with Inception FID);
  do-nothing compares the untranslated inputs instead. *Diversity*: mean pairwise L2 distance of the
  `fashion` judge's features among the {N_STYLES} outputs of one input, averaged over inputs; real =
  the same figure for groups of {N_STYLES} real target test images (different shoes, so an upper
  reference, not a goal).

| direction | looks like target | do-nothing | real target | FID-fashion | do-nothing | diversity | real target |
|---|---|---|---|---|---|---|---|
{row("a2b", "sneaker -> boot (a2b)")}
{row("b2a", "boot -> sneaker (b2a)")}

- **What it does**: redraws a shoe in the other class with a sampled or example-encoded style.
  Class-kept accuracy is not meaningful here (both domains are one Fashion-MNIST class each). It is
  a small demonstration model for the multimodal commands, not a general image translator.
- **License**: MIT for the weights; data: Fashion-MNIST (Zalando Research), MIT.
"""
    (HERE / NAME / "README.md").write_text(text)
    (HERE / NAME / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "make-munit-fashion")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = prepare(args.work)
    model_dir = train(args.work, data)
    model_file = export(model_dir)
    examples(data)
    seconds = args.work / "train_seconds.txt"
    card(measure(data, model_file), int(seconds.read_text()) if seconds.is_file() else None)
    print((HERE / NAME / "README.md").read_text())


if __name__ == "__main__":
    main()

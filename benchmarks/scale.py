"""Scale benchmark: a model trained on resized images, applied at native resolution and at the
scale it learned (``i2i translate --size native`` vs the default ``--size auto``).

Data: 64 x 64 crops of two CC0 textures of ``skimage.data``, grass (domain a) and gravel (b), 512 x
512 gray each. Training crops come from the left three quarters of each texture, test crops from
the right quarter (no test pixel was seen in training). A CycleGAN trains with the labelled CPU
preset ``cpu-small``, which resizes every image to 36 x 36 and crops 32 x 32, for ``STEPS`` steps.
Its test translations are then judged by a texture classifier (logistic regression on intensity,
gradient and local-binary-pattern histograms, computed after resizing any image to 32 x 32, so it
judges a 36 px and a 64 px image alike), trained here on other real crops of the same textures:

    do-nothing    each input unchanged (the floor)
    native        translated at 64 x 64, as the input is (``--size native``)
    auto          resized to 36 x 36 first, the scale the model trained at (``--size auto``)

Results go to ``benchmarks/results/scale.json`` and the ``scale`` block of ``benchmarks/RESULTS.md``;
a finished cell is kept, an interrupted training resumes from its last checkpoint under ``--work``.

    python benchmarks/scale.py            # ~10 min at 1 thread on a shared 2-core machine
    python benchmarks/scale.py --smoke    # tiny data, 2 steps, temp folder (tests)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import describe, machine
from PIL import Image
from results_md import write_block

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "scale.json"
MARKDOWN = HERE / "RESULTS.md"
FIGURE = HERE / "figures" / "scale.png"
TEXTURES = ("grass", "gravel")  # domain a, domain b
CROP = 64  # side of every crop (the "native" scale)
JUDGE_SIDE = 32  # the classifier sees every image at this size
TRAIN_CROPS, TEST_CROPS, JUDGE_CROPS = 200, 100, 200  # per texture
STEPS = 2000
PRESET = "cpu-small"
SEED = 0
SMOKE = {"train": 8, "test": 8, "judge": 16, "steps": 2}


# --------------------------------------------------------------------------- data


def texture(name: str) -> np.ndarray:
    """The 512 x 512 gray texture ``skimage.data.<name>()`` (uint8)."""
    from skimage import data

    return {"grass": data.grass, "gravel": data.gravel}[name]()


def crops(image: np.ndarray, n: int, columns: tuple[int, int], seed: int) -> list[np.ndarray]:
    """``n`` random CROP x CROP crops whose left edge lies in ``columns`` [start, stop)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        top = int(rng.integers(0, image.shape[0] - CROP + 1))
        left = int(rng.integers(columns[0], columns[1] - CROP + 1))
        out.append(image[top : top + CROP, left : left + CROP].copy())
    return out


def make_data(root: Path, n_train: int, n_test: int, n_judge: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """Write ``root/trainA|trainB`` (training crops) and return test and judge crops per texture.

    Training and judge crops come from the left three quarters of a texture (different seeds), test
    crops from its right quarter."""
    split = 512 * 3 // 4
    sets: dict[str, dict[str, list[np.ndarray]]] = {"test": {}, "judge": {}}
    for k, (name, folder) in enumerate(zip(TEXTURES, ("trainA", "trainB"))):
        image = texture(name)
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, crop in enumerate(crops(image, n_train, (0, split), SEED + k)):
            Image.fromarray(crop).save(root / folder / f"{i:04d}.png")
        sets["test"][name] = crops(image, n_test, (split, 512), SEED + 10 + k)
        sets["judge"][name] = crops(image, n_judge, (0, split), SEED + 20 + k)
    return sets


# --------------------------------------------------------------------------- the judge


def features(image: np.ndarray) -> np.ndarray:
    """Texture features of a gray image of any size, computed at JUDGE_SIDE x JUDGE_SIDE."""
    from skimage.feature import local_binary_pattern

    x = np.asarray(Image.fromarray(image).resize((JUDGE_SIDE, JUDGE_SIDE), Image.Resampling.BICUBIC), dtype=np.float64)
    gy, gx = np.gradient(x)
    magnitude = np.hypot(gx, gy)
    lbp = local_binary_pattern(x.astype(np.uint8), P=8, R=1, method="uniform")
    return np.concatenate([
        np.histogram(x, bins=16, range=(0, 255), density=True)[0] * 255,
        np.histogram(magnitude, bins=8, range=(0, 128), density=True)[0] * 128,
        np.histogram(lbp, bins=10, range=(0, 10), density=True)[0],
        [x.mean() / 255, x.std() / 255, magnitude.mean() / 128],
    ])  # fmt: skip


def train_judge(judge_crops: dict[str, list[np.ndarray]]) -> Any:
    """Logistic regression on ``features``: class 0 = TEXTURES[0], 1 = TEXTURES[1]."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.stack([features(c) for name in TEXTURES for c in judge_crops[name]])
    y = np.array([k for k, name in enumerate(TEXTURES) for _ in judge_crops[name]])
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)


def judged_as(judge: Any, images: Sequence[np.ndarray], target: int) -> float:
    """The share of ``images`` the judge calls texture ``target``."""
    predictions = judge.predict(np.stack([features(im) for im in images]))
    return float(np.mean(predictions == target))


# --------------------------------------------------------------------------- the cell


def train_model(data: Path, work: Path, steps: int) -> Path:
    """Train (or resume, or reuse) the CycleGAN; returns its exported model folder."""
    import torch

    from i2icli.runs.run import run_or_resume
    from i2icli.runs.spec import DataSpec, build_spec

    def new_spec():  # type: ignore[no-untyped-def]
        return build_spec(
            method="cyclegan", preset=PRESET, config_file=None, overrides=[],
            data=DataSpec(str(data / "trainA"), str(data / "trainB"), TEXTURES), batch_size=None, lr=None,
            max_steps=steps, loop_kwargs=dict(seed=SEED, save_every=200, sample_every=0, log_every=100),
            init_from=None, steps_per_epoch=lambda bs: 1,
        )  # fmt: skip

    return run_or_resume(work / "run", new_spec, torch.device("cpu"))


def translate_all(model_dir: Path, images: Sequence[np.ndarray], direction: str, size: str) -> list[np.ndarray]:
    """Translate as ``i2i translate --size SIZE`` does: resize as the scale says, run at that size."""
    from i2icli.api import load_model
    from i2icli.imageio import to_pil, to_tensor
    from i2icli.inference import input_scale, translate_tensors

    loaded = load_model(str(model_dir), device="cpu")
    scale = input_scale(loaded, size)
    tensors = [to_tensor(scale.resize(Image.fromarray(im))[0]) for im in images]
    return [np.asarray(to_pil(y)) for y in translate_tensors(loaded, tensors, direction)]  # type: ignore[arg-type]


def run_cell(work: Path, sizes: dict[str, int], figure: Path | None) -> dict[str, Any]:
    """Data, training, translations at both scales, judged; returns the JSON record."""
    sets = make_data(work / "data", sizes["train"], sizes["test"], sizes["judge"])
    start = time.perf_counter()
    model_dir = train_model(work / "data", work, sizes["steps"])
    train_seconds = time.perf_counter() - start
    judge = train_judge(sets["judge"])
    held_out = [c for name in TEXTURES for c in sets["test"][name]]
    truth = np.array([k for k, name in enumerate(TEXTURES) for _ in sets["test"][name]])
    record: dict[str, Any] = {
        "judge_accuracy": float(np.mean(judge.predict(np.stack([features(c) for c in held_out])) == truth)),
        "directions": {},
    }
    strips = []
    for direction, (src, tgt) in (("a2b", (0, 1)), ("b2a", (1, 0))):
        inputs = sets["test"][TEXTURES[src]]
        outputs = {size: translate_all(model_dir, inputs, direction, size) for size in ("native", "auto")}
        record["directions"][direction] = {
            "source": TEXTURES[src], "target": TEXTURES[tgt], "n": len(inputs),
            "do-nothing": judged_as(judge, inputs, tgt),
            "native": judged_as(judge, outputs["native"], tgt),
            "auto": judged_as(judge, outputs["auto"], tgt),
            "native_size": list(outputs["native"][0].shape[::-1]), "auto_size": list(outputs["auto"][0].shape[::-1]),
        }  # fmt: skip
        strips.append((inputs[:6], outputs["native"][:6], outputs["auto"][:6]))
    if figure is not None:
        _figure(strips, figure)
    config = json.loads((model_dir / "config.json").read_text())
    record |= {
        "steps": sizes["steps"], "preset": PRESET, "preprocess": config["training"]["preprocess"],
        "train_seconds": round(train_seconds, 1), "machine": machine(),
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }  # fmt: skip
    return record


def _figure(strips: list[tuple[list[np.ndarray], ...]], path: Path) -> None:
    """Per direction three rows: inputs, native translations, auto translations (shown at 64 px)."""
    rows = [row for strip in strips for row in strip]
    canvas = Image.new("L", (6 * (CROP + 2), len(rows) * (CROP + 2)))
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            canvas.paste(Image.fromarray(im).resize((CROP, CROP), Image.Resampling.NEAREST), (c * (CROP + 2), r * (CROP + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def render(record: dict[str, Any]) -> str:
    """The RESULTS.md block, from the JSON alone."""
    m, pre = record["machine"], record["preprocess"]
    lines = [
        "## Scale: translating at the size the model learned", "",
        f"Generated by `python benchmarks/scale.py` from `benchmarks/results/scale.json` ({record['finished']}); "
        f"{describe(m)}; training took {record['train_seconds']:.0f} s.",
        f"CycleGAN, preset `{record['preset']}` ({pre['mode']}: images resized to {pre['load_size']} px, "
        f"{pre['crop_size']} px crops), {record['steps']} steps on {CROP} x {CROP} crops of `skimage.data` grass (a) and "
        f"gravel (b); test crops from texture regions never trained on. *Judged as target*: a texture classifier "
        f"(logistic regression on intensity, gradient and LBP histograms at {JUDGE_SIDE} px; "
        f"{record['judge_accuracy']:.1%} accurate on real held-out crops).", "",
        "| direction | n | do-nothing | native (`--size native`) | auto (`--size auto`, default) |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for d in record["directions"].values():
        native, auto = "x".join(map(str, d["native_size"])), "x".join(map(str, d["auto_size"]))
        lines.append(
            f"| {d['source']} → {d['target']} | {d['n']} | {d['do-nothing']:.1%} | {d['native']:.1%} (at {native}) "
            f"| {d['auto']:.1%} (at {auto}) |"
        )
    lines += [
        "",
        "Reading: the model only ever saw these textures shrunk to 36 px; fed 64 px crops as they are, a",
        "translation can fail completely in one direction while the same model at its training scale succeeds.",
        "That is why `--size auto` is the default. Examples (rows per direction: inputs, native translations,",
        "auto translations, shown at 64 px): `benchmarks/figures/scale.png`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny data, 2 steps, results in a temp folder")
    parser.add_argument("--work", type=Path, default=None, help="data and run folder (default runs/benchmarks-scale)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.smoke:
        work = args.work or Path(tempfile.mkdtemp(prefix="i2i-scale-smoke-"))
        record = run_cell(work, {**SMOKE}, None)
        (work / "scale.json").write_text(json.dumps(record, indent=2) + "\n")
        (work / "RESULTS.md").write_text(render(record))
        print(f"smoke: judged {sum(d['n'] for d in record['directions'].values())} translations, table in {work}")
        return 0
    if RESULTS.is_file():
        record = json.loads(RESULTS.read_text())
        print(f"{RESULTS}: done earlier, kept (delete it to measure again)")
    else:
        work = args.work or REPO / "runs" / "benchmarks-scale"
        sizes = {"train": TRAIN_CROPS, "test": TEST_CROPS, "judge": JUDGE_CROPS, "steps": STEPS}
        record = run_cell(work, sizes, FIGURE)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    write_block(MARKDOWN, "scale", render(record))
    print(render(record))
    return 0


if __name__ == "__main__":
    from entry import run_script

    run_script(main)

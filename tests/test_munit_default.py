"""The embedded default multimodal model ``munit-fashion``: pinned in the registry, small, and used
by ``i2i sample`` when no --model is given (weights/make_munit_fashion.py makes it)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from conftest import REPO
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.registry import DEFAULT_MULTIMODAL_MODEL, PRETRAINED
from i2icli.sources import fetch, resolve

runner = CliRunner()
EXAMPLES = REPO / "examples" / "munit-fashion"
N = 8
MAX_BYTES = 4 * 1024 * 1024
# Mean absolute difference (on the [-1, 1] scale) every pair of the 8 style outputs must exceed:
# 0.05 is about 6 grey levels per pixel on average, far above PNG rounding (under 1 level) and
# below what the trained styles give (0.078 for the closest pair when this was written).
DIFFERENT = 0.05


def _sample(example: Path, out: Path, seed: int) -> list[str]:
    args = ["sample", "--n", str(N), str(example), "-o", str(out), "--seed", str(seed), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return sorted(p.name for p in out.iterdir())


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 127.5 - 1.0  # (H, W) in [-1, 1]


def test_registry_entry_is_the_pinned_small_default() -> None:
    from i2icli.checkpoint import read_config

    entry = PRETRAINED["munit-fashion"]
    assert DEFAULT_MULTIMODAL_MODEL == "munit-fashion"
    assert (entry.method, entry.domains, entry.local) == ("munit", ("sneaker", "boot"), "munit-fashion/model.safetensors")
    path = fetch(resolve("munit-fashion"))  # checks the pinned sha256
    assert entry.sha256 is not None and path.stat().st_size <= MAX_BYTES
    config = read_config(path)
    assert config.method == "munit" and config.domains == ("sneaker", "boot")
    assert (config.arch["channels_a"], config.arch["channels_b"]) == (1, 1)


def test_examples_are_distinct_gray_28px_sneakers() -> None:
    from PIL import Image

    files = sorted(EXAMPLES.glob("sneaker_*.png"))
    assert 8 <= len(files) <= 10
    for f in files:
        with Image.open(f) as image:
            assert (image.mode, image.size) == ("L", (28, 28)), f
    assert len({f.read_bytes() for f in files}) == len(files)


def test_sample_without_model_gives_8_distinct_styles_reproducibly(tmp_path: Path) -> None:
    example = sorted(EXAMPLES.glob("*.png"))[0]
    names = _sample(example, tmp_path / "first", seed=0)
    expected = sorted([f"{example.stem}_s{k}.png" for k in range(N)] + ["grid.png"])
    assert names == expected

    outputs = [_pixels(tmp_path / "first" / f"{example.stem}_s{k}.png") for k in range(N)]
    assert all(o.shape == (32, 32) for o in outputs)  # the model's training scale (28 px shoes trained upscaled to 32)
    gaps = {(i, j): float(np.abs(outputs[i] - outputs[j]).mean()) for i, j in itertools.combinations(range(N), 2)}
    assert min(gaps.values()) > DIFFERENT, gaps

    # The same seed writes the same bytes; another seed draws other styles.
    again = _sample(example, tmp_path / "again", seed=0)
    assert again == names
    for name in names:
        assert (tmp_path / "again" / name).read_bytes() == (tmp_path / "first" / name).read_bytes()
    _sample(example, tmp_path / "other", seed=1)
    first = tmp_path / "first" / f"{example.stem}_s0.png"
    assert (tmp_path / "other" / first.name).read_bytes() != first.read_bytes()


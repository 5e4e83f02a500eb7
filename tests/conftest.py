"""Shared fixtures: tiny models and images; one thread per process keeps small nets fast on 2 cores."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from i2icli.checkpoint import ModelConfig, save_model  # noqa: E402
from i2icli.config import to_dict  # noqa: E402
from i2icli.methods.cyclegan import CycleGANArch, CycleGANModel  # noqa: E402
from i2icli.nn.resnet import init_normal  # noqa: E402

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Benchmark scripts import their shared helpers (results_md) from their own folder.
sys.path.insert(0, str(REPO / "benchmarks"))


def make_tiny_cyclegan(seed: int = 0, channels: int = 3, directions: tuple[str, ...] = ("a2b", "b2a")) -> CycleGANModel:
    """A randomly initialised CycleGAN small enough for tests (ngf 4, 1 block)."""
    torch.manual_seed(seed)
    arch = CycleGANArch(channels_a=channels, channels_b=channels, ngf=4, n_blocks=1, directions=directions)  # type: ignore[arg-type]
    model = CycleGANModel(arch)
    init_normal(model, 0.2)  # large weights so that outputs vary visibly with the input
    return model.eval()


def save_tiny(path: Path, model: CycleGANModel, domains: tuple[str, str] = ("day", "night")) -> Path:
    config = ModelConfig(method="cyclegan", arch=to_dict(model.arch), domains=domains, image_size=16)
    return save_model(path, model, config)


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    """A tiny bidirectional RGB CycleGAN saved as a single .safetensors file."""
    return save_tiny(tmp_path / "tiny.safetensors", make_tiny_cyclegan())


def write_rgb(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A random RGB image of ``size`` = (W, H)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_domains(
    root: Path, n: int, *, seed_b: int, size_a: tuple[int, int] = (20, 20), size_b: tuple[int, int] = (20, 20), ext_b: str = ".png"
) -> Path:
    """``root/trainA`` with ``n`` random PNGs (seeds 0..n-1) and ``root/trainB`` with ``n`` more
    (seeds ``seed_b``..): the unpaired training folders of the CLI tests."""
    for i in range(n):
        write_rgb(root / "trainA" / f"{i}.png", size_a, seed=i)
        write_rgb(root / "trainB" / f"{i}{ext_b}", size_b, seed=seed_b + i)
    return root


def tiny_train_args(data: Path, run_dir: Path, steps: int, *extra: str) -> list[str]:
    """``i2i train`` arguments for a cpu-tiny CycleGAN run on CPU without sample images."""
    return [
        "train", "--method", "cyclegan", "--preset", "cpu-tiny", "--dataroot", str(data), "--run-dir", str(run_dir), "--max-steps", str(steps),
        "--device", "cpu", "--sample-every", "0", *extra,
    ]  # fmt: skip


def loaded(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """``model`` with exactly ``state`` (strict: no key missing or left over), in eval mode."""
    model.load_state_dict(state, strict=True)
    return model.eval()


def fixture_tensors(relative: str) -> dict[str, torch.Tensor]:
    """A committed ``.safetensors`` fixture under tests/fixtures (inputs and official outputs)."""
    from safetensors.torch import load_file

    return load_file(str(FIXTURES / relative))

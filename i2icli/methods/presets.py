"""Preset builders that several methods share, so a shared recipe and its description are written once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable, Mapping, TypeVar

from i2icli.data.transforms import Preprocess
from i2icli.methods.base import Preset

ConfigT = TypeVar("ConfigT")


def resnet_cpu_config(
    config_cls: Callable[..., ConfigT], arch_cls: Callable[..., Any], ngf: int, n_blocks: int, size: int, **changes: Any
) -> ConfigT:
    """A ResNet-generator method's config (CycleGAN, GcGAN, DistanceGAN) at CPU sizes: ``size``^2
    crops of a (size + size/8)^2 resize, ``n_blocks`` blocks, ngf = ndf; ``changes`` set other fields."""
    data = Preprocess(mode="resize_and_crop", load_size=size + size // 8, crop_size=size, flip=True)
    return replace(config_cls(arch=arch_cls(ngf=ngf, n_blocks=n_blocks), data=data, ndf=ngf), **changes)


def cpu_small_preset(config: Any) -> Preset:
    """``cpu-small`` of the ResNet-generator methods (CycleGAN, GcGAN, DistanceGAN): ``config`` is
    the method's own config at these sizes, the loop defaults are shared."""
    what = "CPU-sized (labelled, not the paper's): 32^2 crops, ngf 16, 3 blocks, batch 8, 2000 steps"
    return Preset("cpu-small", what, config, batch_size=8, max_steps=2000)


def cpu_fast_preset(config: Any) -> Preset:
    """``cpu-fast``, the CPU recipe of the same methods: ``config`` is cpu-small's with a 2-layer D
    and the content term (its weight chosen per method on MNIST<->UCI validation curves, benchmarks/curves.py)."""
    what = (
        f"CPU recipe (labelled, not the paper's): cpu-small with a 2-layer D and the content term at {config.lambda_content:g}, "
        "batch 8, 800 steps; for pairs that share their layout (the term holds the input's silhouette: use cpu-small where "
        "shapes change)"
    )
    return Preset("cpu-fast", what, config, batch_size=8, max_steps=800)


def cpu_tiny_preset(config: Any, batch_size: int) -> Preset:
    """``cpu-tiny`` of the same methods: ``config`` at 16^2 crops, ngf 4, one block, a 2-layer D."""
    what = f"tests and smoke runs (labelled, not the paper's): 16^2 crops, ngf 4, 1 block, 2-layer D, batch {batch_size}, 40 steps"
    return Preset("cpu-tiny", what, config, batch_size=batch_size, max_steps=40)


def tiny_test_presets(batch_size: int, configs: Mapping[str, Any]) -> dict[str, Preset]:
    """``Method.test_presets`` of every method: a 4-step preset per tiny config, named by its key."""
    return {name: Preset(name, f"tiny {name} (tests only)", cfg, batch_size=batch_size, max_steps=4) for name, cfg in configs.items()}

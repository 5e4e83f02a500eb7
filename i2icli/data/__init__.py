"""Training data: unpaired image folders and their preprocessing."""

from __future__ import annotations

from i2icli.data.transforms import Preprocess, apply_preprocess, output_size, test_transform
from i2icli.data.unpaired import (
    SkippedImageWarning,
    UnpairedImages,
    make_loader,
    mix_seed,
    resolve_domains,
    seeded,
)

__all__ = [
    "Preprocess",
    "SkippedImageWarning",
    "UnpairedImages",
    "apply_preprocess",
    "make_loader",
    "mix_seed",
    "output_size",
    "resolve_domains",
    "seeded",
    "test_transform",
]

"""A prepared dataset as evaluation reads it: its description (``i2i-dataset.json``) and its test
splits (images and labels)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from i2icli.data.labels import read_label_rows
from i2icli.data.layout import DATASET_INFO, PAIRED_DIR
from i2icli.errors import InputError, UsageError
from i2icli.eval.judges import list_judges
from i2icli.imageio import GRAY_MODES, image_mode, read_image, to_tensor
from i2icli.listing import list_images


@dataclass(frozen=True)
class DatasetInfo:
    """What a prepared dataset says about how to judge it (``i2i-dataset.json``; defaults without one)."""

    root: Path
    recipe: str | None = None
    domains: tuple[str, str] = ("a", "b")
    class_judges: tuple[str | None, str | None] = (None, None)  # for images of domain a, b
    keeps_labels: bool = False  # translations should keep their source labels
    domain_judge: str | None = None  # classes (domain a, domain b)
    paired: bool = False  # testB_paired/ holds the true a2b translation of every testA image
    content_judge: str | None = None  # reads the class in either domain (class-kept uses it when set)


def _check_judge(name: object, where: str) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in list_judges():
        available = ", ".join(list_judges())
        raise UsageError(f"{where} names judge {name!r}, which is not installed (available: {available})")
    return name


def read_dataset_info(root: Path) -> DatasetInfo:
    """The dataset description of ``root``; checks the test folders and that every named judge exists."""
    root = Path(root)
    for folder in ("testA", "testB"):
        if not (root / folder).is_dir():
            raise UsageError(f"--data {root}: no {folder}/ folder (prepare a dataset with 'i2i data prepare')")
    path = root / DATASET_INFO
    if not path.is_file():
        return DatasetInfo(root, paired=(root / PAIRED_DIR).is_dir())
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        judges = raw.get("class_judges") or {}
        info = DatasetInfo(
            root=root,
            recipe=raw.get("recipe"),
            domains=(str(raw["domains"][0]), str(raw["domains"][1])),
            class_judges=(
                _check_judge(judges.get("a"), f"{path}: class_judges.a"),
                _check_judge(judges.get("b"), f"{path}: class_judges.b"),
            ),
            keeps_labels=bool(raw.get("keeps_labels", False)),
            domain_judge=_check_judge(raw.get("domain_judge"), f"{path}: domain_judge"),
            paired=bool(raw.get("paired", False)),
            content_judge=_check_judge(raw.get("content_judge"), f"{path}: content_judge"),
        )
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise UsageError(f"{path}: not a valid dataset description ({type(e).__name__}: {e})") from None
    if info.paired and not (root / PAIRED_DIR).is_dir():
        raise UsageError(f"{path}: says paired, but {root / PAIRED_DIR} is missing")
    return info


@dataclass(frozen=True)
class Split:
    """One test folder: relative names, images (C, H, W) in [-1, 1], labels (N,) when known."""

    names: list[str]
    images: list[torch.Tensor]
    labels: torch.Tensor | None


def _read_labels(csv_path: Path, names: list[str]) -> torch.Tensor | None:
    if not csv_path.is_file():
        return None
    # Names are relative to the split folder (``testA/<name>``), not to the CSV's.
    table = {name: label for _, name, label in read_label_rows(csv_path, str(csv_path), error=InputError)}
    missing = [n for n in names if n not in table]
    if missing:
        raise InputError(f"{csv_path}: no label for {missing[0]}")
    return torch.tensor([table[n] for n in names])


def load_split(root: Path, folder: str, channels: int, limit: int | None = None, seed: int = 0) -> Split:
    """The images of ``root/folder`` (sorted by name), with ``folder_labels.csv`` if present.

    ``limit`` keeps a seeded random subset of that many, still in name order: prepared folders are
    often sorted by class, so the first N files would not be a fair sample.
    """
    pairs = list_images([str(root / folder)], recursive=False)
    if not pairs:
        raise UsageError(f"{root / folder}: no images")
    if limit is not None and limit < len(pairs):
        keep = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))[:limit]
        pairs = [pairs[i] for i in sorted(keep.tolist())]
    names = [rel.as_posix() for _, rel in pairs]
    images = read_all([path for path, _ in pairs], channels, root / folder)
    return Split(names, images, _read_labels(root / f"{folder}_labels.csv", names))


def read_all(paths: Sequence[Path], channels: int, folder: Path) -> list[torch.Tensor]:
    """Every image decoded; scores need them all, so an unreadable one fails the evaluation with
    one line that names it and counts any others."""
    images, bad = [], []
    for path in paths:
        try:
            images.append(to_tensor(read_image(path, channels=channels).image))
        except InputError as e:
            bad.append(e)
    if bad:
        more = f" (+{len(bad) - 1} more unreadable images in {folder})" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}{more}; every image is needed to score")
    return images


def image_channels(folder: Path) -> int:
    """1 when the folder's first image is greyscale, else 3."""
    pairs = list_images([str(folder)], recursive=False)
    if not pairs:
        raise UsageError(f"{folder}: no images")
    # A bad first file is one line naming it (the header is read through imageio, our formats only).
    return 1 if image_mode(pairs[0][0]) in GRAY_MODES else 3

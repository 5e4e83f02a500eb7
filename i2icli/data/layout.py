"""The folder layout every prepared dataset has (the CycleGAN one, plus labels, a paired test
folder and a description file), shared by the recipes that write it and the evaluation that reads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TRAIN_SPLITS: tuple[str, str] = ("trainA", "trainB")  # the training folder of domain a, of domain b
TEST_SPLITS: tuple[str, str] = ("testA", "testB")
SPLITS: tuple[str, ...] = TRAIN_SPLITS + TEST_SPLITS
PAIRED_DIR = "testB_paired"  # the true a2b translation of every testA image, same names
DATASET_INFO = "i2i-dataset.json"  # how to judge the dataset (recipes.dataset_info)
DATASET_INFO_VERSION = 1


def write_images(stage: Path, folder: str, images: np.ndarray, labels: np.ndarray | None) -> None:
    """Write ``images`` (N, H, W) or (N, H, W, 3) uint8 as ``stage/folder/00000.png`` ...

    With ``labels`` (N,), also writes ``stage/folder_labels.csv`` with a ``filename,label`` header.
    """
    target = stage / folder
    target.mkdir(parents=True, exist_ok=True)
    names = [f"{i:05d}.png" for i in range(len(images))]
    for name, image in zip(names, images):
        Image.fromarray(image).save(target / name)
    if labels is not None:
        rows = "".join(f"{name},{int(label)}\n" for name, label in zip(names, labels))
        (stage / f"{folder}_labels.csv").write_text("filename,label\n" + rows, encoding="utf-8")

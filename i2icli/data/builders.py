"""How the offline recipes build their images (MNIST/UCI digits, Fashion-MNIST classes, the
synthetic paired digits) and how the manual Cityscapes recipe converts its archives; each writes
the layout of ``layout.py`` into a staging folder (the recipe table: ``recipes.py``)."""

from __future__ import annotations

import functools
import shutil
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from i2icli.data.layout import PAIRED_DIR, write_images
from i2icli.data.shipped import load_fashion, load_mnist, load_uci
from i2icli.errors import InputError, UsageError

# ---------------------------------------------------------------------------------------------
# Offline recipes
# ---------------------------------------------------------------------------------------------



def build_mnist_uci(stage: Path, source: Path | None) -> None:
    """A = MNIST-5k digits, B = UCI digits framed like MNIST; both 28x28 grayscale with labels."""
    for split in ("train", "test"):
        write_images(stage, f"{split}A", *load_mnist(split))
        write_images(stage, f"{split}B", *load_uci(split))


def build_fashion(stage: Path, source: Path | None, *, class_a: int, class_b: int) -> None:
    """A = one Fashion-MNIST class, B = another; 28x28 grayscale, labels are the 0-9 class ids.
    ``source``: the folder of the idx files (``--from``), else ``fashion_dir()``'s."""
    for split in ("train", "test"):
        # One read per split (the idx files are 60k images) and the two classes picked out of it.
        images, labels = load_fashion(split, classes=(class_a, class_b), root=source)
        write_images(stage, f"{split}A", images[labels == class_a], labels[labels == class_a])
        write_images(stage, f"{split}B", images[labels == class_b], labels[labels == class_b])


# The synthetic paired set. For MNIST image i of a split (shipped order), with colour c = i % 6 and
# background k = (i // 6) % 3:
#   A_i = blend(digit_i, SYNTH_COLOURS[c],               photo SYNTH_BACKGROUNDS[k][0])
#   B_i = blend(digit_i, SYNTH_COLOURS[c] as (G, B, R),  texture SYNTH_BACKGROUNDS[k][1], grey as RGB)
# where digit_i is the 28x28 digit zero-padded by 2 to 32x32, alpha = digit / 255 and
# blend = rint(alpha * colour + (1 - alpha) * background) as uint8. Each background is the centred
# square of side SYNTH_CROPS[name] of skimage.data.<name>(), shrunk to 32x32 with PIL's BOX filter.
# The map A -> B is a function of the A image (digit shape, its colour, which photo) and invertible.
SYNTH_SIZE = 32
SYNTH_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
)
SYNTH_BACKGROUNDS: tuple[tuple[str, str], ...] = (("astronaut", "brick"), ("coffee", "grass"), ("chelsea", "gravel"))
# Whole photos (their shorter side) so the thumbnail is recognisable; a 128 px patch of each texture
# so the 4x shrink keeps its grain instead of averaging it to flat grey.
SYNTH_CROPS: Mapping[str, int] = {
    "astronaut": 512, "coffee": 400, "chelsea": 300, "brick": 128, "grass": 128, "gravel": 128,
}


def _skimage_image(name: str) -> np.ndarray:
    # skimage is imported here so that the other recipes work without it.
    from skimage import data

    loaders: Mapping[str, Callable[[], np.ndarray]] = {
        "astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea,
        "brick": data.brick, "grass": data.grass, "gravel": data.gravel,
    }
    return loaders[name]()


@functools.cache
def synthetic_background(name: str) -> np.ndarray:
    """The 32x32 RGB uint8 background cut from ``skimage.data.<name>()`` (see SYNTH_CROPS)."""
    image = _skimage_image(name)  # (H, W, 3) photo or (H, W) texture
    side = SYNTH_CROPS[name]
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    crop = Image.fromarray(image[top : top + side, left : left + side]).convert("RGB")
    return np.asarray(crop.resize((SYNTH_SIZE, SYNTH_SIZE), Image.Resampling.BOX))


def _blend(digits: np.ndarray, colours: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
    """Paint digits (N, 28, 28) in colours (N, 3) over backgrounds (N, 32, 32, 3) -> (N, 32, 32, 3) uint8."""
    alpha = np.pad(digits, ((0, 0), (2, 2), (2, 2))).astype(np.float32)[..., None] / 255.0  # (N, 32, 32, 1)
    ink = colours.astype(np.float32)[:, None, None, :]  # (N, 1, 1, 3)
    out = alpha * ink + (1.0 - alpha) * backgrounds.astype(np.float32)
    return np.rint(out).clip(0, 255).astype(np.uint8)


def render_synthetic(digits: np.ndarray, indices: np.ndarray, domain: Literal["A", "B"]) -> np.ndarray:
    """Render MNIST digits (N, 28, 28) with source indices (N,) as domain A or B images (N, 32, 32, 3)."""
    colours = np.asarray(SYNTH_COLOURS, dtype=np.uint8)[indices % len(SYNTH_COLOURS)]  # (N, 3)
    which = (indices // len(SYNTH_COLOURS)) % len(SYNTH_BACKGROUNDS)  # (N,)
    column = 0 if domain == "A" else 1
    if domain == "B":
        colours = colours[:, [1, 2, 0]]  # (R, G, B) -> (G, B, R)
    backgrounds = np.stack([synthetic_background(SYNTH_BACKGROUNDS[k][column]) for k in which])
    return _blend(digits, colours, backgrounds)


def build_synthetic(stage: Path, source: Path | None) -> None:
    """Unpaired train/test halves (even indices -> A, odd -> B) plus testB_paired for testA."""
    for split in ("train", "test"):
        digits, labels = load_mnist(split)
        index = np.arange(len(digits))
        even, odd = index[0::2], index[1::2]  # disjoint, so A and B never show the same digit image
        write_images(stage, f"{split}A", render_synthetic(digits[even], even, "A"), labels[even])
        write_images(stage, f"{split}B", render_synthetic(digits[odd], odd, "B"), labels[odd])
        if split == "test":
            write_images(stage, PAIRED_DIR, render_synthetic(digits[even], even, "B"), labels[even])


# ---------------------------------------------------------------------------------------------
# Manual recipe: Cityscapes
# ---------------------------------------------------------------------------------------------

CITYSCAPES_PHOTOS = "leftImg8bit_trainvaltest.zip"
CITYSCAPES_LABELS = "gtFine_trainvaltest.zip"
CITYSCAPES_SIZE = 256


def _cityscapes_members(zf: zipfile.ZipFile, prefix: str, suffix: str) -> dict[str, str]:
    """Map ``city_seq_frame`` -> member name for ``prefix/<city>/<city_seq_frame><suffix>``."""
    found = {}
    for name in zf.namelist():
        if name.startswith(prefix) and name.endswith(suffix):
            found[name.rsplit("/", 1)[-1][: -len(suffix)]] = name
    return found


def _read_resized(zf: zipfile.ZipFile, member: str, resample: Image.Resampling) -> Image.Image:
    # PNG only: an archive is untrusted input, and some Pillow plugins (EPS) run external programs.
    with zf.open(member) as f, Image.open(f, formats=["PNG"]) as image:
        return image.convert("RGB").resize((CITYSCAPES_SIZE, CITYSCAPES_SIZE), resample)


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise UsageError(f"{path}: not found; --from DIR must hold {CITYSCAPES_PHOTOS} and {CITYSCAPES_LABELS}")
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{path}: not a zip archive") from None


def convert_cityscapes(source: Path, stage: Path) -> None:
    """Cityscapes photos (A) and colour label maps (B), 256x256, as in the CycleGAN setup.

    ``train`` -> trainA/trainB (2,975 pairs), ``val`` -> testA/testB (500 pairs); the official
    ``test`` split has no labels and is skipped. A and B are aligned by index (both sorted by
    ``city_seq_frame``), and testB_paired repeats testB so paired metrics find it where they
    look for every recipe. Photos are resized with BICUBIC; label maps with NEAREST so that
    every pixel keeps an exact palette colour (the official script blurs them with its default).
    """
    photos_zip, labels_zip = _open_zip(source / CITYSCAPES_PHOTOS), _open_zip(source / CITYSCAPES_LABELS)
    with photos_zip, labels_zip:
        for split, folder in (("train", "train"), ("val", "test")):
            photos = _cityscapes_members(photos_zip, f"leftImg8bit/{split}/", "_leftImg8bit.png")
            labels = _cityscapes_members(labels_zip, f"gtFine/{split}/", "_gtFine_color.png")
            _check_same_keys(photos, labels, source, split)
            (stage / f"{folder}A").mkdir(parents=True)
            (stage / f"{folder}B").mkdir(parents=True)
            for n, key in enumerate(sorted(photos)):
                name = f"{n:05d}.png"
                _read_resized(photos_zip, photos[key], Image.Resampling.BICUBIC).save(stage / f"{folder}A" / name)
                _read_resized(labels_zip, labels[key], Image.Resampling.NEAREST).save(stage / f"{folder}B" / name)
    shutil.copytree(stage / "testB", stage / PAIRED_DIR)


def _check_same_keys(photos: dict[str, str], labels: dict[str, str], source: Path, split: str) -> None:
    if not photos:
        raise InputError(f"{source / CITYSCAPES_PHOTOS}: no leftImg8bit/{split}/*/*_leftImg8bit.png members")
    for key in sorted(photos.keys() ^ labels.keys()):
        missing_in = CITYSCAPES_LABELS if key in photos else CITYSCAPES_PHOTOS
        raise InputError(f"{source / missing_in}: no {split} image for {key} (the two archives do not match)")

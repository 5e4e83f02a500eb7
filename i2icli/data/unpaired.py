"""Unpaired image folders for training, as a pure function of (seed, step).

CycleGAN's "unaligned" sampling (official CycleGAN data/unaligned_dataset.py): an epoch has ``max(|A|, |B|)`` samples; A is
read through a shuffled order, B is drawn uniformly at random. Here every random choice is taken
from a ``torch.Generator`` seeded by a mix of the run seed and the step, so ``ds[step]`` is the
same batch however and wherever it is requested: out of order, after a resume, or in a worker
process. There is no iterator state to save in a checkpoint; the step is enough.

Files are listed and decoded by ``i2icli.imageio`` (``list_images``, ``read_image``), the code
``translate`` uses, so training sees the pixels inference would: EXIF-upright, ICC-converted to
sRGB, 16-bit scaled, palette and alpha handled alike (alpha dropped).

Random streams, each seeded by ``mix_seed`` over a tuple:
- ``(seed, EPOCH, epoch)``: the permutation of A for that epoch;
- ``(seed, B, step)``: the B indices of the step's batch;
- ``(seed, AUG, step, slot, domain)``: crop and flip of one image (domain 0 = A, 1 = B);
- ``(seed, SAMPLE, sample_seed, domain)``: the files ``sample`` picks;
- ``(seed, SAMPLE_AUG, sample_seed, domain, k)``: crop and flip of the k-th sampled image.
"""

from __future__ import annotations

import hashlib
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from i2icli.data.transforms import Preprocess, apply_preprocess, pixels, resize_step, test_transform
from i2icli.errors import InputError, UsageError
from i2icli.imageio import check_image, read_image
from i2icli.listing import list_images

# Tags that keep the random streams apart even when their other parts coincide.
_STREAM_EPOCH, _STREAM_B, _STREAM_AUG, _STREAM_SAMPLE, _STREAM_SAMPLE_AUG, _STREAM_HOLDOUT = 1, 2, 3, 4, 5, 6
# Validation (``--val-every``) holds back this fraction of each training folder, within bounds.
HOLDOUT_FRACTION, HOLDOUT_MAX = 0.1, 64


class SkippedImageWarning(UserWarning):
    """An image file could not be read and is left out of training."""


# ---- seeds ----------------------------------------------------------------------------------


def mix_seed(*parts: int) -> int:
    """Hash a tuple of integers into one 63-bit seed (BLAKE2b of their decimal text).

    A cryptographic hash gives unrelated seeds for nearby tuples such as (s, 1, 2) and (s, 2, 1),
    unlike ``seed + step`` schemes whose streams overlap across runs, and unlike XOR-folding
    mixers, where equal parts cancel. The text encoding is unambiguous for any int, negative or
    big, and the same on every platform and Python version.
    """
    text = ",".join(str(int(part)) for part in parts).encode("ascii")
    digest = hashlib.blake2b(text, digest_size=8, person=b"i2i-seed").digest()
    # 63 bits so the value is a valid non-negative seed on every torch version.
    return int.from_bytes(digest, "little") >> 1


def seeded(*parts: int) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded by ``mix_seed(*parts)``."""
    gen = torch.Generator()
    gen.manual_seed(mix_seed(*parts))
    return gen


# ---- files ----------------------------------------------------------------------------------


def _reason(err: InputError, path: Path) -> str:
    """The problem ``read_image`` or ``check_image`` reported, without the leading file name."""
    message = str(err)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


# ---- dataset --------------------------------------------------------------------------------


@dataclass
class _Domain:
    folder: Path
    files: list[Path]
    images: list[torch.Tensor] | None  # preloaded: each resized and held as (C, H, W) uint8; else None


class UnpairedImages(Dataset[dict[str, Any]]):
    """Two folders of unpaired images; ``ds[step]`` is the whole batch of one training step.

    Returns ``{"a": (B, C, H, W), "b": (B, C, H, W), "index_a": (B,), "index_b": (B,), "step"}``:
    images in [-1, 1] and, as int64, the index into ``files_a`` / ``files_b`` of the file each slot
    was actually read from (after any substitution of an unreadable file). Unreadable files
    are left out with a ``SkippedImageWarning`` naming each and are recorded in ``skipped`` as
    ``(file, reason)``. A file that passed the check but fails to decode during training is
    replaced by the next readable index (wrapping around) and recorded; in a worker process that
    record stays in the worker, but the substitution, and so the batch, is the same.
    """

    def __init__(
        self,
        dir_a: Path,
        dir_b: Path,
        pre: Preprocess,
        channels: int,
        seed: int,
        batch_size: int,
        *,
        preload: bool = False,
        holdout: bool = False,
        max_pixels: int | None = None,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if channels not in (1, 3):
            raise UsageError(f"channels must be 1 or 3, got {channels}")
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        rank, world = shard
        if not 0 <= rank < world or batch_size % world:
            raise UsageError(f"shard {rank} of {world} does not divide a batch of {batch_size}")
        self.pre = pre
        self.channels = channels
        self.seed = seed
        self.batch_size = batch_size  # the whole step's batch, over every shard
        self.max_pixels = max_pixels  # larger images are skipped as possible decompression bombs
        # Data-parallel training: this process decodes only its share of each step's slots.
        share = batch_size // world
        self.slots = range(rank * share, (rank + 1) * share)
        self.skipped: list[tuple[Path, str]] = []
        self._bad: set[Path] = set()
        # With ``holdout``, a seeded tenth of each folder (1..64 files) is kept out of training.
        self.held_out_files: dict[str, list[Path]] = {"a": [], "b": []}
        self._a = self._open_domain(Path(dir_a), preload, 0 if not holdout else 1)
        self._b = self._open_domain(Path(dir_b), preload, 0 if not holdout else 2)
        self._perm: tuple[int, torch.Tensor] | None = None  # (epoch, permutation of A) cache

    # -- listing

    def _skip(self, path: Path, reason: str) -> None:
        self.skipped.append((path, reason))
        self._bad.add(path)
        message = f"skipping unreadable image {path}: {reason}"
        warnings.warn(message, SkippedImageWarning, stacklevel=2)

    def _open_domain(self, folder: Path, preload: bool, holdout_id: int) -> _Domain:
        if not folder.is_dir():
            raise InputError(f"image folder {folder} does not exist")
        skipped_before = len(self.skipped)
        files: list[Path] = []
        # The lister and the header check are translate's, so both commands accept the same files.
        for path, _ in list_images([str(folder)], recursive=True):
            try:
                check_image(path, max_pixels=self.max_pixels)
            except InputError as err:
                self._skip(path, _reason(err, path))
                continue
            files.append(path)
        if holdout_id:
            files = self._hold_back(folder, files, holdout_id)
        images = None
        if preload:
            files, images = self._decode_all(files)
        if not files:
            unreadable = len(self.skipped) - skipped_before
            note = f" ({unreadable} unreadable files skipped)" if unreadable else ""
            raise InputError(f"no readable images in {folder}{note}")
        return _Domain(folder, files, images)

    def _hold_back(self, folder: Path, files: list[Path], holdout_id: int) -> list[Path]:
        """Move a seeded ``HOLDOUT_FRACTION`` of ``files`` (1..``HOLDOUT_MAX``) to ``held_out_files``."""
        if len(files) < 2:
            raise UsageError(f"{folder}: validation needs at least 2 images to hold one back (has {len(files)})")
        count = min(HOLDOUT_MAX, max(1, int(len(files) * HOLDOUT_FRACTION)))
        order = torch.randperm(len(files), generator=seeded(self.seed, _STREAM_HOLDOUT, holdout_id)).tolist()
        held = set(order[:count])
        self.held_out_files["ab"[holdout_id - 1]] = [files[i] for i in sorted(held)]
        return [f for i, f in enumerate(files) if i not in held]

    def _decode_all(self, files: list[Path]) -> tuple[list[Path], list[torch.Tensor]]:
        kept: list[Path] = []
        images: list[torch.Tensor] = []
        for path in files:
            try:
                # Stored after the deterministic resize: each step then only crops and flips tensors.
                images.append(pixels(resize_step(self._read(path), self.pre)))
            except InputError as err:
                self._skip(path, _reason(err, path))
                continue
            kept.append(path)
        return kept, images

    # -- sizes

    @property
    def files_a(self) -> list[Path]:
        """Readable A files in index order."""
        return self._a.files

    @property
    def files_b(self) -> list[Path]:
        """Readable B files in index order."""
        return self._b.files

    @property
    def epoch_length(self) -> int:
        """Samples per epoch: ``max(|A|, |B|)``, CycleGAN's unaligned epoch."""
        return max(len(self._a.files), len(self._b.files))

    def steps_per_epoch(self, batch_size: int | None = None) -> int:
        """``ceil(max(|A|, |B|) / batch_size)``; ``batch_size`` defaults to the dataset's."""
        size = self.batch_size if batch_size is None else batch_size
        return math.ceil(self.epoch_length / size)

    def __len__(self) -> int:
        # Steps are unbounded: the loader asks for them by index through its sampler.
        return sys.maxsize

    # -- sampling

    def _epoch_permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            gen = seeded(self.seed, _STREAM_EPOCH, epoch)
            self._perm = (epoch, torch.randperm(len(self._a.files), generator=gen))
        return self._perm[1]

    def indices(self, step: int) -> tuple[list[int], list[int]]:
        """The A and B file indices of the batch for ``step`` (``batch_size`` each)."""
        if step < 0:
            raise IndexError(f"step must be non-negative, got {step}")
        epoch, position = divmod(step, self.steps_per_epoch())
        perm = self._epoch_permutation(epoch)
        first = position * self.batch_size
        len_a = len(self._a.files)
        # The last batch of an epoch wraps to the epoch's start so every batch is full and epochs
        # stay aligned with steps; A positions beyond |A| reuse the permutation (|B| > |A|).
        slots = range(self.batch_size)
        a = [int(perm[(first + slot) % self.epoch_length % len_a]) for slot in slots]
        gen_b = seeded(self.seed, _STREAM_B, step)
        b = torch.randint(len(self._b.files), (self.batch_size,), generator=gen_b).tolist()
        return a, b

    def _image(self, domain: _Domain, index: int) -> tuple[int, Image.Image | torch.Tensor]:
        """Index and image of file ``index``, or of the next readable one when it cannot be read."""
        count = len(domain.files)
        for offset in range(count):
            j = (index + offset) % count
            image = self._try_image(domain, j)
            if image is not None:
                return j, image
        raise InputError(f"no readable images left in {domain.folder}")

    def _try_image(self, domain: _Domain, index: int) -> Image.Image | torch.Tensor | None:
        """File ``index`` decoded, or None (recorded as skipped) when it cannot be read."""
        if domain.images is not None:
            return domain.images[index]
        path = domain.files[index]
        if path in self._bad:
            return None
        try:
            return self._read(path)
        except InputError as err:
            self._skip(path, _reason(err, path))
            return None

    def _read(self, path: Path) -> Image.Image:
        """Decode as ``translate`` does (EXIF, ICC -> sRGB, 16-bit, palette); alpha dropped."""
        return read_image(path, channels=self.channels, max_pixels=self.max_pixels).image

    def _stack(
        self, domain: _Domain, indices: list[int], tensors: list[torch.Tensor]
    ) -> torch.Tensor:
        """Stack (C, H, W) tensors to (B, C, H, W); differing sizes (mode ``none``) are an error."""
        first = tensors[0]
        for index, x in zip(indices, tensors):
            if x.shape != first.shape:
                raise UsageError(
                    f"preprocess mode {self.pre.mode!r} gave images of different sizes in one "
                    f"batch ({domain.files[indices[0]]}: {tuple(first.shape)}, "
                    f"{domain.files[index]}: {tuple(x.shape)}); use batch_size 1 or a cropping mode"
                )
        return torch.stack(tensors)  # (B, C, H, W)

    def _batch(
        self, domain: _Domain, indices: list[int], step: int, domain_id: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (B, C, H, W) images of one domain's batch (this shard's slots) and the (B,) file
        indices really used."""
        loaded = [(slot, self._image(domain, indices[slot])) for slot in self.slots]
        used = [j for _, (j, _) in loaded]
        tensors = [
            apply_preprocess(img, self.pre, seeded(self.seed, _STREAM_AUG, step, slot, domain_id))
            for slot, (_, img) in loaded
        ]  # each (C, H, W)
        return self._stack(domain, used, tensors), torch.tensor(used, dtype=torch.int64)

    def __getitem__(self, step: int) -> dict[str, Any]:
        index_a, index_b = self.indices(step)
        a, used_a = self._batch(self._a, index_a, step, 0)
        b, used_b = self._batch(self._b, index_b, step, 1)
        return {"a": a, "b": b, "index_a": used_a, "index_b": used_b, "step": step}

    def sample(self, domain: Literal["a", "b"], n: int, seed: int) -> torch.Tensor:
        """Up to ``n`` distinct images of one domain, preprocessed and augmented as in training.

        Returns ``(min(n, N), C, H, W)`` for the ``N`` readable files. Which files, and their
        crops and flips, depend only on (dataset seed, ``seed``, domain), never on a training step.
        Work is bounded: files are decoded in a seeded random order until ``n`` have been read, so
        at most ``n`` plus the unreadable ones met on the way (each skipped with a warning).
        """
        if domain not in ("a", "b"):
            raise UsageError(f"domain must be 'a' or 'b', got {domain!r}")
        if n < 1:
            raise UsageError(f"sample size n must be at least 1, got {n}")
        domain_id = 0 if domain == "a" else 1
        data = self._a if domain == "a" else self._b
        order = torch.randperm(
            len(data.files), generator=seeded(self.seed, _STREAM_SAMPLE, seed, domain_id)
        )
        used: list[int] = []
        tensors: list[torch.Tensor] = []  # each (C, H, W)
        for index in order.tolist():
            image = self._try_image(data, index)
            if image is None:
                continue
            gen = seeded(self.seed, _STREAM_SAMPLE_AUG, seed, domain_id, len(tensors))
            tensors.append(apply_preprocess(image, self.pre, gen))
            used.append(index)
            if len(tensors) == n:
                break
        if not tensors:
            raise InputError(f"no readable images left in {data.folder}")
        return self._stack(data, used, tensors)  # (min(n, N), C, H, W)


def evaluation_images(files: list[Path], pre: Preprocess, channels: int, limit: int = HOLDOUT_MAX) -> torch.Tensor:
    """Up to ``limit`` of ``files`` decoded as ``translate`` does and given the deterministic test
    transform (training resize, centre crop, no flip): (N, C, H, W). Unreadable files are skipped."""
    tensors = []
    for path in files[:limit]:
        try:
            tensors.append(test_transform(read_image(path, channels=channels).image, pre))
        except InputError:
            continue
    if not tensors:
        raise InputError(f"no readable validation images among {len(files)} files")
    return torch.stack(tensors)


# ---- folders and loader ---------------------------------------------------------------------


def resolve_domains(
    dataroot: Path | None,
    domain_a: Path | None,
    domain_b: Path | None,
    split: str = "train",
) -> tuple[Path, Path]:
    """The two domain folders: ``dataroot/{split}A`` and ``{split}B``, or the two explicit folders.

    Exactly one of ``dataroot`` or the pair (``domain_a``, ``domain_b``) must be given; a missing
    folder raises ``UsageError`` naming it.
    """
    explicit = domain_a is not None or domain_b is not None
    if dataroot is not None and explicit:
        raise UsageError("give either dataroot or domain_a/domain_b, not both")
    if dataroot is None and not explicit:
        raise UsageError(
            f"give dataroot (holding {split}A/ and {split}B/) or both domain_a and domain_b"
        )
    if dataroot is None:
        if domain_a is None or domain_b is None:
            missing = "domain_b" if domain_b is None else "domain_a"
            raise UsageError(f"{missing} is missing: domain_a and domain_b must be given together")
        folders = (Path(domain_a), Path(domain_b))
    else:
        root = Path(dataroot)
        if not root.is_dir():
            raise UsageError(f"dataroot {root} is not an existing folder")
        folders = (root / f"{split}A", root / f"{split}B")
    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"image folder {folder} is not an existing folder")
    return folders


def make_loader(
    ds: Dataset[dict[str, Any]], start_step: int, max_steps: int, num_workers: int = 0
) -> DataLoader[dict[str, Any]]:
    """A loader yielding ``ds[step]`` for ``step`` in ``start_step .. max_steps - 1``, in order.

    ``batch_size=None`` because the dataset already returns whole batches. Since every batch is a
    pure function of its step, the output is the same for any ``num_workers``.
    """
    if not 0 <= start_step <= max_steps:
        raise UsageError(f"start_step ({start_step}) must be between 0 and max_steps ({max_steps})")
    if num_workers < 0:
        raise UsageError(f"num_workers must be non-negative, got {num_workers}")
    steps = range(start_step, max_steps)
    # A private generator: creating the iterator must not draw from the global RNG, or a resumed
    # run's random stream would be shifted against an uninterrupted one.
    return DataLoader(
        ds, batch_size=None, sampler=steps, num_workers=num_workers, generator=torch.Generator().manual_seed(0)
    )

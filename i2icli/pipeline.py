"""Streaming translation of many files: decoding and encoding overlap the network.

``stream`` runs three stages connected by bounded queues, so memory stays flat however many
files there are (only the job list itself grows with them):

    reader thread  -> decode pool (``decode_threads``) -> [compute queue] -> network (the caller's
    thread, equal-size batches) -> [write queue] -> writer thread -> events

A file that cannot be decoded or written costs only its own output: it becomes a ``Failed``
event naming it and the rest go on. ``translate_files`` is ``stream`` for ``i2i translate``.

Order: with one writer (the default) results are written, and their events arrive, in the order
the network finishes them. That is input order, except that with ``batch_size`` > 1 an image may
join a batch of its size ahead of earlier images of other sizes (within a window of
``LOOKAHEAD`` batches). ``Failed``/``Skipped`` events for inputs that never reach the network are
emitted as the reader meets them. Every event carries the job and its index in the input list.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Generic, TypeVar

import torch
from PIL import Image

from i2icli.errors import I2IError
from i2icli.inference import LoadedModel
from i2icli.methods.base import Direction
from i2icli.tiling import TileOptions

LOOKAHEAD = 4  # batches' worth of decoded images held while gathering equal sizes
_END = object()

J = TypeVar("J")  # a job
D = TypeVar("D")  # a decoded item
R = TypeVar("R")  # a computed result


@dataclass(frozen=True)
class Done(Generic[J]):
    job: J
    index: int
    value: Any  # what ``write`` returned
    seconds: float  # from the start of its decoding to the end of its writing


@dataclass(frozen=True)
class Failed(Generic[J]):
    job: J
    index: int
    error: I2IError


@dataclass(frozen=True)
class Skipped(Generic[J]):
    job: J
    index: int


Event = Done[J] | Failed[J] | Skipped[J]


class _Crash:
    """An unexpected exception in a worker thread, re-raised in the caller's thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def stream(
    jobs: Iterable[J],
    decode: Callable[[J], D],
    compute: Callable[[list[D]], list[R]],
    write: Callable[[J, D, R], Any],
    *,
    batch_size: int = 1,
    batch_key: Callable[[D], Hashable] = lambda d: None,
    skip: Callable[[J], bool] | None = None,
    decode_threads: int = 2,
) -> Iterator[Event[J]]:
    """Decode, compute (in batches of up to ``batch_size`` items with equal ``batch_key``) and
    write every job, yielding one event per job. ``decode``/``write`` raise ``I2IError`` for a bad
    input/output; any other exception stops the stream and is re-raised here."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    depth = batch_size * LOOKAHEAD
    to_compute: queue.Queue[Any] = queue.Queue(maxsize=depth)
    to_write: queue.Queue[Any] = queue.Queue(maxsize=2 * batch_size)
    events: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def put(q: queue.Queue[Any], item: Any) -> bool:
        """Blocking put that gives up when the stream is stopped."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def timed_decode(job: J) -> tuple[D, float]:
        t0 = time.perf_counter()
        return decode(job), t0

    def reader() -> None:
        try:
            with ThreadPoolExecutor(max(1, decode_threads), thread_name_prefix="i2i-decode") as pool:
                window: list[tuple[int, J, Future[tuple[D, float]]]] = []  # in input order
                for index, job in enumerate(jobs):
                    if stop.is_set():
                        return
                    if skip is not None and skip(job):
                        events.put(Skipped(job, index))
                        continue
                    window.append((index, job, pool.submit(timed_decode, job)))
                    while len(window) > max(1, decode_threads) * 2:
                        if not _forward(window.pop(0)):
                            return
                for entry in window:
                    if not _forward(entry):
                        return
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            events.put(_Crash(e))
        finally:
            put(to_compute, _END)

    def _forward(entry: tuple[int, J, Future[tuple[D, float]]]) -> bool:
        index, job, future = entry
        try:
            item, t0 = future.result()
        except I2IError as e:
            events.put(Failed(job, index, e))
            return True
        return put(to_compute, (index, job, item, t0))

    def writer() -> None:
        try:
            while True:
                entry = _get(to_write, stop)
                if entry is _END or entry is None:  # finished, or stopped (Ctrl-C, a crash)
                    return
                index, job, item, t0, result = entry
                try:
                    value = write(job, item, result)
                except I2IError as e:
                    events.put(Failed(job, index, e))
                else:
                    events.put(Done(job, index, value, time.perf_counter() - t0))
        except BaseException as e:  # noqa: BLE001
            events.put(_Crash(e))
            stop.set()

    threads = [threading.Thread(target=reader, name="i2i-reader", daemon=True),
               threading.Thread(target=writer, name="i2i-writer", daemon=True)]  # fmt: skip
    for t in threads:
        t.start()
    buckets: OrderedDict[Hashable, list[tuple[int, J, D, float]]] = OrderedDict()
    held = 0
    try:
        finished = False
        while not finished:
            entry = _get(to_compute, stop)
            if entry is _END or entry is None:
                finished = True
            else:
                key = batch_key(entry[2])
                buckets.setdefault(key, []).append(entry)
                held += 1
            # Run a full bucket, else the oldest once the window is full or the input has ended.
            while buckets:
                full = next((k for k, v in buckets.items() if len(v) >= batch_size), None)
                if full is None and not finished and held < depth:
                    break
                key = full if full is not None else next(iter(buckets))
                batch = buckets[key][:batch_size]
                buckets[key] = buckets[key][batch_size:]
                if not buckets[key]:
                    del buckets[key]
                held -= len(batch)
                results = compute([item for _, _, item, _ in batch])
                for (index, job, item, t0), result in zip(batch, results):
                    if not put(to_write, (index, job, item, t0, result)):
                        break
                yield from _drain(events)
        put(to_write, _END)
        threads[1].join()
        threads[0].join()
        yield from _drain(events)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return None


def _drain(events: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        try:
            event = events.get_nowait()
        except queue.Empty:
            return
        if isinstance(event, _Crash):
            raise event.error
        yield event


# --------------------------------------------------------------------------- translate


@dataclass(frozen=True)
class Job:
    """One input: ``src`` (a file, or a name for ``data`` read elsewhere, e.g. stdin), its path
    relative to the input it was found under, and the output (a path, or a binary stream)."""

    src: Path
    rel: Path
    dest: Path | BinaryIO
    data: bytes | None = None


@dataclass(frozen=True)
class Frame:
    """One image to translate: a still input, or one frame of a multi-frame input."""

    image: torch.Tensor  # (C, H, W) in [-1, 1], at the size the network sees
    alpha: Image.Image | None
    size: tuple[int, int]  # (W, H) as decoded, before any resize
    dest: Path | BinaryIO
    name: str


@dataclass(frozen=True)
class Decoded:
    frames: list[Frame]
    style: torch.Tensor | None  # (S, 1, 1) for style models
    skipped: int = 0  # frames whose output exists (kept)


@dataclass(frozen=True)
class Written:
    """One output: its destination and size, or the error that stopped it."""

    dest: Path | BinaryIO
    size: tuple[int, int] | None
    error: I2IError | None = None


@dataclass(frozen=True)
class Outcome:
    """``Done.value`` of ``translate_files``: what was written, frames kept as they were, and the
    input sizes as decoded."""

    written: list[Written]
    skipped: int
    input_sizes: list[tuple[int, int]]


def translate_files(
    model: LoadedModel,
    direction: Direction,
    jobs: Iterable[Job],
    *,
    batch_size: int = 1,
    tiling: TileOptions = TileOptions(),
    fmt: str = "png",
    resize: Callable[[Image.Image, Image.Image | None], tuple[Image.Image, Image.Image | None]] | None = None,
    restore_size: bool = False,
    skip_existing: bool = False,
    all_frames: bool = False,
    max_pixels: int | None = None,
    style_of: Callable[[Path], torch.Tensor] | None = None,
    after_write: Callable[[Job, Frame], None] | None = None,
    decode_threads: int = 2,
) -> Iterator[Event[Job]]:
    """Translate files, writing each output as it is ready; yields per job a ``Done`` (value: an
    ``Outcome``), a ``Failed`` (it could not be decoded) or a ``Skipped`` (its output exists).

    ``resize(image, alpha)`` prepares each decoded image (e.g. to the model's training scale);
    ``restore_size`` resizes outputs back to the input size. ``all_frames``: every frame of an
    animated or multi-page input is translated to ``<name>_f<k>`` (a still keeps its name).
    ``style_of(rel)`` gives style models the style of each input; ``after_write`` runs after each
    output is written (e.g. landmark pictures) and may raise ``I2IError`` like a failed write.
    """
    from i2icli.imageio import read_frames, to_pil, to_tensor, write_image
    from i2icli.inference import translate_tensors

    c_in, _ = model.channels(direction)

    def decode(job: Job) -> Decoded:
        name = None if job.data is None else str(job.rel)  # data read elsewhere (stdin) is named by ``rel``
        source = job.data if job.data is not None else job.src
        images = read_frames(source, name=name, channels=c_in, max_pixels=max_pixels, all_frames=all_frames)
        several = all_frames and len(images) > 1  # only a file with several frames gets <name>_f<k>
        frames, skipped = [], 0
        for k, img in enumerate(images):
            dest = frame_path(job.dest, k, len(images)) if several and isinstance(job.dest, Path) else job.dest
            if all_frames and skip_existing and isinstance(dest, Path) and dest.exists():
                skipped += 1
                continue
            image, alpha = (img.image, img.alpha) if resize is None else resize(img.image, img.alpha)
            if restore_size:
                alpha = img.alpha  # the output is resized back, so the alpha stays as it was
            frames.append(Frame(to_tensor(image), alpha, img.image.size, dest, img.name))
        return Decoded(frames, None if style_of is None else style_of(job.rel), skipped)

    def compute(items: list[Decoded]) -> list[list[torch.Tensor]]:
        images = [f.image for d in items for f in d.frames]
        styles = None if style_of is None else [d.style for d in items for _ in d.frames]
        # Frames of several-frame inputs also run in batches of ``batch_size``, as single images do.
        outputs = translate_tensors(model, images, direction, batch_size=batch_size, styles=styles, tiling=tiling)  # type: ignore[arg-type]
        split, start = [], 0
        for d in items:
            split.append(outputs[start : start + len(d.frames)])
            start += len(d.frames)
        return split

    def write(job: Job, item: Decoded, ys: list[torch.Tensor]) -> Outcome:
        written = []
        for frame, y in zip(item.frames, ys):
            result = to_pil(y)
            if restore_size and result.size != frame.size:
                result = result.resize(frame.size, Image.Resampling.BICUBIC)
            try:
                write_image(frame.dest, result, alpha=frame.alpha, format=fmt)
                if after_write is not None:
                    after_write(job, frame)
            except I2IError as e:
                written.append(Written(frame.dest, None, e))
            else:
                written.append(Written(frame.dest, result.size))
        return Outcome(written, item.skipped, [f.size for f in item.frames])

    def exists(job: Job) -> bool:
        return skip_existing and not all_frames and isinstance(job.dest, Path) and job.dest.exists()

    def key(d: Decoded) -> Hashable:
        return tuple(tuple(f.image.shape) for f in d.frames)

    return stream(jobs, decode, compute, write, batch_size=batch_size, batch_key=key, skip=exists, decode_threads=decode_threads)


CALIBRATION_IMAGES = 8  # inputs that calibrate --precision int8


def calibrate(
    model: LoadedModel,
    direction: Direction,
    files: Iterable[tuple[Path, Path]],
    *,
    resize: Callable[[Image.Image, Image.Image | None], tuple[Image.Image, Image.Image | None]] | None = None,
    style_of: Callable[[Path], torch.Tensor] | None = None,
    max_pixels: int | None = None,
) -> None:
    """int8 runtimes: calibrate activation ranges on the first ``CALIBRATION_IMAGES`` readable
    ``(source, relative name)`` files, prepared as ``translate_files`` prepares them (``resize``,
    ``style_of``); any other runtime needs nothing. The pipeline decodes them again."""
    if model.runtime.precision != "int8":
        return
    from i2icli.imageio import read_image, to_tensor

    c_in = model.channels(direction)[0]
    examples: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    for path, rel in files:
        try:
            image = read_image(path, channels=c_in, max_pixels=max_pixels).image
        except I2IError:
            continue  # the pipeline reports it
        if resize is not None:
            image = resize(image, None)[0]
        examples.append((to_tensor(image), None if style_of is None else style_of(rel)))
        if len(examples) == CALIBRATION_IMAGES:
            break
    model.calibrate(direction, examples)


def frame_path(dest: Path, k: int, count: int) -> Path:
    """``name.png`` -> ``name_f007.png``: frame ``k`` of ``count`` (zero-padded so names sort)."""
    return dest.with_name(f"{dest.stem}_f{k:0{max(3, len(str(count - 1)))}d}{dest.suffix}")

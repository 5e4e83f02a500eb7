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
                entry = to_write.get()
                if entry is _END:
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
class Decoded:
    image: torch.Tensor  # (C, H, W) in [-1, 1]
    alpha: Image.Image | None
    style: torch.Tensor | None  # (S, 1, 1) for style models


def translate_files(
    model: LoadedModel,
    direction: Direction,
    jobs: Iterable[Job],
    *,
    batch_size: int = 1,
    tiling: TileOptions = TileOptions(),
    fmt: str = "png",
    size: int | None = None,
    skip_existing: bool = False,
    style_of: Callable[[Path], torch.Tensor] | None = None,
    after_write: Callable[[Job, Decoded], None] | None = None,
    decode_threads: int = 2,
) -> Iterator[Event[Job]]:
    """Translate files at native resolution (or short side ``size``), writing each output as it
    is ready; yields a ``Done`` (value: the output size (W, H)), ``Failed`` or ``Skipped`` per job.

    ``style_of(rel)`` gives style models the style of each input; ``after_write`` runs after each
    output is written (e.g. landmark pictures) and may raise ``I2IError`` like a failed write.
    """
    from i2icli.imageio import read_image, to_pil, to_tensor, write_image
    from i2icli.inference import translate_tensors

    c_in, _ = model.channels(direction)

    def decode(job: Job) -> Decoded:
        name = None if job.data is None else str(job.rel)  # data read elsewhere (stdin) is named by ``rel``
        img = read_image(job.data if job.data is not None else job.src, name=name, channels=c_in)
        image, alpha = img.image, img.alpha
        if size is not None:
            image, alpha = resize_short_side(image, alpha, size)
        return Decoded(to_tensor(image), alpha, None if style_of is None else style_of(job.rel))

    def compute(items: list[Decoded]) -> list[torch.Tensor]:
        styles = None if style_of is None else [d.style for d in items]
        return translate_tensors(model, [d.image for d in items], direction, batch_size=len(items), styles=styles, tiling=tiling)  # type: ignore[misc]

    def write(job: Job, item: Decoded, y: torch.Tensor) -> tuple[int, int]:
        result = to_pil(y)
        write_image(job.dest, result, alpha=item.alpha, format=fmt)
        if after_write is not None:
            after_write(job, item)
        return result.size

    def exists(job: Job) -> bool:
        return skip_existing and isinstance(job.dest, Path) and job.dest.exists()

    return stream(
        jobs, decode, compute, write, batch_size=batch_size, batch_key=lambda d: tuple(d.image.shape),
        skip=exists, decode_threads=decode_threads,
    )  # fmt: skip


def resize_short_side(image: Image.Image, alpha: Image.Image | None, size: int) -> tuple[Image.Image, Image.Image | None]:
    """Resize so the short side is ``size`` (bicubic; the alpha bilinear)."""
    w, h = image.size
    scale = size / min(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.resize(new, Image.Resampling.BICUBIC)
    alpha = alpha.resize(new, Image.Resampling.BILINEAR) if alpha is not None else None
    return image, alpha

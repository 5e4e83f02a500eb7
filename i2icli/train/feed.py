"""The batches a training run feeds the loop: ``data[step]`` for each step, decoded ahead of the
compute in a background thread (or in worker processes), moved to the device."""

from __future__ import annotations

import threading
from typing import Any, Iterator, Protocol

import torch

from i2icli.data.unpaired import make_loader
from i2icli.train.objective import Batch


class StepData(Protocol):
    """Training data indexed by step: ``data[step]`` is the whole batch for that step."""

    def __getitem__(self, step: int) -> Batch: ...


def to_device(batch: Batch, device: torch.device, channels_last: bool = False) -> Batch:
    def move(v: torch.Tensor) -> torch.Tensor:
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.dim() == 4 else v

    return {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def batches(data: StepData, start: int, stop: int, num_workers: int, stage_starts: list[int]) -> Iterator[Batch]:
    """``data[step]`` for ``step`` in ``start .. stop - 1``. Without worker processes, each stage's
    batches after its first are prepared in a background thread (``_prefetched``); a stage's first
    batch is fetched here, so a stage hook runs with no later batch fetched yet, as without prefetch."""
    bounds = sorted({start, stop, *(s for s in stage_starts if start < s < stop)})
    for a, b in zip(bounds, bounds[1:]):
        if num_workers:
            yield from make_loader(data, a, b, num_workers)
            continue
        yield data[a]
        if a + 1 < b:
            rest = _prefetched(iter(make_loader(data, a + 1, b, 0)))
            try:
                yield from rest
            finally:
                rest.close()


def _prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """``batches`` produced one or two steps ahead in a background thread, so decoding and
    augmenting the next batch overlaps this step's compute. Batches are pure functions of the
    step, so the thread changes no result; it draws nothing from the global RNG."""
    import queue

    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - re-raised in the training thread
            q.put(e)

    thread = threading.Thread(target=produce, name="i2i-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)

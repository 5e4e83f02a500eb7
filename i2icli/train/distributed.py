"""Data-parallel training with ``torch.distributed`` (gloo on CPU, NCCL on GPUs), as ``torchrun`` launches it.

``torchrun --nproc_per_node N -m i2icli train ...`` starts N copies; each reads RANK/WORLD_SIZE
from the environment and ``init_from_env`` joins the process group. Then:

- every rank builds the same networks and rank 0's weights are broadcast (``broadcast_modules``);
- the global batch of a step is ``data[step]`` with ``N x batch_size`` slots (a pure function of
  seed and step, as in one process); rank r decodes only slots ``[r*b, (r+1)*b)``;
- after each phase's backward, gradients are averaged over the ranks (``average_gradients``),
  so every rank applies the same update and the weights stay identical. This is DDP's
  all-reduce done explicitly per phase rather than through the ``DistributedDataParallel``
  wrapper: a GAN step runs several phases on overlapping modules with the others frozen, which
  the wrapper (one forward, hooks on every parameter, ``module.`` prefixes in the state dict)
  does not fit; gradients are bucketed into one flat tensor per phase as DDP does;
- only rank 0 writes (run.json, metrics, samples, checkpoints, the exported model); ranks meet
  at a barrier after each checkpoint. A checkpoint holds every rank's own state (image pools,
  RNG), gathered to rank 0, so a resumed run continues exactly;
- the stop flag (SIGINT/SIGTERM) is agreed on every step, so all ranks stop at the same step;
- a rank process ends through ``end_rank`` (no interpreter teardown, see there).
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, NoReturn

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    """This process's place in the job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Whether this rank writes files (rank 0 only)."""
        return self.rank == 0


def from_env() -> Dist:
    """The rank and world size torchrun put in the environment (without joining anything)."""
    return Dist(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def init_from_env(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group torchrun describes (gloo on CPU, NCCL on CUDA); on CUDA each rank
    takes the GPU LOCAL_RANK. Without torchrun: a single process, nothing to join."""
    place = from_env()
    if not place.enabled:
        return place, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size()), device


@contextmanager
def joined(device: torch.device) -> Iterator[tuple[Dist, torch.device]]:
    """``init_from_env`` for the body, then leave the group; after a clean body every rank first
    meets at a barrier.

    The meeting matters: rank 0 still writes the exported model when the others finish, and a rank
    tearing down gloo while its peer is busy can abort in gloo's threads ("terminate called without
    an active exception", seen under CPU contention). After an error there is no barrier (a peer may
    never come; the launcher stops the others when this process exits).
    """
    place, device = init_from_env(device)
    try:
        yield place, device
        if place.enabled:
            dist.barrier()
    finally:
        if place.enabled and dist.is_initialized():
            dist.destroy_process_group()


def end_rank(code: int) -> NoReturn:
    """End a data-parallel rank's process with ``code`` now, after flushing its output.

    Called once the rank has left the group (or failed): every file it wrote is complete (rank 0
    writes checkpoints and models atomically and has closed its logs). Skipping the interpreter's
    teardown is on purpose: there, gloo's C++ threads and torch's thread pools are destroyed in an
    order of the runtime's choosing. In CI one rank of a resumed two-rank run aborted with
    "terminate called without an active exception" (SIGABRT, a joinable C++ thread destroyed);
    where exactly is not known (it did not recur here in 14 runs under load), and the teardown is
    the one part of a finished rank that nothing needs.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said there
            pass
    os._exit(code)


def broadcast_modules(modules: Iterable[nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[nn.Parameter], world: int) -> None:
    """Average the gradients of ``params`` over the ranks, in one flat all-reduce (params without
    a gradient are skipped; the same graph on every rank gives the same set)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_scalars(values: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Each scalar averaged over the ranks (for logging and the divergence check)."""
    if not values:
        return values
    keys = sorted(values)
    flat = torch.stack([values[k].detach().float().reshape(()) for k in keys]).to(device)
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    return {k: flat[i] for i, k in enumerate(keys)}


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is set on any rank."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def gather(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (plain tensors and containers), in rank order, on every rank."""
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    dist.barrier()

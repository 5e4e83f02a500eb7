"""Start a data-parallel CPU job from within one command (``i2i train --procs N``), as ``torchrun`` would.

N processes are spawned (fresh interpreters: forking after torch has started its thread pool can
hang), each told its rank through the environment torchrun would set (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR/MASTER_PORT on 127.0.0.1), so the rest is ``distributed.init_from_env``.
Why processes: on a small CPU, N one-thread processes that meet once per phase to average
gradients keep every core busy, where one process of N threads waits for its threads at every
operator (``benchmarks/RESULTS.md``, "Training speed").

This process only waits: Ctrl-C reaches every rank (they share the terminal's process group), which
stop at the same step and checkpoint; SIGTERM is passed on. When a rank fails, the others (blocked
in a collective that will never complete) are stopped, and the failing rank's exit code is returned.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from typing import Any, Callable

GRACE_S = 10.0  # how long the other ranks may take to finish after one has failed


def free_port() -> int:
    """A TCP port on 127.0.0.1 free now (the ranks meet there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rank_environment(rank: int, world: int, port: int) -> dict[str, str]:
    """What torchrun puts in each rank's environment."""
    return {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}  # fmt: skip


def _enter(target: Callable[..., None], env: dict[str, str], args: tuple[Any, ...]) -> None:
    os.environ.update(env)
    target(*args)


def run_ranks(target: Callable[..., None], args: tuple[Any, ...], world: int) -> int:
    """Run ``target(*args)`` in ``world`` processes (ranks 0..world-1); the first failing rank's exit
    code, else 0. ``target`` must be importable (a module-level function) and end its process (SystemExit
    or ``os._exit``)."""
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    procs = [ctx.Process(target=_enter, args=(target, rank_environment(r, world, port), args)) for r in range(world)]
    for p in procs:
        p.start()
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the ranks stop themselves at an agreed step

    def forward(signum: int, frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signum)

    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        return _wait(procs)
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def _wait(procs: list[Any]) -> int:
    failed: int | None = None
    deadline = 0.0
    while any(p.is_alive() for p in procs):
        time.sleep(0.1)
        if failed is None:
            codes = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if codes:
                failed, deadline = codes[0], time.monotonic() + GRACE_S
        elif time.monotonic() > deadline:
            _stop(procs)
    for p in procs:
        p.join()
    if failed is None:
        failed = next((p.exitcode for p in procs if p.exitcode != 0), 0)
    # A rank killed by a signal has a negative exit code: report it as a shell would (128 + signal).
    return failed if failed >= 0 else 128 - failed


def _stop(procs: list[Any]) -> None:
    """SIGTERM the ranks still running, then SIGKILL those that do not exit within the grace time."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(GRACE_S)
        if p.is_alive():
            p.kill()

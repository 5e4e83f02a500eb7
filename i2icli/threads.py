"""How many CPU threads torch uses, chosen so that a shared machine does not collapse.

OpenMP threads that spin while they wait for work stall each other when another busy process holds
one of the cores: on a shared 2-core machine, 40 cpu-tiny CycleGAN steps took ten times longer with
torch's default two threads than with one (``benchmarks/RESULTS.md``, "Threads"). So the command
line (1) sets ``OMP_WAIT_POLICY=PASSIVE`` before torch is imported, unless the user set it, and
(2) uses, unless ``--threads N`` or ``OMP_NUM_THREADS`` says otherwise, the CPUs this process may
run on (``os.sched_getaffinity``) minus the current load (1-minute average), at least one.
``i2i train`` with a ``cpu-`` preset runs one-thread processes instead (``--procs``, see
``i2icli.train.launch``): sleeping waiters cost a two-thread process about half its speed on a
quiet machine, which one thread per process avoids without spinning on a shared one.
This module does not import torch until ``apply_threads``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from i2icli.errors import UsageError

WAIT_POLICY = "PASSIVE"


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count in use and why; recorded in ``run.json``."""

    threads: int
    source: str  # "--threads", "OMP_NUM_THREADS" or "auto" (CPUs available minus the load)
    cpus: int  # CPUs this process may run on
    load: float | None  # 1-minute load average when chosen (None where the OS has none)
    wait_policy: str  # OMP_WAIT_POLICY in effect ("" when unset: the OpenMP runtime's default)


def prepare_process() -> None:
    """Call before torch is imported (the command-line entry point does): threads that wait
    sleep instead of spinning, unless the user chose a policy."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; containers and ``taskset`` limit it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def choose_threads(requested: int | None = None) -> ThreadChoice:
    """``--threads N``, else ``OMP_NUM_THREADS``, else the available CPUs minus the current load."""
    cpus = available_cpus()
    try:
        load: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    policy = os.environ.get("OMP_WAIT_POLICY", "")
    if requested is not None:
        if requested < 1:
            raise UsageError(f"--threads {requested}: must be at least 1")
        return ThreadChoice(requested, "--threads", cpus, load, policy)
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return ThreadChoice(int(env), "OMP_NUM_THREADS", cpus, load, policy)
    free = cpus if load is None else round(cpus - load)
    return ThreadChoice(max(1, min(cpus, free)), "auto", cpus, load, policy)


def apply_threads(requested: int | None = None) -> ThreadChoice:
    """Choose (see ``choose_threads``) and set torch's intra-op thread count; returns the choice."""
    import torch

    choice = choose_threads(requested)
    torch.set_num_threads(choice.threads)
    return choice

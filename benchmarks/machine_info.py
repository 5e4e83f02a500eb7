"""What every benchmark records beside its figures: the machine they were measured on."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from typing import Any


def machine() -> dict[str, Any]:
    """CPU model and the flags that decide speed (/proc/cpuinfo), native bf16, cores, the CPUs this
    process may use, torch threads in use, and the torch / Python / i2icli versions."""
    import torch

    import i2icli
    from i2icli.precision import cpu_features
    from i2icli.threads import available_cpus

    cpu = cpu_features()
    return {
        "cpu": cpu.model,
        "flags": cpu.describe().split("(", 1)[-1].rstrip(")"),
        "native_bf16": cpu.native_bf16,
        "cores": os.cpu_count(),
        "available": available_cpus(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "i2icli": i2icli.__version__,
    }


def describe(m: dict[str, Any]) -> str:
    """One line for RESULTS.md from a recorded ``machine()``: CPU, cores, native bf16, torch threads
    and versions. A record older than a field says so instead of guessing it."""
    bf16 = m.get("native_bf16")
    parts = [
        m.get("cpu", "unknown CPU"),
        f"{m['cores']} cores" if "cores" in m else "",
        "native bf16" if bf16 else ("no native bf16" if bf16 is False else "native bf16 not recorded"),
        f"torch threads {m['threads']}" if "threads" in m else "",
        f"torch {m['torch']}" if "torch" in m else "",
        f"Python {m['python']}" if "python" in m else "",
    ]
    return ", ".join(p for p in parts if p)


def run_cli(args: list[str], env: dict[str, str]) -> tuple[dict[str, float], str]:
    """``i2i ARGS`` in a child process: its wall seconds and own peak RSS (``wait4``), and its stderr.
    A failing child raises with the end of its stderr."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "i2icli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"i2i {' '.join(args)} failed: {err[-2000:]}")
    return {"seconds": round(seconds, 1), "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2)}, err  # ru_maxrss in KiB

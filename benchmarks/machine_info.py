"""What every benchmark records beside its figures: the machine they were measured on."""

from __future__ import annotations

import os
import platform
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

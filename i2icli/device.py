"""Device selection shared by every command."""

from __future__ import annotations

import torch

from i2icli.errors import UsageError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple MPS, then CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UsageError("--device mps: Apple MPS is not available (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name}: unknown device (use auto, cpu, cuda or mps)") from None


def describe() -> str:
    """One line on the compute available, for ``i2i --version`` and run folders."""
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return f"cuda {torch.version.cuda} ({names})"
    if torch.backends.mps.is_available():
        return "mps"
    return f"cpu ({torch.get_num_threads()} threads)"

"""Numeric precision for inference and training: which one to use, and whether the CPU can.

bf16 is fast only where the hardware computes it: AVX512-BF16 or AMX on x86, the BF16 extension
on Arm. Elsewhere PyTorch emulates it, many times slower than fp32, so bf16 is never chosen, and
is refused when asked for, on a CPU without it: the refusal states a timing measured on the spot
(a small matmul in both precisions). The same holds for fp16 on CPUs without AVX512-FP16 / AMX-FP16.

``auto`` picks bf16 only where it is native *and* the model's card records a measured PSNR of
at least ``AUTO_MIN_PSNR_DB`` between bf16 and fp32 outputs on its examples; otherwise fp32.
"""

from __future__ import annotations

import json
import platform
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

from i2icli.errors import UsageError

Precision = Literal["fp32", "bf16", "fp16", "int8"]
PRECISION_CHOICES = ("fp32", "bf16", "fp16", "auto", "int8")
AUTO_MIN_PSNR_DB = 35.0
# The card entry ``auto`` reads: metrics.json -> {"precision": {"bf16": {"psnr_db": ...}}}.
CARD_KEY = "precision"

_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 (lscpu names) and Arm ("bf16")
_FP16_FLAGS = frozenset({"avx512_fp16", "amx_fp16"})


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU model name and feature flags as ``lscpu`` / /proc/cpuinfo list them."""

    model: str
    flags: frozenset[str]

    @property
    def native_bf16(self) -> bool:
        return bool(self.flags & _BF16_FLAGS)

    @property
    def native_fp16(self) -> bool:
        return bool(self.flags & _FP16_FLAGS)

    def describe(self) -> str:
        """e.g. ``AMD EPYC (avx512f, avx512_bf16)``: the model and the flags that matter here."""
        shown = sorted(self.flags & (_BF16_FLAGS | _FP16_FLAGS | {"avx2", "avx512f", "avx512_vnni", "amx_int8"}))
        return f"{self.model} ({', '.join(shown) or 'no avx2/avx512'})"


@lru_cache(maxsize=1)
def cpu_features() -> CpuFeatures:
    """This machine's CPU: from /proc/cpuinfo on Linux (x86 ``flags``, Arm ``Features``)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and value.strip():
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return CpuFeatures(model, frozenset(flags))


def _matmul_seconds(dtype: torch.dtype, n: int = 256, repeats: int = 3) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return best


def emulation_probe(dtype: torch.dtype = torch.bfloat16) -> str:
    """A measured reason: one 256^2 matmul timed in ``dtype`` and in fp32 on this CPU (a few ms)."""
    slow = _matmul_seconds(dtype)
    fast = _matmul_seconds(torch.float32)
    name = "bf16" if dtype == torch.bfloat16 else "fp16"
    return f"a 256x256 matmul took {slow * 1e3:.1f} ms in {name} vs {fast * 1e3:.1f} ms in fp32 here ({slow / fast:.1f}x)"


def check_half_supported(precision: str, device: torch.device, what: str, features: CpuFeatures | None = None) -> None:
    """Refuse bf16/fp16 on a CPU that only emulates it (``what`` names the option, e.g. ``--amp``)."""
    if device.type != "cpu" or precision not in ("bf16", "fp16"):
        return
    cpu = features or cpu_features()
    native = cpu.native_bf16 if precision == "bf16" else cpu.native_fp16
    if native:
        return
    needs = "avx512_bf16 or amx_bf16" if precision == "bf16" else "avx512_fp16 or amx_fp16"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    raise UsageError(
        f"{what}: this CPU ({cpu.model}) has no native {precision} ({needs} missing from its flags), so it "
        f"would be emulated: {emulation_probe(dtype)}; use fp32 (or --precision int8 for inference)"
    )


def card_psnr(model_path: Path, precision: str) -> float | None:
    """The PSNR (dB) of ``precision`` against fp32 recorded in the model's card (metrics.json beside it)."""
    folder = model_path if model_path.is_dir() else model_path.parent
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
        return float(metrics[CARD_KEY][precision]["psnr_db"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def resolve(
    requested: str, device: torch.device, model_path: Path | None = None, features: CpuFeatures | None = None
) -> tuple[Precision, str]:
    """The precision to run and why: ``auto`` becomes bf16 or fp32; an explicit half precision is
    checked against the hardware (``UsageError`` when only emulated)."""
    if requested not in PRECISION_CHOICES:
        raise UsageError(f"--precision {requested!r}: use {', '.join(PRECISION_CHOICES)}")
    if requested != "auto":
        check_half_supported(requested, device, f"--precision {requested}", features)
        return requested, "requested"  # type: ignore[return-value]
    if device.type == "cpu" and not (features or cpu_features()).native_bf16:
        return "fp32", "auto: this CPU has no native bf16"
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp32", "auto: this GPU has no bf16"
    if device.type not in ("cpu", "cuda"):
        return "fp32", f"auto: fp32 on {device.type}"
    psnr = None if model_path is None else card_psnr(model_path, "bf16")
    if psnr is None:
        return "fp32", "auto: the model card records no bf16 fidelity"
    if psnr < AUTO_MIN_PSNR_DB:
        return "fp32", f"auto: bf16 measured {psnr:.1f} dB vs fp32 on the examples (< {AUTO_MIN_PSNR_DB:.0f} dB)"
    return "bf16", f"auto: bf16 measured {psnr:.1f} dB vs fp32 on the examples"


def autocast(device: torch.device, precision: str) -> AbstractContextManager[object]:
    """Autocast for bf16/fp16 (convolutions and matmuls in half, norms kept in fp32); else nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


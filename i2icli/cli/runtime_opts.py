"""``translate``'s options that choose how inference runs: precision, tiling, compile, ONNX runtime
(parsed and checked here without torch; the library applies them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from i2icli.cli.common import err
from i2icli.errors import UsageError

if TYPE_CHECKING:
    from i2icli.inference import LoadedModel
    from i2icli.tiling import TileOptions

PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help="fp32 (default), bf16, fp16, auto (bf16 only on CPUs with native bf16 and models whose card records "
        ">= 35 dB against fp32), or int8 (static quantisation, needs i2icli[int8]; compiles per image size).",
    ),
]
TileOpt = Annotated[
    int, typer.Option("--tile", help="Translate in tiles of N x N pixels (0: only images over --memory-budget).")
]
OverlapOpt = Annotated[
    int | None,
    typer.Option("--overlap", help="Tile overlap in pixels, blended smoothly (default: the network's measured reach, at most a quarter tile)."),
]
MemoryBudgetOpt = Annotated[
    int | None, typer.Option("--memory-budget", help="MB of activations per forward pass; larger images run in tiles (default 1024).")
]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the network (slow first call per image size).")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help="torch (default) or onnx (onnxruntime; needs i2icli[onnx]).")]


@dataclass(frozen=True)
class RuntimeOptions:
    """The parsed runtime options of ``translate``; ``load`` applies them to a model."""

    precision: str = "fp32"
    tile: int = 0
    overlap: int | None = None
    memory_budget_mb: int | None = None
    compile: bool = False
    runtime: str = "torch"

    @property
    def tiling(self) -> TileOptions:
        from i2icli.tiling import DEFAULT_MEMORY_BUDGET, TileOptions

        budget = DEFAULT_MEMORY_BUDGET if self.memory_budget_mb is None else self.memory_budget_mb << 20
        return TileOptions(self.tile, self.overlap, budget)

    def load(self, ref: str, device: str, quiet: bool, offline: bool = False) -> LoadedModel:
        """Load ``ref`` (fetched once) to run as asked, refusing tiles it cannot run in; says on
        stderr what ``auto`` chose and why."""
        from i2icli.api import load_model
        from i2icli.inference import check_tiling

        precision = self.precision if self.runtime == "torch" else "fp32"
        loaded = load_model(
            ref, device=device, offline=offline, precision=precision, compile=self.compile, engine=self.runtime,  # type: ignore[arg-type]
        )
        if precision == "auto" and not quiet:
            err(f"precision {loaded.precision_reason}")
        check_tiling(loaded, self.tiling)
        return loaded


def runtime_options(
    precision: str, tile: int, overlap: int | None, memory_budget: int | None, compile: bool, runtime: str
) -> RuntimeOptions:
    """Validate the options (usage errors before any work)."""
    choices = ("fp32", "bf16", "fp16", "auto", "int8")
    if precision not in choices:
        raise UsageError(f"--precision {precision!r}: use {', '.join(choices)}")
    if tile < 0 or (tile and tile < 16):
        raise UsageError(f"--tile {tile}: use 0 (automatic) or at least 16 pixels")
    if overlap is not None and (overlap < 0 or (tile and overlap * 2 >= tile)):
        raise UsageError(f"--overlap {overlap}: must be >= 0 and less than half the tile")
    if memory_budget is not None and memory_budget < 16:
        raise UsageError(f"--memory-budget {memory_budget}: must be at least 16 (MB)")
    if runtime not in ("torch", "onnx"):
        raise UsageError(f"--runtime {runtime!r}: use torch or onnx")
    if runtime == "onnx" and (compile or precision not in ("fp32", "auto")):
        raise UsageError("--runtime onnx runs fp32: drop --compile and --precision")
    if compile and precision == "int8":
        raise UsageError("--precision int8 is always compiled: drop --compile")
    return RuntimeOptions(precision, tile, overlap, memory_budget, compile, runtime)

"""Options that choose how fast inference runs: precision, tiling, compile, ONNX (no torch import here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable

import typer

from i2icli.cli.common import err
from i2icli.errors import I2IError, UsageError

if TYPE_CHECKING:
    from torch import Tensor

    from i2icli.inference import LoadedModel
    from i2icli.tiling import TileOptions

CALIBRATION_IMAGES = 8  # inputs that calibrate --precision int8

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
class SpeedOptions:
    """The parsed speed options; ``load`` applies them to a model."""

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
        """Load ``ref`` to run as asked; says on stderr what ``auto`` chose and why."""
        from i2icli.api import load_model
        from i2icli.device import pick_device
        from i2icli.precision import resolve
        from i2icli.registry import fetch, resolve as resolve_ref

        if self.precision == "auto" and self.runtime == "torch" and not quiet:
            _, why = resolve("auto", pick_device(device), fetch(resolve_ref(ref), offline=offline))
            err(f"precision {why}")
        precision = self.precision if self.runtime == "torch" else "fp32"
        return load_model(
            ref, device=device, offline=offline, precision=precision, compile=self.compile, engine=self.runtime,  # type: ignore[arg-type]
        )

    def check(self, loaded: LoadedModel) -> None:
        if self.tile and not loaded.tileable:
            raise UsageError(f"--tile: a {loaded.config.method} model uses global geometry (landmarks) and cannot be tiled")

    def calibrate(
        self, loaded: LoadedModel, direction: str, files: list[tuple[Path, Path]], style_of: Callable[[Path], Tensor] | None,
        scale: Any, max_pixels: int | None,
    ) -> None:  # fmt: skip
        """int8: calibrate on the first readable inputs, prepared as the pipeline prepares them
        (``scale.resize``); the pipeline decodes them once more."""
        if loaded.runtime.precision != "int8":
            return
        from i2icli.imageio import read_image, to_tensor

        images: list[Any] = []
        for path, rel in files:
            try:
                img = read_image(path, channels=loaded.channels(direction)[0], max_pixels=max_pixels)  # type: ignore[arg-type]
            except I2IError:
                continue
            images.append((to_tensor(scale.resize(img.image)[0]), None if style_of is None else style_of(rel)))
            if len(images) == CALIBRATION_IMAGES:
                break
        loaded.calibrate(direction, images)  # type: ignore[arg-type]


def speed_options(
    precision: str, tile: int, overlap: int | None, memory_budget: int | None, compile: bool, runtime: str
) -> SpeedOptions:
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
    return SpeedOptions(precision, tile, overlap, memory_budget, compile, runtime)

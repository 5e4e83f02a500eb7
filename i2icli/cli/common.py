"""Shared option aliases and error handling for the CLI modules (no torch import here)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator

import typer

from i2icli.errors import I2IError

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Registry name, hf-hub:org/name[@rev], or a .safetensors file / model folder."),
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Use only cached models (as HF_HUB_OFFLINE=1); never download.")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (GPU when there is one), cpu, cuda or mps.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (results are deterministic on CPU).")]
OutDirOpt = Annotated[Path, typer.Option("--output", "-o", help="Output folder.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
InputsArg = Annotated[list[str], typer.Argument(help="Image files, folders, globs, or - for stdin.")]


def err(message: str) -> None:
    """One line on stderr."""
    typer.echo(message, err=True)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn ``I2IError`` into ``error: <message>`` on stderr and its exit code; no traceback."""
    try:
        yield
    except I2IError as e:
        err(f"error: {e}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err("interrupted")
        raise typer.Exit(130) from None

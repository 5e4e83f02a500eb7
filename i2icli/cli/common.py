"""Shared option aliases and error handling for the CLI modules (no torch import here)."""

from __future__ import annotations

import os
import sys
import traceback
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
MaxPixelsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        help="Refuse images with more pixels than this (decompression-bomb guard; default Pillow's 89478485, 0: no limit).",
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite/--skip-existing", help="Replace outputs that exist (default: leave them and say so)."),
]

# ``--debug`` (or I2I_DEBUG=1) shows tracebacks; set once by the root callback before any command runs.
_debug = [os.environ.get("I2I_DEBUG", "") not in ("", "0")]


def set_debug(on: bool) -> None:
    if on:
        _debug[0] = True


def debug_enabled() -> bool:
    return _debug[0]


def err(message: str) -> None:
    """One line on stderr."""
    typer.echo(message, err=True)


def debug_trace(e: BaseException) -> None:
    """With ``--debug``, the traceback of an error that is otherwise reported as one line."""
    if debug_enabled():
        traceback.print_exception(e)


def check_max_pixels(max_pixels: int | None) -> None:
    """``--max-pixels`` must be >= 0 (0 disables the limit); a usage error otherwise."""
    from i2icli.errors import UsageError

    if max_pixels is not None and max_pixels < 0:
        raise UsageError(f"--max-pixels {max_pixels}: must be at least 0 (0: no limit)")


def report_skipped(count: int, where: object) -> None:
    """State that existing outputs were kept (the default) and how to replace them."""
    if count:
        noun = "output" if count == 1 else "outputs"
        err(f"kept {count} existing {noun} in {where} (pass --overwrite to replace them)")


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn ``I2IError`` into ``error: <message>`` on stderr and its exit code; no traceback
    unless ``--debug``. Ctrl-C exits 130 with one line."""
    try:
        yield
    except I2IError as e:
        if debug_enabled():
            traceback.print_exc()
        err(f"error: {e}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        if debug_enabled():
            traceback.print_exc()
        err("interrupted (files already written are complete)")
        raise typer.Exit(130) from None


def unexpected_error(e: BaseException) -> str:
    """The one line shown for an exception no command turned into an ``I2IError`` (a bug or an
    environment failure such as a full disk), without a traceback."""
    if isinstance(e, MemoryError):
        text = "out of memory"
    elif isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename is not None else ""
        text = f"{where}{e.strerror}"
    else:
        first = (str(e).strip().splitlines() or [""])[0]
        text = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return f"error: {text} (unexpected; rerun with --debug for the traceback)"


def run_app(app: typer.Typer) -> None:
    """Run ``app``; any exception that escapes a command becomes one line and exit code 1."""
    try:
        app()
    except Exception as e:
        if debug_enabled():
            raise
        print(unexpected_error(e), file=sys.stderr)
        sys.exit(1)

"""Shared option aliases, error handling and output reporting for the CLI modules (no torch import here)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer
from typer.core import TyperCommand, TyperGroup

from i2icli.errors import I2IError, UsageError

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
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display and no summary line.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per output (or failed input) on stdout.")]
BatchOpt = Annotated[
    int,
    typer.Option(
        "--batch-size", "-b",
        help="Images per forward pass (outputs do not depend on it). Defaults differ by command: translate 1 "
        "(inputs of different sizes cannot share a pass), sample/exemplar/interpolate 8 (one input's styles share "
        "a pass), eval 64 (test images share one size).",
    ),
]
SizeOpt = Annotated[
    str,
    typer.Option(
        "--size",
        help="auto: resize inputs to the scale the model was trained at (its recorded preprocessing); "
        "native: as they are; N: short side to N pixels.",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="CPU threads for torch (default: OMP_NUM_THREADS, else the CPUs available minus the current load).",
        show_default=False,
    ),
]
InputsArg = Annotated[list[str], typer.Argument(help="Image files, folders, globs, or - for stdin.")]
DirectionOpt = Annotated[str, typer.Option("--direction", "-d", help="a2b or b2a (also AtoB, BtoA).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Target domain by name (overrides --direction).")]
MaxPixelsOpt = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        help="Refuse images with more pixels than this (decompression-bomb guard; 0: no limit) (default: 89478485, Pillow's).",
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


class Group(TyperGroup):
    """A command group whose help reads like ``git``'s: flags without a value type (``--gif``, not
    ``--gif <bool>``), values named by what they hold (``-o DIR``, ``--set FIELD=VALUE``, not
    ``<str>``), every stated default as ``[default: ...]``, and help text printed as written
    (``pip install 'i2icli[int8]'`` keeps its brackets: it is not rich markup)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _help_params(super().get_params(ctx))

    def get_command(self, ctx: Any, name: str) -> Any:
        command = super().get_command(ctx, name)
        if command is not None and command not in _DONE:
            _DONE.add(command)
            _help_params(command.get_params(ctx))  # the parameter objects are the command's own
            if command.help:
                command.help = _literal(command.help)
        return command


class DomainsCommand(TyperCommand):
    """A command with ``--domains A,B``: the older ``--domains A B`` is joined into one value
    before parsing, so the option never takes a following flag as a name."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from i2icli.cli.validate import join_domains

        try:
            joined = join_domains(list(args))
        except UsageError as e:  # before the command runs: the same one line its own checks give
            err(f"error: {e}")
            raise typer.Exit(e.exit_code) from None
        return super().parse_args(ctx, joined)


# Parameters and commands whose help was already rewritten (once each; weak: Typer builds new ones per run).
_DONE: weakref.WeakSet[Any] = weakref.WeakSet()

# Metavars by parameter name (what the value is), then by type; Typer's ``<str>`` says nothing.
_METAVARS = {
    "inputs": "INPUT", "output": "OUT", "model": "MODEL", "model_ref": "MODEL", "direction": "a2b|b2a",
    "to": "DOMAIN", "device": "DEVICE", "size": "auto|native|N", "fmt": "FORMAT", "suffix": "TEXT",
    "style": "FILE", "style_a": "FILE", "style_b": "FILE", "config": "FILE", "overrides": "FIELD=VALUE",
    "dataroot": "DIR", "domain_a": "DIR", "domain_b": "DIR", "domain_names": "A,B", "run_dir": "DIR",
    "resume": "DIR", "run": "DIR", "method": "METHOD", "preset": "NAME", "init_from": "MODEL", "data": "DIR",
    "real": "DIR", "fake": "DIR", "metrics": "NAME,...", "inception": "FILE", "png": "FILE", "mode": "lerp|slerp",
    "precision": "PRECISION", "runtime": "torch|onnx", "schedule": "replan|keep", "amp_dtype": "bf16|fp16",
    "lr": "RATE", "domain": "a|b", "repo": "ORG/NAME", "revision": "REV", "name": "NAME", "recipe": "RECIPE",
}  # fmt: skip
_TYPE_METAVARS = {"int": "N", "float": "X", "Path": "PATH", "str": "TEXT", "bool": "BOOL"}


def _help_params(params: list[Any]) -> list[Any]:
    import re

    for param in params:
        if param in _DONE:
            continue
        _DONE.add(param)
        if getattr(param, "is_flag", False):
            if param.metavar is None:
                param.metavar = ""
        else:
            name = param.metavar or _METAVARS.get(param.name or "")
            if name is None:
                bare = param.bare_type() if hasattr(param, "bare_type") else ""
                name = _TYPE_METAVARS.get(bare.removeprefix("list[").removesuffix("]"), "VALUE")
                if param.nargs not in (1, -1):
                    name = " ".join([name] * param.nargs)
            if param.param_type_name == "argument":
                name = name.removesuffix("...")
                shown = name + ("..." if param.nargs != 1 else "")
                # Typer would add "<list[str]>" beside the name and braces around it in the usage line.
                param.display_type_rich = lambda ctx: None
                param._usage_display_name = lambda shown=shown: shown
            elif getattr(param, "multiple", False):
                name = name if name.endswith("...") else name + "..."
            param.metavar = name
        help_text = getattr(param, "help", None)
        if help_text:
            # A default stated in prose ("(default: X)") is shown like every other one: [default: X].
            match = re.search(r" ?\(default:? ([^()]*(?:\([^()]*\)[^()]*)*)\)", help_text)
            if match and param.param_type_name == "option":
                help_text = help_text[: match.start()] + help_text[match.end() :]
                help_text = f"{help_text.rstrip()} [default: {match.group(1)}]"
                param.show_default = False
            param.help = _literal(help_text)
    return params


def _literal(text: str) -> str:
    """Help text shown as written: rich would read ``[int8]`` or ``[@rev]`` as markup and drop it."""
    from rich.markup import escape

    return escape(text)


def check_output_folder(folder: Path) -> None:
    """``-o`` of a command that writes a folder: an existing file there is a usage error."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: is an existing file; this command writes a folder of images there")


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


def parse_direction(text: str, flag: str = "--direction") -> str:
    """``a2b``/``b2a`` in any case, also written ``AtoB``/``BtoA``."""
    normal = text.strip().lower().replace("to", "2")
    if normal not in ("a2b", "b2a"):
        raise UsageError(f"{flag} {text!r}: use a2b or b2a (also AtoB, BtoA)")
    return normal


def parse_size(text: str) -> int | str:
    """``--size``: ``auto``, ``native`` or a positive number of pixels."""
    if text in ("auto", "native"):
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--size {text}: use auto, native or a number of pixels (at least 1)")


class Report:
    """What a command says about its work: ``--json`` lines on stdout, one ``error:`` line per failed
    input on stderr, a progress bar on a terminal, and a one-line summary unless ``--quiet``/``--json``."""

    def __init__(self, total: int, *, as_json: bool, quiet: bool, verb: str, bar: bool = True) -> None:
        self.as_json, self.quiet, self.verb, self.total = as_json, quiet, verb, total
        self.written = self.skipped = 0
        self.failed_inputs: set[str] = set()  # inputs (or references) that could not be used
        self.failed_outputs = 0  # outputs of usable inputs that could not be written
        self.start = time.perf_counter()
        self.notes: list[str] = []  # added to the summary line
        self.notes_given: set[str] = set()  # one-time warnings already printed
        self.bar = None
        if bar and not (quiet or as_json) and stderr_is_terminal():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(stderr=True, force_terminal=True), transient=True,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(verb, total=total)

    def wrote(self, source: str, dest: Path | None, size: tuple[int, int], seconds: float, **extra: Any) -> None:
        """One output written (``dest`` None: stdout)."""
        self.written += 1
        if self.as_json:
            record = {"input": source, "output": str(dest) if dest is not None else "-", "status": "written", **extra,
                      "size": list(size), "seconds": round(seconds, 4)}  # fmt: skip
            typer.echo(json.dumps(record))

    def kept(self, source: str, dest: Path, **extra: Any) -> None:
        """An output that exists and was kept (no ``--overwrite``): counted, and a JSON line with
        ``--json`` so a pipeline sees every input."""
        self.skipped += 1
        if self.as_json:
            typer.echo(json.dumps({"input": source, "output": str(dest), "status": "kept", **extra}))

    @property
    def failures(self) -> int:
        """Inputs that failed plus outputs that could not be written (non-zero: exit code 1)."""
        return len(self.failed_inputs) + self.failed_outputs

    def failed(self, source: str, message: str, error: BaseException | None = None, *, output: bool = False) -> None:
        """An input (or reference) that could not be used, or with ``output`` one output that could
        not be written: an error line, and a JSON line with ``--json``."""
        if output:
            self.failed_outputs += 1
        else:
            self.failed_inputs.add(source)
        if error is not None:
            debug_trace(error)
        self.line(f"error: {message}")
        if self.as_json:
            typer.echo(json.dumps({"input": source, "status": "failed", "error": message}))

    def line(self, text: str) -> None:
        """A line on stderr that does not break the progress bar."""
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            err(text)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def close(self, where: str) -> None:
        """Stop the bar; the outputs kept and the summary line (files written, failed inputs, seconds,
        notes) unless quiet."""
        if self.bar is not None:
            self.bar.stop()
        if not self.quiet:
            report_skipped(self.skipped, where)
        if self.quiet or self.as_json:
            return
        seconds = time.perf_counter() - self.start
        failed = f", {len(self.failed_inputs)} of {self.total} inputs failed" if self.failed_inputs else ""
        if self.failed_outputs:
            failed += f", {self.failed_outputs} output(s) could not be written"
        notes = "".join(f"; {n}" for n in self.notes)
        err(f"{self.verb}: {self.written} file(s) written{failed} in {seconds:.1f} s{notes}")


@contextmanager
def stage_bar(enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr (when it is a terminal) fed ``(done, total, description)`` by a
    library function's ``on_stage``; yields that callback (a no-op when piped or disabled)."""
    if not (enabled and stderr_is_terminal()):
        yield lambda done, total, description: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(), "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True, force_terminal=True), transient=True,
    )  # fmt: skip
    task = bar.add_task("starting", total=None)

    def update(done: int, total: int, description: str) -> None:
        bar.update(task, completed=done, total=total, description=description)

    with bar:
        yield update


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()

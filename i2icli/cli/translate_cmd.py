"""``i2i translate``: translate files, folders, globs or stdin at native resolution."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Literal

import typer

from i2icli.cli.common import DeviceOpt, InputsArg, ModelOpt, OfflineOpt, QuietOpt, SeedOpt, err, handle_errors
from i2icli.cli.speed import (
    CompileOpt, MemoryBudgetOpt, OverlapOpt, PrecisionOpt, RuntimeOpt, SpeedOptions, TileOpt, speed_options,
)  # fmt: skip
from i2icli.errors import I2IError, UsageError

if TYPE_CHECKING:
    from torch import Tensor

Format = Literal["png", "jpg", "webp"]


def translate(
    inputs: InputsArg,
    output: Annotated[str, typer.Option("--output", "-o", help="Output folder, or - for PNG on stdout.")] = "translated",
    model: ModelOpt = None,
    direction: Annotated[str, typer.Option("--direction", "-d", help="a2b or b2a.")] = "a2b",
    to: Annotated[str | None, typer.Option("--to", help="Target domain by name (overrides --direction).")] = None,
    device: DeviceOpt = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Images per forward pass.")] = 1,
    seed: SeedOpt = 0,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    suffix: Annotated[str, typer.Option("--suffix", help="Appended to each output file's stem.")] = "",
    fmt: Annotated[str, typer.Option("--format", help="png, jpg or webp.")] = "png",
    size: Annotated[int | None, typer.Option("--size", help="Resize the short side to N first.")] = None,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", help="Leave outputs that exist (resume a batch).")] = False,
    quiet: QuietOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per result on stdout.")] = False,
    style: Annotated[
        Path | None,
        typer.Option("--style", help="Style models: use the style of this target-domain image (default: the model's own, or a random style per input from --seed and its name)."),
    ] = None,
    save_landmarks: Annotated[
        bool, typer.Option("--save-landmarks", help="Landmark models: also write <name>_landmarks.png and <name>_heatmaps.png of each input.")
    ] = False,
    offline: OfflineOpt = False,
    precision: PrecisionOpt = "fp32",
    tile: TileOpt = 0,
    overlap: OverlapOpt = None,
    memory_budget: MemoryBudgetOpt = None,
    compile: CompileOpt = False,
    runtime: RuntimeOpt = "torch",
) -> None:
    """Translate images with a model (the embedded default when --model is omitted)."""
    with handle_errors():
        speed = speed_options(precision, tile, overlap, memory_budget, compile, runtime)
        failures = _translate(
            inputs, output, model, direction, to, device, batch_size, seed, recursive, suffix, fmt, size,
            skip_existing, quiet, as_json, style, save_landmarks, offline, speed=speed,
        )  # fmt: skip
    if failures:
        raise typer.Exit(1)


def _check_usage(output: str, batch_size: int, fmt: str, size: int | None, as_json: bool) -> None:
    if fmt not in ("png", "jpg", "webp"):
        raise UsageError(f"--format {fmt!r}: use png, jpg or webp")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if size is not None and size < 1:
        raise UsageError(f"--size {size}: must be at least 1")
    if output == "-" and as_json:
        raise UsageError("--json cannot be combined with -o - (stdout carries the image)")
    if output == "-" and fmt != "png":
        raise UsageError("-o - writes PNG; drop --format")


def _translate(
    inputs: list[str], output: str, model_ref: str | None, direction: str, to: str | None, device: str,
    batch_size: int, seed: int, recursive: bool, suffix: str, fmt: str, size: int | None,
    skip_existing: bool, quiet: bool, as_json: bool, style_ref: Path | None, save_landmarks: bool = False,
    offline: bool = False, speed: SpeedOptions = SpeedOptions(),
) -> int:  # fmt: skip
    """Returns the number of inputs that failed."""
    _check_usage(output, batch_size, fmt, size, as_json)
    from i2icli.imageio import list_images

    use_stdin = inputs == ["-"]
    if "-" in inputs and not use_stdin:
        raise UsageError("- (stdin) cannot be mixed with other inputs")
    files = [] if use_stdin else list_images(inputs, recursive)
    if not use_stdin and not files:
        raise UsageError(f"no images found in {' '.join(inputs)}")
    if output == "-" and not use_stdin and len(files) != 1:
        raise UsageError(f"-o - writes one PNG to stdout, but {len(files)} inputs were given")

    import torch

    from i2icli.api import load_model
    from i2icli.registry import DEFAULT_TRANSLATE_MODEL

    torch.manual_seed(seed)
    loaded = speed.load(model_ref or DEFAULT_TRANSLATE_MODEL, device, quiet, offline)
    chosen = loaded.check_direction(loaded.direction_to(to) if to else direction)
    speed.check(loaded)
    style_of = _style_source(loaded, chosen, style_ref, seed)
    if save_landmarks:
        from i2icli.landmarks import has_landmarks

        if not has_landmarks(loaded):
            raise UsageError(f"--save-landmarks: a {loaded.config.method} model has no landmarks")
        if output == "-":
            raise UsageError("--save-landmarks writes files beside the outputs; it cannot be combined with -o -")

    jobs = [(Path("-"), Path("stdin"))] if use_stdin else files
    out_dir = None if output == "-" else Path(output)
    if out_dir is not None:
        seen: dict[Path, Path] = {}
        for src, rel in jobs:
            dest = _output_path(out_dir, rel, suffix, fmt)
            if dest in seen:
                raise UsageError(f"{seen[dest]} and {src} would both be written to {dest}; translate them separately")
            seen[dest] = src
    speed.calibrate(loaded, chosen, [job for job in jobs if job[0] != Path("-")], style_of, size)
    return _run_jobs(
        loaded, chosen, jobs, out_dir, batch_size, suffix, fmt, size, skip_existing, quiet, as_json, style_of,
        save_landmarks, tiling=speed.tiling,
    )  # fmt: skip


def _style_source(loaded, direction, style_ref: Path | None, seed: int) -> Callable[[Path], Tensor] | None:  # type: ignore[no-untyped-def]
    """For style-based models: the style each input (by relative name) is translated with."""
    if not loaded.has_styles:
        if style_ref is not None:
            raise UsageError(f"--style: a {loaded.config.method} model cannot take a style (it has no style codes)")
        return None
    from i2icli.multimodal import encode_styles, named_style

    if style_ref is None:
        if not loaded.needs_style:
            return None  # the model supplies its own style (TransGaGa's appearance transformer)
        return lambda rel: named_style(loaded, rel.as_posix(), seed)
    from i2icli.imageio import read_image, to_tensor

    _, c_out = loaded.channels(direction)
    shared = encode_styles(loaded, [to_tensor(read_image(style_ref, channels=c_out).image)], direction)[0]
    return lambda rel: shared


def _output_path(out_dir: Path, rel: Path, suffix: str, fmt: str) -> Path:
    return out_dir / rel.parent / f"{rel.stem}{suffix}.{fmt}"


def _run_jobs(
    loaded, direction, jobs, out_dir, batch_size, suffix, fmt, size, skip_existing, quiet, as_json, style_of,
    save_landmarks=False, tiling=None,
) -> int:  # type: ignore[no-untyped-def]
    """Translate ``jobs`` through the streaming pipeline; a bad file costs only its own output."""
    from i2icli.pipeline import Done, Failed, Job, translate_files
    from i2icli.tiling import TileOptions

    after_write = None
    if save_landmarks:
        from i2icli.landmarks import save_landmarks as write_landmarks
        from i2icli.methods.base import split_direction

        def after_write(job, item):  # type: ignore[no-untyped-def]
            write_landmarks(loaded, item.image, split_direction(direction)[0], job.dest.with_suffix(""))

    def job(src: Path, rel: Path) -> Job:
        if src == Path("-"):
            return Job(src, rel, sys.stdout.buffer if out_dir is None else _output_path(out_dir, rel, suffix, fmt), sys.stdin.buffer.read())
        return Job(src, rel, sys.stdout.buffer if out_dir is None else _output_path(out_dir, rel, suffix, fmt))

    failures = 0
    progress = _progress(len(jobs), quiet or as_json or out_dir is None)
    events = translate_files(
        loaded, direction, (job(src, rel) for src, rel in jobs), batch_size=batch_size, tiling=tiling or TileOptions(),
        fmt=fmt, size=size, skip_existing=skip_existing, style_of=style_of, after_write=after_write,
    )  # fmt: skip
    for event in events:
        if isinstance(event, Failed):
            failures += 1
            progress.print(f"error: {event.error}")
        elif isinstance(event, Done) and as_json:
            output = event.job.dest if isinstance(event.job.dest, Path) else None
            record = {"input": str(event.job.src), "output": str(output), "size": list(event.value), "seconds": round(event.seconds, 4)}
            typer.echo(json.dumps(record))
        progress.advance()
    progress.close()
    if failures and not quiet:
        err(f"{failures} of {len(jobs)} inputs failed")
    return failures


class _Progress:
    """A rich progress bar on stderr when it is a terminal; otherwise plain error lines only."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task("translating", total=total)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def print(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            err(line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _progress(total: int, disabled: bool) -> _Progress:
    return _Progress(total, enabled=not disabled and sys.stderr.isatty())

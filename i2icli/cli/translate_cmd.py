"""``i2i translate``: translate files, folders, globs or stdin at native resolution."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable

import typer

from i2icli.cli import validate
from i2icli.cli.common import (
    BatchOpt,
    DeviceOpt,
    DirectionOpt,
    InputsArg,
    JsonOpt,
    MaxPixelsOpt,
    ModelOpt,
    OfflineOpt,
    OverwriteOpt,
    QuietOpt,
    Report,
    SeedOpt,
    SizeOpt,
    ThreadsOpt,
    ToOpt,
    check_max_pixels,
    handle_errors,
    parse_direction,
    parse_size,
)  # fmt: skip
from i2icli.cli.runtime_opts import (
    CompileOpt,
    MemoryBudgetOpt,
    OverlapOpt,
    PrecisionOpt,
    RuntimeOpt,
    RuntimeOptions,
    TileOpt,
    runtime_options,
)  # fmt: skip
from i2icli.errors import UsageError

if TYPE_CHECKING:
    from torch import Tensor

def translate(
    inputs: InputsArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Output folder; a file name (.png/.jpg/.webp) for one input; or - for PNG on stdout.")
    ] = "translated",
    model: ModelOpt = None,
    direction: DirectionOpt = "a2b",
    to: ToOpt = None,
    device: DeviceOpt = "auto",
    batch_size: BatchOpt = 1,
    seed: SeedOpt = 0,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    suffix: Annotated[str, typer.Option("--suffix", help="Appended to each output file's stem.")] = "",
    fmt: Annotated[
        str | None, typer.Option("--format", help="png, jpg or webp (default: from -o FILE's name, else png).", show_default=False)
    ] = None,
    size: SizeOpt = "auto",
    restore_size: Annotated[
        bool, typer.Option("--restore-size", help="Resize each output back to its input's size (default: the size the model made).")
    ] = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    style: Annotated[
        Path | None,
        typer.Option("--style", help="Style models: use the style of this target-domain image (default: the model's own, or a random style per input from --seed and its name).", readable=False),
    ] = None,
    save_landmarks: Annotated[
        bool, typer.Option("--save-landmarks", help="Landmark models: also write <name>_landmarks.png and <name>_heatmaps.png of each input.")
    ] = False,
    max_pixels: MaxPixelsOpt = None,
    all_frames: Annotated[
        bool, typer.Option("--all-frames", help="Animated GIF/WebP/PNG, multi-page TIFF: translate every frame to <name>_f000 ... (default: the first frame only).")
    ] = False,
    threads: ThreadsOpt = None,
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
        failures = _translate(
            TranslateOptions(
                inputs=inputs, output=output, model=model, direction=direction, to=to, device=device,
                batch_size=batch_size, seed=seed, recursive=recursive, suffix=suffix, fmt=fmt, size=size,
                skip_existing=not overwrite, quiet=quiet, as_json=as_json, style=style, save_landmarks=save_landmarks,
                threads=threads, offline=offline, restore_size=restore_size, max_pixels=max_pixels,
                all_frames=all_frames, runtime=runtime_options(precision, tile, overlap, memory_budget, compile, runtime),
            )
        )  # fmt: skip
    if failures:
        raise typer.Exit(1)


@dataclass(frozen=True)
class TranslateOptions:
    """Every option of ``i2i translate``, as typed (``_translate`` checks them before any work)."""

    inputs: list[str]
    output: str = "translated"
    model: str | None = None
    direction: str = "a2b"
    to: str | None = None
    device: str = "auto"
    batch_size: int = 1
    seed: int = 0
    recursive: bool = False
    suffix: str = ""
    fmt: str | None = None
    size: str = "auto"
    skip_existing: bool = True
    quiet: bool = False
    as_json: bool = False
    style: Path | None = None
    save_landmarks: bool = False
    threads: int | None = None
    offline: bool = False
    restore_size: bool = False
    max_pixels: int | None = None
    all_frames: bool = False
    runtime: RuntimeOptions = RuntimeOptions()


def _check_usage(output: str, batch_size: int, fmt: str | None, as_json: bool, style: Path | None, suffix: str) -> None:
    from i2icli.listing import check_suffix

    check_suffix(suffix)
    if fmt not in (None, "png", "jpg", "webp"):
        raise UsageError(f"--format {fmt!r}: use png, jpg or webp")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if style is not None and not os.path.lexists(style):
        raise UsageError(f"--style {style}: no such file")
    if output == "-" and as_json:
        raise UsageError("--json cannot be combined with -o - (stdout carries the image)")
    if output == "-" and fmt not in (None, "png"):
        raise UsageError("-o - writes PNG; drop --format")
    if output == "-" and sys.stdout.isatty():
        raise UsageError("-o -: stdout is a terminal, not a place for PNG bytes; redirect it (> out.png) or pass -o FILE.png")


# Output file names that mean "write this one file" (-o out.png), and the format each implies.
_FILE_SUFFIXES = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp"}


def _destinations(
    output: str, jobs: list[tuple[Path, Path]], suffix: str, fmt: str | None
) -> tuple[list[Path | None], str]:
    """Where each job's output goes (None: stdout) and the format: ``-o -``, ``-o FILE.png`` for one
    input, or a folder mirroring the inputs' relative paths."""
    if output == "-":
        return [None], "png"
    out = Path(output)
    as_file = out.suffix.lower() in _FILE_SUFFIXES and not out.is_dir()
    if out.exists() and not out.is_dir() and not (as_file and len(jobs) == 1):
        need = "a folder" if len(jobs) > 1 else "a folder or an image file name (.png, .jpg, .webp)"
        raise UsageError(f"-o {out}: is an existing file; with {len(jobs)} input(s) -o must be {need}")
    if as_file:
        if len(jobs) != 1:
            raise UsageError(f"-o {out} names one image file, but {len(jobs)} inputs were given; give a folder (-o DIR)")
        implied = _FILE_SUFFIXES[out.suffix.lower()]
        if fmt is not None and fmt != implied:
            raise UsageError(f"--format {fmt}: -o {out} names a {implied} file")
        if suffix:
            raise UsageError("--suffix names files in an output folder; -o FILE names the file itself")
        return [out], implied
    fmt = fmt or "png"
    seen: dict[Path, Path] = {}
    for src, rel in jobs:
        dest = _output_path(out, rel, suffix, fmt)
        if dest in seen:
            raise UsageError(f"{seen[dest]} and {src} would both be written to {dest}; translate them separately")
        seen[dest] = src
    return list(seen), fmt


def _translate(o: TranslateOptions) -> int:
    """Returns the number of inputs that failed."""
    _check_usage(o.output, o.batch_size, o.fmt, o.as_json, o.style, o.suffix)
    check_max_pixels(o.max_pixels)
    if o.all_frames and o.output == "-":
        raise UsageError("--all-frames writes one file per frame; it cannot be combined with -o -")
    size = parse_size(o.size)
    direction = parse_direction(o.direction)
    from i2icli.threads import choose_threads

    choose_threads(o.threads)  # a bad --threads is a usage error before any work
    from i2icli.listing import list_images

    use_stdin = o.inputs == ["-"]
    if "-" in o.inputs and not use_stdin:
        raise UsageError("- (stdin) cannot be mixed with other inputs")
    files = [] if use_stdin else list_images(o.inputs, o.recursive)
    if not use_stdin and not files:
        raise UsageError(f"no images found in {' '.join(o.inputs)}")
    if o.output == "-" and not use_stdin and len(files) != 1:
        raise UsageError(f"-o - writes one PNG to stdout, but {len(files)} inputs were given")
    jobs = [(Path("-"), Path("stdin"))] if use_stdin else files
    dests, fmt = _destinations(o.output, jobs, o.suffix, o.fmt)

    import torch

    from i2icli.inference import input_scale
    from i2icli.methods.info import Capability
    from i2icli.pipeline import calibrate
    from i2icli.registry import DEFAULT_TRANSLATE_MODEL
    from i2icli.threads import apply_threads

    apply_threads(o.threads)
    torch.manual_seed(o.seed)
    loaded = o.runtime.load(o.model or DEFAULT_TRANSLATE_MODEL, o.device, o.quiet, o.offline)
    chosen = loaded.choose_direction(direction, o.to)
    scale = input_scale(loaded, size)
    style_of = _style_source(loaded, chosen, o.style, o.seed, scale, o.max_pixels)
    if o.save_landmarks:
        if not loaded.has(Capability.LANDMARKS):
            raise UsageError(f"--save-landmarks: a {loaded.config.method} model has no landmarks")
        if o.output == "-":
            raise UsageError("--save-landmarks writes files beside the outputs; it cannot be combined with -o -")

    _check_writable(o.output, dests)
    on_disk = [job for job in jobs if job[0] != Path("-")]
    calibrate(loaded, chosen, on_disk, resize=scale.resize, style_of=style_of, max_pixels=o.max_pixels)
    report = Report(len(jobs), as_json=o.as_json, quiet=o.quiet, verb="translate", bar=o.output != "-")
    report.notes.append(scale.describe_outputs(o.restore_size))
    _run_jobs(
        loaded, chosen, jobs, dests, o.batch_size, fmt, scale, o.skip_existing, report, style_of, o.save_landmarks,
        o.restore_size, o.max_pixels, o.all_frames, o.runtime.tiling,
    )  # fmt: skip
    report.close(o.output if o.output != "-" else "stdout")
    return report.failures


def _check_writable(output: str, dests: list[Path | None]) -> None:
    """The output folder (of ``-o FILE``: its parent) can be written: checked once, before any input
    is read, so a bad location is one line, not one per input."""
    if output == "-":
        return
    out = Path(output)
    validate.writable_folder("-o", out.parent if dests == [out] and not out.is_dir() else out)


def _style_source(loaded, direction, style_ref: Path | None, seed: int, scale, max_pixels=None) -> Callable[[Path], Tensor] | None:  # type: ignore[no-untyped-def]
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
    reference = scale.resize(read_image(style_ref, channels=c_out, max_pixels=max_pixels).image)[0]  # at the inputs' scale
    shared = encode_styles(loaded, [to_tensor(reference)], direction)[0]
    return lambda rel: shared


def _output_path(out_dir: Path, rel: Path, suffix: str, fmt: str) -> Path:
    return out_dir / rel.parent / f"{rel.stem}{suffix}.{fmt}"


def _run_jobs(
    loaded, direction, jobs, dests, batch_size, fmt, scale, skip_existing, report, style_of, save_landmarks=False,
    restore_size=False, max_pixels=None, all_frames=False, tiling=None,
) -> None:  # type: ignore[no-untyped-def]
    """Translate ``jobs`` to ``dests`` (None: stdout) through the streaming pipeline (decoding and
    writing overlap the network; equal sizes share batches of ``batch_size``); a bad file costs
    only its own output (``report`` counts it). Existing outputs are kept when ``skip_existing``;
    with ``all_frames`` every frame of a multi-frame file is its own output."""
    from i2icli.pipeline import Done, Failed, Job, Skipped, translate_files
    from i2icli.tiling import TileOptions

    after_write = None
    if save_landmarks:
        from i2icli.landmarks import save_landmarks as write_landmarks
        from i2icli.methods.base import split_direction

        def after_write(job, frame):  # type: ignore[no-untyped-def]
            if isinstance(frame.dest, Path):
                write_landmarks(loaded, frame.image, split_direction(direction)[0], frame.dest.with_suffix(""))

    def job(src: Path, rel: Path, dest: Path | None) -> Job:
        if src == Path("-"):
            return Job(src, rel, sys.stdout.buffer if dest is None else dest, sys.stdin.buffer.read())
        return Job(src, rel, sys.stdout.buffer if dest is None else dest)

    events = translate_files(
        loaded, direction, (job(src, rel, dest) for (src, rel), dest in zip(jobs, dests)), batch_size=batch_size,
        tiling=tiling or TileOptions(), fmt=fmt, resize=scale.resize, restore_size=restore_size,
        skip_existing=skip_existing, all_frames=all_frames, max_pixels=max_pixels, style_of=style_of,
        after_write=after_write,
    )  # fmt: skip
    for event in events:  # in the order outputs are written (see i2icli.pipeline)
        source = str(event.job.src)
        if isinstance(event, Failed):
            report.failed(source, str(event.error), event.error)
        elif isinstance(event, Skipped):
            report.kept(source, event.job.dest)
        elif isinstance(event, Done):
            outcome = event.value
            report.skipped += outcome.skipped
            for size in outcome.input_sizes:
                if scale.far(size) and "far" not in report.notes_given:
                    report.notes_given.add("far")
                    report.line(scale.far_warning(source, size))
            if outcome.input_sizes and event.index < _DOMAIN_CHECKS:
                _warn_out_of_domain(loaded, direction, scale, report, event.job.src, outcome.input_sizes[0])
            for written in outcome.written:
                dest = written.dest if isinstance(written.dest, Path) else None
                if written.error is not None:
                    report.failed(source, str(written.error), written.error, output=True)
                else:
                    report.wrote(source, dest, written.size, event.seconds)
        report.advance()




_DOMAIN_CHECKS = 8  # the first inputs are compared with what the model was trained on (one warning at most)


def _warn_out_of_domain(loaded, direction, scale, report: Report, src: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """One line on stderr (not an error) when an input's size or channels are far from the model's
    training images, as its card records them."""
    from i2icli.inference import domain_warning

    if "domain" in report.notes_given:
        return
    warning = domain_warning(loaded, direction, scale, "stdin" if src == Path("-") else str(src), size, _mode_of(src))
    if warning is not None:
        report.notes_given.add("domain")
        report.line(warning)


def _mode_of(path: Path) -> str | None:
    """The Pillow mode of an image file, from its header only, for the common formats (None for
    stdin, another format or an unreadable file: then no channel warning)."""
    from PIL import Image

    if path == Path("-"):
        return None
    try:
        with Image.open(path, formats=["PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP"]) as image:
            return image.mode
    except (OSError, ValueError, Image.DecompressionBombError):
        return None

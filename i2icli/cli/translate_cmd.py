"""``i2i translate``: translate files, folders, globs or stdin at native resolution."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Literal

import typer

from i2icli.cli.common import (
    BatchOpt, DeviceOpt, InputsArg, JsonOpt, MaxPixelsOpt, ModelOpt, OfflineOpt, OverwriteOpt, QuietOpt, Report, SeedOpt,
    SizeOpt, ThreadsOpt, check_max_pixels, handle_errors, parse_direction, parse_size,
)  # fmt: skip
from i2icli.errors import I2IError, UsageError

if TYPE_CHECKING:
    from torch import Tensor

Format = Literal["png", "jpg", "webp"]


def translate(
    inputs: InputsArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="Output folder; a file name (.png/.jpg/.webp) for one input; or - for PNG on stdout.")
    ] = "translated",
    model: ModelOpt = None,
    direction: Annotated[str, typer.Option("--direction", "-d", help="a2b or b2a (also AtoB, BtoA).")] = "a2b",
    to: Annotated[str | None, typer.Option("--to", help="Target domain by name (overrides --direction).")] = None,
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
) -> None:
    """Translate images with a model (the embedded default when --model is omitted)."""
    with handle_errors():
        failures = _translate(
            inputs, output, model, direction, to, device, batch_size, seed, recursive, suffix, fmt, size,
            not overwrite, quiet, as_json, style, save_landmarks, threads, offline, restore_size, max_pixels, all_frames,
        )  # fmt: skip
    if failures:
        raise typer.Exit(1)


def _check_usage(output: str, batch_size: int, fmt: str | None, as_json: bool, style: Path | None, suffix: str) -> None:
    from i2icli.imageio import check_suffix

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


def _translate(
    inputs: list[str], output: str, model_ref: str | None, direction: str, to: str | None, device: str,
    batch_size: int, seed: int, recursive: bool, suffix: str, fmt: str | None, size_text: str,
    skip_existing: bool, quiet: bool, as_json: bool, style_ref: Path | None, save_landmarks: bool = False,
    threads: int | None = None,
    offline: bool = False,
    restore_size: bool = False,
    max_pixels: int | None = None,
    all_frames: bool = False,
) -> int:  # fmt: skip
    """Returns the number of inputs that failed."""
    _check_usage(output, batch_size, fmt, as_json, style_ref, suffix)
    check_max_pixels(max_pixels)
    if all_frames and output == "-":
        raise UsageError("--all-frames writes one file per frame; it cannot be combined with -o -")
    size = parse_size(size_text)
    direction = parse_direction(direction)
    from i2icli.threads import choose_threads

    choose_threads(threads)  # a bad --threads is a usage error before any work
    from i2icli.imageio import list_images

    use_stdin = inputs == ["-"]
    if "-" in inputs and not use_stdin:
        raise UsageError("- (stdin) cannot be mixed with other inputs")
    files = [] if use_stdin else list_images(inputs, recursive)
    if not use_stdin and not files:
        raise UsageError(f"no images found in {' '.join(inputs)}")
    if output == "-" and not use_stdin and len(files) != 1:
        raise UsageError(f"-o - writes one PNG to stdout, but {len(files)} inputs were given")
    jobs = [(Path("-"), Path("stdin"))] if use_stdin else files
    dests, fmt = _destinations(output, jobs, suffix, fmt)

    import torch

    from i2icli.api import load_model
    from i2icli.inference import input_scale
    from i2icli.registry import DEFAULT_TRANSLATE_MODEL
    from i2icli.threads import apply_threads

    apply_threads(threads)
    torch.manual_seed(seed)
    loaded = load_model(model_ref or DEFAULT_TRANSLATE_MODEL, device=device, offline=offline)
    chosen = loaded.choose_direction(direction, to)
    scale = input_scale(loaded, size)
    style_of = _style_source(loaded, chosen, style_ref, seed, scale, max_pixels)
    if save_landmarks:
        from i2icli.landmarks import has_landmarks

        if not has_landmarks(loaded):
            raise UsageError(f"--save-landmarks: a {loaded.config.method} model has no landmarks")
        if output == "-":
            raise UsageError("--save-landmarks writes files beside the outputs; it cannot be combined with -o -")

    report = Report(len(jobs), as_json=as_json, quiet=quiet, verb="translate", bar=output != "-")
    report.notes.append(scale.describe_outputs(restore_size))
    _run_jobs(
        loaded, chosen, jobs, dests, batch_size, fmt, scale, skip_existing, report, style_of, save_landmarks, restore_size,
        max_pixels, all_frames,
    )  # fmt: skip
    report.close(output if output != "-" else "stdout")
    return report.failures


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


def _frame_path(dest: Path, k: int, count: int) -> Path:
    """``name.png`` -> ``name_f007.png``: frame ``k`` of ``count`` (zero-padded so names sort)."""
    return dest.with_name(f"{dest.stem}_f{k:0{max(3, len(str(count - 1)))}d}{dest.suffix}")


def _run_jobs(
    loaded, direction, jobs, dests, batch_size, fmt, scale, skip_existing, report, style_of, save_landmarks=False,
    restore_size=False, max_pixels=None, all_frames=False,
) -> None:  # type: ignore[no-untyped-def]
    """Decode, translate and write ``jobs`` to ``dests`` (None: stdout) in chunks of ``batch_size``;
    a bad file costs only its own output (``report`` counts it). Existing outputs are kept when
    ``skip_existing``; with ``all_frames`` every frame of a multi-frame file is its own output."""
    from PIL import Image

    from i2icli.imageio import read_frames, to_pil, to_tensor, write_image
    from i2icli.inference import translate_tensors

    c_in, _ = loaded.channels(direction)
    pending = []  # (src, dest, tensor, alpha, t0, style, input size) decoded and waiting for a batch
    for i, ((src, rel), dest) in enumerate(zip(jobs, dests)):
        if dest is not None and skip_existing and not all_frames and dest.exists():
            report.skipped += 1
            report.advance()
        else:
            t0 = time.perf_counter()
            try:
                data = sys.stdin.buffer.read() if src == Path("-") else src
                frames = read_frames(data, name="stdin" if src == Path("-") else None, channels=c_in,
                                     max_pixels=max_pixels, all_frames=all_frames)  # fmt: skip
                style = None if style_of is None else style_of(rel)
                for k, img in enumerate(frames):
                    # Only a file with several frames gets <name>_f<k>; a still image keeps its name.
                    several = all_frames and len(frames) > 1
                    frame_dest = _frame_path(dest, k, len(frames)) if several and dest is not None else dest
                    if frame_dest is not None and skip_existing and all_frames and frame_dest.exists():
                        report.skipped += 1
                        continue
                    if scale.far(img.image.size) and "far" not in report.notes_given:
                        report.notes_given.add("far")
                        report.line(scale.far_warning(img.name, img.image.size))
                    image, alpha = scale.resize(img.image, img.alpha)
                    if restore_size:
                        alpha = img.alpha  # the output is resized back, so the alpha stays as it was
                    pending.append((src, frame_dest, to_tensor(image), alpha, t0, style, img.image.size))
                if all_frames:
                    report.advance()  # frames are written below without advancing the per-file bar
            except I2IError as e:
                report.failed(str(src), str(e), e)
                report.advance()
        if pending and (len(pending) >= batch_size or i == len(jobs) - 1):
            styles = None if style_of is None else [p[5] for p in pending]
            outputs = translate_tensors(loaded, [p[2] for p in pending], direction, batch_size=batch_size, styles=styles)
            for (src_p, dest_p, x_p, alpha_p, t0_p, _, size_p), y in zip(pending, outputs):
                result = to_pil(y)
                if restore_size and result.size != size_p:
                    result = result.resize(size_p, Image.Resampling.BICUBIC)
                try:
                    write_image(dest_p if dest_p is not None else sys.stdout.buffer, result, alpha=alpha_p, format=fmt)
                    if save_landmarks and dest_p is not None:
                        from i2icli.landmarks import save_landmarks as write_landmarks
                        from i2icli.methods.base import split_direction

                        write_landmarks(loaded, x_p, split_direction(direction)[0], dest_p.with_suffix(""))
                except I2IError as e:
                    report.failed(str(src_p), str(e), e)
                else:
                    report.wrote(str(src_p), dest_p, result.size, time.perf_counter() - t0_p)
                if not all_frames:
                    report.advance()
            pending = []

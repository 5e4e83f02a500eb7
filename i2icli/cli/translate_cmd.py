"""``i2i translate``: translate files, folders, globs or stdin at native resolution."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Literal

import typer

from i2icli.cli.common import (
    DeviceOpt, InputsArg, MaxPixelsOpt, ModelOpt, OfflineOpt, OverwriteOpt, QuietOpt, SeedOpt, check_max_pixels,
    debug_trace, err, handle_errors, report_skipped,
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
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per result on stdout.")] = False,
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
    offline: OfflineOpt = False,
) -> None:
    """Translate images with a model (the embedded default when --model is omitted)."""
    with handle_errors():
        failures = _translate(
            inputs, output, model, direction, to, device, batch_size, seed, recursive, suffix, fmt, size,
            not overwrite, quiet, as_json, style, save_landmarks, offline, max_pixels, all_frames,
        )  # fmt: skip
    if failures:
        raise typer.Exit(1)


def _check_usage(output: str, batch_size: int, fmt: str, size: int | None, as_json: bool, suffix: str = "") -> None:
    from i2icli.imageio import check_suffix

    check_suffix(suffix)
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
    offline: bool = False, max_pixels: int | None = None, all_frames: bool = False,
) -> int:  # fmt: skip
    """Returns the number of inputs that failed."""
    _check_usage(output, batch_size, fmt, size, as_json, suffix)
    check_max_pixels(max_pixels)
    if all_frames and output == "-":
        raise UsageError("--all-frames writes one file per frame; it cannot be combined with -o -")
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
    loaded = load_model(model_ref or DEFAULT_TRANSLATE_MODEL, device=device, offline=offline)
    chosen = loaded.check_direction(loaded.direction_to(to) if to else direction)
    style_of = _style_source(loaded, chosen, style_ref, seed, max_pixels)
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
    return _run_jobs(
        loaded, chosen, jobs, out_dir, batch_size, suffix, fmt, size, skip_existing, quiet, as_json, style_of,
        save_landmarks, max_pixels, all_frames,
    )  # fmt: skip


def _style_source(loaded, direction, style_ref: Path | None, seed: int, max_pixels: int | None = None) -> Callable[[Path], Tensor] | None:  # type: ignore[no-untyped-def]
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
    shared = encode_styles(loaded, [to_tensor(read_image(style_ref, channels=c_out, max_pixels=max_pixels).image)], direction)[0]
    return lambda rel: shared


def _output_path(out_dir: Path, rel: Path, suffix: str, fmt: str) -> Path:
    return out_dir / rel.parent / f"{rel.stem}{suffix}.{fmt}"


def _frame_path(dest: Path, k: int, count: int) -> Path:
    """``name.png`` -> ``name_f007.png``: frame ``k`` of ``count`` (zero-padded so names sort)."""
    return dest.with_name(f"{dest.stem}_f{k:0{max(3, len(str(count - 1)))}d}{dest.suffix}")


def _run_jobs(
    loaded, direction, jobs, out_dir, batch_size, suffix, fmt, size, skip_existing, quiet, as_json, style_of,
    save_landmarks=False, max_pixels=None, all_frames=False,
) -> int:  # type: ignore[no-untyped-def]
    """Decode, translate and write ``jobs`` in chunks of ``batch_size``; a bad file costs only its own output."""
    from i2icli.imageio import read_frames, to_pil, to_tensor, write_image
    from i2icli.inference import translate_tensors

    c_in, _ = loaded.channels(direction)
    failures = 0
    progress = _progress(len(jobs), quiet or as_json or out_dir is None)
    skipped = 0
    pending = []  # (src, dest, tensor, alpha, t0, style) decoded and waiting for a batch
    for i, (src, rel) in enumerate(jobs):
        dest = None if out_dir is None else _output_path(out_dir, rel, suffix, fmt)
        if dest is not None and skip_existing and not all_frames and dest.exists():
            skipped += 1
            progress.advance()
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
                        skipped += 1
                        continue
                    image, alpha = img.image, img.alpha
                    if size is not None:
                        image, alpha = _resize_short_side(image, alpha, size)
                    pending.append((src, frame_dest, to_tensor(image), alpha, t0, style))
                if all_frames:
                    progress.advance()  # frames are written below without advancing the per-file bar
            except I2IError as e:
                failures += 1
                debug_trace(e)
                progress.print(f"error: {e}")
                progress.advance()
        if pending and (len(pending) >= batch_size or i == len(jobs) - 1):
            styles = None if style_of is None else [p[5] for p in pending]
            outputs = translate_tensors(loaded, [p[2] for p in pending], direction, batch_size=batch_size, styles=styles)
            for (src_p, dest_p, x_p, alpha_p, t0_p, _), y in zip(pending, outputs):
                result = to_pil(y)
                try:
                    write_image(dest_p if dest_p is not None else sys.stdout.buffer, result, alpha=alpha_p, format=fmt)
                    if save_landmarks and dest_p is not None:
                        from i2icli.landmarks import save_landmarks as write_landmarks
                        from i2icli.methods.base import split_direction

                        write_landmarks(loaded, x_p, split_direction(direction)[0], dest_p.with_suffix(""))
                except I2IError as e:
                    failures += 1
                    debug_trace(e)
                    progress.print(f"error: {e}")
                else:
                    if as_json:
                        seconds = round(time.perf_counter() - t0_p, 4)
                        record = {"input": str(src_p), "output": str(dest_p), "size": list(result.size), "seconds": seconds}
                        typer.echo(json.dumps(record))
                if not all_frames:
                    progress.advance()
            pending = []
    progress.close()
    if not quiet:
        report_skipped(skipped, out_dir)
    if failures and not quiet:
        err(f"{failures} of {len(jobs)} inputs failed")
    return failures


def _resize_short_side(image, alpha, size: int):  # type: ignore[no-untyped-def]
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.resize(new, Image.Resampling.BICUBIC)
    alpha = alpha.resize(new, Image.Resampling.BILINEAR) if alpha is not None else None
    return image, alpha


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

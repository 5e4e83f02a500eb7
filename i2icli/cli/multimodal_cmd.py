"""``i2i sample-styles`` / ``sample``, ``interpolate`` and ``exemplar``: multimodal commands.

They share ``translate``'s grammar: inputs are files, folders, globs or ``-`` (stdin); ``--size``,
``--batch-size``, ``--json``, ``--quiet``, ``--threads``. Options are parsed and validated first
(usage errors exit 2 before any work); a model without the capability is refused with one line and
exit code 2, judged from its checkpoint config alone. An unreadable input or reference, or an output that
cannot be written, costs only its own outputs: one ``error:`` line names it (a JSON line with
``--json``), the rest is written, and the exit code is 1. Existing outputs are kept (and counted
on stderr) unless ``--overwrite``.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable

import typer

from i2icli.cli import common
from i2icli.cli.common import InputsArg, Report, SeedOpt, handle_errors
from i2icli.cli.validate import writable_folder
from i2icli.errors import I2IError, UsageError

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor

    from i2icli.inference import InputScale, LoadedModel
    from i2icli.methods.base import Direction

GRID_NAME = "grid.png"
STDIN = (Path("-"), Path("stdin"))


@dataclass(frozen=True)
class _Common:
    """The options every multimodal command shares, checked."""

    model: str | None
    direction: str
    to: str | None
    output: Path
    device: str
    size: int | str
    batch_size: int
    as_json: bool
    quiet: bool
    threads: int | None
    max_pixels: int | None
    overwrite: bool
    offline: bool


def _common(
    *, model: str | None, direction: str, to: str | None, output: Path, device: str, size: str, batch_size: int,
    as_json: bool, quiet: bool, threads: int | None, max_pixels: int | None, overwrite: bool, offline: bool,
) -> _Common:  # fmt: skip
    """Validate the shared options (usage errors before any work)."""
    from i2icli.threads import choose_threads

    choose_threads(threads)
    common.check_max_pixels(max_pixels)
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    common.check_output_folder(output)
    return _Common(
        model, common.parse_direction(direction), to, output, device, common.parse_size(size), batch_size, as_json, quiet,
        threads, max_pixels, overwrite, offline,
    )  # fmt: skip


def _shared_options(default_output: Path) -> Callable[[Callable[..., int]], Callable[..., None]]:
    """Declare the options every multimodal command takes once: the decorated command lists only its
    own parameters, receives these checked, as ``opts`` (usage errors exit 2 before any work), and
    returns how many inputs or outputs failed (exit 1 when any did). Errors are handled around it."""
    shared: list[tuple[str, Any, Any]] = [
        ("model", common.ModelOpt, None), ("direction", common.DirectionOpt, "a2b"), ("to", common.ToOpt, None),
        ("output", common.OutDirOpt, default_output), ("device", common.DeviceOpt, "auto"),
        ("max_pixels", common.MaxPixelsOpt, None), ("overwrite", common.OverwriteOpt, False),
        ("offline", common.OfflineOpt, False), ("size", common.SizeOpt, "auto"), ("batch_size", common.BatchOpt, 8),
        ("as_json", common.JsonOpt, False), ("quiet", common.QuietOpt, False), ("threads", common.ThreadsOpt, None),
    ]  # fmt: skip

    def wrap(command: Callable[..., int]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "opts"]
        kw = inspect.Parameter.KEYWORD_ONLY
        params = own + [inspect.Parameter(name, kw, annotation=a, default=d) for name, a, d in shared]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            with handle_errors():
                opts = _common(**{name: values.pop(name) for name, _, _ in shared})
                failures = command(**values, opts=opts)
            if failures:  # inputs or outputs that failed, each named on stderr: the rest is written
                raise typer.Exit(1)

        # Typer reads the parameters from the signature: the command's own, then the shared ones.
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return run

    return wrap


# --------------------------------------------------------------------------- shared steps


def _files(inputs: list[str]) -> list[tuple[Path, Path]]:
    from i2icli.listing import list_images

    if inputs == ["-"]:
        return [STDIN]
    if "-" in inputs:
        raise UsageError("- (stdin) cannot be mixed with other inputs")
    files = list_images(inputs, recursive=False)
    if not files:
        raise UsageError(f"no images found in {' '.join(inputs)}")
    return files


def _check_references(flag: str, paths: list[Path]) -> None:
    """A style reference that does not exist is a usage error (an unreadable one costs its outputs)."""
    for path in paths:
        if not os.path.lexists(path):  # a broken or looping link exists: reading it names the problem
            raise UsageError(f"{flag} {path}: no such file")


def _require(model_ref: str | None, command: str, verb: str, offline: bool) -> str:
    """The local checkpoint to use (fetched once here), refusing a method whose declared
    capabilities do not run ``command`` (reads only the config)."""
    from i2icli.checkpoint import read_config
    from i2icli.methods import METHODS
    from i2icli.registry import DEFAULT_MULTIMODAL_MODEL
    from i2icli.sources import fetch, resolve

    ref = model_ref or DEFAULT_MULTIMODAL_MODEL
    if ref is None:
        raise UsageError(f"{verb} needs a multimodal model (e.g. MUNIT); pass --model (no default is registered)")
    path = fetch(resolve(ref), offline=offline)
    config = read_config(path)
    info = METHODS.get(config.method)
    if info is None or not info.can(command):
        why = "it has no style codes" if command != "interpolate" else "it has no latent space to walk"
        raise UsageError(f"{ref}: a {config.method} model cannot {verb} ({why})")
    return str(path)


def _load(ref: str, opts: _Common) -> tuple[LoadedModel, Direction, InputScale]:
    from i2icli.api import load_model
    from i2icli.inference import input_scale
    from i2icli.threads import apply_threads

    apply_threads(opts.threads)
    loaded = load_model(ref, device=opts.device)
    chosen = loaded.choose_direction(opts.direction, opts.to)
    scale = input_scale(loaded, opts.size)
    writable_folder("-o", opts.output)  # once, before any input is read (one line, exit 1)
    return loaded, chosen, scale


def _report(opts: _Common, scale: InputScale, total: int, verb: str) -> tuple[Report, _Reader]:
    """The run's report (its summary notes the output scale) and the reader of its inputs."""
    report = Report(total, as_json=opts.as_json, quiet=opts.quiet, verb=verb)
    report.notes.append(scale.describe_outputs())
    return report, _Reader(scale, report, opts.max_pixels)


def _finish(report: Report, opts: _Common) -> int:
    """Print the summary line; return how many inputs and outputs failed."""
    report.close(str(opts.output))
    return report.failures


def _check_unique(destinations: list[tuple[Path, str]]) -> None:
    """Refuse two outputs with one path (e.g. inputs with the same name in different folders)."""
    seen: dict[Path, str] = {}
    for dest, source in destinations:
        if dest in seen:
            raise UsageError(f"{seen[dest]} and {source} would both be written to {dest}; run them separately")
        seen[dest] = source


class _Reader:
    """Reads inputs (stdin once) at the chosen scale; warns once when one is far from the training scale."""

    def __init__(self, scale: InputScale, report: Report, max_pixels: int | None) -> None:
        self.scale, self.report, self.max_pixels, self.stdin, self.warned = scale, report, max_pixels, None, False

    def __call__(self, path: Path, channels: int) -> Tensor:
        from i2icli.imageio import read_image, to_tensor

        if path == STDIN[0]:
            if self.stdin is None:
                self.stdin = sys.stdin.buffer.read()
            img = read_image(self.stdin, name="stdin", channels=channels, max_pixels=self.max_pixels)
        else:
            img = read_image(path, channels=channels, max_pixels=self.max_pixels)
        if not self.warned and self.scale.far(img.image.size):
            self.warned = True
            self.report.line(self.scale.far_warning(img.name, img.image.size))
        return to_tensor(self.scale.resize(img.image)[0])


class _Writer:
    """Writes outputs atomically: keeps existing files unless ``overwrite`` (counted in the report),
    and turns a file that cannot be written into one ``error:`` line so the others are still tried."""

    def __init__(self, report: Report, overwrite: bool) -> None:
        self.report, self.overwrite = report, overwrite

    def write(self, path: Path, image: Image.Image, source: str | None = None, start: float = 0.0, **extra: object) -> None:
        """Write ``image``; with ``source`` the output is reported (a ``--json`` line)."""
        from i2icli.imageio import write_image

        if self._put(path, lambda: write_image(path, image), source, extra) and source is not None:
            self.report.wrote(source, path, image.size, time.perf_counter() - start, **extra)

    def write_gif(self, path: Path, frames: list[Image.Image]) -> None:
        self._put(path, lambda: _write_gif(path, frames))

    def _put(self, path: Path, save: Callable[[], None], source: str | None = None, extra: dict | None = None) -> bool:
        if not self.overwrite and path.exists():
            if source is not None:
                self.report.kept(source, path, **(extra or {}))
            else:
                self.report.skipped += 1
            return False
        try:
            save()
        except I2IError as e:
            self.report.failed(str(path), str(e), e, output=True)
            return False
        return True


def _out_stem(out_dir: Path, rel: Path) -> Path:
    return out_dir / rel.parent / rel.stem


def _source(path: Path) -> str:
    return "-" if path == STDIN[0] else str(path)


# --------------------------------------------------------------------------- sample-styles


@_shared_options(Path("samples"))
def sample_styles(
    inputs: InputsArg,
    n: Annotated[int, typer.Option("--n", "-n", help="Styles to sample per input.")] = 8,
    seed: SeedOpt = 0,
    *,
    opts: _Common,
) -> int:
    """Translate each input with N random styles from the prior (the same N for every input).

    Writes OUT/<name>_s<k>.png per style and OUT/grid.png (a row per input: the input, then its styles).
    """
    if n < 1:
        raise UsageError(f"--n {n}: must be at least 1")
    files = _files(inputs)
    ref = _require(opts.model, "sample-styles", "sample styles", opts.offline)
    _check_unique([(Path(f"{_out_stem(opts.output, rel)}_s{k}.png"), str(src)) for src, rel in files for k in range(n)])
    return _sample(files, ref, n, seed, opts)


def _sample(files: list[tuple[Path, Path]], ref: str, n: int, seed: int, opts: _Common) -> int:
    from i2icli.multimodal import prior_styles

    loaded, chosen, scale = _load(ref, opts)
    styles = prior_styles(loaded, n, seed)  # (n, S, 1, 1), shared by every input
    names = [f"s{k}" for k in range(n)]
    report, read = _report(opts, scale, len(files), "sampling styles")
    _style_rows(loaded, chosen, files, styles, names, opts, read, _Writer(report, opts.overwrite), report, header=None)
    return _finish(report, opts)


# --------------------------------------------------------------------------- exemplar


@_shared_options(Path("exemplar"))
def exemplar(
    inputs: InputsArg,
    style: Annotated[list[Path] | None, typer.Option("--style", "-s", help="Reference image(s) of the target domain.", readable=False)] = None,
    *,
    opts: _Common,
) -> int:
    """Translate inputs with the style of each reference image (every input x every reference).

    Writes OUT/<name>_<reference name>.png and OUT/grid.png (top row: the references; then a row
    per input: the input, then its translations).
    """
    if not style:
        raise UsageError("exemplar needs at least one --style reference image")
    _check_references("--style", style)
    files = _files(inputs)
    ref = _require(opts.model, "exemplar", "use exemplar styles", opts.offline)
    _check_unique([(Path(f"{_out_stem(opts.output, rel)}_{r.stem}.png"), f"{src} with {r}") for src, rel in files for r in style])
    return _exemplar(files, style, ref, opts)


def _exemplar(files: list[tuple[Path, Path]], refs: list[Path], ref: str, opts: _Common) -> int:
    from i2icli.imageio import to_pil
    from i2icli.multimodal import encode_styles

    loaded, chosen, scale = _load(ref, opts)
    _, c_out = loaded.channels(chosen)
    report, read = _report(opts, scale, len(files), "exemplar styles")
    good_refs: list[tuple[Path, Tensor]] = []
    for path in refs:  # references are target-domain images, read at the same scale as the inputs
        try:
            good_refs.append((path, read(path, c_out)))
        except I2IError as e:
            report.failed(str(path), str(e), e)
    if good_refs:
        styles = encode_styles(loaded, [t for _, t in good_refs], chosen)  # (R, S, 1, 1)
        header = [None, *(to_pil(t) for _, t in good_refs)]
        names = [ref_path.stem for ref_path, _ in good_refs]
        _style_rows(loaded, chosen, files, styles, names, opts, read, _Writer(report, opts.overwrite), report, header=header)
    return _finish(report, opts)


# --------------------------------------------------------------------------- interpolate


@_shared_options(Path("interpolation"))
def interpolate(
    inputs: InputsArg,
    steps: Annotated[int, typer.Option("--steps", help="Frames including both ends (>= 2).")] = 8,
    mode: Annotated[str, typer.Option("--mode", help="lerp or slerp.")] = "lerp",
    from_seed: Annotated[int | None, typer.Option("--from-seed", help="Style A from the prior with this seed (default 0).")] = None,
    to_seed: Annotated[int | None, typer.Option("--to-seed", help="Style B from the prior with this seed (default 1).")] = None,
    style_a: Annotated[Path | None, typer.Option("--style-a", help="Style A from a reference image.", readable=False)] = None,
    style_b: Annotated[Path | None, typer.Option("--style-b", help="Style B from a reference image.", readable=False)] = None,
    gif: Annotated[bool, typer.Option("--gif", help="Also write an animated GIF.")] = False,
    geometry: Annotated[
        bool, typer.Option("--geometry", help="Landmark models (TransGaGa): walk landmark space between two inputs, one appearance.")
    ] = False,
    *,
    opts: _Common,
) -> int:
    """Two inputs: walk between their latent codes (MUNIT: contents, decoded in style A; TransGaGa:
    the appearances their translations get, on the first one's geometry, or with --geometry their
    landmarks, in appearance A). One input (style models only): walk from style A to style B.

    Writes OUT/<name>_f<k>.png per frame, OUT/<name>_strip.png (the frames side by side) and, with
    --gif, OUT/<name>.gif. A second input of another size is resized to the first's size.
    """
    if steps < 2:
        raise UsageError(f"--steps {steps}: must be at least 2 (both ends are frames)")
    if mode not in ("lerp", "slerp"):
        raise UsageError(f"--mode {mode!r}: use lerp or slerp")
    if len(inputs) not in (1, 2):
        raise UsageError(f"interpolate takes one input (style walk) or two (content walk), got {len(inputs)}")
    if from_seed is not None and style_a is not None:
        raise UsageError("--from-seed and --style-a both set style A; pass one")
    if to_seed is not None and style_b is not None:
        raise UsageError("--to-seed and --style-b both set style B; pass one")
    _check_references("--style-a", [style_a] if style_a else [])
    _check_references("--style-b", [style_b] if style_b else [])
    files = _files(inputs)
    if len(files) not in (1, 2):
        raise UsageError(f"interpolate takes one input image (style walk) or two (content walk), got {len(files)}")
    if len(files) == 2 and (to_seed is not None or style_b is not None):
        raise UsageError("a content walk (two inputs) uses one style: --to-seed/--style-b apply to one input")
    ref = _require(opts.model, "interpolate", "interpolate", opts.offline)
    return _interpolate(files, ref, steps, mode, (from_seed, style_a), (to_seed, style_b), gif, geometry, opts)


def _interpolate(
    files: list[tuple[Path, Path]], ref: str, steps: int, mode: str, end_a: tuple[int | None, Path | None],
    end_b: tuple[int | None, Path | None], gif: bool, geometry: bool, opts: _Common,
) -> int:  # fmt: skip
    import torch
    from PIL import Image as PILImage

    from i2icli.imageio import to_pil, to_tensor
    from i2icli.methods.info import Capability
    from i2icli.multimodal import encode_styles, grid_image, interpolate, prior_styles

    loaded, chosen, scale = _load(ref, opts)
    # A model that supplies its own styles walks between two inputs' own appearances unless
    # --geometry asks for landmarks.
    appearance_walk = loaded.has(Capability.OPTIONAL_STYLE) and len(files) == 2 and not geometry
    if appearance_walk and any(v is not None for v in end_a):
        raise UsageError("an appearance walk between two inputs takes both ends from them: drop --from-seed/--style-a or add --geometry")
    c_in, c_out = loaded.channels(chosen)
    report, read = _report(opts, scale, 1, "interpolating")
    writer = _Writer(report, opts.overwrite)
    start = time.perf_counter()

    def style(end: tuple[int | None, Path | None], default: int) -> Tensor:  # (1, S, 1, 1)
        seed, path = end
        if path is not None:
            return encode_styles(loaded, [read(path, c_out)], chosen)
        return prior_styles(loaded, 1, default if seed is None else seed)

    images = []
    for src, _ in files:
        try:
            images.append(read(src, c_in))
        except I2IError as e:
            report.failed(_source(src), str(e), e)
    if len(images) != len(files):  # a walk needs every input
        return _finish(report, opts)
    if len(images) == 2 and images[1].shape != images[0].shape:
        # Contents are mixed position by position, so both inputs need the same size.
        height, width = images[0].shape[1:]
        second = to_pil(images[1]).resize((width, height), PILImage.Resampling.BICUBIC)
        images[1] = to_tensor(second)
    walk_styles = None  # a latent model (UNIT) or an appearance walk between two inputs: no styles given
    if loaded.has_styles and not appearance_walk:
        styles = [style(end_a, 0)]
        if len(images) == 1:
            styles.append(style(end_b, 1))
        walk_styles = torch.cat(styles)
    elif any(v is not None for v in (*end_a, *end_b)):
        raise UsageError(f"a {loaded.config.method} model has no style codes: drop --from-seed/--to-seed/--style-a/--style-b")
    walk = interpolate(loaded, images, walk_styles, steps=steps, mode=mode, direction=chosen, geometry=geometry)  # type: ignore[arg-type]
    frames = [to_pil(f) for f in walk]

    stem = _out_stem(opts.output, files[0][1])
    name = stem.name if len(files) == 1 else f"{stem.name}-{files[1][1].stem}"
    base = stem.parent / name
    source = _source(files[0][0])
    for k, frame in enumerate(frames):
        writer.write(Path(f"{base}_f{k}.png"), frame, source, start, frame=k)
    writer.write(Path(f"{base}_strip.png"), grid_image([frames], gap=0))
    if gif:
        writer.write_gif(Path(f"{base}.gif"), frames)
    report.advance()
    return _finish(report, opts)


def _write_gif(path: Path, frames: list[Image.Image]) -> None:
    """An endlessly looping GIF, 1/8 s per frame, written atomically."""
    import io

    from i2icli.checkpoint import atomic_write_bytes
    from i2icli.imageio import ImageWriteError

    buf = io.BytesIO()
    first, *rest = [f.convert("RGB") for f in frames]
    first.save(buf, format="GIF", save_all=True, append_images=rest, duration=125, loop=0)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        raise ImageWriteError(f"{path}: cannot write ({e.strerror or e})") from None


def _style_rows(
    loaded, chosen, files, styles, names: list[str], opts: _Common, read: _Reader, writer: _Writer, report: Report, *,
    header: list[Image.Image | None] | None,
) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """Translate every input with every style; write ``<stem>_<name>.png`` per style and the grid
    (inputs as rows, styles as columns, an optional header row)."""
    from i2icli.imageio import to_pil
    from i2icli.multimodal import grid_image, translate_with_styles
    from i2icli.pipeline import Done, Failed, stream

    c_in, _ = loaded.channels(chosen)
    rows: list[list[Image.Image | None]] = [header] if header is not None else []
    lock = threading.Lock()  # the report is shared by this thread (events) and the pipeline's writer

    def decode(job: tuple[Path, Path]) -> tuple[Tensor, float]:
        return read(job[0], c_in), time.perf_counter()

    def compute(items: list[tuple[Tensor, float]]) -> list[list[Tensor]]:  # one input at a time: its K translations
        return [translate_with_styles(loaded, x, styles, chosen, batch_size=opts.batch_size) for x, _ in items]

    def write(job: tuple[Path, Path], item: tuple[Tensor, float], outputs: list[Tensor]) -> list[Image.Image]:
        (src, rel), (x, start) = job, item
        pictures = [to_pil(y) for y in outputs]
        for name, image in zip(names, pictures):
            with lock:
                writer.write(Path(f"{_out_stem(opts.output, rel)}_{name}.png"), image, _source(src), start, style=name)
        return [to_pil(x), *pictures]

    # Decoding and writing overlap the network; events arrive in input order (one writer, batches of 1).
    for event in stream(files, decode, compute, write):
        with lock:
            if isinstance(event, Failed):
                report.failed(_source(event.job[0]), str(event.error), event.error)
            elif isinstance(event, Done):
                rows.append(event.value)
            report.advance()
    if len(rows) > (header is not None):
        writer.write(opts.output / GRID_NAME, grid_image(rows))

"""``i2i sample-styles`` / ``sample``, ``interpolate`` and ``exemplar``: multimodal commands.

Options are parsed and validated first (usage errors exit 2 before any work); a model without the
capability is refused with one line and exit code 2, judged from its checkpoint config alone.
An unreadable input or reference costs only its own outputs: one ``error:`` line names it, the
rest is written, and the exit code is 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from i2icli.cli.common import DeviceOpt, InputsArg, ModelOpt, OutDirOpt, SeedOpt, err, handle_errors
from i2icli.errors import I2IError, UsageError

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor

    from i2icli.inference import LoadedModel
    from i2icli.methods.base import Direction

DirectionOpt = Annotated[str, typer.Option("--direction", "-d", help="a2b or b2a.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Target domain by name (overrides --direction).")]
GRID_NAME = "grid.png"


# --------------------------------------------------------------------------- shared steps


def _check_direction(direction: str) -> None:
    if direction not in ("a2b", "b2a"):
        raise UsageError(f"--direction {direction!r}: use a2b or b2a")


def _files(inputs: list[str]) -> list[tuple[Path, Path]]:
    from i2icli.imageio import list_images

    if "-" in inputs:
        raise UsageError("- (stdin) is not supported here; pass image files")
    files = list_images(inputs, recursive=False)
    if not files:
        raise UsageError(f"no images found in {' '.join(inputs)}")
    return files


def _require(model_ref: str | None, capability: str, verb: str) -> str:
    """The model reference to use, refusing a method without ``capability`` (reads only the config)."""
    from i2icli.checkpoint import read_config
    from i2icli.registry import DEFAULT_MULTIMODAL_MODEL, METHODS, Capability, fetch, resolve

    ref = model_ref or DEFAULT_MULTIMODAL_MODEL
    if ref is None:
        raise UsageError(f"{verb} needs a multimodal model (e.g. MUNIT); pass --model (no default is registered)")
    config = read_config(fetch(resolve(ref)))
    spec = METHODS.get(config.method)
    if spec is None or Capability(capability) not in spec.capabilities:
        why = "it has no style codes" if capability != "interpolate" else "it has no latent space to walk"
        raise UsageError(f"{ref}: a {config.method} model cannot {verb} ({why})")
    return ref


def _load(ref: str, device: str, direction: str, to: str | None) -> tuple[LoadedModel, Direction]:
    from i2icli.api import load_model

    loaded = load_model(ref, device=device)
    return loaded, loaded.check_direction(loaded.direction_to(to) if to else direction)


def _check_unique(destinations: list[tuple[Path, str]]) -> None:
    """Refuse two outputs with one path (e.g. inputs with the same name in different folders)."""
    seen: dict[Path, str] = {}
    for dest, source in destinations:
        if dest in seen:
            raise UsageError(f"{seen[dest]} and {source} would both be written to {dest}; run them separately")
        seen[dest] = source


def _read(path: Path, channels: int) -> Tensor:
    from i2icli.imageio import read_image, to_tensor

    return to_tensor(read_image(path, channels=channels).image)


def _write(path: Path, image: Image.Image) -> None:
    from i2icli.imageio import write_image

    write_image(path, image)


def _out_stem(out_dir: Path, rel: Path) -> Path:
    return out_dir / rel.parent / rel.stem


# --------------------------------------------------------------------------- sample-styles


def sample_styles(
    inputs: InputsArg,
    model: ModelOpt = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Styles to sample per input.")] = 8,
    seed: SeedOpt = 0,
    direction: DirectionOpt = "a2b",
    to: ToOpt = None,
    output: OutDirOpt = Path("samples"),
    device: DeviceOpt = "auto",
) -> None:
    """Translate each input with N random styles from the prior (the same N for every input).

    Writes OUT/<name>_s<k>.png per style and OUT/grid.png (a row per input: the input, then its styles).
    """
    with handle_errors():
        if n < 1:
            raise UsageError(f"--n {n}: must be at least 1")
        _check_direction(direction)
        files = _files(inputs)
        ref = _require(model, "sample-styles", "sample styles")
        _check_unique([(Path(f"{_out_stem(output, rel)}_s{k}.png"), str(src)) for src, rel in files for k in range(n)])
        failures = _sample(files, ref, n, seed, direction, to, output, device)
    if failures:
        raise typer.Exit(1)


def _sample(
    files: list[tuple[Path, Path]], ref: str, n: int, seed: int, direction: str, to: str | None, out_dir: Path, device: str
) -> int:
    from i2icli.multimodal import prior_styles

    loaded, chosen = _load(ref, device, direction, to)
    styles = prior_styles(loaded, n, seed)  # (n, S, 1, 1), shared by every input
    names = [f"s{k}" for k in range(n)]
    return _style_rows(loaded, chosen, files, styles, names, out_dir, header=None)


# --------------------------------------------------------------------------- exemplar


def exemplar(
    inputs: InputsArg,
    style: Annotated[list[Path] | None, typer.Option("--style", "-s", help="Reference image(s) of the target domain.")] = None,
    model: ModelOpt = None,
    direction: DirectionOpt = "a2b",
    to: ToOpt = None,
    output: OutDirOpt = Path("exemplar"),
    device: DeviceOpt = "auto",
) -> None:
    """Translate inputs with the style of each reference image (every input x every reference).

    Writes OUT/<name>_<reference name>.png and OUT/grid.png (top row: the references; then a row
    per input: the input, then its translations).
    """
    with handle_errors():
        if not style:
            raise UsageError("exemplar needs at least one --style reference image")
        _check_direction(direction)
        files = _files(inputs)
        ref = _require(model, "exemplar", "use exemplar styles")
        _check_unique([(Path(f"{_out_stem(output, rel)}_{r.stem}.png"), f"{src} with {r}") for src, rel in files for r in style])
        failures = _exemplar(files, style, ref, direction, to, output, device)
    if failures:
        raise typer.Exit(1)


def _exemplar(
    files: list[tuple[Path, Path]], refs: list[Path], ref: str, direction: str, to: str | None, out_dir: Path, device: str
) -> int:
    from i2icli.imageio import to_pil
    from i2icli.multimodal import encode_styles

    loaded, chosen = _load(ref, device, direction, to)
    _, c_out = loaded.channels(chosen)
    failures = 0
    good_refs: list[tuple[Path, Tensor]] = []
    for path in refs:  # references are target-domain images
        try:
            good_refs.append((path, _read(path, c_out)))
        except I2IError as e:
            failures += 1
            err(f"error: {e}")
    if not good_refs:
        return failures
    styles = encode_styles(loaded, [t for _, t in good_refs], chosen)  # (R, S, 1, 1)
    header = [None, *(to_pil(t) for _, t in good_refs)]
    names = [ref_path.stem for ref_path, _ in good_refs]
    return failures + _style_rows(loaded, chosen, files, styles, names, out_dir, header=header)


# --------------------------------------------------------------------------- interpolate


def interpolate(
    inputs: InputsArg,
    model: ModelOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Frames including both ends (>= 2).")] = 8,
    mode: Annotated[str, typer.Option("--mode", help="lerp or slerp.")] = "lerp",
    from_seed: Annotated[int | None, typer.Option("--from-seed", help="Style A from the prior with this seed (default 0).")] = None,
    to_seed: Annotated[int | None, typer.Option("--to-seed", help="Style B from the prior with this seed (default 1).")] = None,
    style_a: Annotated[Path | None, typer.Option("--style-a", help="Style A from a reference image.")] = None,
    style_b: Annotated[Path | None, typer.Option("--style-b", help="Style B from a reference image.")] = None,
    gif: Annotated[bool, typer.Option("--gif", help="Also write an animated GIF.")] = False,
    direction: DirectionOpt = "a2b",
    to: ToOpt = None,
    output: OutDirOpt = Path("interpolation"),
    device: DeviceOpt = "auto",
) -> None:
    """Two inputs: walk between their latent codes (MUNIT: contents, decoded in style A). One input
    (style models only): walk from style A to style B.

    Writes OUT/<name>_f<k>.png per frame, OUT/<name>_strip.png (the frames side by side) and, with
    --gif, OUT/<name>.gif. A second input of another size is resized to the first's size.
    """
    with handle_errors():
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
        _check_direction(direction)
        files = _files(inputs)
        if len(files) not in (1, 2):
            raise UsageError(f"interpolate takes one input image (style walk) or two (content walk), got {len(files)}")
        if len(files) == 2 and (to_seed is not None or style_b is not None):
            raise UsageError("a content walk (two inputs) uses one style: --to-seed/--style-b apply to one input")
        ref = _require(model, "interpolate", "interpolate")
        _interpolate(files, ref, steps, mode, from_seed, to_seed, style_a, style_b, gif, direction, to, output, device)


def _interpolate(
    files: list[tuple[Path, Path]], ref: str, steps: int, mode: str, from_seed: int | None, to_seed: int | None,
    style_a: Path | None, style_b: Path | None, gif: bool, direction: str, to: str | None, out_dir: Path, device: str,
) -> None:  # fmt: skip
    import torch
    from PIL import Image as PILImage

    from i2icli.imageio import to_pil, to_tensor
    from i2icli.multimodal import encode_styles, grid_image, interpolate, prior_styles

    loaded, chosen = _load(ref, device, direction, to)
    c_in, c_out = loaded.channels(chosen)

    def style(path: Path | None, seed: int | None, default: int) -> Tensor:  # (1, S, 1, 1)
        if path is not None:
            return encode_styles(loaded, [_read(path, c_out)], chosen)
        return prior_styles(loaded, 1, default if seed is None else seed)

    images = [_read(src, c_in) for src, _ in files]
    if len(images) == 2 and images[1].shape != images[0].shape:
        # Contents are mixed position by position, so both inputs need the same size.
        height, width = images[0].shape[1:]
        second = to_pil(images[1]).resize((width, height), PILImage.Resampling.BICUBIC)
        images[1] = to_tensor(second)
    walk_styles = None  # a latent model (UNIT) walks between the two inputs' codes, no styles
    if loaded.has_styles:
        styles = [style(style_a, from_seed, 0)]
        if len(images) == 1:
            styles.append(style(style_b, to_seed, 1))
        walk_styles = torch.cat(styles)
    elif any(v is not None for v in (from_seed, to_seed, style_a, style_b)):
        raise UsageError(f"a {loaded.config.method} model has no style codes: drop --from-seed/--to-seed/--style-a/--style-b")
    frames = [to_pil(f) for f in interpolate(loaded, images, walk_styles, steps=steps, mode=mode, direction=chosen)]  # type: ignore[arg-type]

    stem = _out_stem(out_dir, files[0][1])
    name = stem.name if len(files) == 1 else f"{stem.name}-{files[1][1].stem}"
    base = stem.parent / name
    for k, frame in enumerate(frames):
        _write(Path(f"{base}_f{k}.png"), frame)
    _write(Path(f"{base}_strip.png"), grid_image([frames], gap=0))
    if gif:
        _write_gif(Path(f"{base}.gif"), frames)


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
    loaded, chosen, files, styles, names: list[str], out_dir: Path, *, header: list[Image.Image | None] | None
) -> int:  # type: ignore[no-untyped-def]
    """Translate every input with every style; write ``<stem>_<name>.png`` per style and the grid
    (inputs as rows, styles as columns, an optional header row). Returns the number of bad inputs."""
    from i2icli.imageio import to_pil
    from i2icli.multimodal import grid_image, translate_with_styles

    c_in, _ = loaded.channels(chosen)
    rows: list[list[Image.Image | None]] = [header] if header is not None else []
    failures = 0
    for src, rel in files:
        try:
            x = _read(src, c_in)
        except I2IError as e:
            failures += 1
            err(f"error: {e}")
            continue
        outputs = [to_pil(y) for y in translate_with_styles(loaded, x, styles, chosen)]
        for name, image in zip(names, outputs):
            _write(Path(f"{_out_stem(out_dir, rel)}_{name}.png"), image)
        rows.append([to_pil(x), *outputs])
    if len(rows) > (header is not None):
        _write(out_dir / GRID_NAME, grid_image(rows))
    return failures

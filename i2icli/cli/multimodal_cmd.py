"""``i2i sample-styles`` / ``sample``, ``interpolate`` and ``exemplar``: multimodal commands.

Options are parsed and validated first (usage errors exit 2 before any work); a model without the
capability is refused with one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from i2icli.cli.common import DeviceOpt, InputsArg, ModelOpt, OutDirOpt, SeedOpt, handle_errors
from i2icli.errors import UsageError


def _require(model_ref: str | None, capability: str, verb: str) -> None:
    """Refuse a model whose method lacks ``capability`` (reads only the checkpoint config)."""
    from i2icli.checkpoint import read_config
    from i2icli.registry import METHODS, Capability, fetch, resolve

    if model_ref is None:
        raise UsageError(f"{verb} needs a multimodal model (e.g. MUNIT); pass --model (none is embedded yet)")
    config = read_config(fetch(resolve(model_ref)))
    spec = METHODS.get(config.method)
    if spec is None or Capability(capability) not in spec.capabilities:
        raise UsageError(f"{model_ref}: a {config.method} model cannot {verb} (it has no style codes)")
    raise UsageError(f"{verb} is not implemented for {config.method} yet")


def sample_styles(
    inputs: InputsArg,
    model: ModelOpt = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Styles to sample per input.")] = 8,
    seed: SeedOpt = 0,
    output: OutDirOpt = Path("samples"),
    device: DeviceOpt = "auto",
) -> None:
    """Translate each input with N random styles drawn from the prior; writes each and a grid."""
    with handle_errors():
        if n < 1:
            raise UsageError(f"--n {n}: must be at least 1")
        _require(model, "sample-styles", "sample styles")


def interpolate(
    inputs: InputsArg,
    model: ModelOpt = None,
    steps: Annotated[int, typer.Option("--steps", help="Frames including both ends (>= 2).")] = 8,
    mode: Annotated[str, typer.Option("--mode", help="lerp or slerp.")] = "lerp",
    from_seed: Annotated[int | None, typer.Option("--from-seed", help="Style A from the prior with this seed.")] = None,
    to_seed: Annotated[int | None, typer.Option("--to-seed", help="Style B from the prior with this seed.")] = None,
    style_a: Annotated[Path | None, typer.Option("--style-a", help="Style A from a reference image.")] = None,
    style_b: Annotated[Path | None, typer.Option("--style-b", help="Style B from a reference image.")] = None,
    gif: Annotated[bool, typer.Option("--gif", help="Also write an animated GIF.")] = False,
    output: OutDirOpt = Path("interpolation"),
    device: DeviceOpt = "auto",
) -> None:
    """One input: walk between two styles. Two inputs: walk between their contents."""
    with handle_errors():
        if steps < 2:
            raise UsageError(f"--steps {steps}: must be at least 2 (both ends are frames)")
        if mode not in ("lerp", "slerp"):
            raise UsageError(f"--mode {mode!r}: use lerp or slerp")
        if len(inputs) not in (1, 2):
            raise UsageError(f"interpolate takes one input (style walk) or two (content walk), got {len(inputs)}")
        _require(model, "interpolate", "interpolate")


def exemplar(
    inputs: InputsArg,
    style: Annotated[list[Path] | None, typer.Option("--style", "-s", help="Reference image(s) of the target domain.")] = None,
    model: ModelOpt = None,
    output: OutDirOpt = Path("exemplar"),
    device: DeviceOpt = "auto",
) -> None:
    """Translate inputs with the style of one or more reference images (inputs x references grid)."""
    with handle_errors():
        if not style:
            raise UsageError("exemplar needs at least one --style reference image")
        _require(model, "exemplar", "use exemplar styles")

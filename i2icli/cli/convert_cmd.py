"""``i2i convert``: official checkpoints -> an i2i ``.safetensors`` checkpoint.

Which files a method's converter expects is part of the method (``MethodInfo.convert_help``,
``MethodInfo.converter``); this command only parses, calls it, and writes the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from i2icli.cli.common import OverwriteOpt, err, handle_errors
from i2icli.errors import UsageError
from i2icli.methods import METHOD_MODULES, read_info


def _sources_help() -> str:
    lines = [f"{name}: {read_info(name).convert_help}" for name in METHOD_MODULES if read_info(name).converts]
    return "Codebase the files come from. " + "; ".join(lines) + "."


def convert(
    weights: Annotated[
        list[Path],
        typer.Argument(help="Official checkpoint file(s), read with weights_only=True (see --from for which).", readable=False),
    ],
    source: Annotated[str | None, typer.Option("--from", help=_sources_help())] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="OUT.safetensors, or a folder (model.safetensors + config.json).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="A registry model whose release you downloaded by hand (e.g. munit-edges2shoes): its method, domains"
            " and image size come from the registry and the result goes to the i2i cache (no --from, -o).",
        ),
    ] = None,
    gen_ba: Annotated[
        Path | None, typer.Option("--gen-ba", help="A second file (CycleGAN: the b->a generator, latest_net_G_B.pth).", readable=False)
    ] = None,
    domains: Annotated[tuple[str, str], typer.Option("--domains", help="Names of domains A and B, e.g. horse zebra.")] = ("a", "b"),
    image_size: Annotated[int, typer.Option("--image-size", help="Training crop size recorded in the config.")] = 256,
    fp16: Annotated[bool, typer.Option("--fp16", help="Store weights as fp16 (half the file size).")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert official weights (read with weights_only=True; never unpickled) into the i2i format."""
    with handle_errors():
        if model is not None:
            _install(model, weights, source, output, gen_ba)
            return
        converters = [name for name in METHOD_MODULES if read_info(name).converts]
        if source is None or output is None:
            raise UsageError("convert needs --from METHOD and -o OUT (or --model NAME for a registry release)")
        if source not in converters:
            raise UsageError(f"--from {source!r}: supported sources are {', '.join(converters)}")
        from i2icli.checkpoint import model_file

        if model_file(output).exists() and not overwrite:
            err(f"{model_file(output)} exists; kept it (pass --overwrite to replace it)")
            return
        from i2icli.convert import convert_files

        files = [*weights, *([gen_ba] if gen_ba is not None else [])]
        written, summary = convert_files(source, files, output, domains=domains, image_size=image_size, fp16=fp16)
        err(f"wrote {written} ({summary})")


def _install(name: str, weights: list[Path], source: str | None, output: Path | None, gen_ba: Path | None) -> None:
    """``--model NAME FILE``: the registry knows the method and the domains; the cache is the output."""
    from i2icli.registry import lookup

    entry = lookup(name)
    if entry is None or entry.release is None:
        raise UsageError(f"--model {name!r}: not a registry model with an authors' release (see `i2i models list`)")
    if source is not None or output is not None or gen_ba is not None:
        raise UsageError(f"--model {entry.name} sets the method and writes to the i2i cache; drop --from, -o and --gen-ba")
    if len(weights) != 1:
        raise UsageError(f"--model {entry.name} takes the one release file {entry.release.filename}, got {len(weights)}")
    if not weights[0].is_file():
        raise UsageError(f"{weights[0]}: no such file")
    from i2icli.sources import install

    install(entry, weights)

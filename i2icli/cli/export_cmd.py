"""``i2i export``: a model's translation as an ONNX graph, with its parity against PyTorch stated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from i2icli.cli.common import ModelOpt, err, handle_errors, parse_direction
from i2icli.errors import I2IError, UsageError


def export(
    output: Annotated[Path, typer.Argument(help="The ONNX file to write (its name ends in .onnx).", metavar="OUT.onnx")],
    model: ModelOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="onnx (the only format).")] = "onnx",
    direction: Annotated[str, typer.Option("--direction", "-d", help="a2b or b2a.")] = "a2b",
    to: Annotated[str | None, typer.Option("--to", help="Target domain by name (overrides --direction).")] = None,
    device: Annotated[
        str, typer.Option("--device", help="Device the model is traced on: cpu, cuda, mps or auto (GPU when there is one).")
    ] = "cpu",
) -> None:
    """Export one direction of a model to ONNX: input "image" (B, C, H, W) in [-1, 1] (plus "style"
    (B, S, 1, 1) for style models such as MUNIT), output "translated"; batch, height and width are
    dynamic (height and width multiples of the network stride). Checks onnxruntime against PyTorch."""
    with handle_errors():
        if fmt != "onnx":
            raise UsageError(f"--format {fmt!r}: only onnx is supported")
        if output.suffix != ".onnx":
            raise UsageError(f"{output}: the output file must end in .onnx")
        direction = parse_direction(direction)
        for folder in output.parents:  # the file's folder, checked before the model loads
            if folder.exists():
                if not folder.is_dir():
                    raise UsageError(f"{output}: {folder} is a file, not a folder")
                break
        from i2icli.api import load_model
        from i2icli.registry import DEFAULT_TRANSLATE_MODEL
        from i2icli.runtime import export_onnx_file

        ref = _exportable(model or DEFAULT_TRANSLATE_MODEL)
        loaded = load_model(ref, device=device)
        chosen = loaded.check_direction(loaded.direction_to(to) if to else direction)
        try:
            result = export_onnx_file(loaded, chosen, output)
        except I2IError:
            raise
        except Exception as e:  # the exporter's own failures: one line, not a traceback
            raise I2IError(f"cannot export a {loaded.config.method} model to ONNX: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        stride = loaded.net.stride
        err(
            f"wrote {output}: inputs {', '.join(result.inputs)}; sides multiples of {stride}; onnxruntime vs PyTorch "
            f"max abs diff {result.max_abs_diff:.2e} on shapes {', '.join('x'.join(map(str, s)) for s in result.checked)}"
        )


def _exportable(ref: str) -> str:
    """The local checkpoint of ``ref``, refusing (exit 2, before loading) a landmark model: its warp
    is driven by the landmark positions it finds, a data-dependent step the ONNX exporter cannot
    trace. Judged from the config alone."""
    from i2icli.checkpoint import read_config
    from i2icli.methods import METHODS
    from i2icli.methods.info import Capability
    from i2icli.sources import fetch, resolve

    path = fetch(resolve(ref))
    method = read_config(path).method
    info = METHODS.get(method)
    if info is not None and Capability.LANDMARKS in info.caps:
        able = ", ".join(name for name, other in METHODS.items() if Capability.LANDMARKS not in other.caps)
        raise UsageError(
            f"{ref}: a {method} model cannot be exported to ONNX (its landmark warp depends on the landmarks it "
            f"finds, which the ONNX exporter cannot trace); these methods export: {able}"
        )
    return str(path)

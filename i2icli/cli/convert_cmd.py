"""``i2i convert``: official checkpoints -> an i2i ``.safetensors`` checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from i2icli.cli.common import err, handle_errors
from i2icli.errors import UsageError

SOURCES = ("cyclegan", "munit")


def convert(
    weights: Annotated[
        Path,
        typer.Argument(
            help="Official checkpoint (CycleGAN: the a->b generator, e.g. latest_net_G_A.pth; MUNIT: gen_*.pt with both generators)."
        ),
    ],
    source: Annotated[str, typer.Option("--from", help="Codebase the file comes from: cyclegan or munit.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="OUT.safetensors, or a folder (model.safetensors + config.json).")],
    gen_ba: Annotated[Path | None, typer.Option("--gen-ba", help="CycleGAN: the b->a generator (latest_net_G_B.pth).")] = None,
    domains: Annotated[tuple[str, str], typer.Option("--domains", help="Names of domains A and B, e.g. horse zebra.")] = ("a", "b"),
    image_size: Annotated[int, typer.Option("--image-size", help="Training crop size recorded in the config.")] = 256,
    fp16: Annotated[bool, typer.Option("--fp16", help="Store weights as fp16 (half the file size).")] = False,
) -> None:
    """Convert official weights (read with weights_only=True; never unpickled) into the i2i format."""
    with handle_errors():
        if source not in SOURCES:
            raise UsageError(f"--from {source!r}: supported sources are {', '.join(SOURCES)}")
        if source == "munit":
            if gen_ba is not None:
                raise UsageError("--gen-ba is for CycleGAN; a MUNIT gen_*.pt already holds both generators")
            _convert_munit(weights, output, domains, image_size, fp16)
            return
        from i2icli.checkpoint import ModelConfig, save_model
        from i2icli.config import to_dict
        from i2icli.convert.cyclegan import convert_cyclegan

        model = convert_cyclegan(weights, gen_ba)
        files = [str(weights)] + ([str(gen_ba)] if gen_ba else [])
        config = ModelConfig(
            method="cyclegan", arch=to_dict(model.arch), domains=domains, image_size=image_size,
            training={"converted_from": source, "files": files},
        )  # fmt: skip
        written = save_model(output, model, config, fp16=fp16)
        err(f"wrote {written} ({', '.join(model.directions)}; ngf {model.arch.ngf}, {model.arch.n_blocks} blocks)")


def _convert_munit(weights: Path, output: Path, domains: tuple[str, str], image_size: int, fp16: bool) -> None:
    from i2icli.checkpoint import ModelConfig, save_model
    from i2icli.config import to_dict
    from i2icli.convert.munit import load_official_munit
    from i2icli.methods.munit import MunitModel

    arch, state = load_official_munit(weights)
    model = MunitModel(arch)
    model.load_state_dict(state, strict=True)
    config = ModelConfig(
        method="munit", arch=to_dict(arch), domains=domains, image_size=image_size,
        training={"converted_from": "munit", "files": [str(weights)]},
    )  # fmt: skip
    written = save_model(output, model, config, fp16=fp16)
    err(f"wrote {written} (a2b, b2a; dim {arch.dim}, style_dim {arch.style_dim}, {arch.n_res} res blocks)")

"""``i2i``: assembles the command modules. Importing this must not import torch (``i2i --help``)."""

from __future__ import annotations

from typing import Annotated

import typer

from i2icli._version import __version__
from i2icli.cli import (
    convert_cmd,
    data_cmd,
    eval_cmd,
    export_cmd,
    models_cmd,
    multimodal_cmd,
    push_cmd,
    train_cmd,
    translate_cmd,
)  # fmt: skip
from i2icli.cli.common import Group, run_app, set_debug

app = typer.Typer(
    name="i2i",
    cls=Group,
    help="Train and apply unsupervised image-to-image translation models (CycleGAN, MUNIT, ...).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if not value:
        return
    import platform

    import torch

    from i2icli.device import describe

    typer.echo(
        f"i2i {__version__} | python {platform.python_version()} | torch {torch.__version__} | device {describe()}"
    )
    raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print versions and device, then exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks with error messages.")] = False,
) -> None:
    """i2i: unsupervised image-to-image translation."""
    set_debug(debug)


app.command("translate")(translate_cmd.translate)
app.command("train")(train_cmd.train)
app.command("export-checkpoint")(train_cmd.export_checkpoint)
app.command("sample-styles")(multimodal_cmd.sample_styles)
app.command("sample", help="Alias of sample-styles.")(multimodal_cmd.sample_styles)
app.command("interpolate")(multimodal_cmd.interpolate)
app.command("exemplar")(multimodal_cmd.exemplar)
app.command("convert")(convert_cmd.convert)
app.command("export")(export_cmd.export)
app.command("push")(push_cmd.push)
app.add_typer(models_cmd.app, name="models")
app.add_typer(data_cmd.app, name="data")
app.add_typer(eval_cmd.app, name="eval")


def main() -> None:
    """Console-script entry point: no traceback for any error unless ``--debug``."""
    from i2icli.threads import prepare_process

    prepare_process()  # before torch is imported: waiting threads sleep (see i2icli.threads)
    run_app(app)

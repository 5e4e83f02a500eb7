"""``i2i data``: list dataset recipes and prepare one in the CycleGAN folder layout.

This module imports neither torch nor numpy: the recipes module is imported inside each command,
so ``i2i --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from i2icli.cli.common import Group, handle_errors

app = typer.Typer(
    cls=Group,
    help="Dataset recipes: offline sets built from shipped data, CycleGAN downloads, Cityscapes.",
    no_args_is_help=True,
)


@app.command("list")
def list_recipes() -> None:
    """Show every recipe: name, kind (offline, download, manual), whether it can be prepared here
    (or what it needs: a package extra, the Fashion-MNIST files, --from DIR) and what it holds."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from i2icli.data.recipes import RECIPES, recipe_status

    table = Table("name", "kind", "here", "description")
    for recipe in RECIPES.values():
        table.add_row(recipe.name, recipe.kind, escape(recipe_status(recipe)), escape(recipe.description))
    Console(width=150).print(table)


@app.command("prepare")
def prepare_dataset(
    name: Annotated[str, typer.Argument(help="Recipe name (see 'i2i data list').")],
    out: Annotated[Path, typer.Argument(help="Output folder; receives trainA, trainB, testA, testB.")],
    sha256: Annotated[str | None, typer.Option("--sha256", help="Expected sha256 of the downloaded archive.")] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Folder with manually downloaded archives (cityscapes), a local archive (downloads), "
            "or the folder of Fashion-MNIST's idx .gz files (fashion-*).",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a dataset already prepared in OUT.")] = False,
) -> None:
    """Write dataset NAME into OUT (trainA/ trainB/ testA/ testB/, labels CSVs where known).

    Downloads go through $I2I_DATASETS_URL when it is set (a mirror holding the same zip names).
    """
    from i2icli.data.recipes import prepare

    # One line, no traceback: the message names the file or option at fault; Ctrl-C exits 130
    # and leaves no half-written layout (the recipe writes into a staging folder).
    with handle_errors():
        result = prepare(name, out, sha256=sha256, source=source, force=force)
    counts = ", ".join(f"{folder} {n}" for folder, n in result.counts.items())
    typer.echo(f"prepared {result.name} in {result.out}: {counts}")

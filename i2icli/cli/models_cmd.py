"""``i2i models list`` and ``i2i models info NAME``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from i2icli.cli.common import Group, handle_errors

app = typer.Typer(cls=Group, help="The model registry: embedded defaults and published weights.", no_args_is_help=True)


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show every registered model and method."""
    from dataclasses import asdict

    from i2icli.registry import METHODS, PRETRAINED

    if as_json:
        typer.echo(json.dumps([asdict(p) for p in PRETRAINED.values()], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "method", "domains", "size", "source", title="models")
    for p in PRETRAINED.values():
        where = f"weights/{p.local}" if p.local else f"hf-hub:{p.repo_id}@{p.revision}"
        table.add_row(p.name, p.method, " <-> ".join(p.domains), str(p.image_size), where)
    methods = Table("method", "capabilities", "paper", title="methods")
    for m in METHODS.values():
        methods.add_row(m.name, ", ".join(sorted(c.value for c in m.capabilities)), m.info.paper)
    console = Console(width=130)
    console.print(table)
    console.print(methods)


@app.command("info")
def info(name: Annotated[str, typer.Argument(help="Registry name, hf-hub:org/name or a path.")]) -> None:
    """Print a model's config (method, arch, domains, training provenance) as JSON."""
    with handle_errors():
        from i2icli.checkpoint import read_config
        from i2icli.config import to_dict
        from i2icli.registry import PRETRAINED, fetch, resolve

        path = fetch(resolve(name))
        out = {"path": str(path), "config": to_dict(read_config(path))}
        if name in PRETRAINED:
            from dataclasses import asdict

            out["registry"] = asdict(PRETRAINED[name])
        typer.echo(json.dumps(out, indent=2, default=str))

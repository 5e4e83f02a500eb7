"""``i2i models list``, ``models info NAME`` and ``models rm NAME``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from i2icli.cli.common import Group, OfflineOpt, err, handle_errors
from i2icli.errors import UsageError

if TYPE_CHECKING:
    from i2icli.registry import Pretrained

app = typer.Typer(cls=Group, help="The model registry: embedded defaults and the authors' released models.", no_args_is_help=True)


def _cached(entry: Pretrained) -> str:
    """"embedded", the cached file's path, or "" (not cached)."""
    from i2icli.sources import cached_file

    if entry.local is not None:
        return "embedded"
    path = cached_file(entry)
    return str(path) if path is not None else ""


def _source(entry: Pretrained) -> str:
    if entry.local is not None:
        return f"embedded: weights/{entry.local}"
    if entry.release is not None:
        manual = "" if entry.release.hosting == "http" else "Google Drive, manual download: "
        return manual + entry.release.url
    if entry.recipe is not None:
        return "train it: see `i2i models info`"
    return entry.hub


@app.command("list")
def list_models(
    cached: Annotated[bool, typer.Option("--cached", help="Only models available without a download.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show every registered model (method, domains, licence, source, cached) and the methods."""
    from dataclasses import asdict

    from i2icli.registry import METHODS, PRETRAINED

    entries = [(p, _cached(p)) for p in PRETRAINED.values()]
    if cached:
        entries = [(p, where) for p, where in entries if where]
    if as_json:
        typer.echo(json.dumps([asdict(p) | {"cached": where or None} for p, where in entries], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "method", "domains", "licence", "source", "hub copy", "cached", title="models")
    for p, where in entries:
        shown = "embedded" if where == "embedded" else ("yes" if where else "no")
        hub = "-" if p.local is not None else p.hub
        table.add_row(p.name, p.method, (" -> " if p.one_way else " <-> ").join(p.domains), p.license, _source(p), hub, shown)
    table.columns[4].overflow = "fold"
    methods = Table("method", "capabilities", "paper", title="methods")
    for m in METHODS.values():
        methods.add_row(m.name, ", ".join(m.capabilities), m.paper)
    console = Console(width=180)
    console.print(table)
    if not cached:
        console.print(methods)


@app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="Registry name or alias, hf-hub:org/name or a path.")],
    as_json: Annotated[bool, typer.Option("--json", help="The registry entry and config as JSON instead of the card.")] = False,
    offline: OfflineOpt = False,
) -> None:
    """Print a model's card (method, domains, licence, data, source, figures, how to run it).
    A registry model is never downloaded for this."""
    with handle_errors():
        if not as_json:
            from i2icli.sources import card_for

            typer.echo(card_for(name, offline=offline), nl=False)
            return
        typer.echo(json.dumps(_info_json(name, offline), indent=2, default=str))


def _info_json(name: str, offline: bool) -> dict[str, object]:
    from dataclasses import asdict

    from i2icli.registry import PRETRAINED
    from i2icli.sources import fetch, resolve

    resolved = resolve(name)
    out: dict[str, object] = {}
    if resolved.name is not None:
        entry = PRETRAINED[resolved.name]
        out["registry"] = asdict(entry)
        where = _cached(entry)
        path = resolved.path if where == "embedded" else (where or None)
    else:
        path = fetch(resolved, offline=offline)
    out["path"] = str(path) if path is not None else None
    if path is not None:
        from i2icli.checkpoint import read_config
        from i2icli.config import to_dict

        out["config"] = to_dict(read_config(path))
    return out


@app.command("rm")
def rm(
    name: Annotated[str, typer.Argument(help="Registry name or alias of a cached model.")],
    forget_sha256: Annotated[
        bool,
        typer.Option("--forget-sha256", help="Also forget the recorded sha256 of its release file (accept a changed upstream file)."),
    ] = False,
) -> None:
    """Delete a model from the i2i cache (and any partial download); the next use fetches it again."""
    with handle_errors():
        from i2icli.registry import lookup
        from i2icli.sources import remove

        entry = lookup(name)
        if entry is None:
            raise UsageError(f"{name!r} is not a registry model (see `i2i models list`)")
        if entry.local is not None:
            raise UsageError(f"{entry.name} is embedded in the package; there is nothing cached to remove")
        done = remove(entry, forget_sha256=forget_sha256)
        for line in done:
            err(line)
        if not done:
            err(f"{entry.name}: nothing cached")

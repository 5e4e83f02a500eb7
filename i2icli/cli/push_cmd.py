"""``i2i push MODEL --repo org/name``: upload a model with a generated card to the Hugging Face Hub."""

from __future__ import annotations

from typing import Annotated

import typer

from i2icli.cli.common import err, handle_errors


def push(
    model: Annotated[str, typer.Argument(help="Registry name or alias, hf-hub:org/name, or a .safetensors file / model folder.")],
    repo: Annotated[str, typer.Option("--repo", help="Target Hub repo, ORG/NAME (created if missing).")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo as private.")] = False,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch to commit to (created from main if missing).")] = None,
    license: Annotated[
        str | None, typer.Option("--license", help="Licence of the weights for the card (default: the registry entry's).")
    ] = None,
) -> None:
    """Upload model.safetensors, config.json and a generated model card (method, paper, domains,
    licence, training data, measured figures, how to run it) to a Hub repo. Needs a write token
    (`hf auth login` or HF_TOKEN)."""
    with handle_errors():
        from i2icli.api import push_model

        url = push_model(model, repo, private=private, revision=revision, license=license)
        err(f"pushed {model} to {repo}: {url}")

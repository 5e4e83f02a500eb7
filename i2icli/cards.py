"""Model cards: the README.md of a cached, pushed or listed model, generated from what is recorded.

A card is built from the registry entry (when the model has one), the checkpoint's config (a dict,
as in ``config.json``) and the figures measured by i2i (``metrics.json`` beside the weights). It
says what the model does, the method and paper, the domains, the licence (non-commercial licences
in bold), the training data and its terms, where the weights come from, the measured figures (or
that there are none) and how to run it with ``i2i``. The YAML header is what the Hub reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from i2icli.methods import read_info
from i2icli.registry import Pretrained

# Our licence names -> the Hub's licence identifiers; anything else is "other".
_HUB_LICENSES = {"MIT": "mit", "BSD-2-Clause": "bsd-2-clause", "CC BY-NC-SA 4.0": "cc-by-nc-sa-4.0"}
UNSTATED_LICENSE = "not stated by the uploader"


def model_card(
    *,
    entry: Pretrained | None = None,
    config: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    ref: str | None = None,
    license: str | None = None,
) -> str:
    """The card of a model. ``ref`` is what ``--model`` takes to run it (default: the registry name);
    ``license`` overrides the entry's (and is the only licence of a model without an entry)."""
    if entry is None and config is None:
        raise ValueError("a model card needs a registry entry or a config")
    method = entry.method if entry is not None else str(config["method"])  # type: ignore[index]
    info = read_info(method)
    licence = license or (entry.license if entry is not None else UNSTATED_LICENSE)
    title = entry.name if entry is not None else (ref or f"{method} model")
    run_ref = ref or (entry.name if entry is not None else "MODEL")
    domains = tuple(config["domains"]) if config is not None else entry.domains  # type: ignore[union-attr]
    image_size = config["image_size"] if config is not None else entry.image_size  # type: ignore[union-attr]

    lines = [
        "---",
        f"license: {_HUB_LICENSES.get(licence, 'other')}",
        "library_name: i2icli",
        "pipeline_tag: image-to-image",
        "tags:",
        "- image-to-image",
        "- unpaired-image-translation",
        f"- {method}",
        "---",
        "",
        f"# {title}",
        "",
    ]
    if entry is not None:
        lines += [entry.description, ""]
    lines += [
        f"- **Method**: {method} ({info.summary}); paper: {info.paper}",
        f"- **Domains**: `{domains[0]}` (a) and `{domains[1]}` (b){_directions(config)}",
        f"- **Image size**: trained on {image_size}x{image_size} crops; `i2i` translates at native resolution",
        f"- **Licence**: {_licence(entry, licence)}",
        f"- **Training data**: {_data(entry)}",
        f"- **Source**: {_source(entry, config)}",
    ]
    if entry is not None:
        hub = f"this repository, `{ref}`" if ref is not None and ref.startswith("hf-hub:") else entry.hub
        lines.append(f"- **Hub copy**: {hub}")
    if config is not None:
        lines.append(f"- **Architecture**: `{json.dumps(config.get('arch', {}), sort_keys=True)}`")
    lines += ["", "## Measured figures", "", *_figures(metrics), "", "## Use it with i2i", "", "```bash"]
    lines += ["pip install i2icli", f"i2i translate --model {run_ref} photo.jpg -o out/"]
    if info.can("sample-styles"):
        lines.append(f"i2i sample-styles --model {run_ref} photo.jpg --n 8 -o styles/")
    lines.append("```")
    if entry is not None and entry.recipe is not None:
        lines += ["", "## How to make it", "", "Nothing is published yet. Train it with:", "", "```bash", entry.recipe, "```"]
    return "\n".join(lines) + "\n"


def _directions(config: Mapping[str, Any] | None) -> str:
    """"; directions: ..." as the checkpoint records them ("" before there is a checkpoint)."""
    if config is None:
        return ""
    directions = config.get("arch", {}).get("directions")
    return "; directions: " + (", ".join(directions) if directions else "a2b, b2a")


def _licence(entry: Pretrained | None, licence: str) -> str:
    note = f" ({entry.license_note})" if entry is not None and entry.license_note and licence == entry.license else ""
    warning = " **Non-commercial use only.**" if "-NC" in licence else ""
    return f"{licence}{note}.{warning}"


def _data(entry: Pretrained | None) -> str:
    if entry is None:
        return "see the training provenance in `config.json`"
    if entry.dataset is None:
        return entry.data
    from i2icli.data.recipes import RECIPES

    recipe = RECIPES[entry.dataset]
    return f"{recipe.description}; {recipe.license} (prepare it with `i2i data prepare {recipe.name} DIR`)"


def _source(entry: Pretrained | None, config: Mapping[str, Any] | None) -> str:
    if entry is not None and entry.release is not None:
        how = "downloaded by i2i" if entry.release.hosting == "http" else "a manual download from Google Drive"
        return (
            f"the authors' `{entry.release.filename}` ({entry.release.url}; {how}), documented in"
            f" {entry.release.project}; converted by `i2i` (`torch.load(weights_only=True)`, strict load)"
        )
    if entry is not None:
        return entry.source
    training = config.get("training", {}) if config is not None else {}
    return f"training provenance `{json.dumps(training, sort_keys=True)}`"


def _figures(metrics: Mapping[str, Any] | None) -> list[str]:
    if not metrics:
        return ["None measured by i2i for this model yet."]
    rows = ["| figure | value |", "|---|---|"]
    for key, value in sorted(metrics.items()):
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        rows.append(f"| {key} | {shown} |")
    return ["Measured by i2i (`metrics.json` beside the weights):", "", *rows]


def read_metrics(weights: Path) -> dict[str, Any] | None:
    """The ``metrics.json`` beside a checkpoint file, or None."""
    path = weights.parent / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

"""i2i: unsupervised image-to-image translation, from the command line and from Python.

Public API (imported lazily so that ``import i2icli`` and ``i2i --help`` stay light)::

    import i2icli
    model = i2icli.load_model("cyclegan-digits")        # registry name, hf-hub:org/repo, or a path
    outputs = i2icli.translate(model, [image], direction="a2b")
"""

from __future__ import annotations

from typing import Any

from i2icli._version import __version__

__all__ = ["__version__", "load_model", "translate", "list_models", "METHODS", "PRETRAINED"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports: the heavy modules import torch.
    if name == "load_model":
        from i2icli.api import load_model

        return load_model
    if name == "list_models":
        from i2icli.api import list_models

        return list_models
    if name == "translate":
        from i2icli.inference import translate

        return translate
    if name in ("METHODS", "PRETRAINED"):
        from i2icli import registry

        return registry.METHODS if name == "METHODS" else registry.PRETRAINED
    raise AttributeError(f"module 'i2icli' has no attribute {name!r}")

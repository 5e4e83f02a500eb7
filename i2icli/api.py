"""The small public Python API: ``load_model`` and ``list_models`` (``translate`` is in inference)."""

from __future__ import annotations

from i2icli.checkpoint import load_checkpoint
from i2icli.device import pick_device
from i2icli.inference import LoadedModel
from i2icli.registry import PRETRAINED, Pretrained, fetch, resolve


def load_model(ref: str, *, device: str = "auto", token: str | bool | None = None) -> LoadedModel:
    """Load a model by registry name, ``hf-hub:org/name[@rev]`` or local path, on GPU when there is one."""
    dev = pick_device(device)
    path = fetch(resolve(ref), token=token)
    net, config = load_checkpoint(path, device=dev)
    return LoadedModel(net=net, config=config, path=path, device=dev)


def list_models() -> list[Pretrained]:
    """Every registry entry, in registry order."""
    return list(PRETRAINED.values())

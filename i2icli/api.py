"""The small public Python API: ``load_model`` and ``list_models`` (``translate`` is in inference)."""

from __future__ import annotations

from i2icli.checkpoint import load_checkpoint
from i2icli.device import pick_device
from i2icli.inference import LoadedModel
from i2icli.registry import PRETRAINED, Pretrained, fetch, resolve
from i2icli.runtime import Engine, Runtime


def load_model(
    ref: str,
    *,
    device: str = "auto",
    token: str | bool | None = None,
    precision: str = "fp32",
    compile: bool = False,
    engine: Engine = "torch",
    channels_last: bool | None = None,
) -> LoadedModel:
    """Load a model by registry name, ``hf-hub:org/name[@rev]`` or local path, on GPU when there is one.

    ``precision``: fp32 (default), bf16, fp16, int8 or auto (``i2icli.precision``); bf16/fp16 are
    refused on a CPU that would only emulate them. ``channels_last`` defaults to on for half
    precision. ``compile``: ``torch.compile`` the translation; ``engine="onnx"``: run it in
    onnxruntime (``i2icli.runtime``).
    """
    from i2icli import precision as prec

    dev = pick_device(device)
    path = fetch(resolve(ref), token=token)
    chosen, _ = prec.resolve(precision, dev, path)
    net, config = load_checkpoint(path, device=dev)
    loaded = LoadedModel(net=net, config=config, path=path, device=dev)
    if channels_last is None:
        channels_last = chosen in ("bf16", "fp16")
    runtime = Runtime(precision=chosen, channels_last=channels_last, compile=compile, engine=engine)
    return loaded if runtime == Runtime() else loaded.with_runtime(runtime)


def list_models() -> list[Pretrained]:
    """Every registry entry, in registry order."""
    return list(PRETRAINED.values())

"""The small public Python API: ``load_model``, ``list_models`` and ``push_model`` (``translate`` is in inference)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from i2icli.checkpoint import read_config
from i2icli.config import to_dict
from i2icli.device import pick_device
from i2icli.errors import UsageError
from i2icli.inference import LoadedModel
from i2icli.methods.load import load_checkpoint
from i2icli.registry import PRETRAINED, Pretrained
from i2icli.runtime import Engine, Runtime
from i2icli.sources import fetch, resolve


def load_model(
    ref: str,
    *,
    device: str = "auto",
    token: str | bool | None = None,
    offline: bool = False,
    precision: str = "fp32",
    compile: bool = False,
    engine: Engine = "torch",
    channels_last: bool | None = None,
) -> LoadedModel:
    """Load a model by registry name (or official alias), ``hf-hub:org/name[@rev]`` or local path, on GPU
    when there is one. Registry models not cached yet are downloaded and converted once; ``offline``
    (or ``HF_HUB_OFFLINE=1``) uses only what is cached.

    ``precision``: fp32 (default), bf16, fp16, int8 or auto (``i2icli.precision``); bf16/fp16 are
    refused on a CPU that would only emulate them. ``channels_last`` defaults to on for half
    precision. ``compile``: ``torch.compile`` the translation; ``engine="onnx"``: run it in
    onnxruntime (``i2icli.runtime``). The model is resolved and fetched once; why its precision was
    chosen is ``precision_reason`` (what ``auto`` found).
    """
    from i2icli import precision as prec

    dev = pick_device(device)
    path = fetch(resolve(ref), token=token, offline=offline)
    chosen, why = prec.resolve(precision, dev, path)
    net, config = load_checkpoint(path, device=dev)
    loaded = LoadedModel(net=net, config=config, path=path, device=dev, precision_reason=why)
    if channels_last is None:
        channels_last = chosen in ("bf16", "fp16")
    runtime = Runtime(precision=chosen, channels_last=channels_last, compile=compile, engine=engine)
    return loaded if runtime == Runtime() else loaded.with_runtime(runtime)


def list_models() -> list[Pretrained]:
    """Every registry entry, in registry order."""
    return list(PRETRAINED.values())


def push_model(
    ref: str,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    license: str | None = None,
) -> str:
    """Upload a model (any reference ``load_model`` takes) to the Hub repo ``repo_id`` as
    ``model.safetensors``, ``config.json`` and a generated card; returns the commit url.
    ``license`` names the weights' licence (default: the registry entry's, if the model has one)."""
    from i2icli.cards import model_card, read_metrics
    from i2icli.hub import CONFIG_FILE, MODEL_FILE, README_FILE, push_target_problem
    from i2icli.hub import push_model as push_folder

    problem = push_target_problem(repo_id, revision)
    if problem is not None:  # before anything is fetched
        raise UsageError(f"cannot push to {repo_id!r}" + (f" (revision {revision!r})" if revision else "") + f": {problem}")
    resolved = resolve(ref)
    path = fetch(resolved, token=token)
    config = to_dict(read_config(path))
    entry = PRETRAINED.get(resolved.name) if resolved.name else None
    card = model_card(
        entry=entry, config=config, metrics=read_metrics(path), ref=f"hf-hub:{repo_id}", license=license
    )
    with tempfile.TemporaryDirectory(prefix="i2i-push-") as tmp:
        stage = Path(tmp)
        shutil.copyfile(path, stage / MODEL_FILE)
        (stage / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (stage / README_FILE).write_text(card, encoding="utf-8")
        return push_folder(stage, repo_id, token=token, revision=revision, private=private)

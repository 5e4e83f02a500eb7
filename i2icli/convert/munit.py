"""Official NVlabs/MUNIT generator checkpoints -> ``MunitArch`` + a ``MunitModel`` state dict.

The official trainer saves ``gen_%08d.pt = {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}``
(official MUNIT trainer.py save); released files such as ``edges2shoes.pt`` use the same layout. Our module
names copy the official ones, so a key maps by prefixing ``gen_a.`` / ``gen_b.``. The only keys
dropped are normalisation statistics that never influence the output: the dummy AdaIN
``running_mean``/``running_var`` and the instance-norm running statistics of old (PyTorch 0.3/0.4)
releases. Anything else that does not fit is an error naming the key.

The architecture is read from tensor shapes. ``activ`` and ``pad_type`` leave no trace in the
weights; every official config uses ``relu`` and ``reflect``, which are therefore assumed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from i2icli.errors import CheckpointError
from i2icli.methods.munit import STYLE_ENCODER_DOWNSAMPLE, MunitArch, MunitModel
from i2icli.nn.adain import AdaptiveInstanceNorm2d

DOMAINS = ("a", "b")
_PREFIX = "official MUNIT checkpoint: "
# Statistics buffers that official instance norms carry but never read at inference.
_STAT_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def load_official_munit(path: str | os.PathLike[str]) -> tuple[MunitArch, dict[str, Tensor]]:
    """Read an official ``gen_*.pt`` file (tensors only, never arbitrary pickles) and convert it."""
    from i2icli.checkpoint import safe_torch_load

    obj = safe_torch_load(path)
    try:
        return convert_munit(obj)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def convert_munit(obj: Any) -> tuple[MunitArch, dict[str, Tensor]]:
    """``{'a': state_dict, 'b': state_dict}`` of official ``AdaINGen``s -> (arch, our state dict).

    The result loads into ``MunitModel(arch)`` with ``strict=True``.
    """
    state_dicts = _split_domains(obj)
    arch = infer_munit_arch(state_dicts["a"], state_dicts["b"])
    with torch.device("meta"):  # shapes and module types only; allocates nothing
        reference = MunitModel(arch)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    stat_modules = _instance_norm_names(reference)

    converted: dict[str, Tensor] = {}
    for domain, state in state_dicts.items():
        for key, value in state.items():
            ours = f"gen_{domain}.{key}"
            module_name, _, leaf = ours.rpartition(".")
            if leaf in _STAT_BUFFERS and module_name in stat_modules:
                continue  # never read at inference (see module docstring)
            where = f"key {key!r} of generator {domain!r}"
            if ours not in expected:
                raise CheckpointError(f"{_PREFIX}unexpected {where}")
            if not isinstance(value, Tensor):
                raise CheckpointError(f"{_PREFIX}{where} is not a tensor")
            if tuple(value.shape) != expected[ours]:
                raise CheckpointError(
                    f"{_PREFIX}{where} has shape {tuple(value.shape)}, "
                    f"expected {expected[ours]} for the inferred config"
                )
            converted[ours] = value
    for ours in expected:
        if ours not in converted:
            domain, key = ours[len("gen_") :].split(".", 1)
            raise CheckpointError(f"{_PREFIX}missing key {key!r} of generator {domain!r}")
    return arch, converted


def infer_munit_arch(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor]) -> MunitArch:
    """Read dim, style_dim, n_downsample, n_res, mlp_dim and channel counts from weight shapes."""
    dim, channels_a = _shape(state_a, "a", "enc_content.model.0.conv.weight")[:2]
    channels_b = _shape(state_b, "b", "enc_content.model.0.conv.weight")[1]
    # Style encoder: first conv, STYLE_ENCODER_DOWNSAMPLE convs, pooling, then the 1x1 output conv.
    style_dim = _shape(state_a, "a", f"enc_style.model.{STYLE_ENCODER_DOWNSAMPLE + 2}.weight")[0]
    mlp_dim = _shape(state_a, "a", "mlp.model.0.fc.weight")[0]
    # Content encoder: convs at indices 0..n_downsample, the residual blocks right after.
    n_downsample = 0
    while f"enc_content.model.{n_downsample + 1}.conv.weight" in state_a:
        n_downsample += 1
    n_res = 0
    while f"enc_content.model.{n_downsample + 1}.model.{n_res}.model.0.conv.weight" in state_a:
        n_res += 1
    return MunitArch(
        dim=dim,
        style_dim=style_dim,
        n_downsample=n_downsample,
        n_res=n_res,
        mlp_dim=mlp_dim,
        channels_a=channels_a,
        channels_b=channels_b,
    )


def _split_domains(obj: Any) -> dict[str, Mapping[str, Tensor]]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(
            f"{_PREFIX}expected a dict with keys 'a' and 'b', got {type(obj).__name__}"
        )
    for key in obj:
        if key not in DOMAINS:
            raise CheckpointError(
                f"{_PREFIX}unexpected top-level key {key!r} (expected 'a' and 'b'; "
                "pass the gen_*.pt file, not dis_*.pt or optimizer.pt)"
            )
    for domain in DOMAINS:
        if domain not in obj:
            raise CheckpointError(f"{_PREFIX}missing top-level key {domain!r}")
        if not isinstance(obj[domain], Mapping):
            raise CheckpointError(f"{_PREFIX}{domain!r} is not a state dict")
    return {domain: obj[domain] for domain in DOMAINS}


def _shape(state: Mapping[str, Tensor], domain: str, key: str) -> tuple[int, ...]:
    where = f"key {key!r} of generator {domain!r}"
    if key not in state:
        raise CheckpointError(f"{_PREFIX}missing {where}")
    value = state[key]
    if not isinstance(value, Tensor):
        raise CheckpointError(f"{_PREFIX}{where} is not a tensor")
    return tuple(value.shape)


def _instance_norm_names(model: nn.Module) -> set[str]:
    """Names of the (adaptive) instance norms, whose statistics buffers official files carry."""
    kinds = (nn.InstanceNorm2d, AdaptiveInstanceNorm2d)
    return {name for name, m in model.named_modules() if isinstance(m, kinds)}

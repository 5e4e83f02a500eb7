"""Official UNIT master generator checkpoints -> ``UnitArch(variant="master")`` + a ``UnitModel`` state dict.

The official trainer saves ``gen_%08d.pt = {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}``
of ``VAEGen`` networks (METHODS.md §4.7). Our master modules keep the official names, so a key
maps by prefixing ``gen_a.`` / ``gen_b.``. Instance norms have no state in the official code, but
PyTorch-0.3 era files may carry ``running_mean``/``running_var`` (and later
``num_batches_tracked``) for them; the official converter forgets to remove them for UNIT, so
they are dropped here (they are never read). Anything else that does not fit is an error naming
the key.

The architecture is read from tensor shapes; ``activ``/``pad_type`` leave no trace and every
official config uses ``relu``/``reflect``, which the master variant assumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.base import Converted
from i2icli.methods.unit import UnitArch, UnitModel

DOMAINS = ("a", "b")
_PREFIX = "official UNIT checkpoint: "
_STAT_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def convert_files(files: Sequence[Path]) -> Converted:
    """``Method.convert``: one official ``gen_*.pt`` file -> ``Converted``."""
    if len(files) != 1:
        raise UsageError(f"--from unit takes one gen_*.pt file holding both generators, got {len(files)} files")
    path = Path(files[0])
    from i2icli.checkpoint import safe_torch_load

    obj = safe_torch_load(path)  # weights_only=True; one line for a missing, damaged or hostile file
    try:
        arch, state = convert_unit(obj)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    summary = f"UNIT master VAEGen a2b, b2a; dim {arch.dim}, {arch.n_downsample} downsamplings, {arch.n_res} res blocks"
    return Converted(arch=arch, state=state, summary=summary)


def convert_unit(obj: Any) -> tuple[UnitArch, dict[str, Tensor]]:
    """``{'a': state_dict, 'b': state_dict}`` of official ``VAEGen``s -> (arch, our state dict),
    which loads into ``UnitModel(arch)`` with ``strict=True``."""
    states = _split_domains(obj)
    arch = infer_unit_arch(states["a"], states["b"])
    with torch.device("meta"):  # shapes and module types only
        reference = UnitModel(arch)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    norms = {name for name, m in reference.named_modules() if isinstance(m, nn.InstanceNorm2d)}
    converted: dict[str, Tensor] = {}
    for domain, state in states.items():
        for key, value in state.items():
            ours = f"gen_{domain}.{key}"
            module_name, _, leaf = ours.rpartition(".")
            if leaf in _STAT_BUFFERS and module_name in norms:
                continue  # stale instance-norm statistics: never read
            where = f"key {key!r} of generator {domain!r}"
            if ours not in expected:
                raise CheckpointError(f"{_PREFIX}unexpected {where}")
            if not isinstance(value, Tensor):
                raise CheckpointError(f"{_PREFIX}{where} is not a tensor")
            if tuple(value.shape) != expected[ours]:
                raise CheckpointError(f"{_PREFIX}{where} has shape {tuple(value.shape)}, expected {expected[ours]}")
            converted[ours] = value.float()
    for ours in expected:
        if ours not in converted:
            domain, key = ours[len("gen_") :].split(".", 1)
            raise CheckpointError(f"{_PREFIX}missing key {key!r} of generator {domain!r}")
    return arch, converted


def infer_unit_arch(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor]) -> UnitArch:
    """dim, n_downsample, n_res and the channel counts from the weights' keys and shapes."""
    dim, channels_a = _shape(state_a, "a", "enc.model.0.conv.weight")[:2]
    channels_b = _shape(state_b, "b", "enc.model.0.conv.weight")[1]
    # Encoder: convs at 0..n_downsample, then the residual blocks.
    n_downsample = 0
    while f"enc.model.{n_downsample + 1}.conv.weight" in state_a:
        n_downsample += 1
    n_res = 0
    while f"enc.model.{n_downsample + 1}.model.{n_res}.model.0.conv.weight" in state_a:
        n_res += 1
    if n_downsample == 0:
        raise CheckpointError(f"{_PREFIX}no downsampling convs under 'enc.model' (not a VAEGen?)")
    return UnitArch(variant="master", channels_a=channels_a, channels_b=channels_b, dim=dim,
                    n_downsample=n_downsample, n_res=n_res, n_shared=0, dis_layers=4, dis_scales=3)  # fmt: skip


def _split_domains(obj: Any) -> dict[str, Mapping[str, Tensor]]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{_PREFIX}expected a dict with keys 'a' and 'b', got {type(obj).__name__}")
    for key in obj:
        if key not in DOMAINS:
            raise CheckpointError(
                f"{_PREFIX}unexpected top-level key {key!r} (expected 'a' and 'b'; pass the gen_*.pt file, "
                "not dis_*.pt or optimizer.pt)"
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

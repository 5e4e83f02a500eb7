"""The checkpoint layout the official MUNIT and UNIT trainers share: ``gen_%08d.pt`` holds
``{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}``, and our models keep the official module
names under ``gen_a.`` / ``gen_b.``. Every problem is a ``CheckpointError`` naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from i2icli.errors import CheckpointError

DOMAINS = ("a", "b")
# Statistics buffers that PyTorch-0.3 era instance norms carry but never read at inference.
STAT_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def split_domains(obj: Any, prefix: str) -> dict[str, Mapping[str, Tensor]]:
    """The two generators' state dicts of a loaded ``gen_*.pt`` object."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{prefix}expected a dict with keys 'a' and 'b', got {type(obj).__name__}")
    for key in obj:
        if key not in DOMAINS:
            raise CheckpointError(
                f"{prefix}unexpected top-level key {key!r} (expected 'a' and 'b'; pass the gen_*.pt file, "
                "not dis_*.pt or optimizer.pt)"
            )
    for domain in DOMAINS:
        if domain not in obj:
            raise CheckpointError(f"{prefix}missing top-level key {domain!r}")
        if not isinstance(obj[domain], Mapping):
            raise CheckpointError(f"{prefix}{domain!r} is not a state dict")
    return {domain: obj[domain] for domain in DOMAINS}


def shape(state: Mapping[str, Tensor], domain: str, key: str, prefix: str) -> tuple[int, ...]:
    """The shape of one official tensor, for inferring the architecture."""
    where = f"key {key!r} of generator {domain!r}"
    if key not in state:
        raise CheckpointError(f"{prefix}missing {where}")
    value = state[key]
    if not isinstance(value, Tensor):
        raise CheckpointError(f"{prefix}{where} is not a tensor")
    return tuple(value.shape)


def encoder_depth(state: Mapping[str, Tensor], encoder: str) -> tuple[int, int]:
    """(n_downsample, n_res) of a ``ContentEncoder`` stored under ``encoder`` (MUNIT's
    ``enc_content``, UNIT master's ``enc``): convs at ``model.0..n_downsample``, then the residual
    blocks ``model.<n_downsample + 1>.model.<i>``, counted from the keys."""
    n_downsample = 0
    while f"{encoder}.model.{n_downsample + 1}.conv.weight" in state:
        n_downsample += 1
    n_res = 0
    while f"{encoder}.model.{n_downsample + 1}.model.{n_res}.model.0.conv.weight" in state:
        n_res += 1
    return n_downsample, n_res


def map_generators(
    states: Mapping[str, Mapping[str, Tensor]], reference: nn.Module, norm_kinds: tuple[type[nn.Module], ...], prefix: str
) -> dict[str, Tensor]:
    """Official keys -> ours (``gen_<domain>.<key>``), checked against ``reference`` (a model of the
    inferred arch, e.g. on the meta device): every key known, every shape equal, nothing missing.
    Statistics buffers of ``norm_kinds`` modules are dropped (never read)."""
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    norms = {name for name, m in reference.named_modules() if isinstance(m, norm_kinds)}
    converted: dict[str, Tensor] = {}
    for domain, state in states.items():
        for key, value in state.items():
            ours = f"gen_{domain}.{key}"
            module_name, _, leaf = ours.rpartition(".")
            if leaf in STAT_BUFFERS and module_name in norms:
                continue
            where = f"key {key!r} of generator {domain!r}"
            if ours not in expected:
                raise CheckpointError(f"{prefix}unexpected {where}")
            if not isinstance(value, Tensor):
                raise CheckpointError(f"{prefix}{where} is not a tensor")
            if tuple(value.shape) != expected[ours]:
                raise CheckpointError(
                    f"{prefix}{where} has shape {tuple(value.shape)}, expected {expected[ours]} for the inferred config"
                )
            converted[ours] = value.float()
    for ours in expected:
        if ours not in converted:
            domain, key = ours[len("gen_") :].split(".", 1)
            raise CheckpointError(f"{prefix}missing key {key!r} of generator {domain!r}")
    return converted

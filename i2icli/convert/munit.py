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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from i2icli.convert.two_generators import encoder_depth, map_generators, shape, split_domains
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.base import Converted
from i2icli.methods.munit import STYLE_ENCODER_DOWNSAMPLE, MunitArch, MunitModel
from i2icli.nn.adain import AdaptiveInstanceNorm2d

_PREFIX = "official MUNIT checkpoint: "


def convert_official(files: Sequence[Path]) -> Converted:
    """``INFO.converter``: official ``gen_*.pt`` (both generators) -> our model state."""
    from i2icli.checkpoint import safe_torch_load
    from i2icli.convert.imaginaire import convert_loaded

    if len(files) != 1:
        raise UsageError(f"munit: a gen_*.pt already holds both generators; got {len(files)} files")
    obj = safe_torch_load(files[0])
    converted = convert_loaded(obj, "munit", files[0])  # the authors' imaginaire release
    if converted is not None:
        return converted
    arch, state = load_official_munit(files[0], obj)
    return Converted(arch, state, f"a2b, b2a; dim {arch.dim}, style_dim {arch.style_dim}, {arch.n_res} res blocks")


def load_official_munit(path: str | os.PathLike[str], obj: Any = None) -> tuple[MunitArch, dict[str, Tensor]]:
    """Read an official ``gen_*.pt`` file (tensors only, never arbitrary pickles) and convert it;
    ``obj``: the file's content when the caller has read it already."""
    from i2icli.checkpoint import safe_torch_load

    obj = safe_torch_load(path) if obj is None else obj
    try:
        return convert_munit(obj)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def convert_munit(obj: Any) -> tuple[MunitArch, dict[str, Tensor]]:
    """``{'a': state_dict, 'b': state_dict}`` of official ``AdaINGen``s -> (arch, our state dict).

    The result loads into ``MunitModel(arch)`` with ``strict=True``.
    """
    state_dicts = split_domains(obj, _PREFIX)
    arch = infer_munit_arch(state_dicts["a"], state_dicts["b"])
    with torch.device("meta"):  # shapes and module types only; allocates nothing
        reference = MunitModel(arch)
    converted = map_generators(state_dicts, reference, (nn.InstanceNorm2d, AdaptiveInstanceNorm2d), _PREFIX)
    return arch, converted


def infer_munit_arch(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor]) -> MunitArch:
    """Read dim, style_dim, n_downsample, n_res, mlp_dim and channel counts from weight shapes."""
    dim, channels_a = shape(state_a, "a", "enc_content.model.0.conv.weight", _PREFIX)[:2]
    channels_b = shape(state_b, "b", "enc_content.model.0.conv.weight", _PREFIX)[1]
    # Style encoder: first conv, STYLE_ENCODER_DOWNSAMPLE convs, pooling, then the 1x1 output conv.
    style_dim = shape(state_a, "a", f"enc_style.model.{STYLE_ENCODER_DOWNSAMPLE + 2}.weight", _PREFIX)[0]
    mlp_dim = shape(state_a, "a", "mlp.model.0.fc.weight", _PREFIX)[0]
    n_downsample, n_res = encoder_depth(state_a, "enc_content")
    return MunitArch(
        dim=dim,
        style_dim=style_dim,
        n_downsample=n_downsample,
        n_res=n_res,
        mlp_dim=mlp_dim,
        channels_a=channels_a,
        channels_b=channels_b,
    )

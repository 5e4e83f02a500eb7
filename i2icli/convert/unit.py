"""Official UNIT master generator checkpoints -> ``UnitArch(variant="master")`` + a ``UnitModel`` state dict.

The official trainer saves ``gen_%08d.pt = {'a': gen_a.state_dict(), 'b': gen_b.state_dict()}``
of ``VAEGen`` networks (docs/methods/unit.md). Our master modules keep the official names, so a key
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

from i2icli.convert.two_generators import encoder_depth, map_generators, shape, split_domains
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.base import Converted
from i2icli.methods.unit import UnitArch, UnitModel

_PREFIX = "official UNIT checkpoint: "


def convert_official(files: Sequence[Path]) -> Converted:
    """``INFO.converter``: one official ``gen_*.pt`` file -> ``Converted``."""
    if len(files) != 1:
        raise UsageError(f"--from unit takes one gen_*.pt file holding both generators, got {len(files)} files")
    path = Path(files[0])
    from i2icli.checkpoint import safe_torch_load
    from i2icli.convert.imaginaire import convert_loaded

    obj = safe_torch_load(path)  # weights_only=True; one line for a missing, damaged or hostile file
    converted = convert_loaded(obj, "unit", path)  # the authors' imaginaire release
    if converted is not None:
        return converted
    try:
        arch, state = convert_unit(obj)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    summary = f"UNIT master VAEGen a2b, b2a; dim {arch.dim}, {arch.n_downsample} downsamplings, {arch.n_res} res blocks"
    return Converted(arch=arch, state=state, summary=summary)


def convert_unit(obj: Any) -> tuple[UnitArch, dict[str, Tensor]]:
    """``{'a': state_dict, 'b': state_dict}`` of official ``VAEGen``s -> (arch, our state dict),
    which loads into ``UnitModel(arch)`` with ``strict=True``."""
    states = split_domains(obj, _PREFIX)
    arch = infer_unit_arch(states["a"], states["b"])
    with torch.device("meta"):  # shapes and module types only
        reference = UnitModel(arch)
    converted = map_generators(states, reference, (nn.InstanceNorm2d,), _PREFIX)
    return arch, converted


def infer_unit_arch(state_a: Mapping[str, Tensor], state_b: Mapping[str, Tensor]) -> UnitArch:
    """dim, n_downsample, n_res and the channel counts from the weights' keys and shapes."""
    dim, channels_a = shape(state_a, "a", "enc.model.0.conv.weight", _PREFIX)[:2]
    channels_b = shape(state_b, "b", "enc.model.0.conv.weight", _PREFIX)[1]
    n_downsample, n_res = encoder_depth(state_a, "enc")
    if n_downsample == 0:
        raise CheckpointError(f"{_PREFIX}no downsampling convs under 'enc.model' (not a VAEGen?)")
    return UnitArch(variant="master", channels_a=channels_a, channels_b=channels_b, dim=dim,
                    n_downsample=n_downsample, n_res=n_res, n_shared=0, dis_layers=4, dis_scales=3)  # fmt: skip

"""NVlabs/imaginaire MUNIT/UNIT checkpoints -> ``arch.variant="imaginaire"`` + our state dict.

What imaginaire's trainer writes (``trainers/base.py`` ``_save_checkpoint``): one ``torch.save`` of
``{'net_G', 'net_D', 'opt_G', 'opt_D', 'sch_G', 'sch_D', 'current_epoch', 'current_iteration'}``.
``net_G`` is the state dict of the generator wrapped twice: by ``ModelAverage`` when the config
enables the model average (every released MUNIT/UNIT config does), then by ``WrappedModel`` (one
process) or ``DistributedDataParallel``. Its keys are therefore

    module.module.autoencoder_a....          the training copy, spectral norm as weight_orig/_u/_v
    module.averaged_model.autoencoder_a....  the moving average, spectral norm already folded
    module.num_updates_tracked               the average's step counter

and, without the model average, ``module.autoencoder_a...``. The average is what imaginaire's own
inference uses, so it is taken whenever present; otherwise the training copy's spectral norms are
folded as PyTorch does in eval mode: ``W = W_orig / (u . (W_orig.reshape(out, -1) @ v))`` with the
stored ``u``, ``v`` (no power iteration). Everything but ``net_G`` (discriminator, optimisers,
schedulers, and any AMP scaler state an older trainer kept) is ignored. A bare generator state dict
(``net_G`` alone, with or without ``module.`` prefixes) is read the same way.

The architecture is read from key names and shapes; ``nn/imaginaire.py`` builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from i2icli.convert.two_generators import map_generators, shape
from i2icli.errors import CheckpointError
from i2icli.methods.base import Converted

Kind = Literal["munit", "unit"]
_AVERAGE = "averaged_model."
_DOMAINS = {"autoencoder_a.": "a", "autoencoder_b.": "b"}
# imaginaire module path -> ours, after the domain prefix.
_PARTS = (
    ("style_encoder.model.", "enc_style.model."),
    ("content_encoder.model.", "enc_content.model."),
    ("decoder.decoder.", "dec.model."),
    ("mlp.model.", "mlp.model."),
)


def is_imaginaire(obj: Any) -> bool:
    """Whether a loaded file is an imaginaire checkpoint (or its ``net_G``): keys name ``autoencoder_a.``."""
    state = obj.get("net_G", obj) if isinstance(obj, Mapping) else None
    return isinstance(state, Mapping) and any(isinstance(k, str) and "autoencoder_a." in k for k in state)


def generator_state(obj: Mapping[str, Any], prefix: str) -> tuple[dict[str, Tensor], str]:
    """The generator weights inference uses, keys from ``autoencoder_a.``/``_b.`` on, spectral norm
    folded; and which copy it was ("model average" or "training copy")."""
    state = obj.get("net_G", obj)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{prefix}'net_G' is not a state dict")
    averaged = any(_AVERAGE in k for k in state)
    picked: dict[str, Tensor] = {}
    for key, value in state.items():
        if averaged:
            if _AVERAGE not in key:
                continue  # the training copy and the step counter
            key = key.split(_AVERAGE, 1)[1]
        else:
            while key.startswith("module."):  # WrappedModel / DDP
                key = key[len("module.") :]
        if not key.startswith(tuple(_DOMAINS)):
            continue  # num_updates_tracked
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{prefix}key {key!r} is not a tensor")
        picked[key] = value
    return fold_spectral_norm(picked, prefix), "model average" if averaged else "training copy"


def fold_spectral_norm(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Replace each ``X.weight_orig`` + ``X.weight_u`` + ``X.weight_v`` by ``X.weight`` = W / sigma."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(("weight_u", "weight_v")):
            continue
        if not key.endswith("weight_orig"):
            out[key] = value
            continue
        base = key[: -len("_orig")]
        u, v = state.get(base + "_u"), state.get(base + "_v")
        if u is None or v is None:
            raise CheckpointError(f"{prefix}{key} without its spectral-norm vectors {base}_u / {base}_v")
        w = value.float()
        # (out, in, k, k) -> (out, in*k*k); sigma = u^T W v, as torch's SpectralNorm in eval mode
        sigma = torch.dot(u.float(), torch.mv(w.reshape(w.shape[0], -1), v.float()))
        out[base] = w / sigma
    return out


def our_key(key: str) -> str:
    """``style_encoder.model.1.layers.conv.weight`` -> ``enc_style.model.1.conv.weight`` (per domain)."""
    for theirs, ours in _PARTS:
        if key.startswith(theirs):
            key = ours + key[len(theirs) :]
            break
    key = key.replace(".layers.norm.fc.layers.conv.", ".norm.fc.")  # AdaIN's projection
    if key.startswith("mlp."):
        key = key.replace(".layers.conv.", ".fc.")
    return key.replace(".layers.", ".")


def split_domains(state: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """``autoencoder_a.X`` -> ``{'a': {ours(X): ...}}``."""
    out: dict[str, dict[str, Tensor]] = {"a": {}, "b": {}}
    for key, value in state.items():
        for theirs, domain in _DOMAINS.items():
            if key.startswith(theirs):
                out[domain][our_key(key[len(theirs) :])] = value
    return out


def _count(state: Mapping[str, Tensor], template: str, start: int = 0) -> int:
    n = 0
    while template.format(start + n) in state:
        n += 1
    return n


def _content_shape(a: Mapping[str, Tensor], b: Mapping[str, Tensor], prefix: str) -> dict[str, int]:
    dim, channels_a = shape(a, "a", "enc_content.model.0.conv.weight", prefix)[:2]
    channels_b = shape(b, "b", "enc_content.model.0.conv.weight", prefix)[1]
    n_down = _count(a, "enc_content.model.{}.conv.weight", 1)
    if n_down == 0:
        raise CheckpointError(f"{prefix}no downsampling convs under content_encoder.model")
    n_res = _count(a, "enc_content.model.{}.conv_block_0.conv.weight", n_down + 1)
    # The cap only shows when it was reached; the last encoder width is a cap that changes nothing otherwise.
    max_dim = shape(a, "a", f"enc_content.model.{n_down}.conv.weight", prefix)[0]
    return {"dim": dim, "channels_a": channels_a, "channels_b": channels_b, "n_downsample": n_down,
            "n_res": n_res, "max_dim": max_dim}  # fmt: skip


def convert_imaginaire(obj: Any, kind: Kind, prefix: str) -> tuple[Any, dict[str, Tensor], str]:
    """A loaded imaginaire checkpoint -> (arch, our state dict, which copy was used)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{prefix}expected a dict, got {type(obj).__name__}")
    state, copy = generator_state(obj, prefix)
    states = split_domains(state)
    a, b = states["a"], states["b"]
    found = "munit" if "enc_style.model.0.conv.weight" in a else "unit"
    if found != kind:
        raise CheckpointError(f"{prefix}this is an imaginaire {found.upper()} checkpoint; convert it with --from {found}")
    geometry = _content_shape(a, b, prefix)
    reference: nn.Module
    if kind == "munit":
        from i2icli.methods.munit import STYLE_ENCODER_DOWNSAMPLE, MunitArch, MunitModel

        style_convs = _count(a, "enc_style.model.{}.conv.weight")  # 7x7 + the stride-2 convs
        if style_convs - 1 != STYLE_ENCODER_DOWNSAMPLE:
            raise CheckpointError(
                f"{prefix}style encoder downsamples {style_convs - 1} times; i2i supports {STYLE_ENCODER_DOWNSAMPLE}"
            )
        arch: Any = MunitArch(
            variant="imaginaire",
            style_dim=shape(a, "a", f"enc_style.model.{style_convs + 1}.weight", prefix)[0],
            mlp_dim=shape(a, "a", "mlp.model.0.fc.weight", prefix)[0],
            mlp_blocks=_count(a, "mlp.model.{}.fc.weight"),
            **geometry,
        )
        with torch.device("meta"):  # shapes only
            reference = MunitModel(arch)
    else:
        from i2icli.methods.unit import UnitArch, UnitModel

        arch = UnitArch(variant="imaginaire", n_shared=0, **geometry)
        with torch.device("meta"):
            reference = UnitModel(arch)
    converted = map_generators(states, reference, (nn.InstanceNorm2d,), prefix)
    return arch, converted, copy


def convert_loaded(obj: Any, kind: Kind, path: object) -> Converted | None:
    """``Method.convert`` for a file already read: the ``Converted`` model of an imaginaire
    checkpoint, or None when ``obj`` is not one (the method's own converter then reads it)."""
    if not is_imaginaire(obj):
        return None
    arch, state, copy = convert_imaginaire(obj, kind, f"{path}: imaginaire checkpoint: ")
    return Converted(arch, state, summary(arch, copy))


def summary(arch: Any, copy: str) -> str:
    """One line for ``i2i convert``."""
    extra = f", style {arch.style_dim}, mlp {arch.mlp_dim}x{arch.mlp_blocks}" if hasattr(arch, "style_dim") else ""
    return (
        f"imaginaire generator ({copy}) a2b, b2a; dim {arch.dim} (max {arch.max_dim}), "
        f"{arch.n_downsample} downsamplings, {arch.n_res} res blocks{extra}"
    )


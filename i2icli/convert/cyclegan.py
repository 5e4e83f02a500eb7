"""Official CycleGAN generator files (``latest_net_G_A.pth``, released ``horse2zebra.pth``, ...) -> i2i.

Each official file holds one ``ResnetGenerator`` state dict whose keys are ``model.<index>.*``
(official CycleGAN models/base_model.py save_networks). Our ``ResnetGenerator`` keeps that layout, so conversion is a filter:
strip a ``module.`` prefix, drop stale instance-norm running statistics of old releases, infer
(ngf, blocks, dropout, channels) from the keys, and refuse any key the layout does not know.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from i2icli.checkpoint import safe_torch_load
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.base import Converted
from i2icli.methods.cyclegan import CycleGANArch, CycleGANModel
from i2icli.nn.resnet import ResnetGenerator

_STALE_NORM = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")
_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.")


def load_official(path: Path) -> dict[str, torch.Tensor]:
    """Read an official ``.pth`` with ``weights_only=True`` (never a full unpickle)."""
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a generator state_dict (a mapping of tensors)")
    return dict(obj)


def generator_arch(state: dict[str, torch.Tensor], where: Path) -> tuple[int, int, int, int, bool]:
    """(in_ch, out_ch, ngf, n_blocks, dropout) read off the keys and shapes of a generator state dict."""
    if "model.1.weight" not in state:
        raise CheckpointError(f"{where}: no 'model.1.weight'; not a CycleGAN ResnetGenerator")
    ngf, in_ch = state["model.1.weight"].shape[:2]
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    n_blocks = len(blocks)
    if blocks != set(range(10, 10 + n_blocks)):
        raise CheckpointError(f"{where}: residual blocks at unexpected indices {sorted(blocks)}")
    dropout = any(_BLOCK.match(k) and k.split(".")[3] == "6" for k in state)
    last = f"model.{17 + n_blocks}.weight"
    if last not in state:
        raise CheckpointError(f"{where}: missing key {last!r} (the final 7x7 conv for {n_blocks} blocks)")
    out_ch = state[last].shape[0]
    return int(in_ch), int(out_ch), int(ngf), n_blocks, dropout


def clean(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DataParallel's ``module.`` prefix and drop old instance-norm running statistics."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if not _STALE_NORM.search(key):
            out[key] = value
    return out


def check_keys(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], where: Path) -> None:
    """Every key must exist in the reference layout with the same shape, and none may be missing."""
    for key, value in state.items():
        if key not in reference:
            raise CheckpointError(f"{where}: unmapped key {key!r}")
        if tuple(value.shape) != tuple(reference[key].shape):
            raise CheckpointError(f"{where}: key {key!r} has shape {tuple(value.shape)}, expected {tuple(reference[key].shape)}")
    missing = [k for k in reference if k not in state]
    if missing:
        raise CheckpointError(f"{where}: missing key {missing[0]!r}")


def load_generators(files: Sequence[Path], method: str, roles: tuple[str, str]) -> tuple[list[Path], list[dict[str, torch.Tensor]]]:
    """The paths and cleaned state dicts of one or two official generator files in this key layout
    (the forks GcGAN and DistanceGAN); ``roles`` names the first and the optional second file."""
    if len(files) not in (1, 2):
        raise UsageError(f"convert --from {method}: expected 1 file ({roles[0]}) or 2 ({roles[0]}, {roles[1]}), got {len(files)}")
    paths = [Path(f) for f in files]
    return paths, [clean(load_official(p)) for p in paths]


def convert_cyclegan(gen_ab: Path, gen_ba: Path | None = None) -> CycleGANModel:
    """One official generator file (a2b only) or two (a2b and b2a) -> a ``CycleGANModel`` with the weights."""
    files = {"gen_ab": gen_ab} | ({"gen_ba": gen_ba} if gen_ba is not None else {})
    states = {name: clean(load_official(path)) for name, path in files.items()}
    archs = {name: generator_arch(states[name], files[name]) for name in states}
    in_ch, out_ch, ngf, n_blocks, dropout = archs["gen_ab"]
    if gen_ba is not None:
        b_in, b_out, *rest = archs["gen_ba"]
        if (b_in, b_out) != (out_ch, in_ch) or tuple(rest) != (ngf, n_blocks, dropout):
            raise CheckpointError(f"{gen_ba}: its architecture {archs['gen_ba']} does not mirror {gen_ab}'s {archs['gen_ab']}")
    arch = CycleGANArch(
        channels_a=in_ch, channels_b=out_ch, ngf=ngf, n_blocks=n_blocks, dropout=dropout,
        directions=("a2b", "b2a") if gen_ba is not None else ("a2b",),
    )  # fmt: skip
    model = CycleGANModel(arch)
    for name, state in states.items():
        target: ResnetGenerator = model.gen_ab if name == "gen_ab" else model.gen_ba  # type: ignore[assignment]
        check_keys(state, target.state_dict(), files[name])
        target.load_state_dict(state, strict=True)
    return model.eval()


def convert_official(files: Sequence[Path]) -> Converted:
    """``INFO.converter``: official ``latest_net_G_A.pth`` [+ ``latest_net_G_B.pth``] -> our two-generator model."""
    if not 1 <= len(files) <= 2:
        raise UsageError(f"cyclegan: expected the a->b generator and optionally the b->a one, got {len(files)} files")
    model = convert_cyclegan(files[0], files[1] if len(files) == 2 else None)
    summary = f"{', '.join(model.directions)}; ngf {model.arch.ngf}, {model.arch.n_blocks} blocks"
    return Converted(model.arch, model.state_dict(), summary)

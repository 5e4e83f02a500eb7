"""Official DistanceGAN generator files (``<epoch>_net_G_A.pth``, ``<epoch>_net_G_B.pth``) -> i2i.

The fork's CycleGAN-architecture generator (docs/methods/distancegan.md) has no reflection pads, so its indices
are shifted against CycleGAN's: first conv ``model.0``, affine norms ``model.1/4/7`` (weight and
bias), blocks at ``model.9..`` with ``conv_block.{0,1,3,4}``, ConvTs at ``model.(9+n)`` and
``model.(12+n)``, last conv ``model.(15+n)`` (``model.24`` for 9 blocks). Our ``ResnetGenerator``
built with ``padding="zero", affine=True`` has exactly that layout, so conversion is a filter:
strip ``module.``, drop instance-norm running statistics, infer the shapes, refuse unknown keys.
A file in the modern CycleGAN layout (``model.1`` a conv) converts to ``generator="resnet"``.
Official netG_A translates a -> b (``gen_ab``) and netG_B b -> a (``gen_ba``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import torch

from i2icli.convert.cyclegan import check_keys, generator_arch, load_generators
from i2icli.errors import CheckpointError
from i2icli.methods.base import Converted
from i2icli.methods.distancegan import DistanceGANArch, DistanceGANModel, GeneratorKind

_BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")

Layout = tuple[int, int, int, int, bool, GeneratorKind]  # in, out, ngf, blocks, dropout, generator kind


def _layout_2017(state: dict[str, torch.Tensor], where: Path) -> Layout:
    """(in, out, ngf, blocks, dropout, "resnet2017") of a zero-padded, affine-IN generator."""
    ngf, in_ch = state["model.0.weight"].shape[:2]
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    n_blocks = len(blocks)
    if blocks != set(range(9, 9 + n_blocks)):
        raise CheckpointError(f"{where}: residual blocks at unexpected indices {sorted(blocks)} (expected from model.9)")
    # Without dropout conv_block.3 is the second conv (4-D); with it conv_block.3 is the Dropout.
    dropout = "model.9.conv_block.3.weight" not in state
    last = f"model.{15 + n_blocks}.weight"
    if last not in state:
        raise CheckpointError(f"{where}: missing key {last!r} (the final 7x7 conv for {n_blocks} blocks)")
    return int(in_ch), int(state[last].shape[0]), int(ngf), n_blocks, dropout, "resnet2017"


def generator_layout(state: dict[str, torch.Tensor], where: Path) -> Layout:
    """Tell the 2017 layout (``model.0`` is the first conv) from the CycleGAN one and read its shapes."""
    first = state.get("model.0.weight")
    if first is not None and first.dim() == 4:
        return _layout_2017(state, where)
    return (*generator_arch(state, where), "resnet")


def convert_official(files: Sequence[Path]) -> Converted:
    """netG_A (a2b) and optionally netG_B (b2a) -> a ``DistanceGANModel`` state dict."""
    paths, states = load_generators(files, "distancegan", ("G_A", "G_B"))
    layouts = [generator_layout(s, p) for s, p in zip(states, paths)]
    in_ch, out_ch, ngf, n_blocks, dropout, kind = layouts[0]
    if len(layouts) == 2:
        b_in, b_out, *rest = layouts[1]
        if (b_in, b_out) != (out_ch, in_ch) or tuple(rest) != (ngf, n_blocks, dropout, kind):
            raise CheckpointError(f"{paths[1]}: its architecture {layouts[1]} does not mirror {paths[0]}'s {layouts[0]}")
    directions = ("a2b", "b2a")[: len(paths)]
    arch = DistanceGANArch(
        channels_a=in_ch, channels_b=out_ch, ngf=ngf, n_blocks=n_blocks, generator=kind, dropout=dropout,
        directions=directions,
    )  # fmt: skip
    reference = DistanceGANModel(arch).state_dict()
    state: dict[str, torch.Tensor] = {}
    for prefix, part, path in zip(("gen_ab.", "gen_ba."), states, paths):
        check_keys(part, {k.removeprefix(prefix): v for k, v in reference.items() if k.startswith(prefix)}, path)
        state |= {prefix + k: v for k, v in part.items()}
    summary = f"{', '.join(directions)}; {kind}, ngf {ngf}, {n_blocks} blocks" + (", dropout" if dropout else "")
    return Converted(arch, state, summary)

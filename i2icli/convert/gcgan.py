"""Official GcGAN generator files (``<epoch>_net_G_AB.pth``) -> i2i.

GcGAN is a 2018 fork of the CycleGAN code: its generator state dicts use the CycleGAN key layout
(``model.<index>.*``, docs/methods/cyclegan.md#checkpoints, docs/methods/gcgan.md), so this is the CycleGAN filter plus GcGAN's file
roles. One file is the shared generator of ``gc_gan_share``. Two files are ``gc_gan_cross``'s
G_AB and G_gc_AB; note that the official cross model saves netG_AB under both names, so official
cross files usually hold the same generator twice (the summary says so when they do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from i2icli.convert.cyclegan import check_keys, generator_arch, load_generators
from i2icli.errors import CheckpointError
from i2icli.methods.base import Converted
from i2icli.methods.gcgan import GcGANArch, GcGANModel


def convert_official(files: Sequence[Path]) -> Converted:
    """G_AB (and optionally a cross variant's G_gc_AB) -> a one-sided ``GcGANModel`` state dict."""
    paths, states = load_generators(files, "gcgan", ("G_AB", "G_gc_AB"))
    archs = [generator_arch(s, p) for s, p in zip(states, paths)]
    in_ch, out_ch, ngf, n_blocks, dropout = archs[0]
    if dropout:
        raise CheckpointError(f"{paths[0]}: a generator with dropout layers; GcGAN is trained with --no_dropout")
    if len(archs) == 2 and archs[1] != archs[0]:
        raise CheckpointError(f"{paths[1]}: its architecture {archs[1]} differs from {paths[0]}'s {archs[0]}")
    cross = len(paths) == 2
    arch = GcGANArch(channels_a=in_ch, channels_b=out_ch, ngf=ngf, n_blocks=n_blocks, variant="cross" if cross else "share")
    reference = GcGANModel(arch).state_dict()
    state: dict[str, torch.Tensor] = {}
    for prefix, part, path in zip(("gen_ab.", "gen_ab_gc."), states, paths):
        check_keys(part, {k.removeprefix(prefix): v for k, v in reference.items() if k.startswith(prefix)}, path)
        state |= {prefix + k: v for k, v in part.items()}
    summary = f"a2b (one-sided), {arch.variant}; ngf {ngf}, {n_blocks} blocks"
    if cross and all(torch.equal(states[0][k], states[1][k]) for k in states[0]):
        summary += "; both files hold the same generator (the official gc_gan_cross saves netG_AB twice)"
    return Converted(arch, state, summary)

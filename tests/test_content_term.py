"""The labelled content term (CycleGAN, GcGAN, DistanceGAN): off in the papers' recipes, and when on,
exactly ``lambda_content`` x L1 between the input and its translation after grey average pooling."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from test_methods import FixedBatch

from i2icli.methods import load_method

# (method, test preset with the term on, {scalar name: (source domain, the generator it translates with)});
# GcGAN's b -> a generator exists only in training (its cycle variant), so it lives on the objective.
CASES = [
    ("cyclegan", "tiny-options", {"content_a": ("a", lambda m, o: m.gen_ab), "content_b": ("b", lambda m, o: m.gen_ba)}),
    ("gcgan", "cycle-content", {"content_ab": ("a", lambda m, o: m.gen_ab), "content_ba": ("b", lambda m, o: o.gen_ba)}),
    ("distancegan", "content", {"content_ab": ("a", lambda m, o: m.gen_ab), "content_ba": ("b", lambda m, o: m.gen_ba)}),
]


def _by_hand(x: torch.Tensor, y: torch.Tensor, pool: int) -> torch.Tensor:
    """The term's definition written out: grey (channel mean), pool x pool average, mean |difference|."""
    gx = F.avg_pool2d(x.mean(1, keepdim=True), pool, ceil_mode=True)
    gy = F.avg_pool2d(y.mean(1, keepdim=True), pool, ceil_mode=True)
    return (gx - gy).abs().mean()


@pytest.mark.parametrize(("name", "preset_name", "scalars"), CASES, ids=[c[0] for c in CASES])
def test_content_term_is_its_definition_and_off_by_default(name: str, preset_name: str, scalars: dict) -> None:
    method = load_method(name)
    assert method.presets["paper"].config.lambda_content == 0  # the papers' recipes do not have it
    assert method.presets["cpu-fast"].config.lambda_content == 10  # the labelled CPU recipe does
    preset = method.test_presets[preset_name]
    data = FixedBatch(preset)
    batch = data[0]

    def build(weight: float):  # the same seeded initial weights for both
        cfg = dataclasses.replace(preset.config, lambda_content=weight, content_pool=2)
        torch.manual_seed(0)
        model = method.build_model(cfg.arch)
        objective = method.build_objective(cfg, model, data, 0)
        for stage in objective.stages():  # e.g. DistanceGAN fits its distance statistics first
            if stage.start == 0 and stage.enter is not None:
                stage.enter(data)
        return model, objective

    model, objective = build(2.5)
    on = objective.generator_loss(batch, {})
    with torch.no_grad():
        for key, (src, generator) in scalars.items():
            want = 2.5 * _by_hand(batch[src], generator(model, objective)(batch[src]), 2)
            assert float(on.scalars[key]) == pytest.approx(float(want), rel=1e-5), key
    off = build(0.0)[1].generator_loss(batch, {})
    assert not any(k.startswith("content_") for k in off.scalars)
    # The term is part of the loss the generators minimise.
    terms = sum(float(on.scalars[k].detach()) for k in scalars)
    assert float(on.loss.detach()) - float(off.loss.detach()) == pytest.approx(terms, rel=1e-4)

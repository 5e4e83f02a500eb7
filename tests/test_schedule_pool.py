"""Learning-rate schedule shape and the image pool's behaviour."""

from __future__ import annotations

import torch

from i2icli.train.pool import ImagePool
from i2icli.train.schedule import linear_decay, step_decay


def test_linear_decay_matches_the_official_epoch_rule() -> None:
    # Official: 100 + 100 epochs, lr(e) = 1 - max(0, e - 100) / 101 for 1-indexed epochs.
    factors = [linear_decay(s, 200) for s in range(200)]
    assert factors[:100] == [1.0] * 100
    assert factors[100] == 1 - 1 / 101 and abs(factors[-1] - 1 / 101) < 1e-12
    assert all(a > b for a, b in zip(factors[99:], factors[100:]))


def test_step_decay_halves_every_step_size() -> None:
    assert [step_decay(s, 100) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]


def test_pool_fills_then_mixes_history() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given
    new = torch.full((64, 1, 1, 1), -1.0)
    out = pool.query(new)
    old = (out >= 0).sum().item()
    assert 0 < old <= 4 and (out == -1).sum().item() == 64 - old  # about half would be swapped, capped by history
    assert len(pool.images) == 4
    state = pool.state_dict()
    other = ImagePool(4)
    other.load_state_dict(state, torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(pool.images, other.images))
    assert torch.equal(ImagePool(0).query(new), new)

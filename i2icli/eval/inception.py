"""Inception-v3 pool features (2048-d) in the layout of pytorch-fid's ``pt_inception-2015-12-05``.

True FID compares against published numbers only when computed with the TensorFlow Inception graph
of 2015-12-05, which pytorch-fid ported. That port is torchvision's ``Inception3`` with
``num_classes=1008``, no aux head, and four block variants that reproduce TensorFlow's pooling:

- ``Mixed_5b/5c/5d`` (A), ``Mixed_6b..6e`` (C) and ``Mixed_7b`` (E): the pool branch averages
  only real pixels (``count_include_pad=False``), as TensorFlow's average pool does;
- ``Mixed_7c`` (E): the pool branch is a 3x3 *max* pool, a quirk of that graph.

What was verified: the module names, block arguments and the four pooling patches were checked
against pytorch-fid's ``src/pytorch_fid/inception.py``, which loads its weight file strictly into
exactly this structure, so a state dict saved from pytorch-fid's ``fid_inception_v3()`` uses the
keys of ``build_fid_inception().state_dict()``. What was not: no run against the real weights (none
exist offline here), so equality of features with pytorch-fid is untested. Weights are never
downloaded; ``load_fid_inception`` reads a file the user supplies.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from torchvision.models import inception_v3
from torchvision.models.inception import Inception3, InceptionA, InceptionC, InceptionE

from i2icli.errors import CheckpointError, UsageError

INPUT_SIZE = 299


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 3x3 'SAME' average pool divides by the number of real pixels, not 9, at borders.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """Inception-A block whose pool branch ignores zero padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class FIDInceptionC(InceptionC):
    """Inception-C block whose pool branch ignores zero padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        b7d = self.branch7x7dbl_3(self.branch7x7dbl_2(b7d))
        b7d = self.branch7x7dbl_5(self.branch7x7dbl_4(b7d))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, b7d, bp], dim=1)


class FIDInceptionE(InceptionE):
    """Inception-E block with TensorFlow's pooling: padding-free average, or max for ``Mixed_7c``."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], dim=1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], dim=1)


def build_fid_inception() -> Inception3:
    """Randomly initialised Inception3 with the FID blocks; its state dict keys match pytorch-fid's file."""
    # 1008 classes: the TF graph's softmax had 1008 outputs, so its fc weight is (1008, 2048).
    net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE(1280, max_pool=False)
    net.Mixed_7c = FIDInceptionE(2048, max_pool=True)
    return net


class FIDInceptionFeatures(nn.Module):
    """Images (B, 3 or 1, H, W) in [0, 1] -> pool features (B, 2048), as pytorch-fid computes them."""

    def __init__(self, net: Inception3) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grayscale -> RGB, as an image viewer would show it
        n = self.net
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1  # (B, 3, 299, 299) in [-1, 1], the range the TF graph was trained on
        x = n.maxpool1(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))))  # (B, 64, 73, 73)
        x = n.maxpool2(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)))  # (B, 192, 35, 35)
        x = n.Mixed_5d(n.Mixed_5c(n.Mixed_5b(x)))  # (B, 288, 35, 35)
        x = n.Mixed_6e(n.Mixed_6d(n.Mixed_6c(n.Mixed_6b(n.Mixed_6a(x)))))  # (B, 768, 17, 17)
        x = n.Mixed_7c(n.Mixed_7b(n.Mixed_7a(x)))  # (B, 2048, 8, 8)
        return n.avgpool(x).flatten(1)  # (B, 2048)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    from i2icli.checkpoint import safe_torch_load

    state = safe_torch_load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def _check_keys(path: Path, expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> None:
    # Files saved before BatchNorm counted batches lack num_batches_tracked; load_state_dict fills it.
    missing = sorted(k for k in expected.keys() - given.keys() if not k.endswith("num_batches_tracked"))
    unexpected = sorted(given.keys() - expected.keys())
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not a pt_inception-2015-12-05 state dict "
            f"({len(missing)} missing keys, e.g. {missing[:3]}; {len(unexpected)} unexpected, e.g. {unexpected[:3]})"
        )
    for key, value in given.items():
        if value.shape != expected[key].shape:
            raise CheckpointError(
                f"{path}: key {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )


def load_fid_inception(path: str | Path) -> FIDInceptionFeatures:
    """Feature extractor with weights from ``path`` (``.safetensors``, else a ``torch.save`` state dict).

    Loading is strict, in eval mode, with gradients off; the file is read with ``weights_only=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: Inception weights file not found (pass pt_inception-2015-12-05 weights)")
    try:
        state = _read_state_dict(path)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: cannot read weights ({str(err).removeprefix(f'{path}: ')})") from None
    except (RuntimeError, OSError, ValueError, pickle.UnpicklingError, SafetensorError) as err:
        raise CheckpointError(f"{path}: cannot read weights ({str(err).splitlines()[0]})") from err
    net = build_fid_inception()
    _check_keys(path, net.state_dict(), state)
    net.load_state_dict(state, strict=True)
    return FIDInceptionFeatures(net).eval().requires_grad_(False)

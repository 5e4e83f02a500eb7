"""VGG16 features for MUNIT's domain-invariant perceptual loss (MUNIT paper §4; official MUNIT utils.py vgg_preprocess).

Huang et al., ECCV 2018, https://arxiv.org/abs/1804.04732 (official loss: NVlabs/MUNIT
``trainer.compute_vgg_loss``). The extractor runs VGG16 up to relu5_3 *without* the max-pool
after conv4_3, so its features are at 1/8 of the input resolution. The loss compares instance-
normalised features, which removes each image's domain-specific feature mean and variance.

No VGG weights ship with i2i or with torchvision here, so the weights always come from a file the
user names. Accepted layouts (by key name):

    ``features.<i>.weight``   a whole torchvision ``vgg16`` state dict (``classifier.*`` ignored)
    ``<i>.weight``            ``vgg16().features.state_dict()``
    ``conv1_1.weight``        the official MUNIT ``vgg16.weight`` (converted Caffe weights)

The input transform must match how the weights were trained: ``caffe`` (official: RGB -> BGR,
[-1, 1] -> [0, 255], minus the Caffe channel means) or ``torchvision`` ([0, 1] RGB normalised by the
ImageNet mean and std).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2icli.errors import CheckpointError, UsageError

VggInput = Literal["caffe", "torchvision"]

# (name, in, out) of the 13 convs, with the torchvision ``features`` index of each; a max-pool
# follows conv1_2, conv2_2 and conv3_3 (not conv4_3, as in the official extractor).
_CONVS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 0, 3, 64), ("conv1_2", 2, 64, 64),
    ("conv2_1", 5, 64, 128), ("conv2_2", 7, 128, 128),
    ("conv3_1", 10, 128, 256), ("conv3_2", 12, 256, 256), ("conv3_3", 14, 256, 256),
    ("conv4_1", 17, 256, 512), ("conv4_2", 19, 512, 512), ("conv4_3", 21, 512, 512),
    ("conv5_1", 24, 512, 512), ("conv5_2", 26, 512, 512), ("conv5_3", 28, 512, 512),
)  # fmt: skip
_POOL_AFTER = frozenset({"conv1_2", "conv2_2", "conv3_3"})
_TORCHVISION_NAMES = {index: name for name, index, _, _ in _CONVS}

# Caffe VGG16 channel means in BGR order, on the 0..255 scale (official ``vgg_preprocess``).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.680)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VggFeatures(nn.Module):
    """Frozen VGG16 trunk: image in [-1, 1] (B, 3, H, W) -> relu5_3 features (B, 512, H/8, W/8)."""

    def __init__(self, preprocess: VggInput = "caffe") -> None:
        super().__init__()
        if preprocess not in ("caffe", "torchvision"):
            raise ValueError(f"unknown VGG preprocessing {preprocess!r}")
        self.preprocess = preprocess
        self.convs = nn.ModuleDict({name: nn.Conv2d(cin, cout, 3, 1, 1) for name, _, cin, cout in _CONVS})
        self.requires_grad_(False)
        self.eval()

    def prepare(self, x: Tensor) -> Tensor:
        """[-1, 1] RGB -> the input scale and channel order the weights were trained on."""
        if self.preprocess == "caffe":
            bgr = x.flip(1)  # (B, 3, H, W): RGB -> BGR
            mean = torch.tensor(_CAFFE_MEAN_BGR, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
            return (bgr + 1) * 127.5 - mean
        mean = torch.tensor(_IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return ((x + 1) / 2 - mean) / std

    def forward(self, x: Tensor) -> Tensor:
        h = self.prepare(x)
        for name, conv in self.convs.items():
            h = F.relu(conv(h))
            if name in _POOL_AFTER:
                h = F.max_pool2d(h, kernel_size=2, stride=2)
        return h  # relu5_3


def vgg_loss(vgg: VggFeatures, x: Tensor, y: Tensor) -> Tensor:
    """Domain-invariant perceptual loss: ``mean((IN(vgg(x)) - IN(vgg(y)))^2)``, IN non-affine, eps 1e-5.

    Gray images (1 channel) are repeated to 3 channels first.
    """
    fx = F.instance_norm(vgg(_to_rgb(x)), eps=1e-5)  # (B, 512, H/8, W/8)
    fy = F.instance_norm(vgg(_to_rgb(y)), eps=1e-5)
    return (fx - fy).square().mean()


def _to_rgb(x: Tensor) -> Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def _read_state_dict(path: Path) -> dict[str, object]:
    """Tensors of a ``.safetensors`` file, or a torch file read with ``weights_only=True``."""
    where = f"--vgg-weights {path}"
    if not path.is_file():
        raise UsageError(f"{where}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        from i2icli.checkpoint import safe_torch_load

        obj = safe_torch_load(path)
    except CheckpointError as e:
        raise UsageError(f"{where}: not a readable weights file ({str(e).removeprefix(f'{path}: ')})") from None
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{where}: not a readable weights file ({first})") from None
    if not isinstance(obj, dict):
        raise UsageError(f"{where}: expected a state dict, got {type(obj).__name__}")
    return obj


def _our_name(key: str) -> str | None:
    """Our ``convs.<name>.<param>`` for a key of an accepted layout; None for ignored keys.

    Any other key comes back unchanged (our own layout then matches; anything else is unknown).
    """
    if key.startswith("classifier."):
        return None  # the fully connected head of a whole torchvision vgg16
    prefix, _, param = key.rpartition(".")
    prefix = prefix.removeprefix("features.")
    if prefix.isdigit() and int(prefix) in _TORCHVISION_NAMES:
        return f"convs.{_TORCHVISION_NAMES[int(prefix)]}.{param}"
    if prefix in _TORCHVISION_NAMES.values():
        return f"convs.{prefix}.{param}"
    return key


def load_vgg16_features(path: str | os.PathLike[str], preprocess: VggInput = "caffe") -> VggFeatures:
    """Build the frozen relu5_3 extractor from a VGG16 weights file (see the module docstring).

    A missing or unreadable file, an unknown or missing key, or a wrong shape is a ``UsageError``
    whose one line names the file and the key.
    """
    file = Path(path)
    state = _read_state_dict(file)
    net = VggFeatures(preprocess)
    expected = net.state_dict()
    converted: dict[str, Tensor] = {}
    for key, value in state.items():
        ours = _our_name(key)
        if ours is None:
            continue
        if ours not in expected:
            raise UsageError(f"--vgg-weights {file}: unexpected key {key!r} (not a VGG16 state dict?)")
        if not isinstance(value, Tensor) or value.shape != expected[ours].shape:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise UsageError(
                f"--vgg-weights {file}: key {key!r} has shape {shape}, VGG16 needs {tuple(expected[ours].shape)}"
            )
        converted[ours] = value
    missing = [k for k in expected if k not in converted]
    if missing:
        first = missing[0].removeprefix("convs.")
        raise UsageError(f"--vgg-weights {file}: no weights for {first} ({len(missing)} VGG16 tensors missing)")
    net.load_state_dict({k: v.float() for k, v in converted.items()})
    return net

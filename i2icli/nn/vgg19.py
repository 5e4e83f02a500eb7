"""VGG19 features for TransGaGa's appearance-consistency (Gram) loss (docs/methods/transgaga.md).

Wu et al., CVPR 2019, https://arxiv.org/abs/1904.09571: the Gram matrices of VGG19 features of
the source image and of its translation are pulled together. The layers (relu1_1, relu2_1,
relu3_1, relu4_1) and the ImageNet input normalisation are our default (the paper's list is not
retrievable). Only the convs up to conv4_1 are built and read.

No VGG weights ship with i2i; the file comes from the user (``--vgg19-weights``), in the
torchvision layout: a whole ``vgg19`` state dict (``features.<i>.weight``; ``classifier.*`` and the
convs after conv4_1 are ignored) or ``vgg19().features.state_dict()`` (``<i>.weight``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2icli.errors import UsageError
from i2icli.nn.vgg import _read_state_dict

# (name, torchvision ``features`` index, in, out) of the convs up to conv4_1; a max-pool follows
# conv1_2, conv2_2 and conv3_4.
_CONVS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 0, 3, 64), ("conv1_2", 2, 64, 64),
    ("conv2_1", 5, 64, 128), ("conv2_2", 7, 128, 128),
    ("conv3_1", 10, 128, 256), ("conv3_2", 12, 256, 256), ("conv3_3", 14, 256, 256), ("conv3_4", 16, 256, 256),
    ("conv4_1", 19, 256, 512),
)  # fmt: skip
_POOL_AFTER = frozenset({"conv1_2", "conv2_2", "conv3_4"})
GRAM_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")  # their ReLU outputs feed the Gram loss
_INDEX_TO_NAME = {index: name for name, index, _, _ in _CONVS}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class Vgg19Features(nn.Module):
    """Frozen VGG19 trunk: image in [-1, 1] (B, 1 or 3, H, W) -> [relu1_1, relu2_1, relu3_1, relu4_1]."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleDict({name: nn.Conv2d(cin, cout, 3, 1, 1) for name, _, cin, cout in _CONVS})
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        mean = torch.tensor(_IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(_IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        h = ((x + 1) / 2 - mean) / std
        out = []
        for name, conv in self.convs.items():
            h = F.relu(conv(h))
            if name in GRAM_LAYERS:
                out.append(h)
            if name in _POOL_AFTER:
                h = F.max_pool2d(h, 2, 2)
        return out


def load_vgg19_features(path: str | os.PathLike[str]) -> Vgg19Features:
    """The frozen extractor from a torchvision-layout VGG19 file; a bad file is one ``UsageError`` line."""
    file = Path(path)
    where = f"--vgg19-weights {file}"
    state = _read_state_dict(file)
    net = Vgg19Features()
    expected = net.state_dict()
    converted: dict[str, Tensor] = {}
    for key, value in state.items():
        prefix, _, param = key.removeprefix("features.").rpartition(".")
        if key.startswith("classifier."):
            continue
        if not prefix.isdigit():
            raise UsageError(f"{where}: unexpected key {key!r} (not a torchvision VGG19 state dict?)")
        if int(prefix) not in _INDEX_TO_NAME:
            if int(prefix) > 19:
                continue  # convs after conv4_1: not used
            raise UsageError(f"{where}: unexpected key {key!r} (not a torchvision VGG19 state dict?)")
        ours = f"convs.{_INDEX_TO_NAME[int(prefix)]}.{param}"
        if not isinstance(value, Tensor) or ours not in expected or value.shape != expected[ours].shape:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            want = tuple(expected[ours].shape) if ours in expected else "nothing"
            raise UsageError(f"{where}: key {key!r} has shape {shape}, VGG19 needs {want}")
        converted[ours] = value
    missing = [k for k in expected if k not in converted]
    if missing:
        raise UsageError(f"{where}: no weights for {missing[0].removeprefix('convs.')} ({len(missing)} tensors missing)")
    net.load_state_dict({k: v.float() for k, v in converted.items()})
    return net

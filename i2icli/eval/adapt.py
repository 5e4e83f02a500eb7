"""Domain-adaptation scoring: a model's class head on labelled images of one domain.

The model must follow the ``Classifier`` protocol (UNIT ``da32``: the target domain's first
discriminator layer, the shared trunk and the class head). Images are resized (bicubic) to the
model's training size, as in training. Labels: a CSV ``filename,label`` or a folder per class
(``i2icli.data.labels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from i2icli.data.labels import read_labels
from i2icli.errors import UsageError
from i2icli.imageio import read_image, to_tensor
from i2icli.inference import LoadedModel


@runtime_checkable
class Classifier(Protocol):
    """A model with a class head for images of either domain."""

    @property
    def n_classes(self) -> int: ...

    def classify(self, x: Tensor, domain: str) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> class logits (B, n_classes)."""
        ...


@dataclass(frozen=True)
class AdaptReport:
    """Accuracy of a class head on labelled images; ``confusion[true][predicted]`` counts images."""

    model: str
    data: str
    domain: str
    n: int
    accuracy: float
    per_class: list[float | None]  # accuracy per true class (None: no image of that class)
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "data": self.data, "domain": self.domain, "n": self.n,
            "accuracy": self.accuracy, "per_class": self.per_class, "confusion": self.confusion,
        }  # fmt: skip


def confusion_matrix(true: Sequence[int], predicted: Sequence[int], n_classes: int) -> list[list[int]]:
    """``m[t][p]``: how many images of class t were predicted as p."""
    m = [[0] * n_classes for _ in range(n_classes)]
    for t, p in zip(true, predicted, strict=True):
        m[t][p] += 1
    return m


def scores(confusion: list[list[int]]) -> tuple[float, list[float | None]]:
    """(overall accuracy, per-class accuracy) from a confusion matrix."""
    total = sum(map(sum, confusion))
    correct = sum(confusion[i][i] for i in range(len(confusion)))
    per_class = [row[i] / sum(row) if sum(row) else None for i, row in enumerate(confusion)]
    return (correct / total if total else 0.0), per_class


def classifier(model: LoadedModel) -> Classifier:
    """The model's network as a ``Classifier``, or a ``UsageError`` saying it has no class head."""
    net = model.net
    if not isinstance(net, Classifier) or net.n_classes < 1:
        raise UsageError(f"{model.path}: a {model.config.method} model has no class head (train UNIT with --preset da32)")
    return net


@torch.inference_mode()
def evaluate_adaptation(
    model: LoadedModel, data: Path, *, domain: str = "b", batch_size: int = 64, ref: str | None = None
) -> AdaptReport:
    """Classify every labelled image of ``data`` as a ``domain`` image and score it."""
    if domain not in ("a", "b"):
        raise UsageError(f"--domain {domain!r}: use a or b")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    net = classifier(model)
    labels = read_labels(data, net.n_classes, option="--data", require_all=False)
    channels = model.channels("a2b" if domain == "a" else "b2a")[0]
    size = model.config.image_size
    files = sorted(labels)
    true, predicted = [labels[f] for f in files], []
    for start in range(0, len(files), batch_size):
        x = torch.stack([_load(f, channels, size) for f in files[start : start + batch_size]]).to(model.device)
        predicted += net.classify(x, domain).argmax(dim=1).tolist()
    confusion = confusion_matrix(true, predicted, net.n_classes)
    accuracy, per_class = scores(confusion)
    return AdaptReport(str(ref or model.path), str(data), domain, len(files), accuracy, per_class, confusion)


def _load(path: Path, channels: int, size: int) -> Tensor:
    image = read_image(path, channels=channels).image
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return to_tensor(image)  # (C, size, size) in [-1, 1]


def confusion_png(confusion: list[list[int]], cell: int = 28) -> Image.Image:
    """A confusion matrix (``AdaptReport.confusion``) as an image: rows = true class, columns =
    predicted; darker = larger share of the row; counts written in each cell."""
    n = len(confusion)
    margin = cell
    img = Image.new("RGB", (margin + n * cell, margin + n * cell), "white")
    draw = ImageDraw.Draw(img)
    for i in range(n):
        draw.text((margin + i * cell + cell // 3, cell // 4), str(i), fill="black")  # predicted
        draw.text((cell // 3, margin + i * cell + cell // 4), str(i), fill="black")  # true
        row_total = sum(confusion[i]) or 1
        for j, count in enumerate(confusion[i]):
            shade = int(255 * (1 - count / row_total))
            box = (margin + j * cell, margin + i * cell, margin + (j + 1) * cell - 1, margin + (i + 1) * cell - 1)
            draw.rectangle(box, fill=(shade, shade, 255), outline=(200, 200, 200))
            if count:
                draw.text((box[0] + 3, box[1] + cell // 4), str(count), fill="black" if shade > 128 else "white")
    return img

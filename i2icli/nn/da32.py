"""The networks of UNIT's digits domain-adaptation variant ``da32`` (the official CoVAE32x32 and
CoDis32x32): batch-norm conv blocks, the learned-variance latent layer, the shared-trunk
discriminator with its class head, and the coordinate channels the encoder input gets. The model
and objective that wire them together: ``methods/unit.py``."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Domain = Literal["a", "b"]
# LeakyReLU slope of the official version_02 and DA code (PyTorch's default); UNIT paper uses it too.
V02_SLOPE = 0.01


class BatchNormBias(nn.Module):
    """Non-affine batch norm followed by a learned per-channel bias (the DA code's BN layers)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x) + self.bias.view(1, -1, 1, 1)


def down(in_ch: int, out_ch: int, kernel: int, stride: int = 2, padding: int | None = None) -> nn.Sequential:
    pad = kernel // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, stride, pad), BatchNormBias(out_ch), nn.LeakyReLU(V02_SLOPE, inplace=True))


def up(in_ch: int, out_ch: int, padding: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, 4, 2, padding), BatchNormBias(out_ch), nn.LeakyReLU(V02_SLOPE, inplace=True))


class GaussianLatent(nn.Module):
    """Learned-variance VAE layer: 1x1 convs to the mean and to σ = softplus(·)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mu = nn.Conv2d(dim, dim, 1)
        self.sigma = nn.Conv2d(dim, dim, 1)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), F.softplus(self.sigma(h))  # (B, Z, h, w) each


class DaClassifier(nn.Module):
    """The DA discriminator without its GAN head: a private conv5 + ReLU + max-pool per domain,
    the shared trunk (3 x [conv5, ReLU, max-pool], dropout 0.1/0.3/0.5/0.5) and the class head.
    ``dim``: channels of the first conv (doubled by each trunk conv)."""

    def __init__(self, channels_a: int, channels_b: int, dim: int, n_classes: int) -> None:
        super().__init__()
        d = dim

        def front(in_ch: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(in_ch, d, 5, 1, 2), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(0.1))

        self.front_a = front(channels_a)
        self.front_b = front(channels_b)
        layers: list[nn.Module] = []
        for i, p in enumerate((0.3, 0.5, 0.5)):
            layers += [nn.Conv2d(d * 2**i, d * 2 ** (i + 1), 5, 1, 2), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(p)]
        self.trunk = nn.Sequential(*layers)
        self.feature_dim = d * 8
        self.class_head = nn.Conv2d(self.feature_dim, n_classes, 2)

    def features(self, x: Tensor, domain: Domain, *, dropout: bool = True) -> Tensor:
        """Image (B, C, H, W) -> shared-trunk features (B, 8·dis_dim, H/16, W/16).

        ``dropout=False`` skips the dropout layers even in training mode: the official code takes
        the feature-consistency features from this dropout-free path.
        """
        return self._trunk(self._front(x, domain), dropout)

    def joint_features(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        """Features of domain-a and domain-b images as one batch (2B, 8·dis_dim, h, w), dropout on.

        As the official discriminator: each domain's first conv, then the two batches joined
        before the first dropout, so each dropout layer draws one mask for both (the random
        draws, and hence a seeded run, match the official code's)."""
        return self._trunk(torch.cat([self._front(x_a, "a"), self._front(x_b, "b")]), True)

    def _front(self, x: Tensor, domain: Domain) -> Tensor:
        return (self.front_a if domain == "a" else self.front_b)[:-1](x)  # conv, ReLU, pool; not its dropout

    def _trunk(self, h: Tensor, dropout: bool) -> Tensor:
        for layer in (self.front_a[-1], *self.trunk):  # front_a[-1]: the first dropout (same p for b)
            if dropout or not isinstance(layer, nn.Dropout):
                h = layer(h)
        return h

    def logits(self, features: Tensor) -> Tensor:
        """Trunk features -> class logits (B, n_classes), averaged over positions beyond 32² inputs."""
        return self.class_head(features).mean(dim=(2, 3))


def with_coords(x: Tensor) -> Tensor:
    """Append the row and column coordinate channels, (i - H/2) / (H/2) in [-1, 1) (the official
    DA code's, in its order: row first): (B, C, H, W) -> (B, C + 2, H, W)."""
    b, _, h, w = x.shape
    ys = ((torch.arange(h, device=x.device, dtype=x.dtype) - h / 2) / (h / 2)).view(1, 1, h, 1).expand(b, 1, h, w)
    xs = ((torch.arange(w, device=x.device, dtype=x.dtype) - w / 2) / (w / 2)).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, ys, xs], dim=1)


def init_da_discriminator(module: nn.Module) -> None:
    """The da32 discriminator's initialisation (the official DA code's): Xavier-uniform with gain √2
    on every conv weight, biases 0.1."""
    # N(0, 0.02) instead shrinks the signal through the 5-conv trunk so much that the class head
    # barely learns in a CPU budget (seen in the issue-8 trials, whose figures were not kept).
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight, gain=2**0.5)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0.1)

"""The history buffer of generated images shown to discriminators (Shrivastava et al., CVPR 2017 §2.3; official CycleGAN util/image_pool.py)."""

from __future__ import annotations

import torch


class ImagePool:
    """Keeps up to ``size`` past fakes; each query returns, per image, a stored one half of the time.

    Randomness comes from the global torch RNG, whose state every training checkpoint saves, so
    a resumed run draws exactly what an uninterrupted one would.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []  # each (C, H, W), detached

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) fresh fakes -> (B, C, H, W) images for the discriminator."""
        if self.size == 0:
            return fakes
        out = []
        for img in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.size, ()))
                out.append(self.images[idx].clone())
                self.images[idx] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict[str, torch.Tensor]:
        images = torch.stack(self.images) if self.images else torch.empty(0)
        return {"images": images.cpu()}

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        images = state["images"]
        self.images = [img.to(device) for img in images] if images.numel() else []

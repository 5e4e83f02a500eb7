"""Make the embedded default ``gcgan-digits`` (GcGAN: plain MNIST digits -> the same digits warped and inverted).

Reproducible: ``python weights/make_gcgan_digits.py [--work DIR]`` (needs ``pip install -e '.[bench]'``):
the geometry benchmark's variant ``gcgan-rot`` on its pair ``mnist-warped``, trained for STEPS
steps; every step and what it writes is in ``weights/geometry_default.py``. Deterministic on CPU
(seed 0, one torch thread) and resumable: run it again after an interruption.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geometry_default import REPO, GeometryDefault, make

STEPS = 3000
MODEL = GeometryDefault(
    name="gcgan-digits",
    variant="gcgan-rot",
    pair="mnist-warped",
    steps=STEPS,
    summary=(
        "GcGAN (the official `gc_gan_share` default, f = 90-degree clockwise rotation) translating plain\n"
        "MNIST digits (domain `mnist`, a) into digits squeezed to 60 % of their width, rotated 35 degrees\n"
        "counter-clockwise and inverted (domain `warped`, b), 32x32 grey. One-sided: a -> b only."
    ),
    reading=(
        "a weak model, published as the honest result of this budget. It has learnt the target's look\n"
        "  (dark ink on light paper, leaning strokes) and beats doing nothing on every metric, but it often\n"
        "  redraws a digit as another one (class kept above) and does not beat the mean page\n"
        "  (target-mean) on PSNR, SSIM or L1. The pair works against GcGAN's assumption: the true map\n"
        "  (an anisotropic squeeze, then a 35-degree rotation) does not commute with a 90-degree rotation\n"
        "  (nor with a flip), so the geometry-consistency term pulls away from the right answer. On the\n"
        "  benchmark's appearance-only pair (mnist-mnistm), where rotation and flip do commute with the\n"
        "  true map, GcGAN keeps the digit in 70-78 % of its outputs (`benchmarks/RESULTS.md`).\n"
        "  `distancegan-digits` is the better model for this pair. A small demonstration, not a general\n"
        "  image translator."
    ),
    script="make_gcgan_digits.py",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "make-gcgan-digits")
    make(MODEL, parser.parse_args().work)


if __name__ == "__main__":
    main()

"""Make the embedded default ``distancegan-digits`` (DistanceGAN: plain MNIST digits -> the same digits warped and inverted).

Reproducible: ``python weights/make_distancegan_digits.py [--work DIR]`` (needs ``pip install -e '.[bench]'``):
the geometry benchmark's variant ``distancegan-pairwise`` on its pair ``mnist-warped``, trained for STEPS
steps; every step and what it writes is in ``weights/geometry_default.py``. Deterministic on CPU
(seed 0, one torch thread) and resumable: run it again after an interruption.
"""

from __future__ import annotations

import geometry_default
from geometry_default import GeometryDefault

STEPS = 3000
MODEL = GeometryDefault(
    name="distancegan-digits",
    variant="distancegan-pairwise",
    pair="mnist-warped",
    steps=STEPS,
    summary=(
        "DistanceGAN translating plain MNIST digits (domain `mnist`, a) and digits squeezed to 60 % of\n"
        "their width, rotated 35 degrees counter-clockwise and inverted (domain `warped`, b), 32x32 grey,\n"
        "both directions: one generator per direction trained with the normalised pairwise-distance loss\n"
        "(no cycle term), the official DistanceGAN default."
    ),
    reading=(
        "learns the fixed warp and the inversion in both directions from unpaired digits: its outputs\n"
        "  line up with the true warped (or unwarped) digit, the digit judges read them almost as well as\n"
        "  real images, and PSNR/SSIM are well above both baselines. Thin strokes sometimes break (a 4\n"
        "  can lose its crossbar) and stroke ends blur. It knows this one synthetic warp of MNIST-like\n"
        "  digits at 32 px: a small demonstration of distance-preserving one-sided translation, not a\n"
        "  general image translator."
    ),
    script="make_distancegan_digits.py",
)


def main() -> None:
    geometry_default.main(MODEL, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()

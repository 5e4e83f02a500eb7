"""Make the embedded default ``transgaga-digits`` (TransGaGa: plain MNIST digits -> the same digits warped and inverted).

Reproducible: ``python weights/make_transgaga_digits.py [--work DIR]`` (needs ``pip install -e '.[bench]'``):
the geometry benchmark's variant ``transgaga-equiv`` (``equiv_w=50``: the labelled stage-1 equivariance
term) on its pair ``mnist-warped``, trained for STEPS steps; every step and what it writes is in
``weights/geometry_default.py``. Deterministic on CPU (seed 0, one torch thread) and resumable: run it
again after an interruption.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from geometry_default import REPO, GeometryDefault, make

STEPS = 3000
MODEL = GeometryDefault(
    name="transgaga-digits",
    variant="transgaga-equiv",
    pair="mnist-warped",
    steps=STEPS,
    summary=(
        "TransGaGa (this package's reconstruction of the paper, docs/methods/transgaga.md: no official code exists)\n"
        "translating plain MNIST digits (domain `mnist`, a) and digits squeezed to 60 % of their width,\n"
        "rotated 35 degrees counter-clockwise and inverted (domain `warped`, b), 32x32 grey, both\n"
        "directions, through 10 unsupervised landmarks per domain: a whitened PCA of landmark sets, FC\n"
        "geometry and appearance transformers, three training stages (1,500 disentangle + 200 PCA-stage\n"
        "+ 1,300 translate steps, the `cpu-small` proportions)."
    ),
    reading=(
        "a weak model, published as the nearest honest thing this CPU budget gives. Its outputs are\n"
        "  clean strokes with the target's look (dark on light, squeezed and rotated as the truth is)\n"
        "  and they follow the input (not one page for every digit), but they are mostly the wrong\n"
        "  digit: the judges read the input's digit in about one output in four (a2b) and one in six\n"
        "  (b2a), against one in ten by chance and nine in ten for `distancegan-digits`. In PSNR it stays\n"
        "  below the mean page (target-mean) both ways. The picture shows that the landmarks are not the\n"
        "  whole problem: with the labelled equivariance term (`equiv_w=50`, ours, not the paper's) they\n"
        "  sit on the ink and follow the strokes. But each domain's landmark estimator is trained on its\n"
        "  own, so landmark k of one domain need not mean landmark k of the other, and the adversarial\n"
        "  and cycle terms that align them through the geometry transformer are met as well by a mapping\n"
        "  that changes the digit (docs/methods/transgaga.md). DEVIATION from the paper: no\n"
        "  appearance-consistency (Gram) term, since VGG19 cannot be downloaded here and the labelled\n"
        "  substitute wrecked training (`cpu-small` sets `gram_substitute=none`). `distancegan-digits`\n"
        "  is the better model for this pair."
    ),
    script="make_transgaga_digits.py",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "make-transgaga-digits")
    make(MODEL, parser.parse_args().work)


if __name__ == "__main__":
    main()

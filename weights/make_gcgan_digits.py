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
    summary="TODO",
    reading="TODO",
    script="make_gcgan_digits.py",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "make-gcgan-digits")
    make(MODEL, parser.parse_args().work)


if __name__ == "__main__":
    main()

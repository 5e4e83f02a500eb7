"""Measure each embedded model's bf16 fidelity against fp32 on its examples; record it in its card.

``python weights/measure_precision.py`` (after ``make_*.py``, which rewrite metrics.json) adds

    "precision": {"bf16": {"psnr_db": <worst example>, "mean_psnr_db": ..., "images": N, "on": "examples/<name>"}}

to ``weights/<name>/metrics.json``. ``i2i translate --precision auto`` runs a model in bf16 only
when ``psnr_db`` (the worst example) is at least 35 dB and the CPU has native bf16. Style models
use the per-input random style ``translate`` uses (seed 0). Needs a CPU with native bf16 (or a GPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def measure(name: str) -> dict[str, object]:
    from i2icli.api import load_model
    from i2icli.eval.metrics import psnr
    from i2icli.imageio import read_image, to_tensor
    from i2icli.inference import translate_tensors
    from i2icli.listing import list_images
    from i2icli.multimodal import named_style

    fp32 = load_model(name, device="cpu")
    bf16 = load_model(name, device="cpu", precision="bf16")
    direction = fp32.directions[0]
    c_in, _ = fp32.channels(direction)
    files = list_images([str(REPO / "examples" / name)], recursive=False)
    images = [to_tensor(read_image(path, channels=c_in).image) for path, _ in files]
    styles = [named_style(fp32, rel.as_posix(), 0) for _, rel in files] if fp32.needs_style else None
    ref = translate_tensors(fp32, images, direction, styles=styles)
    half = translate_tensors(bf16, images, direction, styles=styles)
    scores = [psnr(a[None], b[None]) for a, b in zip(half, ref)]
    return {
        "psnr_db": round(min(scores), 2),
        "mean_psnr_db": round(sum(scores) / len(scores), 2),
        "images": len(scores),
        "on": f"examples/{name} ({direction})",
    }


def main() -> None:
    from i2icli.precision import CARD_KEY
    from i2icli.registry import PRETRAINED

    torch.set_num_threads(1)
    for name, entry in PRETRAINED.items():
        if entry.local is None or not (REPO / "examples" / name).is_dir():
            continue
        path = HERE / name / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics[CARD_KEY] = {"bf16": measure(name)}
        path.write_text(json.dumps(metrics, indent=2) + "\n")
        print(name, metrics[CARD_KEY])


if __name__ == "__main__":
    main()

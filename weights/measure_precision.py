"""Measure each embedded model's bf16 fidelity against fp32 on its examples; record it in its card.

``python weights/measure_precision.py`` (after ``make_*.py``, which rewrite metrics.json) adds

    "precision": {"bf16": {"psnr_db": <worst example>, "mean_psnr_db": ..., "images": N, "on": "examples/<name>"}}

to ``weights/<name>/metrics.json``. ``i2i translate --precision auto`` runs a model in bf16 only
when ``psnr_db`` (the worst example) is at least 35 dB and the CPU has native bf16. Style models
use the per-input random style ``translate`` uses (seed 0). ``--only NAME`` measures one model.

bf16 rounds the same way whether the CPU runs it natively or emulates it (both accumulate in fp32),
so on a CPU without native bf16 the script runs the emulated path (slowly, bypassing the refusal
``i2i translate`` gives users) and says so in the record's ``on``.
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
    from i2icli.precision import cpu_features
    from i2icli.runtime import Runtime

    fp32 = load_model(name, device="cpu")
    native = cpu_features().native_bf16
    if native:
        bf16 = load_model(name, device="cpu", precision="bf16")
    else:  # the same runtime load_model would give, on the emulated path it refuses to users
        bf16 = load_model(name, device="cpu").with_runtime(Runtime(precision="bf16", channels_last=True))
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
        "on": f"examples/{name} ({direction})" + ("" if native else ", emulated bf16 (this CPU has no native bf16)"),
    }


def main() -> None:
    import argparse

    from i2icli.precision import CARD_KEY
    from i2icli.registry import PRETRAINED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="measure this embedded model only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name, entry in PRETRAINED.items():
        if entry.local is None or not (REPO / "examples" / name).is_dir() or args.only not in (None, name):
            continue
        path = HERE / name / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics[CARD_KEY] = {"bf16": measure(name)}
        path.write_text(json.dumps(metrics, indent=2) + "\n")
        print(name, metrics[CARD_KEY])


if __name__ == "__main__":
    main()

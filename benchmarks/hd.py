"""HD on a CPU: one 1024 x 1024 image through ``munit-summer2winter`` (the authors' imaginaire MUNIT,
3 content downsamplings) at its training scale, fp32 and bf16: wall time and peak RSS.

Weights: random values in the exact layout of the released checkpoint (the key/shape manifest
``tests/fixtures/imaginaire/manifest_munit_summer2winter_hd.json``, dumped from imaginaire's generator
built with ``configs/projects/munit/summer2winter_hd/ampO1.yaml``), saved as imaginaire's trainer saves
them and installed with ``i2i convert --model munit-summer2winter FILE`` into a private i2i cache, so the
command measured is the user's line ``i2i translate --model munit-summer2winter img.jpg`` (``--size auto``:
the model's 1024 px training scale; default 1024 MB activation budget, tiles with shared statistics
where a pass would exceed it). Speed does not depend on the weights' values.

Input: one seeded 1024 x 1024 RGB JPEG (smooth gradients plus noise). Each run is a fresh ``i2i``
process; its wall time (start to exit, model loading included) and peak RSS (``wait4``) are recorded,
with the 1-minute load average before and after: on a shared machine the figures move with the load.

    python benchmarks/hd.py               # ~5 min at 1 thread
    python benchmarks/hd.py --smoke       # the tiny imaginaire fixture at 64 px, temp output (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import describe, machine, run_cli
from PIL import Image
from results_md import write_block

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "hd.json"
MARKDOWN = HERE / "RESULTS.md"
MANIFEST = REPO / "tests" / "fixtures" / "imaginaire" / "manifest_munit_summer2winter_hd.json"
SMOKE_FILE = REPO / "tests" / "fixtures" / "imaginaire" / "munit_d3.pt"
MODEL = "munit-summer2winter"
SIDE = 1024
PRECISIONS = ("fp32", "bf16")


def manifest_net_g(manifest: Path, seed: int = 0) -> dict[str, Any]:
    """``net_G`` with the manifest's exact keys, shapes and dtypes and random values; spectral-norm
    ``u`` is W v normalised, so sigma = |W v| > 0 as after power iterations."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for row in json.loads(manifest.read_text())["keys"]:
        shape, dtype = row["shape"], getattr(torch, row["dtype"])
        if dtype == torch.int64:
            state[row["key"]] = torch.zeros(shape, dtype=dtype)
        else:
            state[row["key"]] = (torch.randn(shape, generator=gen) * (0.05 if len(shape) > 1 else 0.1)).to(dtype)
    for key in [k for k in state if k.endswith("weight_orig")]:
        base = key[: -len("_orig")]
        w = state[key].reshape(state[key].shape[0], -1)
        state[base + "_u"] = torch.nn.functional.normalize(w @ state[base + "_v"], dim=0)
    return state


def release_file(path: Path, seed: int = 0) -> Path:
    """An imaginaire checkpoint of the released summer2winter_hd layout with random values, saved as
    imaginaire's trainer saves it."""
    import torch

    torch.save({"net_G": manifest_net_g(MANIFEST, seed), "current_epoch": 0, "current_iteration": 0}, path)
    return path


def test_image(path: Path, side: int) -> Path:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([x, y, (x + y) / 2], axis=-1) * 200 + 20
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=92)
    return path


def run_i2i(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """``i2i ARGS`` in a child process: wall seconds, its peak RSS (GiB), its summary line, the load."""
    load_before = os.getloadavg()[0]
    figures, err = run_cli(args, env)
    summary = next((ln for ln in reversed(err.splitlines()) if ln.startswith("translate:")), "")
    return figures | {
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "summary": summary,
    }


def measure(work: Path, smoke: bool) -> dict[str, Any]:
    env = {**os.environ, "I2I_CACHE_DIR": str(work / "cache"), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    release = SMOKE_FILE if smoke else release_file(work / "summer2winter_hd.pt")
    install = run_i2i(["convert", "--model", MODEL, str(release)], env)
    side = 64 if smoke else SIDE
    image = test_image(work / "img.jpg", side)
    from i2icli.precision import cpu_features

    runs: dict[str, Any] = {}
    # i2i refuses bf16 where the CPU would only emulate it, so there is no bf16 figure to take there.
    native = cpu_features().native_bf16
    refused = {} if native else {"bf16": "this CPU has no native bf16, and i2i translate refuses to emulate it"}
    for precision in (p for p in PRECISIONS if p not in refused):
        out = work / f"out-{precision}"
        argv = ["translate", "--model", MODEL, str(image), "-o", str(out), "--device", "cpu", "--precision", precision]
        if smoke:
            argv += ["--size", str(side)]
        runs[precision] = run_i2i(argv, env) | {"output_size": list(Image.open(next(out.glob("*"))).size)}
    return {"install": install, "side": side, "runs": runs, "refused": refused}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    rows = [
        f"| {p} | {r['seconds']} | {r['peak_rss_gb']} | {r['load_before']} / {r['load_after']} |"
        for p, r in result["runs"].items()
    ]
    loads = [x for r in result["runs"].values() for x in (r["load_before"], r["load_after"])]
    busy = max(loads) > 1.5 * m["threads"]
    note = (
        f"The machine was shared (1-minute load up to {max(loads)} for {m['threads']} torch thread(s)): "
        "these figures need a re-run on a quiet machine."
        if busy
        else "The load stayed near the thread count: a quiet measurement."
    )
    return "\n".join([
        "## HD on a CPU: `i2i translate --model munit-summer2winter img.jpg` (`benchmarks/hd.py`)",
        "",
        (
            f"One {result['side']}x{result['side']} RGB JPEG (seeded gradients plus noise) through the authors' "
            "imaginaire MUNIT summer2winter_hd layout (random weights of the released checkpoint's exact key/shape "
            "layout, converted by `i2i convert --model munit-summer2winter`), at its training scale (`--size auto`: "
            "short side 1024 px), default 1024 MB activation budget. Each figure is one fresh `i2i` process: wall "
            "time from start to exit (model loading included) and its peak RSS."
        ),
        "",
        "| precision | wall s | peak RSS GB | load before / after |",
        "|---|---|---|---|",
        *rows,
        *(f"| {p} | not measured: {why} | | |" for p, why in result.get("refused", {}).items()),
        "",
        f"fp32 said: `{result['runs']['fp32']['summary']}`",
        "",
        f"Machine: {describe(m)}; measured {result['date']}. {note}",
        "",
        "Command: `python benchmarks/hd.py` (JSON: `benchmarks/results/hd.json`).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="tiny fixture at 64 px; results in --out, not the repository")
    parser.add_argument("--out", type=Path, help="folder for the JSON and markdown (default: benchmarks/)")
    args = parser.parse_args(argv)
    if args.smoke and args.out is None:
        parser.error("--smoke needs --out (smoke figures never go into the committed results)")
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        result = measure(Path(d), args.smoke)
    result |= {"machine": machine(), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "smoke": args.smoke}
    json_path = (args.out / "hd.json") if args.out else RESULTS
    md_path = (args.out / "RESULTS.md") if args.out else MARKDOWN
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    write_block(md_path, "hd", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

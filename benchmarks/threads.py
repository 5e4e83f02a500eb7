"""Threads benchmark: training speed of each torch thread setting, alone and beside a busy process.

Each configuration trains 40 cpu-tiny CycleGAN steps (the figure from issue 14) in a fresh
subprocess whose environment is set before torch is imported (the OpenMP runtime reads it once):

    torch default     no OMP_NUM_THREADS / OMP_WAIT_POLICY: one thread per CPU, OpenMP's default waiting
    1 thread          torch.set_num_threads(1)
    2 passive         two threads, OMP_WAIT_POLICY=PASSIVE (waiting threads sleep instead of spinning)
    2, 1 interop      two threads, torch.set_num_interop_threads(1)
    i2i default       what the command line does: PASSIVE, and the CPUs available
                      (os.sched_getaffinity) minus the 1-minute load, at least one

"busy" runs every configuration again beside one process spinning on a core
(``python -c "while True: pass"``), killed afterwards. Results go to
``benchmarks/results/threads.json`` and the ``threads`` block of ``benchmarks/RESULTS.md``.

    python benchmarks/threads.py            # ~10 min on a shared 2-core machine
    python benchmarks/threads.py --smoke    # 2 steps, no busy process, temp output (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from results_md import write_block

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "threads.json"
MARKDOWN = HERE / "RESULTS.md"
STEPS = 40
SMOKE_STEPS = 2
# name -> (environment changes, threads to set or None for torch's default, interop threads or None)
CONFIGS: dict[str, tuple[dict[str, str | None], int | None, int | None]] = {
    "torch default": ({"OMP_NUM_THREADS": None, "OMP_WAIT_POLICY": None}, None, None),
    "1 thread": ({"OMP_NUM_THREADS": None, "OMP_WAIT_POLICY": None}, 1, None),
    "2 passive": ({"OMP_NUM_THREADS": None, "OMP_WAIT_POLICY": "PASSIVE"}, 2, None),
    "2, 1 interop": ({"OMP_NUM_THREADS": None, "OMP_WAIT_POLICY": None}, 2, 1),
    "i2i default": ({"OMP_NUM_THREADS": None, "OMP_WAIT_POLICY": "PASSIVE"}, None, None),
}
AUTO = "i2i default"


def _data(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, size in (("trainA", (20, 20)), ("trainB", (24, 18))):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(root / folder / f"{i}.png")
    return root


def worker(name: str, data: Path, run_dir: Path, steps: int) -> dict[str, Any]:
    """Runs in the subprocess: set threads as ``name`` says, train, report seconds (imports excluded)."""
    import torch

    from i2icli.threads import apply_threads
    from i2icli.train.run import DataSpec, build_spec, run

    _, threads, interop = CONFIGS[name]
    if interop is not None:
        torch.set_num_interop_threads(interop)
    if name == AUTO:
        choice = apply_threads(None)
        threads = choice.threads
    elif threads is not None:
        torch.set_num_threads(threads)
    spec = build_spec(
        method="cyclegan", preset="cpu-tiny", config_file=None, overrides=[],
        data=DataSpec(str(data / "trainA"), str(data / "trainB")), batch_size=None, lr=None, max_steps=steps,
        loop_kwargs=dict(seed=0, save_every=0, sample_every=0, log_every=steps), init_from=None,
        steps_per_epoch=lambda bs: 1,
    )  # fmt: skip
    start = time.perf_counter()
    run(spec, run_dir, torch.device("cpu"), log=lambda line: None)
    return {"seconds": round(time.perf_counter() - start, 2), "threads": torch.get_num_threads(),
            "interop": torch.get_num_interop_threads()}  # fmt: skip


def _measure(name: str, data: Path, work: Path, steps: int) -> dict[str, Any]:
    env = dict(os.environ)
    for key, value in CONFIGS[name][0].items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    run_dir = Path(tempfile.mkdtemp(dir=work, prefix="run-"))
    load = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--worker", name, "--data", str(data), "--run-dir", str(run_dir), "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return {"config": name, "load_before": round(load, 2), **json.loads(out.stdout.strip().splitlines()[-1])}


def machine() -> dict[str, Any]:
    import platform

    import torch

    from i2icli.threads import available_cpus

    lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Model name")), "unknown")
    return {"cpu": model, "cores": os.cpu_count(), "available": available_cpus(), "torch": torch.__version__,
            "python": platform.python_version()}  # fmt: skip


def render(results: dict[str, Any]) -> str:
    """The RESULTS.md section, from the JSON alone."""
    m = results["machine"]
    rows = {(r["config"], r["contention"]): r for r in results["runs"]}
    lines = [
        "## Threads", "",
        f"Generated by `python benchmarks/threads.py` from `benchmarks/results/threads.json` ({results['finished']}).",
        f"Seconds for {results['steps']} `cpu-tiny` CycleGAN steps (imports excluded) on {m['cpu']}, "
        f"{m['cores']} cores ({m['available']} available), torch {m['torch']}; *+ one busy process*: beside one process spinning "
        "on a core (`python -c \"while True: pass\"`). The machine was also shared with other jobs "
        "(the 1-minute load before each run is in the JSON), so figures are upper bounds.", "",
        "| threads | shared machine (s) | + one busy process (s) |", "|---|---|---|",
    ]  # fmt: skip
    for name in CONFIGS:
        cells = []
        for contention in ("idle", "busy"):
            r = rows.get((name, contention))
            cells.append("–" if r is None else f"{r['seconds']:.1f} ({r['threads']} thr, load {r['load_before']:.1f})")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    busy = {name: rows[(name, "busy")]["seconds"] for name in CONFIGS if (name, "busy") in rows}
    if {"torch default", "1 thread", "2 passive"} <= set(busy):
        one = busy["1 thread"]
        lines += [
            "",
            f"Reading: beside a busy process, torch's default threads took {busy['torch default'] / one:.0f}x as long as",
            f"one thread; sleeping waiters (PASSIVE) soften that to {busy['2 passive'] / one:.1f}x, and one interop thread",
            "does not help. So the command line sets OMP_WAIT_POLICY=PASSIVE and uses the CPUs available minus the",
            "current load (`i2i default`: one thread on this shared 2-core machine); `--threads N` overrides, and the",
            "choice is recorded in `run.json`.",
        ]
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 steps, idle only, results in a temp folder")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--work", type=Path, default=None, help="folder for data and runs (default: a temp folder)")
    parser.add_argument("--results", type=Path, default=None, help="JSON to write (default: benchmarks/results/threads.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.run_dir, args.steps)))
        return 0
    steps = SMOKE_STEPS if args.smoke else args.steps
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        data = _data(work / "data")
        runs = []
        for contention in ("idle",) if args.smoke else ("idle", "busy"):
            spinner = None if contention == "idle" else subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                for name in CONFIGS:
                    record = _measure(name, data, work, steps)
                    runs.append({**record, "contention": contention})
                    print(f"{contention:5s} {name:14s} {record['seconds']:7.1f} s  ({record['threads']} threads)", flush=True)
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
        results = {"steps": steps, "machine": machine(), "runs": runs,
                   "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d")}  # fmt: skip
    path = args.results or (Path(tempfile.mkdtemp()) / "threads.json" if args.smoke else RESULTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    if not args.smoke and args.results is None:
        write_block(MARKDOWN, "threads", render(results))
        print(f"wrote {path} and the threads block of {MARKDOWN}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

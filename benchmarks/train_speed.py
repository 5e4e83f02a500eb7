"""Training speed benchmark: steps/s of ``i2i train``'s default CPU path beside each faster path, in one run.

For each method (CycleGAN, MUNIT, UNIT) with its labelled CPU preset (cpu-small) on the quality
benchmark's synthetic-colored-digits images (32^2 RGB, whole images, batch 8), the cells are:

    speed:<method>   steps/s of every path, interleaved over rounds (median); a path is the default
                     (fp32, eager, files decoded per step) with one option on, or several: --preload
                     (images held as uint8 tensors, crop/flip as tensor slices), --channels-last,
                     --precision bf16 (only where the CPU has it natively), --compile (inductor;
                     its compile time stated and amortised over the preset's run). FLOPs per step are
                     counted with ``torch.utils.flop_counter`` and set against the machine's peak,
                     measured in the same rounds as ``benchmarks/speed.py`` measures it; a
                     ``torch.profiler`` table of the default step's costliest operators.
    curves:<method>  loss curves (window means) of each path beside fp32 from the same seed, and fp32
                     from other seeds: a path "matches" when it stays within fp32's seed-to-seed spread.
    procs:<method>   through the ``i2i train`` command, the same global batch: one process x 2 threads
                     (its default before ``--procs``), the same with spinning waiters, one thread,
                     today's default (one process per CPU, one thread each, gloo), and the default
                     with --channels-last and with --precision bf16 (native bf16 only); the loss
                     curves (seed 0) of the default and its variants beside the curves cell's fp32
                     seed-to-seed spread, and the fastest layout within it.

Each finished cell is kept in ``benchmarks/results/train_speed.json`` (an interrupted run goes on
where it stopped; ``--force`` measures again) with the machine and the load average around it;
the RESULTS.md "training speed" block is written from the JSON.

    python benchmarks/train_speed.py                      # every missing cell (about 1-2 hours)
    python benchmarks/train_speed.py --cells speed:cyclegan,curves:cyclegan --force
    python benchmarks/train_speed.py --smoke               # tiny presets in a temp folder (tests)
    python benchmarks/train_speed.py --report              # rewrite the RESULTS.md block from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from machine_info import describe, machine
from results_md import write_block

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "train_speed.json"
MARKDOWN = HERE / "RESULTS.md"
BLOCK = "training speed"
METHODS = ("cyclegan", "munit", "unit")
KINDS = ("speed", "curves", "procs")
CELLS = tuple(f"{kind}:{m}" for m in METHODS for kind in KINDS)
BENCHMARK = "synthetic-colored-digits"  # 32^2 RGB, batch 8 (benchmarks/quality.py)
QUIET_LOAD = 1.2  # 1-minute load average from other work above which a cell's timings are not final
Record = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """Everything that scales between the real run and --smoke."""

    preset: str = "cpu-small"
    images: int = 200  # training images per domain
    warmup: int = 3  # steps before the timed ones (allocation; compiling happens here)
    steps: int = 30  # timed steps per path per round
    repeats: int = 3
    curve_steps: int = 300
    curve_seeds: int = 5  # fp32 runs from seeds 0..n-1: the spread a path must stay within
    windows: int = 10  # curve points (means over steps)
    profile_steps: int = 5
    matmul: int = 2048
    slow_variants: bool = True  # --compile (minutes of compiling per method)


SMOKE = Sizes(preset="cpu-tiny", images=8, warmup=1, steps=2, repeats=2, curve_steps=4, curve_seeds=2, windows=2,
              profile_steps=1, matmul=256, slow_variants=False)  # fmt: skip


@dataclass(frozen=True)
class Path_:
    """One way of running the same training: the default with some options on."""

    name: str
    preload: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False

    @property
    def options(self) -> str:
        on = [("--preload", self.preload), ("--channels-last", self.channels_last), ("--precision bf16", self.bf16),
              ("--compile", self.compile)]  # fmt: skip
        return " ".join(flag for flag, used in on if used) or "(none)"


DEFAULT = Path_("default")
PATHS = (
    DEFAULT,
    Path_("preload", preload=True),
    Path_("channels_last", channels_last=True),
    Path_("bf16", bf16=True),
    Path_("compile", compile=True),
    Path_("preload+channels_last+bf16", preload=True, channels_last=True, bf16=True),
    Path_("preload+channels_last+compile", preload=True, channels_last=True, compile=True),
    Path_("preload+channels_last+bf16+compile", preload=True, channels_last=True, bf16=True, compile=True),
)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def settle(limit_s: float = 300.0) -> None:
    """Wait (up to ``limit_s``) until the 1-minute load average is at most ``QUIET_LOAD``."""
    end = time.monotonic() + limit_s
    while os.getloadavg()[0] > QUIET_LOAD and time.monotonic() < end:
        time.sleep(5)


def usable(path: Path_, sizes: Sizes) -> str | None:
    """Why ``path`` is not measured here, or None."""
    from i2icli.precision import cpu_features

    if path.bf16 and not cpu_features().native_bf16:
        return "no native bf16 on this CPU (bf16 training is refused there)"
    if path.compile and not sizes.slow_variants:
        return "not in --smoke (compiling takes minutes)"
    return None


# --------------------------------------------------------------------------- data and setup


def data_root(work: Path, sizes: Sizes) -> Path:
    """The benchmark's images (``sizes.images`` per domain), made once under ``work``."""
    from quality import BENCHMARKS

    out = work / f"{BENCHMARK}-{sizes.images}"
    if not (out / "trainB").is_dir():
        BENCHMARKS[BENCHMARK].build_small(out, sizes.images, 4)
    return out


def overrides(method: str, sizes: Sizes) -> list[str]:
    """The quality benchmark's: whole 32^2 images, no flip, channels of the data."""
    from quality import BENCHMARKS, _whole_image_overrides

    return _whole_image_overrides(method, BENCHMARKS[BENCHMARK], sizes.curve_steps)


def batch_size(sizes: Sizes) -> int | None:
    from quality import BENCHMARKS

    return None if sizes is SMOKE else BENCHMARKS[BENCHMARK].batch_size


def setup(method: str, sizes: Sizes, root: Path, path: Path_, seed: int = 0, steps: int = 1) -> tuple[Any, Any, Any]:
    """(spec, data, objective) for ``path``, built from ``seed`` as ``i2i train`` builds them."""
    import torch

    from i2icli.config import from_dict
    from i2icli.methods import load_method
    from i2icli.runs.run import open_data
    from i2icli.runs.spec import DataSpec, build_spec

    loop = dict(seed=seed, save_every=0, sample_every=0, log_every=steps, amp=path.bf16, channels_last=path.channels_last,
                compile=path.compile)  # fmt: skip
    spec = build_spec(
        method=method, preset=sizes.preset, config_file=None, overrides=overrides(method, sizes),
        data=DataSpec(str(root / "trainA"), str(root / "trainB"), preload=path.preload), batch_size=batch_size(sizes),
        lr=None, max_steps=steps, loop_kwargs=loop, init_from=None, steps_per_epoch=lambda b: 1,
    )  # fmt: skip
    impl = load_method(method)
    cfg = from_dict(impl.config_cls, spec.config)
    torch.manual_seed(seed)
    data = open_data(spec, cfg.arch.channels_a)
    objective = impl.build_objective(cfg, impl.build_model(cfg.arch), data, seed)
    for m in objective.training_modules().values():
        m.train()
    return spec, data, objective


def run_steps(spec: Any, data: Any, objective: Any, run_dir: Path) -> list[float]:
    """Train ``spec.loop.max_steps`` steps; the clock after each step, the start first."""
    import torch

    from i2icli.train.loop import train

    stamps = [time.perf_counter()]
    result = train(objective, data, spec.loop, run_dir=run_dir, device=torch.device("cpu"), log=lambda line: None,
                   on_tick=lambda step: stamps.append(time.perf_counter()))  # fmt: skip
    if result.interrupted:  # the loop turns Ctrl-C into a clean stop: stop the benchmark too (finished cells are kept)
        raise SystemExit(f"train_speed: interrupted at step {result.step}")
    return stamps


# --------------------------------------------------------------------------- speed


def flops_per_step(method: str, sizes: Sizes, root: Path, work: Path) -> float:
    """FLOPs of one default step (every phase's forward and backward), counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    spec, data, objective = setup(method, sizes, root, DEFAULT, steps=1)
    run_steps(spec, data, objective, Path(tempfile.mkdtemp(dir=work)))  # a first step: pools fill, lazy state is made
    counter = FlopCounterMode(display=False)
    with counter:
        run_steps(spec, data, objective, Path(tempfile.mkdtemp(dir=work)))
    return float(counter.get_total_flops())


def profile(method: str, sizes: Sizes, root: Path, work: Path, top: int = 8) -> list[Record]:
    """The default step's costliest operators by self CPU time (``torch.profiler``), share of the total."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    spec, data, objective = setup(method, sizes, root, DEFAULT, steps=sizes.profile_steps)
    run_steps(replace(spec, loop=replace(spec.loop, max_steps=1)), data, objective, Path(tempfile.mkdtemp(dir=work)))
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        run_steps(spec, data, objective, Path(tempfile.mkdtemp(dir=work)))
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [{"op": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls": e.count} for e in ranked]


def cell_speed(method: str, sizes: Sizes, work: Path) -> Record:
    """Every usable path, interleaved over ``repeats`` rounds; FLOPs, peak, profile."""
    import torch
    from speed import matmul_rate

    root = data_root(work, sizes)
    paths = [p for p in PATHS if usable(p, sizes) is None]
    skipped = {p.name: usable(p, sizes) for p in PATHS if usable(p, sizes) is not None}
    total = sizes.warmup + sizes.steps
    rounds: list[dict[str, Record]] = []
    peaks: dict[str, float] = {"fp32": 0.0}
    native = any(p.bf16 for p in paths)
    for r in range(sizes.repeats):
        order = paths[r % len(paths) :] + paths[: r % len(paths)]  # a different path first each round
        row: dict[str, Record] = {}
        for path in order:
            torch._dynamo.reset()  # each round compiles again: the compile time is measured every round
            spec, data, objective = setup(method, sizes, root, path, steps=total)
            stamps = run_steps(spec, data, objective, Path(tempfile.mkdtemp(dir=work)))
            rate = sizes.steps / (stamps[-1] - stamps[sizes.warmup])
            # The warm-up steps beyond what they would take at the steady rate: compiling (and allocation).
            first = stamps[sizes.warmup] - stamps[0] - sizes.warmup / rate
            row[path.name] = {"steps_per_s": rate, "setup_s": max(0.0, first)}
        peaks["fp32"] = max(peaks["fp32"], matmul_rate(sizes.matmul, torch.float32))
        if native:
            peaks["bf16"] = max(peaks.get("bf16", 0.0), matmul_rate(sizes.matmul, torch.bfloat16))
        rounds.append(row)
    flops = flops_per_step(method, sizes, root, work)
    spec, _, _ = setup(method, sizes, root, DEFAULT)
    run_length = {"cpu-small": 800}.get(sizes.preset, sizes.curve_steps)  # the quality benchmark's budget
    rows = []
    for path in paths:
        rate = median([r[path.name]["steps_per_s"] for r in rounds])
        # Compile time: the worst round (later rounds may reuse inductor's on-disk cache; a first run may not).
        setup_s = max(r[path.name]["setup_s"] for r in rounds)
        peak = peaks["bf16" if path.bf16 else "fp32"]
        amortised = run_length / (run_length / rate + (setup_s if path.compile else 0.0))
        rows.append({
            "path": path.name, "options": path.options, "steps_per_s": round(rate, 3),
            "vs_default": round(median([r[path.name]["steps_per_s"] / r["default"]["steps_per_s"] for r in rounds]), 3),
            "ratios": [round(r[path.name]["steps_per_s"] / r["default"]["steps_per_s"], 3) for r in rounds],
            "peak_fraction": round(rate * flops / peak, 4), "compile_s": round(setup_s, 1) if path.compile else None,
            "amortised_steps_per_s": round(amortised, 3),
        })  # fmt: skip
    return {
        "method": method, "preset": sizes.preset, "batch_size": spec.batch_size, "side": spec.config["data"]["crop_size"],
        "steps_per_round": sizes.steps, "warmup": sizes.warmup, "repeats": sizes.repeats, "run_length": run_length,
        "gflop_per_step": round(flops / 1e9, 4), "peak_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()},
        "rows": rows, "skipped": skipped, "profile": profile(method, sizes, root, work),
    }  # fmt: skip


def median(values: list[float]) -> float:
    import statistics

    return float(statistics.median(values))


# --------------------------------------------------------------------------- curves


def curve(method: str, sizes: Sizes, root: Path, path: Path_, seed: int, work: Path) -> dict[str, list[float]]:
    """Each logged loss of ``sizes.curve_steps`` steps, as ``sizes.windows`` window means."""
    spec, data, objective = setup(method, sizes, root, path, seed=seed, steps=sizes.curve_steps)
    spec = replace(spec, loop=replace(spec.loop, log_every=1))
    run_dir = Path(tempfile.mkdtemp(dir=work))
    run_steps(spec, data, objective, run_dir)
    return window_means(_metrics(run_dir), sizes.windows)


def cell_curves(method: str, sizes: Sizes, work: Path) -> Record:
    """fp32 from ``curve_seeds`` seeds (the spread) and every other usable path from seed 0."""
    import torch

    root = data_root(work, sizes)
    fp32 = [curve(method, sizes, root, DEFAULT, seed, work) for seed in range(sizes.curve_seeds)]
    paths = {}
    for path in PATHS[1:]:
        if usable(path, sizes) is not None:
            continue
        torch._dynamo.reset()
        paths[path.name] = {"curve": curve(method, sizes, root, path, 0, work)}
    return compare_curves({"method": method, "steps": sizes.curve_steps, "windows": sizes.windows, "fp32": fp32,
                           "paths": paths})  # fmt: skip


def compare_curves(r: Record) -> Record:
    """``r`` with fp32's seed-to-seed spread (per window, the largest distance of another seed from
    seed 0) and each path's worst distance from seed 0 as a multiple of the largest spread."""
    fp32 = r["fp32"]
    spread = {k: [max(abs(c[k][i] - fp32[0][k][i]) for c in fp32[1:]) for i in range(r["windows"])] for k in fp32[0]}
    paths = {}
    for name, p in r["paths"].items():
        c = p["curve"]
        worst = max(max(abs(c[k][i] - fp32[0][k][i]) for i in range(r["windows"])) / max(max(spread[k]), 1e-12) for k in c)
        paths[name] = {"curve": c, "vs_spread": round(worst, 3), "matches": worst <= 1.0}
    return {**r, "spread": spread, "paths": paths}


def more_seeds(method: str, sizes: Sizes, work: Path, r: Record) -> Record:
    """A finished curves cell with fp32 runs from further seeds (up to ``sizes.curve_seeds``), compared again."""
    root = data_root(work, sizes)
    extra = [curve(method, sizes, root, DEFAULT, seed, work) for seed in range(len(r["fp32"]), sizes.curve_seeds)]
    return compare_curves({**r, "fp32": [*r["fp32"], *extra]})


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Layout:
    """One way ``i2i train`` spreads a step over the cores: its flags and environment."""

    name: str
    what: str
    flags: tuple[str, ...]  # () : the command's own process count (the default layout)
    wait_policy: str | None = None  # OMP_WAIT_POLICY (None: the command's own choice, PASSIVE)
    bf16: bool = False  # needs a CPU with native bf16
    curve: bool = False  # its loss curve is recorded and set against fp32's seed spread


LAYOUTS = (
    Layout("1x2", "1 process x 2 threads (the command's default before --procs, on a quiet 2-core machine)",
           ("--procs", "1", "--threads", "2")),
    Layout("1x2 spin", "1 process x 2 threads, waiting threads spin (OMP_WAIT_POLICY=ACTIVE)",
           ("--procs", "1", "--threads", "2"), "ACTIVE"),
    Layout("1x1", "1 process x 1 thread", ("--procs", "1", "--threads", "1")),
    Layout("default", "the command's default now (no flags): one process per CPU, one thread each", (), curve=True),
    Layout("default+channels_last", "the default with --channels-last", ("--channels-last",), curve=True),
    Layout("default+bf16", "the default with --precision bf16 (CPUs with native bf16)", ("--precision", "bf16"),
           bf16=True, curve=True),
)  # fmt: skip
BEFORE, NOW = "1x2", "default"


def layout_usable(layout: Layout) -> str | None:
    """Why ``layout`` is not measured here, or None."""
    from i2icli.precision import cpu_features

    if layout.bf16 and not cpu_features().native_bf16:
        return "no native bf16 on this CPU (bf16 training is refused there)"
    return None


def cli_run(method: str, sizes: Sizes, root: Path, work: Path, layout: Layout, steps: int, seed: int = 0) -> Path:
    """``i2i train`` for ``steps`` steps in ``layout`` (metrics every step); its run folder."""
    batch = batch_size(sizes) or 2
    run_dir = Path(tempfile.mkdtemp(dir=work)) / "run"
    sets = [x for o in overrides(method, sizes) for x in ("--set", o)]
    # --smoke's cpu-tiny keeps one process by default (seconds-long runs): name the count there.
    default_count = not layout.flags or "--procs" not in layout.flags
    flags = (*layout.flags, *(("--procs", "2") if sizes is SMOKE and default_count else ()))
    args = ["train", "--method", method, "--dataroot", str(root), "--preset", sizes.preset, *sets, "--seed", str(seed),
            "--max-steps", str(steps), "--batch-size", str(batch), *flags, "--run-dir", str(run_dir),
            "--sample-every", "0", "--save-every", "0", "--log-every", "1", "--quiet"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update({"PYTHONWARNINGS": "ignore", **({"OMP_WAIT_POLICY": layout.wait_policy} if layout.wait_policy else {})})
    done = subprocess.run([sys.executable, "-m", "i2icli", *args], env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"i2i train ({layout.name}) failed: {done.stderr[-2000:]}")
    return run_dir


def _metrics(run_dir: Path) -> list[Record]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def cli_rate(method: str, sizes: Sizes, root: Path, work: Path, layout: Layout) -> tuple[float, int]:
    """steps/s of ``i2i train`` after the warm-up steps, and the processes it ran in."""
    run_dir = cli_run(method, sizes, root, work, layout, sizes.warmup + sizes.steps)
    seconds = {r["step"]: r["seconds"] for r in _metrics(run_dir)}
    world = json.loads((run_dir / "run.json").read_text())["world_size"]
    return sizes.steps / (seconds[sizes.warmup + sizes.steps] - seconds[sizes.warmup]), world


def window_means(records: list[Record], windows: int) -> dict[str, list[float]]:
    """Each ``loss_`` scalar as ``windows`` means over consecutive steps."""
    width = max(1, len(records) // windows)
    keys = [k for k in records[0] if k.startswith("loss_")]
    starts = range(0, width * windows, width)
    return {k: [round(sum(r[k] for r in records[i : i + width]) / width, 5) for i in starts] for k in keys}


def cell_procs(method: str, sizes: Sizes, work: Path) -> Record:
    """Every usable layout through ``i2i train`` (same global batch), interleaved over rounds; then
    the loss curve from seed 0 of the default and its variants, set against fp32's seed-to-seed
    spread at report time."""
    root = data_root(work, sizes)
    layouts = [x for x in LAYOUTS if layout_usable(x) is None]
    rounds, worlds = [], {}
    for r in range(sizes.repeats):
        order = layouts[r % len(layouts) :] + layouts[: r % len(layouts)]
        row = {}
        for layout in order:
            row[layout.name], worlds[layout.name] = cli_rate(method, sizes, root, work, layout)
        rounds.append(row)
    curves = {x.name: window_means(_metrics(cli_run(method, sizes, root, work, x, sizes.curve_steps)), sizes.windows)
              for x in layouts if x.curve}  # fmt: skip
    return {
        "method": method, "batch_size": batch_size(sizes) or 2, "steps_per_round": sizes.steps, "repeats": sizes.repeats,
        "layouts": {x.name: {"what": x.what, "processes": worlds[x.name],
                             "steps_per_s": round(median([r[x.name] for r in rounds]), 3),
                             "vs_before": round(median([r[x.name] / r[BEFORE] for r in rounds]), 3),
                             "ratios": [round(r[x.name] / r[BEFORE], 3) for r in rounds]} for x in layouts},
        "skipped": {x.name: layout_usable(x) for x in LAYOUTS if layout_usable(x) is not None},
        "curve_steps": sizes.curve_steps, "curves": curves,
    }  # fmt: skip


def layout_curves(procs: Record) -> dict[str, dict[str, list[float]]]:
    """Each layout's loss curve; a cell measured before the default's variants had only the default's."""
    return procs["curves"] if "curves" in procs else {NOW: procs["curve"]}


def procs_vs_spread(procs: Record, curves: Record | None, layout: str = NOW) -> float | None:
    """A layout's worst window distance from fp32 seed 0, as a multiple of fp32's largest
    seed-to-seed distance (None until the curves cell has run)."""
    if curves is None or curves["steps"] != procs["curve_steps"] or layout not in layout_curves(procs):
        return None
    fp32, spread, c = curves["fp32"][0], curves["spread"], layout_curves(procs)[layout]
    return round(max(max(abs(c[k][i] - fp32[k][i]) for i in range(len(fp32[k]))) / max(max(spread[k]), 1e-12) for k in c), 3)


def fastest_layout(procs: Record, curves: Record | None) -> str | None:
    """The fastest layout whose loss curve is within fp32's seed spread (None before the curves cell)."""
    distance = {name: procs_vs_spread(procs, curves, name) for name in layout_curves(procs)}
    within = [name for name, d in distance.items() if d is not None and d <= 1.0]
    return max(within, key=lambda name: procs["layouts"][name]["steps_per_s"]) if within else None


RUN = {"speed": cell_speed, "curves": cell_curves, "procs": cell_procs}


# --------------------------------------------------------------------------- report


def quiet(cell: Record) -> bool:
    """Whether a cell's timings were taken on a quiet machine (loss curves do not depend on the load).

    The load average read as a cell ends counts the cell's own busy threads (every cell keeps the
    machine's cores busy: one process of ``threads`` threads, or as many one-thread processes), so
    only what exceeds them is other work."""
    own = cell["machine"].get("threads", 0)
    return cell["load_before"][0] <= QUIET_LOAD and cell["load_after"][0] - own <= QUIET_LOAD


def same_machine(a: Record, b: Record) -> bool:
    """Whether two cells ran on the same kind of machine (CPU, cores, bf16 support, torch)."""
    keys = ("cpu", "flags", "cores", "native_bf16", "torch")
    return all(a["machine"].get(k) == b["machine"].get(k) for k in keys)


def fastest_matching(speed: Record, curves: Record | None) -> Record | None:
    """The fastest path (steps/s amortised over the run, compile included) whose curve matches fp32's."""
    if curves is None:
        return None
    matching = {name for name, c in curves["paths"].items() if c["matches"]} | {"default"}
    rows = [row for row in speed["rows"] if row["path"] in matching]
    return max(rows, key=lambda row: row["amortised_steps_per_s"]) if rows else None


def render(results: Record) -> str:
    """The RESULTS.md block."""
    cells = results.get("cells", {})
    meta = results.get("meta", {})
    lines = ["## Training speed (`benchmarks/train_speed.py`)", "",
             f"Command: `{meta.get('command', 'python benchmarks/train_speed.py')}`. Each method trains with its labelled CPU "
             f"preset on {BENCHMARK} (32^2 RGB, whole images) as in the quality benchmark (preset and batch in each cell). Rates are medians over "
             "rounds that interleave the paths; FLOPs per step are counted by `torch.utils.flop_counter`, the peak is the "
             "best GEMM/convolution rate measured in the same rounds (as `benchmarks/speed.py` measures it). A path "
             "matches when its loss curve stays within fp32's seed-to-seed spread (window means over the run).", ""]  # fmt: skip
    loaded = [k for k, c in cells.items() if not k.startswith("curves:") and not quiet(c)]
    if loaded:
        lines += [f"**Not final: measured under load** (1-minute load average above {QUIET_LOAD} in {', '.join(loaded)}); "
                  "rerun those cells on a quiet machine with `--force`.", ""]  # fmt: skip
    lines += ["In this process (the library's loop, 2 threads, OpenMP's own waiting), each path beside the plain default:", ""]
    summary = ["| method | machine | default steps/s | fastest matching path | its steps/s (amortised) | speed-up | fraction of peak (default / fastest) |",
               "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in METHODS:
        speed, curves = cells.get(f"speed:{method}"), cells.get(f"curves:{method}")
        if speed is None:
            summary.append(f"| {method} | not measured yet | | | | | |")
            continue
        rows = {row["path"]: row for row in speed["result"]["rows"]}
        best = fastest_matching(speed["result"], curves["result"] if curves else None)
        base = rows["default"]
        if best is None:
            summary.append(f"| {method} | {_where(speed)} | {base['steps_per_s']:.2f} | curves not measured yet | | | {base['peak_fraction']:.1%} / - |")
        else:
            summary.append(f"| {method} | {_where(speed)} | {base['steps_per_s']:.2f} | {best['options']} | {best['amortised_steps_per_s']:.2f} | "
                           f"{best['amortised_steps_per_s'] / base['steps_per_s']:.2f}x | {base['peak_fraction']:.1%} / {best['peak_fraction']:.1%} |")  # fmt: skip
    lines += summary + ["", "The command's default (`i2i train` with no speed flags), before and after it trained a CPU preset in "
                        "one process per CPU, and the fastest layout whose loss curve stays within fp32's seed spread:", "",
                        "| method | machine | before: 1 process x 2 threads | now: processes x 1 thread | speed-up | fastest matching layout | its steps/s | speed-up | fraction of peak (before / now / fastest) | loss curve vs fp32 seed spread (now / fastest) |",
                        "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in METHODS:
        procs, curves = cells.get(f"procs:{method}"), cells.get(f"curves:{method}")
        if procs is None or "layouts" not in procs["result"]:
            lines.append(f"| {method} | not measured yet | | | | | | | | |")
            continue
        r, c = procs["result"], curves and curves["result"]
        lay = r["layouts"]
        best = fastest_layout(r, c)
        speed = cells.get(f"speed:{method}")
        names = (BEFORE, NOW) + ((best,) if best else ())
        # FLOPs per step and the peak from the speed cell (the same preset and batch); bf16 against bf16's.
        # A speed cell measured on another machine has another peak: no fraction then.
        peak = "- (speed cell from another machine)" if speed is not None and not same_machine(speed, procs) else "-" if speed is None else " / ".join(
            f"{lay[k]['steps_per_s'] * speed['result']['gflop_per_step'] / speed['result']['peak_gflops']['bf16' if 'bf16' in k else 'fp32']:.1%}"
            for k in names)  # fmt: skip
        spread = " / ".join(_within(procs_vs_spread(r, c, k)) for k in names[1:])
        fastest = (f"{best} | {lay[best]['steps_per_s']:.2f} | {lay[best]['vs_before']:.2f}x" if best
                   else f"{'curves cell not measured yet' if c is None else 'none within the spread'} | - | -")  # fmt: skip
        lines.append(f"| {method} | {_where(procs)} | {lay[BEFORE]['steps_per_s']:.2f} | {lay[NOW]['steps_per_s']:.2f} ({lay[NOW]['processes']} x 1) | "
                     f"{lay[NOW]['vs_before']:.2f}x | {fastest} | {peak} | {spread} |")  # fmt: skip
    lines.append("")
    for method in METHODS:
        for kind in KINDS:
            cell = cells.get(f"{kind}:{method}")
            if cell is None:
                lines += [f"**{kind}:{method}** not measured yet.", ""]
                continue
            where = (f"{describe(cell['machine'])}; load average {cell['load_before']} before, {cell['load_after']} after; "
                     f"{cell['seconds']:.0f} s")  # fmt: skip
            curves = cells.get(f"curves:{method}")
            text = (_render_procs(cell["result"], curves and curves["result"]) if kind == "procs"
                    else RENDER[kind](cell["result"]))  # fmt: skip
            lines += [text, "", f"_Machine: {where}._", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _render_speed(r: Record) -> str:
    peaks = ", ".join(f"{k} {v} GFLOP/s" for k, v in r["peak_gflops"].items())
    out = [f"**speed:{r['method']}** ({r['preset']}, {r['side']}^2, batch {r['batch_size']}, {r['gflop_per_step']} GFLOP/step; "
           f"{r['steps_per_round']} steps after {r['warmup']} warm-up x {r['repeats']} rounds; peak {peaks}; amortised over "
           f"{r['run_length']} steps)", "",
           "| path | options | steps/s | vs default (median; per round) | fraction of peak | compile s (worst round) | amortised steps/s |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        compile_s = "-" if row["compile_s"] is None else f"{row['compile_s']}"
        out.append(f"| {row['path']} | {row['options']} | {row['steps_per_s']:.2f} | {row['vs_default']:.2f}x "
                   f"({', '.join(f'{x:.2f}' for x in row['ratios'])}) | {row['peak_fraction']:.1%} | {compile_s} | "
                   f"{row['amortised_steps_per_s']:.2f} |")  # fmt: skip
    for name, why in r["skipped"].items():
        out.append(f"| {name} | - | - | not measured: {why} | - | - | - |")
    ops = ", ".join(f"{p['op']} {p['share']:.0%}" for p in r["profile"][:5])
    out += ["", f"Profile of the default step (self CPU time): {ops}."]
    return "\n".join(out)


def _render_curves(r: Record) -> str:
    out = [f"**curves:{r['method']}** ({r['steps']} steps, {r['windows']} window means; distance from fp32 seed 0 as a "
           f"multiple of the largest fp32 seed-to-seed distance, {len(r['fp32'])} seeds)", "",
           "| path | worst distance / seed spread | matches |", "|---|---|---|"]  # fmt: skip
    for name, c in r["paths"].items():
        out.append(f"| {name} | {c['vs_spread']:.2f} | {'yes' if c['matches'] else 'no'} |")
    return "\n".join(out)


def _where(cell: Record) -> str:
    m = cell["machine"]
    return f"{m['cpu']}, {m['cores']} cores, {m.get('flags', '?')}"


def _within(vs: float | None) -> str:
    return "-" if vs is None else f"{vs:.2f}x ({'within' if vs <= 1 else 'outside'})"


def _render_procs(r: Record, curves: Record | None = None) -> str:
    if "layouts" not in r:
        return f"**procs:{r['method']}** was measured by an older version of this cell: rerun it with `--force`."
    out = [f"**procs:{r['method']}** (`i2i train`, global batch {r['batch_size']}, {r['steps_per_round']} steps x "
           f"{r['repeats']} rounds, layouts interleaved; loss curves {r['curve_steps']} steps from seed 0)", "",
           "| layout | processes | steps/s | vs 1 process x 2 threads (median; per round) | loss curve vs fp32 seed spread |",
           "|---|---|---|---|---|"]  # fmt: skip
    for name, x in r["layouts"].items():
        out.append(f"| {x['what']} | {x['processes']} | {x['steps_per_s']:.2f} | {x['vs_before']:.2f}x "
                   f"({', '.join(f'{v:.2f}' for v in x['ratios'])}) | {_within(procs_vs_spread(r, curves, name))} |")  # fmt: skip
    for name, why in r.get("skipped", {}).items():
        out.append(f"| {name} | - | - | not measured: {why} | - |")
    return "\n".join(out)


RENDER = {"speed": _render_speed, "curves": _render_curves}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated cells ({', '.join(CELLS)})")
    parser.add_argument("--force", action="store_true", help="measure cells again even when finished")
    parser.add_argument("--smoke", action="store_true", help="tiny presets in a temp folder (checks the script)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (data, runs); default runs/train_speed")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in this process (default: all cores)")
    parser.add_argument("--report", action="store_true", help="only rewrite the RESULTS.md block from the JSON")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CELLS]
    if unknown:
        parser.error(f"unknown cell {unknown[0]!r} (cells: {', '.join(CELLS)})")
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    sizes = SMOKE if args.smoke else Sizes()
    temp = tempfile.TemporaryDirectory() if args.smoke and args.work is None else None
    work = Path(temp.name) if temp is not None else (args.work or REPO / "runs" / "train_speed")
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "train_speed.json" if args.smoke else RESULTS
    markdown = work / "RESULTS.md" if args.smoke else MARKDOWN
    results: Record = json.loads(results_path.read_text()) if results_path.is_file() else {"cells": {}}
    command = "python benchmarks/train_speed.py" + (f" --threads {args.threads}" if args.threads else "")
    results["meta"] = {"command": command + (" --smoke" if args.smoke else "")}
    try:
        for key in [] if args.report else wanted:
            kind, method = key.split(":")
            done = results["cells"].get(key)
            if done is not None and not args.force:
                if kind == "curves" and len(done["result"]["fp32"]) < sizes.curve_seeds:
                    print(f"train_speed: cell {key}: fp32 from more seeds ...", file=sys.stderr, flush=True)
                    started = time.perf_counter()
                    done["result"] = more_seeds(method, sizes, work, done["result"])
                    done["seconds"] = round(done["seconds"] + time.perf_counter() - started, 1)
                    results_path.write_text(json.dumps(results, indent=2) + "\n")
                    write_block(markdown, BLOCK, render(results))
                continue
            if kind != "curves" and not args.smoke:
                settle()  # the previous cell's own load fades first: load_before then measures other work
            started, before = time.perf_counter(), load()
            print(f"train_speed: cell {key} ...", file=sys.stderr, flush=True)
            result = RUN[kind](method, sizes, work)
            results["cells"][key] = {"result": result, "machine": machine(), "load_before": before, "load_after": load(),
                                     "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=2) + "\n")
            write_block(markdown, BLOCK, render(results))
        write_block(markdown, BLOCK, render(results))
    finally:
        if temp is not None:
            temp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What defines a training run (``RunSpec``): built from preset, config file, overrides and flags,
saved as run.json with the versions and machine that ran it, read back by ``--resume``."""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from i2icli._version import __version__
from i2icli.config import ConfigError, apply_overrides, from_dict, override_keys, to_dict
from i2icli.errors import UsageError
from i2icli.threads import ThreadChoice
from i2icli.train.loop import LoopOptions

CPU_PRESET_PREFIX = "cpu-"  # the labelled CPU presets: cpu-small, cpu-tiny
# The CPU presets' training path on a CPU, for the options a command line leaves unset: only paths
# whose loss curves stay within fp32's seed-to-seed spread and that are faster on a quiet machine
# (benchmarks/train_speed.py, RESULTS.md "training speed"). --preload gives the same batches to the bit.
CPU_PRESET_PATH: dict[str, Any] = {"preload": True}


def cpu_preset_path(preset: str | None, device: torch.device, given: set[str]) -> dict[str, Any]:
    """The ``CPU_PRESET_PATH`` options (``preload``, ``channels_last``, ``compile``, ``precision``) for a
    CPU preset trained on a CPU, leaving out those in ``given``; bf16 only where the CPU has it natively."""
    from i2icli.precision import cpu_features

    if preset is None or not preset.startswith(CPU_PRESET_PREFIX) or device.type != "cpu":
        return {}
    chosen = {k: v for k, v in CPU_PRESET_PATH.items() if k not in given}
    if chosen.get("precision") == "bf16" and not cpu_features().native_bf16:
        del chosen["precision"]
    return chosen


# cpu-tiny runs last seconds (tests, smoke runs): starting processes would cost more than they save.
SINGLE_PROCESS_PRESETS = frozenset({"cpu-tiny"})


def cpu_preset_procs(preset: str, device: torch.device, batch_size: int, cpus: int) -> int:
    """How many one-thread processes a CPU preset trains in on a CPU when the command line does not
    say (``--procs``/``--threads``): the most, up to the CPUs available, that split the batch evenly.
    On 2 cores two processes ran 1.8-2.2x the steps/s of one process of two threads, with loss curves
    within fp32's seed-to-seed spread (RESULTS.md "training speed"). Not tied to the load, so a seed
    gives the same run on a given machine whatever else runs there."""
    if not preset.startswith(CPU_PRESET_PREFIX) or preset in SINGLE_PROCESS_PRESETS or device.type != "cpu":
        return 1
    return max(n for n in range(1, max(1, min(cpus, batch_size)) + 1) if batch_size % n == 0)


@dataclass(frozen=True)
class DataSpec:
    dir_a: str
    dir_b: str
    domains: tuple[str, str] = ("a", "b")
    num_workers: int = 0
    preload: bool = False
    max_pixels: int | None = None  # training images above this are skipped (None: Pillow's limit)


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a run; saved as run.json and read back by ``--resume``."""

    method: str
    preset: str
    config: dict[str, Any]  # the method's config dataclass as a dict
    loop: LoopOptions
    batch_size: int
    data: DataSpec
    init_from: str | None = None


def build_spec(
    *,
    method: str,
    preset: str | None,
    config_file: Path | None,
    overrides: list[str],
    data: DataSpec,
    method_options: dict[str, Any] | None = None,
    batch_size: int | None,
    lr: float | None,
    max_steps: int | None,
    loop_kwargs: dict[str, Any],
    init_from: str | None,
    steps_per_epoch: Callable[[int], int],
) -> RunSpec:
    """Preset -> ``--config`` file -> ``--set`` overrides -> method flags -> explicit flags, each later one winning."""
    from i2icli.methods import METHOD_MODULES, load_method

    if method not in METHOD_MODULES:
        raise UsageError(f"--method {method!r}: unknown method (available: {', '.join(METHOD_MODULES)})")
    impl = load_method(method)
    name = preset or impl.default_preset
    if name not in impl.presets:
        raise UsageError(f"--preset {name!r}: unknown for {method} (available: {', '.join(impl.presets)})")
    chosen = impl.presets[name]
    cfg = chosen.config
    given: set[str] = set()  # config fields set by the user (not by the preset)
    try:
        if config_file is not None:
            try:
                file_data = json.loads(config_file.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise UsageError(f"--config {config_file}: cannot read JSON ({e})") from None
            cfg = apply_overrides(cfg, file_data)
            given |= override_keys(file_data)
        if overrides:
            cfg = apply_overrides(cfg, overrides)
            given |= override_keys(overrides)
        if method_options:
            cfg = apply_overrides(cfg, method_options)
            given |= override_keys(method_options)
        if lr is not None:
            cfg = apply_overrides(cfg, {"optim": {"lr": lr}})
        if not given & {"arch.channels_a", "arch.channels_b"}:
            channels = data_channels(data)
            cfg = apply_overrides(cfg, {"arch": {"channels_a": channels, "channels_b": channels}})
    except (ConfigError, UsageError) as e:
        raise UsageError(str(e)) from None
    bs = batch_size or chosen.batch_size
    steps = max_steps or chosen.max_steps or chosen.epochs * steps_per_epoch(bs)
    # The preset's weight average unless the command line (or caller) set one.
    loop = LoopOptions(max_steps=steps, **{"ema": chosen.ema, **loop_kwargs})
    return RunSpec(method, name, to_dict(cfg), loop, bs, data, init_from)


def data_channels(data: DataSpec) -> int:
    """1 when both training folders hold only gray images, else 3 (a gray domain beside a colour
    one is read as RGB: one model needs equal channel counts)."""
    from i2icli.listing import images_are_gray, list_images

    folders = (data.dir_a, data.dir_b)
    gray = all(images_are_gray([p for p, _ in list_images([d], recursive=True)]) for d in folders)
    return 1 if gray else 3


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def spec_to_json(spec: RunSpec, device: torch.device, threads: ThreadChoice | None = None, world_size: int = 1) -> str:
    return json.dumps(
        {
            "spec": to_dict(spec),
            "i2icli": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(device),
            "threads": dataclasses.asdict(threads or current_threads()),
            "world_size": world_size,
            "git_commit": _git_commit(),
        },
        indent=2,
    )


def recorded_world_size(run_dir: Path) -> int:
    """The number of processes the run in ``run_dir`` was started with (1 for older runs)."""
    try:
        return int(json.loads((run_dir / "run.json").read_text()).get("world_size", 1))
    except (OSError, ValueError, json.JSONDecodeError) as e:
        raise UsageError(f"--resume {run_dir}: not a run folder ({e})") from None


def current_threads() -> ThreadChoice:
    """What a library caller left torch with (the command line passes its own choice)."""
    import os

    from i2icli.threads import available_cpus

    return ThreadChoice(torch.get_num_threads(), "caller", available_cpus(), None, os.environ.get("OMP_WAIT_POLICY", ""))


def read_spec(run_dir: Path) -> RunSpec:
    """The ``RunSpec`` stored in ``run_dir/run.json``."""
    path = run_dir / "run.json"
    try:
        data = json.loads(path.read_text())["spec"]
        return from_dict(RunSpec, data)
    except (OSError, KeyError, json.JSONDecodeError, ConfigError) as e:
        raise UsageError(f"--resume {run_dir}: not a run folder ({path}: {e})") from None

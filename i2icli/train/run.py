"""A training run: resolve the config (preset, file, overrides), lay out the run folder, build
data, model and objective, call the loop, and export the inference checkpoint at the end.

Run folder::

    run.json             resolved config, loop options, data, package/torch versions, git commit, device
    metrics.jsonl        scalars, one JSON object per logged step
    samples/step_*.png   sample grids
    checkpoints/step_*.pt  full training state (weights_only-loadable), the last ``keep_last`` kept
    model/               the exported inference checkpoint (model.safetensors + config.json)
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from i2icli import __version__
from i2icli.checkpoint import ModelConfig, atomic_write_bytes, load_checkpoint, save_model
from i2icli.config import ConfigError, apply_overrides, from_dict, to_dict
from i2icli.data.unpaired import SkippedImageWarning
from i2icli.errors import I2IError, UsageError
from i2icli.methods import load_method
from i2icli.train.loop import LoopOptions, TrainResult, latest_checkpoint, train


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
    try:
        if config_file is not None:
            try:
                file_data = json.loads(config_file.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise UsageError(f"--config {config_file}: cannot read JSON ({e})") from None
            cfg = apply_overrides(cfg, file_data)
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        if method_options:
            cfg = apply_overrides(cfg, method_options)
        if lr is not None:
            cfg = apply_overrides(cfg, {"optim": {"lr": lr}})
    except (ConfigError, UsageError) as e:
        raise UsageError(str(e)) from None
    bs = batch_size or chosen.batch_size
    steps = max_steps or chosen.max_steps or chosen.epochs * steps_per_epoch(bs)
    loop = LoopOptions(max_steps=steps, **loop_kwargs)
    return RunSpec(method, name, to_dict(cfg), loop, bs, data, init_from)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def spec_to_json(spec: RunSpec, device: torch.device) -> str:
    return json.dumps(
        {
            "spec": to_dict(spec),
            "i2icli": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(device),
            "git_commit": _git_commit(),
        },
        indent=2,
    )


def read_spec(run_dir: Path) -> RunSpec:
    """The ``RunSpec`` stored in ``run_dir/run.json``."""
    path = run_dir / "run.json"
    try:
        data = json.loads(path.read_text())["spec"]
        return from_dict(RunSpec, data)
    except (OSError, KeyError, json.JSONDecodeError, ConfigError) as e:
        raise UsageError(f"--resume {run_dir}: not a run folder ({path}: {e})") from None


def _test_folders(spec: RunSpec) -> tuple[Path, Path] | None:
    """``testA``/``testB`` beside ``trainA``/``trainB``, when both exist: the validation images."""
    from i2icli.data.recipes import TEST_SPLITS, TRAIN_SPLITS

    a, b = Path(spec.data.dir_a), Path(spec.data.dir_b)
    if (a.name, b.name) != TRAIN_SPLITS:
        return None
    test_a, test_b = a.parent / TEST_SPLITS[0], b.parent / TEST_SPLITS[1]
    return (test_a, test_b) if test_a.is_dir() and test_b.is_dir() else None


def open_data(spec: RunSpec, channels: int) -> Any:
    """The training data; with ``--val-every`` and no test folders, a held-back part of each folder."""
    from i2icli.data.unpaired import UnpairedImages

    cfg = from_dict(load_method(spec.method).config_cls, spec.config)
    return UnpairedImages(
        Path(spec.data.dir_a),
        Path(spec.data.dir_b),
        cfg.data,
        channels,
        spec.loop.seed,
        spec.batch_size,
        preload=spec.data.preload,
        holdout=bool(spec.loop.val_every) and _test_folders(spec) is None,
        max_pixels=spec.data.max_pixels,
    )


def _validation_images(spec: RunSpec, data: Any, cfg: Any) -> tuple[tuple[torch.Tensor, torch.Tensor], str]:
    """(A, B) validation images and where they come from (test folders or the held-back files)."""
    from i2icli.data.unpaired import evaluation_images
    from i2icli.imageio import list_images

    folders = _test_folders(spec)
    if folders is not None:
        files = [[p for p, _ in list_images([str(f)], recursive=True)] for f in folders]
        source = f"{folders[0]}, {folders[1]}"
    else:
        files = [data.held_out_files["a"], data.held_out_files["b"]]
        source = "held back from the training folders"
    a, b = (evaluation_images(f, cfg.data, c) for f, c in zip(files, (cfg.arch.channels_a, cfg.arch.channels_b)))
    return (a, b), f"{len(a)} + {len(b)} images, {source}"


def _export(model: torch.nn.Module, out: Path, spec: RunSpec, cfg: Any, step: int, **extra: Any) -> Path:
    config = ModelConfig(
        method=spec.method,
        arch=to_dict(cfg.arch),
        domains=spec.data.domains,
        image_size=cfg.data.crop_size,
        training={"preset": spec.preset, "steps": step, "seed": spec.loop.seed, "batch_size": spec.batch_size, **extra},
    )
    was_training = model.training
    save_model(out, model.eval(), config)
    model.train(was_training)
    return out


def _record(run_dir: Path, key: str, value: Any) -> None:
    """Add ``key`` to run.json (atomically), e.g. the best validation checkpoint."""
    path = run_dir / "run.json"
    data = json.loads(path.read_text())
    data[key] = value
    atomic_write_bytes(path, json.dumps(data, indent=2).encode())


def run(
    spec: RunSpec,
    run_dir: Path,
    device: torch.device,
    *,
    resume: bool = False,
    restore_rng: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    log: Callable[[str], None] = print,
) -> tuple[TrainResult, Path | None]:
    """Run (or resume) training; returns the loop result and the exported model folder (None if interrupted).

    With ``loop.val_every``, the objective's validation score is computed on ``testA``/``testB``
    (when beside the training folders) or on a held-back tenth of each folder, and the best model
    so far is exported to ``model-best/`` and recorded in run.json under ``best``.
    """
    impl = load_method(spec.method)
    cfg = from_dict(impl.config_cls, spec.config)
    arch = cfg.arch
    if arch.channels_a != arch.channels_b:
        raise UsageError("training on domains with different channel counts is not supported yet")
    if not resume and latest_checkpoint(run_dir) is not None:
        raise UsageError(f"--run-dir {run_dir}: already holds a run; use --resume {run_dir} or another folder")
    # Everything that can refuse the run (data, config, weights files) happens before the run folder exists.
    torch.manual_seed(spec.loop.seed)
    with warnings.catch_warnings():
        # Unreadable files are reported below, one clean line each, and counted in data.json.
        warnings.simplefilter("ignore", SkippedImageWarning)
        data = open_data(spec, arch.channels_a)
    model = impl.build_model(arch)
    try:
        objective = impl.build_objective(cfg, model, data, spec.loop.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    validation = objective.validation()
    held_out, described = None, None
    if spec.loop.val_every:
        if validation is None:
            raise UsageError(f"--val-every: {spec.method} has no validation score")
        held_out, described = _validation_images(spec, data, cfg)
        held_out = (held_out[0].to(device), held_out[1].to(device))
    if spec.init_from and not resume:
        _init_from(model, spec.init_from, spec.method)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(run_dir):
            # Checked again under the lock: another run may have started here since the check above.
            if not resume and latest_checkpoint(run_dir) is not None:
                raise UsageError(f"--run-dir {run_dir}: already holds a run; use --resume {run_dir} or another folder")
            return _run_locked(
                spec, run_dir, device, cfg, data, model, objective, held_out, described, resume=resume,
                restore_rng=restore_rng, on_step=on_step, log=log,
            )  # fmt: skip
    except OSError as e:
        raise I2IError(f"{e.filename or run_dir}: cannot write the run folder ({e.strerror or e})") from None


def _run_locked(
    spec: RunSpec, run_dir: Path, device: torch.device, cfg: Any, data: Any, model: torch.nn.Module, objective: Any,
    held_out: tuple[torch.Tensor, torch.Tensor] | None, described: str | None, *, resume: bool, restore_rng: bool,
    on_step: Callable[[int, dict[str, float]], None] | None, log: Callable[[str], None],
) -> tuple[TrainResult, Path | None]:  # fmt: skip
    """``run`` once the run folder exists and this process holds its lock."""
    validation = objective.validation()
    if not resume:
        atomic_write_bytes(run_dir / "run.json", spec_to_json(spec, device).encode())
    for path, reason in data.skipped:
        log(f"warning: skipping unreadable image {path}: {reason}")
    report = {"images_a": len(data.files_a), "images_b": len(data.files_b), "skipped": [[str(p), r] for p, r in data.skipped]}
    if described is not None:
        report["validation"] = described
    atomic_write_bytes(run_dir / "data.json", (json.dumps(report, indent=2) + "\n").encode())
    for m in objective.training_modules().values():
        m.to(device).train()

    def on_best(step: int, score: float) -> None:
        assert validation is not None
        name = f"val_{validation.name}"
        _export(model, run_dir / "model-best", spec, cfg, step, **{name: score})
        better = "higher" if validation.higher_is_better else "lower"
        _record(run_dir, "best", {"step": step, name: score, "better": better, "folder": "model-best"})

    result = train(
        objective, data, spec.loop, run_dir=run_dir, device=device, resume=resume, restore_rng=restore_rng,
        num_workers=spec.data.num_workers, on_step=on_step, held_out=held_out, on_best=on_best, log=log,
    )
    if result.interrupted:
        return result, None
    return result, _export(model, run_dir / "model", spec, cfg, result.step)


class RunLocked(I2IError):
    """Another process is training in the same run folder."""


LOCK_NAME = ".i2i-train.lock"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``run_dir/.i2i-train.lock`` (holding the owner's pid) while
    a run writes there; a second run or resume is refused with ``RunLocked``. The kernel drops the
    lock when its process dies, so a killed run never blocks its own resume."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): runs in one folder are not guarded there
        yield
        return
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunLocked(
                f"--run-dir {run_dir}: another i2i train (pid {holder}) is using this run folder; "
                "wait for it to finish or choose another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def run_or_resume(
    run_dir: Path,
    new_spec: Callable[[], RunSpec],
    device: torch.device,
    *,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> Path:
    """The exported model of the run in ``run_dir``: returned if finished, continued from its last
    checkpoint if interrupted, else started from ``new_spec()``. Raises if interrupted again."""
    if (run_dir / "model" / "model.safetensors").is_file():
        return run_dir / "model"
    resume = latest_checkpoint(run_dir) is not None
    spec = read_spec(run_dir) if resume else new_spec()
    result, exported = run(spec, run_dir, device, resume=resume, on_step=on_step)
    if exported is None:
        raise UsageError(f"{run_dir}: interrupted at step {result.step}; run again to continue")
    return exported


def _init_from(model: torch.nn.Module, ref: str, method: str) -> None:
    """Fine-tune start: copy a resolvable model's weights into ``model`` (same method and arch)."""
    from i2icli.registry import fetch, resolve

    path = fetch(resolve(ref))
    source, config = load_checkpoint(path)
    if config.method != method:
        raise UsageError(f"--init-from {ref}: a {config.method} checkpoint, not {method}")
    if source.state_dict().keys() != model.state_dict().keys() or any(
        source.state_dict()[k].shape != v.shape for k, v in model.state_dict().items()
    ):
        raise UsageError(f"--init-from {ref}: its architecture {config.arch} differs from this run's")
    model.load_state_dict(source.state_dict())


def resume_spec(run_dir: Path, max_steps: int | None) -> RunSpec:
    """The stored spec of ``run_dir``, optionally extended to a new ``max_steps``."""
    spec = read_spec(run_dir)
    if max_steps is not None:
        spec = dataclasses.replace(spec, loop=dataclasses.replace(spec.loop, max_steps=max_steps))
    return spec



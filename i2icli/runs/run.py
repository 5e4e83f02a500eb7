"""A training run: resolve the config (preset, file, overrides), lay out the run folder, build
data, model and objective, call the loop, and export the inference checkpoint at the end.

Run folder::

    run.json             resolved config, loop options, data, package/torch versions, git commit, device,
                         world_size (processes of a data-parallel run; 1 without torchrun)
    metrics.jsonl        scalars, one JSON object per logged step
    samples/step_*.png   sample grids
    checkpoints/step_*.pt  full training state (weights_only-loadable), the last ``keep_last`` kept
    model/               the exported inference checkpoint (model.safetensors + config.json)
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

from i2icli.checkpoint import ModelConfig, atomic_write_bytes, save_model
from i2icli.config import from_dict, to_dict
from i2icli.data.unpaired import SkippedImageWarning
from i2icli.errors import I2IError, UsageError
from i2icli.methods import load_method
from i2icli.methods.load import load_checkpoint
from i2icli.runs.spec import CPU_PRESET_PREFIX, RunSpec, current_threads, read_spec, recorded_world_size, spec_to_json
from i2icli.threads import ThreadChoice
from i2icli.train.distributed import Dist
from i2icli.train.loop import TrainResult, train
from i2icli.train.objective import Stage
from i2icli.train.state import checkpoint_path, checkpoint_step, latest_checkpoint, load_training_state


def _test_folders(spec: RunSpec) -> tuple[Path, Path] | None:
    """``testA``/``testB`` beside ``trainA``/``trainB``, when both exist: the validation images."""
    from i2icli.data.layout import TEST_SPLITS, TRAIN_SPLITS

    a, b = Path(spec.data.dir_a), Path(spec.data.dir_b)
    if (a.name, b.name) != TRAIN_SPLITS:
        return None
    test_a, test_b = a.parent / TEST_SPLITS[0], b.parent / TEST_SPLITS[1]
    return (test_a, test_b) if test_a.is_dir() and test_b.is_dir() else None


def open_data(spec: RunSpec, channels: int, place: Dist = Dist()) -> Any:
    """The training data; with ``--val-every`` and no test folders, a held-back part of each folder.
    In a data-parallel run each step's batch has ``batch_size`` images per process and this
    process decodes only its own share."""
    from i2icli.data.unpaired import UnpairedImages

    cfg = from_dict(load_method(spec.method).config_cls, spec.config)
    return UnpairedImages(
        Path(spec.data.dir_a),
        Path(spec.data.dir_b),
        cfg.data,
        channels,
        spec.loop.seed,
        spec.batch_size * place.world,
        preload=spec.data.preload,
        holdout=bool(spec.loop.val_every) and _test_folders(spec) is None,
        shard=(place.rank, place.world),
        max_pixels=spec.data.max_pixels,
    )


def _validation_images(spec: RunSpec, data: Any, cfg: Any) -> tuple[tuple[torch.Tensor, torch.Tensor], str]:
    """(A, B) validation images and where they come from (test folders or the held-back files)."""
    from i2icli.data.unpaired import evaluation_images
    from i2icli.listing import list_images

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
        training={
            "preset": spec.preset, "steps": step, "seed": spec.loop.seed, "batch_size": spec.batch_size,
            # How training images were resized: translate's --size auto feeds images at this scale.
            "preprocess": to_dict(cfg.data), **extra,
        },  # fmt: skip
    )
    was_training = model.training
    save_model(out, model.eval(), config)
    model.train(was_training)
    return out


PAPER_PRESET = "paper"  # every method's official recipe (see ``Method.presets``)
_ESTIMATE_AFTER = 3  # steps; the first one (allocation, warm-up) is not counted in the rate


def _cpu_estimate(
    spec: RunSpec, presets: Mapping[str, Any], device: torch.device, log: Callable[[str], None]
) -> Callable[[int], None] | None:
    """For the paper preset on a CPU: a tick that logs one line with the measured step time, how long
    the run would take, and the CPU presets; None otherwise."""
    if spec.preset != PAPER_PRESET or device.type != "cpu":
        return None
    import time

    from i2icli.progress import format_duration

    cpu_presets = [name for name in presets if name.startswith(CPU_PRESET_PREFIX)]
    marks: dict[str, float] = {}

    def tick(step: int) -> None:
        if "first" not in marks:
            marks["first"], marks["step"] = time.perf_counter(), step
            return
        counted = step - marks["step"]
        if counted != _ESTIMATE_AFTER - 1 or "done" in marks:
            return
        marks["done"] = 1.0
        per_step = (time.perf_counter() - marks["first"]) / counted
        total = spec.loop.max_steps
        hint = f"; the CPU presets are {', '.join(cpu_presets)} (--preset {cpu_presets[0]})" if cpu_presets else ""
        log(
            f"note: the paper preset on a CPU: {per_step:.2f} s/step measured, so {total} steps would take "
            f"about {format_duration(per_step * total)} (the rest: {format_duration(per_step * (total - step))}){hint}"
        )

    return tick


def _record(run_dir: Path, key: str, value: Any) -> None:
    """Add ``key`` to run.json (atomically), e.g. the best validation checkpoint."""
    path = run_dir / "run.json"
    data = json.loads(path.read_text())
    data[key] = value
    atomic_write_bytes(path, json.dumps(data, indent=2).encode())


def _check_stages_fit(stages: list[Stage], max_steps: int, method: str) -> None:
    """A staged run whose budget ends before its last stage begins would export a half-trained
    model (TransGaGa: no PCA bases, no translation training): refuse it in one line."""
    late = [s for s in stages if s.start >= max_steps]
    if late:
        raise UsageError(
            f"--max-steps {max_steps}: {method} stage '{late[0].name}' starts at step {late[0].start}, after the run ends; "
            "train longer or shorten the stages (--set, see the preset's description)"
        )


def run(
    spec: RunSpec,
    run_dir: Path,
    device: torch.device,
    *,
    resume: bool = False,
    restore_rng: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    log: Callable[[str], None] = print,
    on_tick: Callable[[int], None] | None = None,
    threads: ThreadChoice | None = None,
    place: Dist = Dist(),
) -> tuple[TrainResult, Path | None]:
    """Run (or resume) training; returns the loop result and the exported model folder (None if
    interrupted, and on every rank but 0 of a data-parallel run, which write nothing).

    With ``loop.val_every``, the objective's validation score is computed on ``testA``/``testB``
    (when beside the training folders) or on a held-back tenth of each folder, and the best model
    so far is exported to ``model-best/`` and recorded in run.json under ``best``.
    ``on_tick(step)`` is called after every step; ``threads`` (the command line's choice) is recorded
    in run.json, at the start and at each resume. The paper preset on a CPU logs, after a few
    steps, how long the whole run would take at the measured rate and which presets fit a CPU.
    """
    impl = load_method(spec.method)
    cfg = from_dict(impl.config_cls, spec.config)
    arch = cfg.arch
    if arch.channels_a != arch.channels_b:
        raise UsageError("training on domains with different channel counts is not supported yet")
    if not resume and latest_checkpoint(run_dir) is not None:
        with run_lock(run_dir):  # a run still writing there is named as such (RunLocked), not as an old one
            pass
        raise UsageError(f"--run-dir {run_dir}: already holds a run; use --resume {run_dir} or another folder")
    if resume and recorded_world_size(run_dir) != place.world:
        raise UsageError(
            f"--resume {run_dir}: the run used {recorded_world_size(run_dir)} processes; resume it with the same number"
        )
    # Everything that can refuse the run (data, config, weights files) happens before the run folder exists.
    torch.manual_seed(spec.loop.seed)
    with warnings.catch_warnings():
        # Unreadable files are reported below, one clean line each, and counted in data.json.
        warnings.simplefilter("ignore", SkippedImageWarning)
        data = open_data(spec, arch.channels_a, place)
    model = impl.build_model(arch)
    try:
        objective = impl.build_objective(cfg, model, data, spec.loop.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    _check_stages_fit(objective.stages(), spec.loop.max_steps, spec.method)
    if place.enabled:
        from i2icli.data.unpaired import mix_seed

        # Same initial weights everywhere (seeded above, broadcast by the loop); from here each
        # rank draws its own noise (pools, random styles) for its own images.
        torch.manual_seed(mix_seed(spec.loop.seed, place.rank))
    validation = objective.validation()
    held_out, described = None, None
    if spec.loop.val_every:
        if validation is None:
            raise UsageError(f"--val-every: {spec.method} has no validation score")
        held_out, described = _validation_images(spec, data, cfg)
        held_out = (held_out[0].to(device), held_out[1].to(device))
    if spec.init_from and not resume:
        _init_from(model, spec.init_from, spec.method)
    if spec.loop.tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise UsageError("--tensorboard needs the tensorboard package: pip install 'i2icli[tb]'")
    if not place.writes:
        # Data-parallel ranks other than 0 write nothing (no lock, run.json, metrics or checkpoints);
        # the loop's collectives keep them in step with rank 0.
        for m in objective.training_modules().values():
            m.to(device).train()
        result = train(
            objective, data, spec.loop, run_dir=run_dir, device=device, resume=resume, restore_rng=restore_rng,
            num_workers=spec.data.num_workers, held_out=held_out, log=lambda line: None, place=place,
        )  # fmt: skip
        return result, None
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(run_dir):
            # Checked again under the lock: another run may have started here since the check above.
            if not resume and latest_checkpoint(run_dir) is not None:
                raise UsageError(f"--run-dir {run_dir}: already holds a run; use --resume {run_dir} or another folder")
            return _run_locked(
                spec, run_dir, device, cfg, data, model, objective, held_out, described, resume=resume,
                restore_rng=restore_rng, on_step=on_step, log=log, on_tick=on_tick, threads=threads,
                presets=impl.presets, place=place,
            )  # fmt: skip
    except OSError as e:
        raise I2IError(f"{e.filename or run_dir}: cannot write the run folder ({e.strerror or e})") from None


def _run_locked(
    spec: RunSpec, run_dir: Path, device: torch.device, cfg: Any, data: Any, model: torch.nn.Module, objective: Any,
    held_out: tuple[torch.Tensor, torch.Tensor] | None, described: str | None, *, resume: bool, restore_rng: bool,
    on_step: Callable[[int, dict[str, float]], None] | None, log: Callable[[str], None],
    on_tick: Callable[[int], None] | None, threads: ThreadChoice | None, presets: Mapping[str, Any],
    place: Dist = Dist(),
) -> tuple[TrainResult, Path | None]:  # fmt: skip
    """``run`` once the run folder exists and this process holds its lock."""
    validation = objective.validation()
    if not resume:
        atomic_write_bytes(run_dir / "run.json", spec_to_json(spec, device, threads, place.world).encode())
    else:
        if to_dict(spec) != to_dict(read_spec(run_dir)):
            _record(run_dir, "spec", to_dict(spec))  # a longer run or changed progress options (plan_resume)
        ckpt = latest_checkpoint(run_dir)
        session = {"step": checkpoint_step(ckpt) if ckpt else 0, "device": str(device),
                   "threads": dataclasses.asdict(threads or current_threads())}  # fmt: skip
        _record(run_dir, "resumed", [*json.loads((run_dir / "run.json").read_text()).get("resumed", []), session])
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

    ticks = [t for t in (on_tick, _cpu_estimate(spec, presets, device, log)) if t is not None]

    def tick(step: int) -> None:
        for t in ticks:
            t(step)

    result = train(
        objective, data, spec.loop, run_dir=run_dir, device=device, resume=resume, restore_rng=restore_rng,
        num_workers=spec.data.num_workers, on_step=on_step, held_out=held_out, on_best=on_best, log=log,
        on_tick=tick if ticks else None, place=place,
    )
    if result.interrupted or not place.writes:
        return result, None
    if result.averaged is not None:
        model.load_state_dict(result.averaged)  # --ema: the average is the trained model (training is over)
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
    checkpoint if interrupted, else started from ``new_spec()``. Raises if interrupted again, and
    before any work if the folder holds a run of another recipe (a changed variant would otherwise
    come back as the old model)."""
    finished = (run_dir / "model" / "model.safetensors").is_file()
    resume = latest_checkpoint(run_dir) is not None
    if finished or resume:
        differ = recipe_differences(read_spec(run_dir), new_spec())
        if differ:
            raise UsageError(f"{run_dir}: holds a run of another recipe ({', '.join(differ)} differ); remove it or use another folder")
    if finished:
        return run_dir / "model"
    spec = read_spec(run_dir) if resume else new_spec()
    result, exported = run(spec, run_dir, device, resume=resume, on_step=on_step)
    if exported is None:
        raise UsageError(f"{run_dir}: interrupted at step {result.step}; run again to continue")
    return exported


def recipe_differences(stored: RunSpec, wanted: RunSpec) -> list[str]:
    """What a stored run and a requested one both set, but to different values: the method, the
    batch size and every config key the two share (a key only one has is a newer or older field,
    not a different recipe). The step budget may grow on resume, so it is not compared."""

    def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
        if not isinstance(tree, dict):
            return {prefix[:-1]: tree}
        return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{prefix}{key}.").items()}

    # Through JSON, as run.json stores it (tuples become lists).
    old, new = (flat(json.loads(json.dumps(spec.config))) for spec in (stored, wanted))
    differ = [name for name, a, b in (("method", stored.method, wanted.method), ("batch_size", stored.batch_size, wanted.batch_size)) if a != b]
    return differ + [f"config.{k}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]


def _init_from(model: torch.nn.Module, ref: str, method: str) -> None:
    """Fine-tune start: copy a resolvable model's weights into ``model`` (same method and arch)."""
    from i2icli.sources import fetch, resolve

    path = fetch(resolve(ref))
    source, config = load_checkpoint(path)
    if config.method != method:
        raise UsageError(f"--init-from {ref}: a {config.method} checkpoint, not {method}")
    if source.state_dict().keys() != model.state_dict().keys() or any(
        source.state_dict()[k].shape != v.shape for k, v in model.state_dict().items()
    ):
        raise UsageError(f"--init-from {ref}: its architecture {config.arch} differs from this run's")
    model.load_state_dict(source.state_dict())


def export_checkpoint(run_dir: Path, step: int | None, out: Path | None, device: torch.device) -> Path:
    """Export the model of training checkpoint ``step`` (default: the last) of ``run_dir`` to ``out``
    (default ``run_dir/model-step_N``), as training does at its end; returns the folder."""
    if not (run_dir / "run.json").is_file():
        raise UsageError(f"{run_dir}: not a training run folder (no run.json)")
    found = sorted(checkpoint_step(p) for p in (run_dir / "checkpoints").glob("step_*.pt"))
    if not found:
        raise UsageError(f"{run_dir}: no training checkpoints (checkpoints/step_*.pt)")
    step = found[-1] if step is None else step
    if step not in found:
        raise UsageError(f"--step {step}: {run_dir} has checkpoints at steps {', '.join(map(str, found))}")
    spec = read_spec(run_dir)
    impl = load_method(spec.method)
    cfg = from_dict(impl.config_cls, spec.config)
    model = impl.build_model(cfg.arch)
    # The objective owns the module names the checkpoint uses; building it needs the training data.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImageWarning)
        data = open_data(spec, cfg.arch.channels_a)
    try:
        objective = impl.build_objective(cfg, model, data, spec.loop.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    state = load_training_state(checkpoint_path(run_dir, step), device)
    for name, module in objective.training_modules().items():
        module.to(device).load_state_dict(state["modules"][name])
    objective.load_extra_state(state["extra"])
    if "ema" in state:
        model.load_state_dict(state["ema"]["weights"])  # a run trained with --ema exports its average
    return _export(model, out or run_dir / f"model-step_{step}", spec, cfg, step)

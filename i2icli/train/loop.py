"""The training loop: one plain function for every method.

Per step: fetch the batch for this step (a pure function of seed and step), run the objective's
phases in order (each with only its own parameters trainable), log scalars, write sample grids and
atomic checkpoints. SIGINT/SIGTERM finish the current step, save, and return. A checkpoint holds
the full state (modules, optimiser moments, objective state such as image pools, RNG states,
step), so ``resume=True`` continues exactly as an uninterrupted run would.

Faults: a checkpoint carries a sha256 of its contents, and resuming takes the newest one that
reads back intact (a corrupt newer one is set aside as ``*.pt.corrupt`` with a warning); a run
killed before its first checkpoint starts again from step 0. ``metrics.jsonl`` is cut back to the
resumed step (and any half-written last line dropped), so it reads as if never interrupted. A
non-finite loss stops the run at once, before anything is saved from that step; a checkpoint that
cannot be written (full disk) leaves the previous ones as they were.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Protocol

import torch

from i2icli.checkpoint import atomic_write_bytes, safe_torch_load
from i2icli.data.unpaired import make_loader
from i2icli.errors import CheckpointError, I2IError
from i2icli.train import distributed
from i2icli.train.distributed import Dist
from i2icli.train.objective import Batch, Objective, Phase, Stage
from i2icli.train.schedule import Extension, planned_factor


class StepData(Protocol):
    """Training data indexed by step: ``data[step]`` is the whole batch for that step."""

    def __getitem__(self, step: int) -> Batch: ...


@dataclass(frozen=True)
class LoopOptions:
    max_steps: int  # total optimisation steps (resuming continues up to this)
    seed: int = 0
    save_every: int = 1000  # checkpoint interval in steps (0: only at the end / on interrupt)
    keep_last: int = 3  # checkpoints kept in run_dir/checkpoints (older ones deleted)
    sample_every: int = 500  # sample-grid interval (0: never)
    log_every: int = 10  # scalars to metrics.jsonl every N steps
    amp: bool = False  # autocast in amp_dtype (CUDA, or CPU with native bf16); fp32 otherwise
    tensorboard: bool = False
    val_every: int = 0  # validation score every N steps on held-back images (0: never)
    extensions: tuple[Extension, ...] = ()  # changes of max_steps made on resume (the lr plan follows them)
    amp_dtype: Literal["bf16", "fp16"] = "bf16"  # fp16 (CUDA only) scales losses with a GradScaler
    channels_last: bool = False  # networks and batches in channels_last memory layout
    compile: bool = False  # torch.compile each training module's forward (in place: same state dict keys)


@dataclass(frozen=True)
class TrainResult:
    step: int  # steps completed
    interrupted: bool
    checkpoint: Path | None


class TrainingDiverged(I2IError):
    """A loss became NaN or infinite."""


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}.pt"


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass(frozen=True)
class Best:
    """The best validation score so far and the step it was reached at."""

    step: int
    score: float


def save_training_state(
    path: Path,
    step: int,
    objective: Objective,
    optimizers: dict[str, torch.optim.Optimizer],
    *,
    entered: list[str],
    best: Best | None,
    scaler: Any = None,
    ranks: list[dict[str, Any]] | None = None,
) -> None:
    """Everything needed to resume, written atomically (temp file, fsync, rename) with a sha256 of
    its contents. A failed write (full disk) raises ``CheckpointError`` and leaves earlier files as they were.
    ``ranks``: each data-parallel rank's own ``{"extra", "rng", "weights_sha256"}`` (rank 0's extra
    and rng are also the top-level ones)."""
    import io

    state: dict[str, Any] = {
        "step": step,
        "modules": {k: m.state_dict() for k, m in objective.training_modules().items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "extra": objective.extra_state(),
        "rng": _rng_state(),
        "stages_entered": list(entered),
        "best": None if best is None else {"step": best.step, "score": best.score},
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    if ranks is not None:
        state["ranks"] = ranks
    state["sha256"] = state_digest(state)
    buf = io.BytesIO()
    torch.save(state, buf)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:
        previous = [p.name for p in sorted(path.parent.glob("step_*.pt")) if p != path]
        kept = f"; {previous[-1]} is intact" if previous else ""
        raise CheckpointError(f"{path}: cannot write checkpoint ({e.strerror or e}){kept}") from None


def state_digest(obj: Any) -> str:
    """sha256 over a nested checkpoint state: every tensor's dtype, shape and bytes, every other
    value's repr, dict keys in sorted order (a ``"sha256"`` key itself is left out)."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            h.update(b"{")
            for k in sorted((k for k in x if k != "sha256"), key=repr):
                h.update(repr(k).encode() + b":")
                feed(x[k])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for item in x:
                feed(item)
            h.update(b"]")
        else:
            h.update(repr(x).encode() + b";")

    feed(obj)
    return h.hexdigest()


def load_training_state(path: Path, device: torch.device) -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True`` (plain tensors and containers only)
    and check its sha256; any failure is a one-line ``CheckpointError``."""
    state = safe_torch_load(path, map_location=device)
    if not isinstance(state, dict) or "step" not in state or "modules" not in state:
        raise CheckpointError(f"{path}: not an i2i training checkpoint")
    recorded = state.get("sha256")  # absent in checkpoints written before it was added
    if recorded is not None and state_digest(state) != recorded:
        raise CheckpointError(f"{path}: contents do not match the recorded sha256 (file corrupted)")
    return state


def resume_point(run_dir: Path, device: torch.device, log: Callable[[str], None] = _stderr) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of ``run_dir`` that reads back intact, and its state (None if there is none).

    A newer checkpoint that fails to load is renamed ``<name>.corrupt`` (kept for inspection, never
    tried again) and the one before it is taken, with a warning line for each.
    """
    found = sorted((run_dir / "checkpoints").glob("step_*.pt"), reverse=True)
    for i, path in enumerate(found):
        try:
            return path, load_training_state(path, device)
        except CheckpointError as e:
            fallback = f"falling back to {found[i + 1].name}" if i + 1 < len(found) else "no older checkpoint to fall back to"
            log(f"warning: {e}; {fallback}")
            try:
                path.replace(path.with_name(path.name + ".corrupt"))
            except OSError:
                pass  # a folder we cannot rename in: the next resume meets (and skips) it again
    return None


def _trim_metrics(path: Path, step: int) -> None:
    """Keep the records of steps <= ``step`` (a resumed run logs the later ones again) and drop a
    line a kill cut in half."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line + "\n")
    atomic_write_bytes(path, "".join(kept).encode())


def _remove_stale_temps(run_dir: Path) -> None:
    """Temp files (``.<name>.<random>.tmp``, see ``atomic_write_bytes``) of writes a kill interrupted:
    checkpoints, run records, exported models (the run lock says nobody else writes)."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "model", run_dir / "model-best"):
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, bool]]:
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps."""
    flag = {"stop": False}

    def handler(signum: int, frame: Any) -> None:
        flag["stop"] = True

    installed = []
    if threading.current_thread() is threading.main_thread():  # signal handlers only work there
        for sig in (signal.SIGINT, signal.SIGTERM):
            installed.append((sig, signal.signal(sig, handler)))
    try:
        yield flag
    finally:
        for sig, old in installed:
            signal.signal(sig, old)


def _save_grid(path: Path, labelled: Mapping[str, torch.Tensor]) -> None:
    """Rows of (B, 3, H, W) images in [-1, 1] by label -> one PNG, one row per tensor, each row's
    label written in a column on its left."""
    import io

    from PIL import Image, ImageDraw, ImageFont

    tensors = list(labelled.values())
    grid = torch.cat([torch.cat(list(r.detach().float().cpu()), dim=2) for r in tensors], dim=1)  # (3, rows*H, B*W)
    pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    images = Image.fromarray(pixels)
    font = ImageFont.load_default()
    draw = ImageDraw.Draw(images)
    margin = 4 + max(int(draw.textlength(label, font=font)) for label in labelled)
    canvas = Image.new("RGB", (margin + images.width, images.height))
    canvas.paste(images, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    top = 0
    for label, row in labelled.items():
        draw.text((2, top + 1), label, fill=(255, 255, 255), font=font)
        top += row.shape[2]
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def check_stages(stages: list[Stage]) -> None:
    """Stages start at step 0, in increasing order, with unique names."""
    if not stages:
        return
    starts = [s.start for s in stages]
    if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"stages must start at step 0 and increase, got {starts}")
    if len({s.name for s in stages}) != len(stages):
        raise ValueError(f"stage names must be unique: {[s.name for s in stages]}")


def stage_at(stages: list[Stage], step: int) -> Stage | None:
    """The stage that ``step`` (0-indexed) belongs to."""
    current = None
    for stage in stages:
        if stage.start <= step:
            current = stage
    return current


def _runs_in(phase: Phase, stage: Stage | None) -> bool:
    return phase.stages is None or (stage is not None and stage.name in phase.stages)


def _set_trainable(params: dict[str, list[torch.nn.Parameter]], active: str) -> None:
    """Only phase ``active``'s parameters need gradients; a module shared by several phases (e.g.
    across stages) is trainable whenever one of them is active, so freeze everything first."""
    for name, group in params.items():
        if name != active:
            for p in group:
                p.requires_grad_(False)
    for p in params[active]:
        p.requires_grad_(True)


def _to_device(batch: Batch, device: torch.device, channels_last: bool = False) -> Batch:
    def move(v: torch.Tensor) -> torch.Tensor:
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.dim() == 4 else v

    return {k: move(v) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def _batches(data: StepData, start: int, stop: int, num_workers: int, stage_starts: list[int]) -> Iterator[Batch]:
    """``data[step]`` for ``step`` in ``start .. stop - 1``. Without worker processes, each stage's
    batches after its first are prepared in a background thread (``_prefetched``); a stage's first
    batch is fetched here, so a stage hook runs with no later batch fetched yet, as without prefetch."""
    bounds = sorted({start, stop, *(s for s in stage_starts if start < s < stop)})
    for a, b in zip(bounds, bounds[1:]):
        if num_workers:
            yield from make_loader(data, a, b, num_workers)
            continue
        yield data[a]
        if a + 1 < b:
            rest = _prefetched(iter(make_loader(data, a + 1, b, 0)))
            try:
                yield from rest
            finally:
                rest.close()


def _prefetched(batches: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """``batches`` produced one or two steps ahead in a background thread, so decoding and
    augmenting the next batch overlaps this step's compute. Batches are pure functions of the
    step, so the thread changes no result; it draws nothing from the global RNG."""
    import queue

    done = object()
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - re-raised in the training thread
            q.put(e)

    thread = threading.Thread(target=produce, name="i2i-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def make_optimizer(phase: Phase, device: torch.device) -> torch.optim.Adam:
    """Adam for one phase: the fused kernel where this torch has it for the device (one kernel for
    all parameters instead of a loop over them), else the multi-tensor (foreach) one."""
    kwargs: dict[str, Any] = dict(lr=phase.lr, betas=phase.betas, weight_decay=phase.weight_decay)
    try:
        return torch.optim.Adam(phase.parameters(), fused=device.type in ("cpu", "cuda"), **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(phase.parameters(), foreach=True, **kwargs)


def train(
    objective: Objective,
    data: StepData,
    opts: LoopOptions,
    *,
    run_dir: Path,
    device: torch.device,
    resume: bool = False,
    restore_rng: bool = True,
    num_workers: int = 0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
    on_best: Callable[[int, float], None] | None = None,
    on_tick: Callable[[int], None] | None = None,
    log: Callable[[str], None] = _stderr,
    place: Dist = Dist(),
) -> TrainResult:
    """Train ``objective`` on ``data`` up to ``opts.max_steps`` steps, checkpointing into ``run_dir``.

    ``restore_rng=False`` resumes without the saved RNG states (only useful to show they matter).
    ``on_step(step, scalars)`` is called after each logged step, ``on_tick(step)`` after every
    step (progress display, time estimates).
    ``held_out``: (A, B) images for the validation score every ``opts.val_every`` steps;
    ``on_best(step, score)`` is called when it improves (the run exports ``model-best/``).
    ``log`` receives the resume and fallback lines. Raises ``TrainingDiverged`` on a non-finite
    loss and ``I2IError`` when the run folder cannot be written; checkpoints already written stay.
    ``place``: this process's rank in a data-parallel job (``i2icli.train.distributed``); ``data``
    then gives this rank's share of each step's batch, and only rank 0 writes.
    """
    phases = objective.phases()
    stages = objective.stages()
    check_stages(stages)
    validation = objective.validation()
    if opts.val_every and (validation is None or held_out is None):
        raise I2IError("--val-every needs a validation score and held-back images")
    modules = objective.training_modules()
    if opts.channels_last:
        for m in modules.values():
            m.to(memory_format=torch.channels_last)
    entered: list[str] = []
    best: Best | None = None
    params = {p.name: p.parameters() for p in phases}
    optimizers = {p.name: make_optimizer(p, device) for p in phases}
    half = torch.float16 if opts.amp_dtype == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type) if opts.amp and opts.amp_dtype == "fp16" else None
    start = 0
    last_ckpt: Path | None = None
    if resume:
        if place.writes:
            _remove_stale_temps(run_dir)
    found = _resume_point(run_dir, device, log, place) if resume else None
    if resume and found is None:
        # Killed before its first checkpoint: nothing to continue, so start over.
        log(f"no intact checkpoint in {run_dir / 'checkpoints'}; starting from step 0")
        if place.writes:
            _trim_metrics(run_dir / "metrics.jsonl", 0)
    if found is not None:
        ckpt, state = found
        log(f"resuming from {ckpt.name} (step {int(state['step'])})")
        last_ckpt = ckpt
        if "ranks" in state and len(state["ranks"]) != place.world:
            raise CheckpointError(f"{ckpt}: saved by {len(state['ranks'])} processes, resumed with {place.world}")
        own = state["ranks"][place.rank] if "ranks" in state else state
        try:
            for name, module in modules.items():
                module.load_state_dict(state["modules"][name])
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
            objective.load_extra_state(own["extra"])
            if restore_rng:
                _set_rng_state(own["rng"])
            if scaler is not None and "scaler" in state:
                scaler.load_state_dict(state["scaler"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CheckpointError(f"{ckpt}: does not fit this run's model and config ({first})") from None
        start = int(state["step"])
        entered = list(state.get("stages_entered", []))
        if state.get("best") is not None:
            best = Best(int(state["best"]["step"]), float(state["best"]["score"]))
        if place.writes:
            _trim_metrics(run_dir / "metrics.jsonl", start)
    if place.enabled:
        distributed.broadcast_modules(modules.values())
    if opts.compile:
        for m in modules.values():
            m.compile()  # in place: the state dict keeps its keys

    writer = _tensorboard(run_dir) if opts.tensorboard and place.writes else None
    metrics = (run_dir / "metrics.jsonl").open("a") if place.writes else None
    amp = torch.autocast(device.type, dtype=half) if opts.amp else nullcontext()
    sample_batch = _to_device(data[0], device, opts.channels_last) if opts.sample_every and place.writes else None
    step = start
    active: str | None = None
    t0 = time.perf_counter()
    batches = _batches(data, start, opts.max_steps, num_workers, [s.start for s in stages])
    try:
        with _stop_on_signals() as flag:
            for step, raw in zip(range(start, opts.max_steps), batches):
                stage = stage_at(stages, step)
                if stage is not None and stage.name not in entered:
                    # Runs once per stage, before its first step; a resumed run has its effects
                    # in the restored state and does not run it again.
                    if stage.enter is not None:
                        stage.enter(data)
                    entered.append(stage.name)
                batch = _to_device(raw, device, opts.channels_last)
                carry: dict[str, torch.Tensor] = {}
                scalars: dict[str, torch.Tensor] = {}
                factor = planned_factor(objective.lr_factor, step, opts.max_steps, opts.extensions)
                for phase in phases:
                    if step % phase.interval or not _runs_in(phase, stage):
                        continue
                    if active != phase.name:
                        _set_trainable(params, phase.name)
                        active = phase.name
                    opt = optimizers[phase.name]
                    for group in opt.param_groups:
                        group["lr"] = phase.lr * factor
                    opt.zero_grad(set_to_none=True)
                    with amp:
                        out = phase.loss_fn(batch, carry)
                    (out.loss if scaler is None else scaler.scale(out.loss)).backward()
                    if place.enabled:
                        distributed.average_gradients(params[phase.name], place.world)
                    if scaler is None:
                        opt.step()
                    else:
                        scaler.step(opt)
                    carry.update(out.carry)
                    scalars |= {k: v.detach() for k, v in out.scalars.items()}
                    scalars[f"loss_{phase.name}"] = out.loss.detach()
                if scaler is not None:
                    scaler.update()
                done = step + 1
                # Ranks agree on stopping, and see the same (averaged) scalars, before any check
                # below; one process reads its flag as late as possible (after on_step), so a
                # signal raised there stops this step.
                agreed = distributed.any_rank(flag["stop"], device) if place.enabled else None
                if place.enabled:
                    scalars = distributed.average_scalars(scalars, device)
                _check_finite(scalars, done, last_ckpt)
                if opts.val_every and done % opts.val_every == 0 and validation is not None and held_out is not None:
                    score = _validate(objective, validation.score, held_out)
                    scalars[f"val_{validation.name}"] = torch.tensor(score)
                    improved = best is None or (score > best.score if validation.higher_is_better else score < best.score)
                    if improved:
                        best = Best(done, score)
                        if on_best is not None and place.writes:
                            on_best(done, score)
                if done % opts.log_every == 0 or done == opts.max_steps or (flag["stop"] if agreed is None else agreed):
                    values = {k: float(v) for k, v in scalars.items()}
                    if metrics is not None:
                        record = {"step": done, "lr_factor": factor, "seconds": round(time.perf_counter() - t0, 3), **values}
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                    if writer is not None:
                        for k, v in values.items():
                            writer.add_scalar(k, v, done)
                    if on_step is not None and place.writes:
                        on_step(done, values)
                if on_tick is not None:
                    on_tick(done)
                if opts.sample_every and done % opts.sample_every == 0 and sample_batch is not None:
                    _save_grid(run_dir / "samples" / f"step_{done:08d}.png", _samples(objective, sample_batch))
                stop = flag["stop"] if agreed is None else agreed
                if stop or done == opts.max_steps or (opts.save_every and done % opts.save_every == 0):
                    last_ckpt = checkpoint_path(run_dir, done)
                    _checkpoint(last_ckpt, done, objective, optimizers, entered, best, scaler, place, opts.keep_last)
                if stop:
                    return TrainResult(done, True, last_ckpt)
            return TrainResult(opts.max_steps, False, last_ckpt)
    except OSError as e:
        # metrics, samples: a full disk or a vanished folder is one line; checkpoints stay as they were.
        kept = f"; last checkpoint {last_ckpt}" if last_ckpt is not None else ""
        raise I2IError(f"{e.filename or run_dir}: cannot write at step {step + 1} ({e.strerror or e}){kept}") from None
    finally:
        batches.close()  # stops a prefetch thread
        if metrics is not None:
            metrics.close()
        if writer is not None:
            writer.close()


def _resume_point(
    run_dir: Path, device: torch.device, log: Callable[[str], None], place: Dist
) -> tuple[Path, dict[str, Any]] | None:
    """``resume_point``, chosen by rank 0 alone in a data-parallel job (only it renames a corrupt
    file) and read by every rank."""
    if not place.enabled:
        return resume_point(run_dir, device, log)
    found = resume_point(run_dir, device, log) if place.writes else None
    name = distributed.gather(None if found is None else str(found[0]))[0]
    if place.writes or name is None:
        return found
    return Path(name), load_training_state(Path(name), device)


def _checkpoint(
    path: Path, step: int, objective: Objective, optimizers: dict[str, torch.optim.Optimizer], entered: list[str],
    best: Best | None, scaler: Any, place: Dist, keep_last: int,
) -> None:  # fmt: skip
    """Rank 0 writes the checkpoint (with every rank's own state and a digest of its weights,
    which must agree), then all ranks meet."""
    ranks = None
    if place.enabled:
        from i2icli.checkpoint import tensor_digest

        weights = {f"{k}.{n}": t for k, m in objective.training_modules().items() for n, t in m.state_dict().items()}
        own = {"extra": _to_cpu(objective.extra_state()), "rng": _rng_state(), "weights_sha256": tensor_digest(weights)}
        ranks = distributed.gather(own)
        if len({r["weights_sha256"] for r in ranks}) != 1:
            raise I2IError(f"step {step}: the data-parallel processes hold different weights (they diverged)")
    if place.writes:
        save_training_state(path, step, objective, optimizers, entered=entered, best=best, scaler=scaler, ranks=ranks)
        _prune(path.parent.parent, keep_last)
    if place.enabled:
        distributed.barrier()


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _check_finite(scalars: dict[str, torch.Tensor], done: int, last_ckpt: Path | None) -> None:
    """Stop on the first non-finite logged value, before this step is logged or saved (one sync per step)."""
    if not scalars:
        return
    values = torch.stack([v.detach().float().reshape(-1)[0] for v in scalars.values()])
    if bool(torch.isfinite(values).all()):
        return
    name, value = next((k, float(v)) for k, v in scalars.items() if not math.isfinite(float(v.reshape(-1)[0])))
    kept = f"the last good checkpoint {last_ckpt} is kept" if last_ckpt is not None else "no checkpoint was written yet"
    raise TrainingDiverged(f"step {done}: {name} is {value} (training diverged); stopped without saving; {kept}")


@contextmanager
def _eval_mode(objective: Objective) -> Iterator[None]:
    """Eval mode for every training module (dropout then draws nothing from the global RNG, so
    sample grids and validation do not perturb training); the previous modes are restored after."""
    modules = list(objective.training_modules().values())
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def _validate(
    objective: Objective, score: Callable[[torch.Tensor, torch.Tensor], float], held_out: tuple[torch.Tensor, torch.Tensor]
) -> float:
    with _eval_mode(objective), torch.no_grad():
        return float(score(*held_out))


def _samples(objective: Objective, batch: Batch) -> Mapping[str, torch.Tensor]:
    with _eval_mode(objective):
        return objective.samples(batch)


def _prune(run_dir: Path, keep_last: int) -> None:
    if keep_last <= 0:
        return
    for old in sorted((run_dir / "checkpoints").glob("step_*.pt"))[:-keep_last]:
        old.unlink(missing_ok=True)


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise I2IError("--tensorboard needs the tensorboard package (pip install 'i2icli[tb]')") from None
    return SummaryWriter(str(run_dir / "tensorboard"))

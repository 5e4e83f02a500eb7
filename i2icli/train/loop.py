"""The training loop: one plain function for every method.

Per step: fetch the batch for this step (a pure function of seed and step, ``feed``), run the
objective's phases in order (each with only its own parameters trainable), log scalars, write
sample grids and atomic checkpoints (``state``). SIGINT/SIGTERM finish the current step, save, and
return; ``resume=True`` continues exactly as an uninterrupted run would. A non-finite loss stops
the run at once, before anything is saved from that step.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping

import torch

from i2icli.checkpoint import atomic_write_bytes
from i2icli.errors import I2IError, UsageError
from i2icli.train import distributed
from i2icli.train.distributed import Dist
from i2icli.train.ema import WeightAverage
from i2icli.train.feed import StepData, batches, to_device
from i2icli.train.objective import Batch, Objective, Phase, Stage, StepOutput
from i2icli.train.schedule import Extension, planned_factor
from i2icli.train.state import Best, checkpoint_path, restore, write_checkpoint


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
    ema: float = 0.0  # decay of the averaged inference weights (i2icli.train.ema; 0: off, not in the papers)

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema < 1.0:
            raise UsageError(f"--ema {self.ema}: the decay must be in [0, 1) (0: off; 0.999 averages over about the last 1000 steps)")


@dataclass(frozen=True)
class TrainResult:
    step: int  # steps completed
    interrupted: bool
    checkpoint: Path | None
    averaged: dict[str, torch.Tensor] | None = None  # the EMA weights at the end (``opts.ema``), for the export


class TrainingDiverged(I2IError):
    """A loss became NaN or infinite."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


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
    average = WeightAverage(objective.model, opts.ema) if opts.ema else None
    if resume:
        resumed = restore(
            run_dir, device, objective, optimizers, scaler=scaler, place=place, restore_rng=restore_rng, log=log,
            average=average,
        )  # fmt: skip
        if resumed is not None:
            start, entered, best, last_ckpt = resumed.step, resumed.entered, resumed.best, resumed.checkpoint
    if place.enabled:
        distributed.broadcast_modules(modules.values())
    if opts.compile:
        for m in modules.values():
            m.compile()  # in place: the state dict keeps its keys

    writer = _tensorboard(run_dir) if opts.tensorboard and place.writes else None
    metrics = (run_dir / "metrics.jsonl").open("a") if place.writes else None
    amp = torch.autocast(device.type, dtype=half) if opts.amp else nullcontext()
    sample_batch = to_device(data[0], device, opts.channels_last) if opts.sample_every and place.writes else None
    step = start
    active: str | None = None
    t0 = time.perf_counter()
    feed = batches(data, start, opts.max_steps, num_workers, [s.start for s in stages])
    try:
        with _stop_on_signals() as flag:
            for step, raw in zip(range(start, opts.max_steps), feed):
                stage = stage_at(stages, step)
                if stage is not None and stage.name not in entered:
                    # Runs once per stage, before its first step; a resumed run has its effects
                    # in the restored state and does not run it again.
                    if stage.enter is not None:
                        stage.enter(data)
                    entered.append(stage.name)
                batch = to_device(raw, device, opts.channels_last)
                carry: dict[str, torch.Tensor] = {}
                scalars: dict[str, torch.Tensor] = {}
                factor = planned_factor(objective.lr_factor, step, opts.max_steps, opts.extensions)
                for phase in phases:
                    if step % phase.interval or not _runs_in(phase, stage):
                        continue
                    if active != phase.name:
                        _set_trainable(params, phase.name)
                        active = phase.name
                    out = _optimise(phase, batch, carry, optimizers[phase.name], params[phase.name], phase.lr * factor, amp, scaler, place)
                    carry.update(out.carry)
                    scalars |= {k: v.detach() for k, v in out.scalars.items()}
                    scalars[f"loss_{phase.name}"] = out.loss.detach()
                if scaler is not None:
                    scaler.update()
                if average is not None:
                    average.update(objective.model)
                done = step + 1
                # Ranks agree on stopping, and see the same (averaged) scalars, before any check
                # below; one process reads its flag as late as possible (after on_step), so a
                # signal raised there stops this step.
                agreed = distributed.any_rank(flag["stop"], device) if place.enabled else None
                if place.enabled:
                    scalars = distributed.average_scalars(scalars, device)
                _check_finite(scalars, done, last_ckpt)
                if opts.val_every and done % opts.val_every == 0 and validation is not None and held_out is not None:
                    with _averaged(average, objective):
                        score = _validate(objective, validation.score, held_out)
                        scalars[f"val_{validation.name}"] = torch.tensor(score)
                        improved = best is None or (score > best.score if validation.higher_is_better else score < best.score)
                        if improved:
                            best = Best(done, score)
                            if on_best is not None and place.writes:
                                on_best(done, score)  # exports the model as it is now: averaged
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
                    with _averaged(average, objective):
                        _save_grid(run_dir / "samples" / f"step_{done:08d}.png", _samples(objective, sample_batch))
                stop = flag["stop"] if agreed is None else agreed
                if stop or done == opts.max_steps or (opts.save_every and done % opts.save_every == 0):
                    last_ckpt = checkpoint_path(run_dir, done)
                    write_checkpoint(
                        last_ckpt, done, objective, optimizers, entered, best, scaler, place, opts.keep_last, average
                    )
                if stop:
                    return TrainResult(done, True, last_ckpt, _final(average))
            return TrainResult(opts.max_steps, False, last_ckpt, _final(average))
    except OSError as e:
        # metrics, samples: a full disk or a vanished folder is one line; checkpoints stay as they were.
        kept = f"; last checkpoint {last_ckpt}" if last_ckpt is not None else ""
        raise I2IError(f"{e.filename or run_dir}: cannot write at step {step + 1} ({e.strerror or e}){kept}") from None
    finally:
        feed.close()  # stops a prefetch thread
        if metrics is not None:
            metrics.close()
        if writer is not None:
            writer.close()


def _optimise(
    phase: Phase, batch: Batch, carry: dict[str, torch.Tensor], opt: torch.optim.Optimizer,
    params: list[torch.nn.Parameter], lr: float, amp: AbstractContextManager[Any], scaler: Any, place: Dist,
) -> StepOutput:  # fmt: skip
    """One optimiser step of ``phase``: its loss (in ``amp``), backward, gradients averaged over
    data-parallel ranks (``params``: the phase's parameters), the update at learning rate ``lr``."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    with amp:
        out = phase.loss_fn(batch, carry)
    (out.loss if scaler is None else scaler.scale(out.loss)).backward()
    if place.enabled:
        distributed.average_gradients(params, place.world)
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
    return out


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


def _final(average: WeightAverage | None) -> dict[str, torch.Tensor] | None:
    return None if average is None else dict(average.shadow)


def _averaged(average: WeightAverage | None, objective: Objective) -> AbstractContextManager[None]:
    """The averaged weights in the inference model for a block (validation, samples), if EMA is on."""
    return nullcontext() if average is None else average.applied(objective.model)


def _validate(
    objective: Objective, score: Callable[[torch.Tensor, torch.Tensor], float], held_out: tuple[torch.Tensor, torch.Tensor]
) -> float:
    with _eval_mode(objective), torch.no_grad():
        return float(score(*held_out))


def _samples(objective: Objective, batch: Batch) -> Mapping[str, torch.Tensor]:
    with _eval_mode(objective):
        return objective.samples(batch)


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


def _tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise I2IError("--tensorboard needs the tensorboard package (pip install 'i2icli[tb]')") from None
    return SummaryWriter(str(run_dir / "tensorboard"))

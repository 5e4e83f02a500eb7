"""Training state on disk: the checkpoints a run writes, and resuming from them.

A checkpoint holds the full state (modules, optimiser moments, objective state such as image
pools, RNG states, step, stages entered, best validation score), so a resumed run continues
exactly as an uninterrupted one would. Files are ``run_dir/checkpoints/step_XXXXXXXX.pt``.

Faults: a checkpoint carries a sha256 of its contents, and resuming takes the newest one that
reads back intact (a corrupt newer one is set aside as ``*.pt.corrupt`` with a warning); a run
killed before its first checkpoint starts again from step 0. ``metrics.jsonl`` is cut back to the
resumed step (and any half-written last line dropped), so it reads as if never interrupted. A
checkpoint that cannot be written (full disk) leaves the previous ones as they were.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from i2icli.checkpoint import atomic_write_bytes, safe_torch_load, tensor_digest
from i2icli.errors import CheckpointError, I2IError
from i2icli.train import distributed
from i2icli.train.distributed import Dist
from i2icli.train.ema import WeightAverage
from i2icli.train.objective import Objective


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f"step_{step:08d}.pt"


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


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
    average: WeightAverage | None = None,
) -> None:
    """Everything needed to resume, written atomically (temp file, fsync, rename) with a sha256 of
    its contents. A failed write (full disk) raises ``CheckpointError`` and leaves earlier files as they were.
    ``ranks``: each data-parallel rank's own ``{"extra", "rng", "weights_sha256"}`` (rank 0's extra
    and rng are also the top-level ones). ``average``: the EMA of the inference weights, if on."""
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
    if average is not None:
        state["ema"] = average.state_dict()
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


def resume_point(run_dir: Path, device: torch.device, log: Callable[[str], None]) -> tuple[Path, dict[str, Any]] | None:
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


@dataclass(frozen=True)
class Resumed:
    """Where a resumed run goes on from: the checkpoint read, its step, the stages already entered
    (their hooks do not run again) and the best validation score so far."""

    checkpoint: Path
    step: int
    entered: list[str]
    best: Best | None


def restore(
    run_dir: Path, device: torch.device, objective: Objective, optimizers: dict[str, torch.optim.Optimizer], *,
    scaler: Any, place: Dist, restore_rng: bool, log: Callable[[str], None], average: WeightAverage | None = None,
) -> Resumed | None:  # fmt: skip
    """Load the newest intact checkpoint of ``run_dir`` into the objective's modules, the optimisers,
    the objective's extra state, the RNG, the grad scaler and the weight average; None (after a log line) when there is
    none, and the run starts from step 0. ``restore_rng=False`` keeps the current RNG state (only
    useful to show it matters). A checkpoint that does not fit the model is one ``CheckpointError``."""
    if place.writes:
        _remove_stale_temps(run_dir)
    found = _shared_resume_point(run_dir, device, log, place)
    if found is None:
        # Killed before its first checkpoint: nothing to continue, so start over.
        log(f"no intact checkpoint in {run_dir / 'checkpoints'}; starting from step 0")
        if place.writes:
            _trim_metrics(run_dir / "metrics.jsonl", 0)
        return None
    ckpt, state = found
    log(f"resuming from {ckpt.name} (step {int(state['step'])})")
    if "ranks" in state and len(state["ranks"]) != place.world:
        raise CheckpointError(f"{ckpt}: saved by {len(state['ranks'])} processes, resumed with {place.world}")
    own = state["ranks"][place.rank] if "ranks" in state else state
    try:
        for name, module in objective.training_modules().items():
            module.load_state_dict(state["modules"][name])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        objective.load_extra_state(own["extra"])
        if restore_rng:
            _set_rng_state(own["rng"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        if average is not None:
            if "ema" not in state:
                raise KeyError("no weight average saved (the run was trained without --ema)")
            average.load_state_dict(state["ema"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{ckpt}: does not fit this run's model and config ({first})") from None
    step = int(state["step"])
    if place.writes:
        _trim_metrics(run_dir / "metrics.jsonl", step)
    saved_best = state.get("best")
    best = None if saved_best is None else Best(int(saved_best["step"]), float(saved_best["score"]))
    return Resumed(ckpt, step, list(state.get("stages_entered", [])), best)


def _shared_resume_point(
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


def write_checkpoint(
    path: Path, step: int, objective: Objective, optimizers: dict[str, torch.optim.Optimizer], entered: list[str],
    best: Best | None, scaler: Any, place: Dist, keep_last: int, average: WeightAverage | None = None,
) -> None:  # fmt: skip
    """Rank 0 writes the checkpoint (with every rank's own state and a digest of its weights,
    which must agree), then all ranks meet."""
    ranks = None
    if place.enabled:
        weights = {f"{k}.{n}": t for k, m in objective.training_modules().items() for n, t in m.state_dict().items()}
        own = {"extra": _to_cpu(objective.extra_state()), "rng": _rng_state(), "weights_sha256": tensor_digest(weights)}
        ranks = distributed.gather(own)
        if len({r["weights_sha256"] for r in ranks}) != 1:
            raise I2IError(f"step {step}: the data-parallel processes hold different weights (they diverged)")
    if place.writes:
        save_training_state(
            path, step, objective, optimizers, entered=entered, best=best, scaler=scaler, ranks=ranks, average=average
        )
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


def _prune(run_dir: Path, keep_last: int) -> None:
    if keep_last <= 0:
        return
    for old in sorted((run_dir / "checkpoints").glob("step_*.pt"))[:-keep_last]:
        old.unlink(missing_ok=True)


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


def checkpoint_step(path: Path) -> int:
    """The step of a ``checkpoints/step_*.pt`` file, from its name."""
    return int(path.stem.split("_")[-1])

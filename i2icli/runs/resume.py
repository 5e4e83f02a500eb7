"""Planning ``i2i train --resume``: which options a resumed run may change (how progress is saved
and logged, its length), which it refuses (what defines the run), and the lr plan of a longer run."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import torch

from i2icli.config import ConfigError, apply_overrides, from_dict, parse_override, to_dict
from i2icli.errors import UsageError
from i2icli.methods import load_method
from i2icli.train.schedule import Extension
from i2icli.runs.spec import RunSpec, read_spec
from i2icli.train.state import resume_point

# Options a resumed run may change: they decide how progress is saved, logged and loaded, not what
# is trained (batches are a pure function of the step, whatever the workers or preloading).
_SAFE_LOOP = {"save_every": "--save-every", "keep_last": "--keep-last", "sample_every": "--sample-every",
              "log_every": "--log-every", "tensorboard": "--tensorboard"}  # fmt: skip

_SAFE_DATA = {"num_workers": "--num-workers", "preload": "--preload"}

ScheduleMode = Literal["replan", "keep"]


@dataclass(frozen=True)
class ResumePlan:
    """How ``--resume`` continues a run: the spec to run (recorded in run.json), the step it
    continues from, and lines that say what changed."""

    spec: RunSpec
    step: int
    notes: tuple[str, ...]


def plan_resume(
    run_dir: Path, given: Mapping[str, Any], *, max_steps: int | None = None, schedule: ScheduleMode | None = None
) -> ResumePlan:
    """Plan ``i2i train --resume run_dir``: ``given`` holds the other options set on the command line,
    by parameter name (``seed``, ``lr``, ``overrides``, ``dataroot``, ``save_every``, ...).

    An option that defines the run (data, method, preset, config, batch size, seed, ...) is refused
    with one line unless it equals the recorded value; progress options are applied and recorded.
    ``max_steps`` changes the run's length, the lr schedule following ``schedule`` (default ``replan``).
    """

    spec = read_spec(run_dir)
    _refuse_changes(spec, given, run_dir)
    notes: list[str] = []
    # The checkpoint the loop will continue from: the newest intact one (a corrupt newer one is set
    # aside with a warning); none when the run was killed before its first, so it starts again.
    point = resume_point(run_dir, torch.device("cpu"), log=notes.append)
    step = 0 if point is None else int(point[1]["step"])
    loop, data = spec.loop, spec.data
    for name, flag in _SAFE_LOOP.items():
        if name in given and given[name] != getattr(loop, name):
            loop = dataclasses.replace(loop, **{name: given[name]})
            notes.append(f"{flag} {given[name]} (was {getattr(spec.loop, name)}): applied and recorded in run.json")
    for name, flag in _SAFE_DATA.items():
        if name in given and given[name] != getattr(data, name):
            data = dataclasses.replace(data, **{name: given[name]})
            notes.append(f"{flag} {given[name]} (was {getattr(spec.data, name)}): applied and recorded in run.json")
    if max_steps is not None and max_steps < step:
        raise UsageError(f"--max-steps {max_steps}: the run is already at step {step}")
    if max_steps is None or max_steps == loop.max_steps:
        if schedule is not None:
            raise UsageError(f"--schedule applies when --max-steps changes the run's length (now {loop.max_steps})")
        if step >= loop.max_steps:
            notes.append(f"{run_dir}: already at step {step} of {loop.max_steps}; extend it with --max-steps N")
    else:
        mode: ScheduleMode = schedule or "replan"
        extension = Extension(start=step, previous_max_steps=loop.max_steps, mode=mode)
        notes.append(f"run length {loop.max_steps} -> {max_steps} steps (recorded in run.json); " + (
            f"lr schedule re-planned over steps {step}-{max_steps}, going on from the factor reached at step {step} "
            "(--schedule keep: hold the original plan's end)"
            if mode == "replan" else
            f"lr schedule kept: the original plan, its last factor held after step {extension.previous_max_steps} "
            "(--schedule replan: re-plan the remaining steps)"
        ))  # fmt: skip
        loop = dataclasses.replace(loop, max_steps=max_steps, extensions=(*loop.extensions, extension))
    return ResumePlan(dataclasses.replace(spec, loop=loop, data=data), step, tuple(notes))


def _refuse(flag: str, value: object, recorded: object) -> UsageError:
    return UsageError(
        f"{flag} {value}: this run was started with {recorded}; a resumed run keeps what defines it "
        "(start a new run to change it)"
    )


def _refuse_changes(spec: RunSpec, given: Mapping[str, Any], run_dir: Path) -> None:
    """Raise for the first given option whose value differs from the run's recorded one."""
    plain = {
        "method": ("--method", spec.method), "preset": ("--preset", spec.preset),
        "batch_size": ("--batch-size", spec.batch_size), "seed": ("--seed", spec.loop.seed),
        "precision": ("--precision", spec.loop.amp_dtype if spec.loop.amp else "fp32"), "val_every": ("--val-every", spec.loop.val_every),
        "init_from": ("--init-from", spec.init_from), "max_pixels": ("--max-pixels", spec.data.max_pixels),
    }  # fmt: skip
    for name, (flag, recorded) in plain.items():
        if name in given and given[name] != recorded:
            raise _refuse(flag, given[name], recorded)
    if "domain_names" in given and tuple(given["domain_names"]) != tuple(spec.data.domains):
        raise _refuse("--domains", " ".join(given["domain_names"]), " ".join(spec.data.domains))
    if "run_dir" in given and Path(given["run_dir"]).resolve() != run_dir.resolve():
        raise _refuse("--run-dir", given["run_dir"], run_dir)
    folders = {k: given.get(k) for k in ("dataroot", "domain_a", "domain_b")}
    if any(v is not None for v in folders.values()):
        from i2icli.data.unpaired import resolve_domains

        dirs = resolve_domains(folders["dataroot"], folders["domain_a"], folders["domain_b"])
        if [d.resolve() for d in dirs] != [Path(spec.data.dir_a).resolve(), Path(spec.data.dir_b).resolve()]:
            flag, value = ("--dataroot", folders["dataroot"]) if folders["dataroot"] else ("--domain-a/--domain-b", " ".join(map(str, dirs)))
            raise _refuse(flag, value, f"{spec.data.dir_a} and {spec.data.dir_b}")
    _refuse_config_changes(spec, given)


def _refuse_config_changes(spec: RunSpec, given: Mapping[str, Any]) -> None:
    cfg = from_dict(load_method(spec.method).config_cls, spec.config)
    recorded = to_dict(cfg)
    try:
        if "lr" in given and given["lr"] != cfg.optim.lr:
            raise _refuse("--lr", given["lr"], cfg.optim.lr)
        for text in given.get("overrides") or []:
            path, _ = parse_override(text)
            if to_dict(apply_overrides(cfg, [text])) != recorded:
                raise _refuse("--set", text, f"{'.'.join(path)}={_lookup(recorded, path)}")
        if given.get("config") is not None:
            path = Path(given["config"])
            try:
                changed = to_dict(apply_overrides(cfg, json.loads(path.read_text()))) != recorded
            except (OSError, json.JSONDecodeError) as e:
                raise UsageError(f"--config {path}: cannot read JSON ({e})") from None
            if changed:
                raise _refuse("--config", path, "another config (see run.json)")
    except ConfigError as e:
        raise UsageError(str(e)) from None


def _lookup(data: dict[str, Any], path: list[str]) -> Any:
    for part in path:
        data = data[part]
    return data


def resume_spec(run_dir: Path, max_steps: int | None) -> RunSpec:
    """The spec ``--resume run_dir [--max-steps N]`` runs (see ``plan_resume``)."""
    return plan_resume(run_dir, {}, max_steps=max_steps).spec

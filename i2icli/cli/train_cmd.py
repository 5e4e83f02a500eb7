"""``i2i train``: one command for every method; method options are fields of its typed config."""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Callable, get_type_hints

import typer

from i2icli.cli import validate
from i2icli.cli.common import DeviceOpt, MaxPixelsOpt, QuietOpt, SeedOpt, ThreadsOpt, check_max_pixels, err, handle_errors
from i2icli.errors import UsageError
from i2icli.methods import DEFAULT_METHOD, METHOD_MODULES, read_info
from i2icli.progress import format_duration


def train(
    ctx: typer.Context,
    method: Annotated[str, typer.Option("--method", help=f"{', '.join(METHOD_MODULES)} (see `i2i models list`).")] = DEFAULT_METHOD,
    dataroot: Annotated[Path | None, typer.Option("--dataroot", help="Folder with trainA/ and trainB/.")] = None,
    domain_a: Annotated[Path | None, typer.Option("--domain-a", help="Folder of domain A images.")] = None,
    domain_b: Annotated[Path | None, typer.Option("--domain-b", help="Folder of domain B images.")] = None,
    domain_names: Annotated[
        str, typer.Option("--domains", help="Names of domains A and B, comma-separated, e.g. horse,zebra.")
    ] = "a,b",
    preset: Annotated[str | None, typer.Option("--preset", help="paper (the official recipe) or a labelled CPU preset (cpu-small, cpu-tiny) (default: paper).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="JSON file of config fields.")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="field=value, e.g. --set lambda_identity=0.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Total steps (keeps the schedule's shape).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Images per domain per step.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (all phases).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Run folder (default runs/<method>-<time>).")] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this folder (with --max-steps N: to a new total, recorded)."),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help="With --resume --max-steps: replan (default: the lr goes on from where it is over the new total) "
            "or keep (the original plan, its end held).",
            show_default=False,
        ),
    ] = None,
    init_from: Annotated[str | None, typer.Option("--init-from", help="Start from a resolvable model's weights.")] = None,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    precision: Annotated[
        str,
        typer.Option(
            "--precision",
            help="fp32 (default), bf16 or fp16 autocast (fp16 with loss scaling); on a CPU only where it is native "
            "(refused where it would be emulated).",
        ),
    ] = "fp32",
    amp: Annotated[bool, typer.Option("--amp", help="Older spelling of --precision bf16 (or --amp-dtype).", hidden=True)] = False,
    amp_dtype: Annotated[str, typer.Option("--amp-dtype", help="With --amp: bf16 or fp16.", hidden=True)] = "bf16",
    channels_last: Annotated[bool, typer.Option("--channels-last/--no-channels-last", help="channels_last memory layout.")] = False,
    compile: Annotated[
        bool, typer.Option("--compile/--no-compile", help="torch.compile each network (slow first steps).")
    ] = False,
    ema: Annotated[
        float,
        typer.Option(
            "--ema",
            help="Keep an exponential moving average of the model's weights with this decay (e.g. 0.999) and "
            "export it; validation and sample grids use it (0: off; labelled, not in the papers).",
        ),
    ] = 0.0,
    save_every: Annotated[int, typer.Option("--save-every", help="Checkpoint every N steps.")] = 1000,
    keep_last: Annotated[int, typer.Option("--keep-last", help="Checkpoints to keep.")] = 3,
    sample_every: Annotated[int, typer.Option("--sample-every", help="Sample grid every N steps (0: never).")] = 500,
    log_every: Annotated[int, typer.Option("--log-every", help="Log scalars every N steps.")] = 10,
    val_every: Annotated[
        int, typer.Option("--val-every", help="Validation score every N steps on testA/testB (or a held-back tenth); best model kept in model-best/.")
    ] = 0,
    num_workers: Annotated[int, typer.Option("--num-workers", help="Data loading processes.")] = 0,
    preload: Annotated[
        bool, typer.Option("--preload/--no-preload", help="Decode all training images once into memory (default for the cpu- presets on a CPU).")
    ] = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also log to TensorBoard (needs it installed).")] = False,
    max_pixels: MaxPixelsOpt = None,
    quiet: QuietOpt = False,
    threads: ThreadsOpt = None,
    procs: Annotated[
        int | None,
        typer.Option(
            "--procs",
            help="Train in N processes on this CPU (gloo data parallel; each takes 1/N of the batch, one thread "
            "each unless --threads). Default: 1, or as many as the CPUs that split the batch for cpu- presets "
            "on a CPU (not cpu-tiny); a resumed run keeps its count.",
            show_default=False,
        ),
    ] = None,
    **method_options: str | None,
) -> None:
    """Train a model on unpaired folders; checkpoints resume exactly; exports run_dir/model at the end."""
    with handle_errors():
        options = {k: v for k, v in locals().items() if k != "ctx"}
        # What was typed: a resumed run refuses (or applies) options that were given, never ignores them.
        typed = {k for k in ctx.params if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
        _train(**options, typed=typed)


def _method_parameters() -> list[inspect.Parameter]:
    """One keyword parameter per method-specific flag (``MethodInfo.options``), read without torch."""
    owners: dict[str, list[str]] = {}
    helps: dict[str, str] = {}
    for name in METHOD_MODULES:
        for opt in read_info(name).options:
            owners.setdefault(opt.flag, []).append(name)
            helps.setdefault(opt.flag, opt.help)
    return [
        inspect.Parameter(
            _param_name(flag),
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None, typer.Option(flag, help=f"{'/'.join(who)} only: {helps[flag]}.", show_default=False)
            ],
        )
        for flag, who in owners.items()
    ]


def _param_name(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


# Typer reads the signature: the generic options above plus every method's own flags.
_hints = get_type_hints(train, include_extras=True)
_generic = [
    p.replace(annotation=_hints[p.name])
    for p in inspect.signature(train).parameters.values()
    if p.kind is not inspect.Parameter.VAR_KEYWORD
]
train.__signature__ = inspect.Signature([*_generic, *_method_parameters()])  # type: ignore[attr-defined]


def method_overrides(method: str, given: dict[str, str | None]) -> dict[str, Any]:
    """Method-specific flags -> config field values; a flag of another method is a usage error."""
    own = {_param_name(o.flag): o for o in read_info(method).options} if method in METHOD_MODULES else {}
    values: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name not in own:
            raise UsageError(f"{flag}: not an option of --method {method}")
        opt = own[name]
        try:
            values[opt.field] = {"int": int, "float": float, "bool": _as_bool}.get(opt.kind, str)(value)
        except ValueError:
            raise UsageError(f"{flag} {value!r}: expected {opt.kind}") from None
    return values


def _as_bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError(text)
    return text.lower() in ("true", "1")


def export_checkpoint(
    run: Annotated[Path, typer.Argument(help="A training run folder (holding run.json and checkpoints/).")],
    step: Annotated[int | None, typer.Option("--step", help="The checkpoint's step (default: the last).", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Model folder to write (default RUN/model-step_N).", show_default=False)] = None,
    device: DeviceOpt = "auto",
) -> None:
    """Export the model of a training checkpoint (checkpoints/step_N.pt) as a model folder that
    translate and the other commands load."""
    with handle_errors():
        from i2icli.device import pick_device
        from i2icli.runs.run import export_checkpoint as export

        written = export(run, step, output, pick_device(device))
        err(f"wrote {written}")


# Options of `i2i train --resume` that do not describe the run itself.
_NOT_RUN_OPTIONS = frozenset({"resume", "schedule", "max_steps", "device", "quiet", "threads", "procs"})


def _train(
    method, dataroot, domain_a, domain_b, domain_names, preset, config, overrides, max_steps, batch_size, lr,
    run_dir, resume, schedule, init_from, seed, device, precision, amp, amp_dtype, channels_last, compile, ema,
    save_every, keep_last, sample_every, log_every, val_every, num_workers, preload, tensorboard, max_pixels, quiet,
    threads, procs, method_options, typed,
) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    # Every option and folder is checked before anything is created (usage errors exit 2).
    validate.at_least(1, max_steps=max_steps, batch_size=batch_size, log_every=log_every, threads=threads, procs=procs)
    validate.at_least(
        0, save_every=save_every, sample_every=sample_every, keep_last=keep_last, num_workers=num_workers,
        val_every=val_every,
    )  # fmt: skip
    validate.positive(lr=lr)
    check_max_pixels(max_pixels)
    domain_names = validate.parse_domains(domain_names)
    if config is not None and not config.is_file():
        raise UsageError(f"--config {config}: no such file")
    if resume is None:
        _check_new_run(dataroot, domain_a, domain_b, run_dir)

    if schedule not in (None, "replan", "keep"):
        raise UsageError(f"--schedule {schedule!r}: use replan or keep")
    if schedule is not None and resume is None:
        raise UsageError("--schedule applies to --resume RUN --max-steps N (a new run plans its own schedule)")
    if resume is not None and "ema" in typed:
        raise UsageError("--ema: a resumed run keeps its recorded weight average (see run.json)")
    amp, amp_dtype = _autocast(precision, amp, amp_dtype, typed)
    if typed & {"amp", "amp_dtype"}:
        typed = typed | {"precision"}
    from i2icli.device import pick_device
    from i2icli.threads import apply_threads
    from i2icli.train import distributed

    plan_args = (
        method, dataroot, domain_a, domain_b, domain_names, preset, config, overrides, max_steps, batch_size, lr,
        run_dir, resume, schedule, init_from, seed, amp, amp_dtype, channels_last, compile, ema, save_every, keep_last,
        sample_every, log_every, val_every, num_workers, preload, tensorboard, max_pixels, method_options, typed,
    )  # fmt: skip
    dev = pick_device(device)
    if distributed.from_env().enabled:
        # Started by torchrun: join its job (gloo on CPU, NCCL on GPUs); each rank plans the same run.
        if procs is not None:
            raise UsageError("--procs: torchrun started this process and chose the process count (--nproc_per_node)")
        chosen_threads = apply_threads(threads)
        with distributed.joined(dev) as (place, dev):
            planned = _plan(place, dev, *plan_args)
            for note in planned.notes if place.writes else ():
                err(note)
            _execute(place, dev, chosen_threads, planned, quiet or not place.writes)
        distributed.end_rank(0)
    planned = _plan(distributed.Dist(), dev, *plan_args)  # every check, before any process starts
    planned, world = _split_over_processes(planned, dev, procs, threads)
    for note in planned.notes:
        err(note)
    if world == 1:
        _execute(distributed.Dist(), dev, apply_threads(threads), planned, quiet)
        return
    from i2icli.train.launch import run_ranks

    code = run_ranks(_rank_main, (str(dev), threads, planned, quiet), world)
    if code:
        raise typer.Exit(code)


@dataclass(frozen=True)
class _Planned:
    """A checked run, ready to start: its spec (``batch_size`` per process), folder, and the CPU
    preset's path chosen for what the command line left unset (printed when it starts)."""

    spec: Any  # RunSpec
    folder: Path
    resume: bool
    path: dict[str, Any]
    notes: tuple[str, ...] = ()


def _split_over_processes(planned: _Planned, dev: Any, procs: int | None, threads: int | None) -> tuple[_Planned, int]:
    """The process count (``--procs``, a resumed run's, or the CPU preset's) and the plan with each
    process's share of the batch."""
    import os

    from i2icli.runs.spec import cpu_preset_procs, recorded_world_size
    from i2icli.threads import available_cpus

    spec = planned.spec
    if planned.resume:
        recorded = recorded_world_size(planned.folder)
        if procs is not None and procs != recorded:
            raise UsageError(f"--procs {procs}: the run used {recorded} processes; resume it with the same number")
        if recorded > 1 and dev.type != "cpu":
            raise UsageError(f"--resume {planned.folder}: the run used {recorded} processes; on GPUs resume it with torchrun --nproc_per_node {recorded}")
        return planned, recorded
    if procs is not None and procs > 1 and dev.type != "cpu":
        raise UsageError(f"--procs {procs}: for CPU training (on GPUs start one process per GPU: torchrun --nproc_per_node N)")
    if procs is None:
        # The CPU presets' default; a thread count the user chose (--threads, OMP_NUM_THREADS) keeps one process.
        if threads is not None or os.environ.get("OMP_NUM_THREADS", "").strip():
            return planned, 1
        procs = cpu_preset_procs(spec.preset, dev, spec.batch_size, available_cpus())
        if procs > 1:
            planned = replace(planned, path={**planned.path, "procs": procs})
    if spec.batch_size % procs:
        raise UsageError(f"--procs {procs}: the batch of {spec.batch_size} images does not split evenly over {procs} processes")
    return replace(planned, spec=replace(spec, batch_size=spec.batch_size // procs)), procs


def _rank_main(device: str, threads: int | None, planned: _Planned, quiet: bool) -> None:
    """One rank of ``--procs N`` in its own process (``i2icli.train.launch``): join, train, exit."""
    import torch

    from i2icli.cli.common import unexpected_error
    from i2icli.threads import apply_threads
    from i2icli.train import distributed

    code = 0
    try:
        with handle_errors():
            chosen = apply_threads(1 if threads is None else threads)
            if threads is None:
                chosen = replace(chosen, source="--procs")
            with distributed.joined(torch.device(device)) as (place, dev):
                _execute(place, dev, chosen, planned, quiet or not place.writes)
    except typer.Exit as e:
        code = e.exit_code
    except Exception as e:  # one line, as the command's own handler prints it
        err(unexpected_error(e))
        code = 1
    distributed.end_rank(code)


def _check_new_run(dataroot: Path | None, domain_a: Path | None, domain_b: Path | None, run_dir: Path | None) -> None:
    """The data folders hold images and the run folder can be made: before anything is written."""
    if dataroot is not None and domain_a is None and domain_b is None:
        if not dataroot.is_dir():
            raise UsageError(f"--dataroot {dataroot}: no such folder")
        for side in ("A", "B"):
            validate.image_folder("--dataroot", dataroot / f"train{side}")
    else:
        for option, folder in (("--domain-a", domain_a), ("--domain-b", domain_b)):
            if folder is not None:
                validate.image_folder(option, folder)
    if run_dir is not None:
        validate.new_folder("--run-dir", run_dir)
        validate.writable_folder("--run-dir", run_dir)


def _autocast(precision: str, amp: bool, amp_dtype: str, typed: set[str]) -> tuple[bool, str]:
    """``--precision`` as the loop's (autocast on, its dtype); ``--amp [--amp-dtype]`` is its older spelling."""
    if precision not in ("fp32", "bf16", "fp16"):
        raise UsageError(f"--precision {precision!r}: use fp32, bf16 or fp16")
    if amp_dtype not in ("bf16", "fp16"):
        raise UsageError(f"--amp-dtype {amp_dtype!r}: use bf16 or fp16")
    if not amp:
        return precision != "fp32", "bf16" if precision == "fp32" else precision
    if "precision" in typed and precision != amp_dtype:
        raise UsageError(f"--amp means --precision {amp_dtype}, which contradicts --precision {precision}; give one of them")
    return True, amp_dtype


def _plan(
    place, dev, method, dataroot, domain_a, domain_b, domain_names, preset, config, overrides, max_steps,
    batch_size, lr, run_dir, resume, schedule, init_from, seed, amp, amp_dtype, channels_last, compile, ema,
    save_every, keep_last, sample_every, log_every, val_every, num_workers, preload, tensorboard, max_pixels,
    method_options, typed,
) -> _Planned:  # type: ignore[no-untyped-def]  # fmt: skip
    """The run's spec and folder from the options (every check; nothing written)."""
    from i2icli.precision import check_half_supported
    from i2icli.runs.resume import plan_resume
    from i2icli.runs.spec import DataSpec, build_spec, cpu_preset_path
    from i2icli.train import distributed

    path: dict[str, Any] = {}  # the CPU preset's faster path, for a new run
    notes: list[str] = []  # what a resume changes (printed once the process count is settled)
    if resume is not None:
        given = sorted("--" + k.replace("_", "-") for k, v in method_options.items() if v is not None)
        if given:
            raise UsageError(f"{given[0]}: a resumed run keeps its recorded config (see run.json)")
        if not (resume / "run.json").is_file():
            raise UsageError(f"--resume {resume}: not a run folder (no run.json)")
        from i2icli.runs.run import run_lock

        if place.writes:  # rank 0 holds the lock for the job (see run)
            with run_lock(resume):  # a run still training there is refused before any line claims work
                pass
        values = dict(
            method=method, dataroot=dataroot, domain_a=domain_a, domain_b=domain_b, domain_names=domain_names,
            preset=preset, config=config, overrides=overrides, batch_size=batch_size, lr=lr, run_dir=run_dir,
            init_from=init_from, seed=seed, precision=amp_dtype if amp else "fp32", save_every=save_every, keep_last=keep_last,
            sample_every=sample_every, log_every=log_every, val_every=val_every, num_workers=num_workers,
            preload=preload, tensorboard=tensorboard, max_pixels=max_pixels,
        )  # fmt: skip
        plan = plan_resume(
            resume, {k: v for k, v in values.items() if k in typed and k not in _NOT_RUN_OPTIONS},
            max_steps=max_steps, schedule=schedule,
        )  # fmt: skip
        spec, folder, notes = plan.spec, resume, plan.notes
    else:
        from i2icli.data.unpaired import resolve_domains

        dir_a, dir_b = resolve_domains(dataroot, domain_a, domain_b)
        # The CPU presets' faster path, for what the command line left unset.
        path = cpu_preset_path(preset, dev, typed)
        preload = path.get("preload", preload)
        channels_last = path.get("channels_last", channels_last)
        compile = path.get("compile", compile)
        if "precision" in path:
            amp, amp_dtype = _autocast(path["precision"], False, amp_dtype, set())
        data = DataSpec(str(dir_a), str(dir_b), tuple(domain_names), num_workers, preload, max_pixels)
        loop_kwargs = dict(
            seed=seed, save_every=save_every, keep_last=keep_last, sample_every=sample_every,
            log_every=log_every, amp=amp, tensorboard=tensorboard, val_every=val_every, amp_dtype=amp_dtype,
            channels_last=channels_last, compile=compile, **({"ema": ema} if "ema" in typed else {}),
        )  # fmt: skip

        def steps_per_epoch(bs: int) -> int:
            from i2icli.listing import list_images

            sizes = (len(list_images([str(d)], recursive=True)) for d in (dir_a, dir_b))
            return -(-max(sizes) // bs)

        spec = build_spec(
            method=method, preset=preset, config_file=config, overrides=overrides or [],
            method_options=method_overrides(method, method_options), data=data,
            batch_size=batch_size, lr=lr, max_steps=max_steps, loop_kwargs=loop_kwargs, init_from=init_from,
            steps_per_epoch=steps_per_epoch,
        )  # fmt: skip
        validate.positive_rates(spec.config)
        if run_dir is None:
            import time

            run_dir = Path("runs") / f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"
            if place.enabled:
                run_dir = Path(distributed.gather(str(run_dir))[0])  # rank 0's clock names the folder
        folder = run_dir
    if spec.loop.amp:
        check_half_supported(spec.loop.amp_dtype, dev, f"--precision {spec.loop.amp_dtype}")
    return _Planned(spec, folder, resume is not None, path, tuple(notes))


def _execute(place: Any, dev: Any, chosen_threads: Any, planned: _Planned, quiet: bool) -> None:
    """Train the planned run in this process (only rank 0 speaks and writes)."""
    from i2icli.runs.run import run

    spec, folder = planned.spec, planned.folder
    channels = spec.config["arch"]["channels_a"]
    kind = "gray images" if channels == 1 else "RGB images"
    if planned.path and not quiet:
        flags = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in planned.path.items())
        off = ", ".join("--procs 1" if k == "procs" else f"--no-{k.replace('_', '-')}" for k in planned.path)
        err(f"{spec.preset} on a CPU: {flags} (its faster path; {off} to turn off)")
    if not quiet:
        layout = f" in {place.world} processes x {chosen_threads.threads} thread(s)" if place.enabled else ""
        err(f"training {spec.method} (preset {spec.preset}, {channels}-channel ({kind})) for {spec.loop.max_steps} steps in {folder} on {dev}{layout}")
    display = TrainDisplay(spec.loop.max_steps, stream=None if not quiet else _Silent())
    try:
        result, exported = run(
            spec, folder, dev, resume=planned.resume, on_step=display.losses, on_tick=display.tick, log=display.note,
            threads=chosen_threads, place=place,
        )
    finally:
        display.close()
    if not place.writes:
        return
    if result.interrupted:
        err(f"stopped at step {result.step}; checkpoint saved. Resume with: i2i train --resume {folder}")
        return
    if not quiet:
        err(f"done: {result.step} steps; model exported to {exported}")


class _Silent:
    """A stream that is not a terminal and drops what it gets (``--quiet``)."""

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class TrainDisplay:
    """A live line on a terminal: step, rate, ETA and the phases' losses; nothing when piped."""

    def __init__(self, max_steps: int, *, stream: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.max_steps = max_steps
        self.clock = clock
        self.first: tuple[int, float] | None = None  # (step, time) of the first tick of this session
        self.last_draw = -1.0
        self.loss_text = ""
        self.pending = False  # a line without its newline is on screen

    def losses(self, step: int, scalars: dict[str, float]) -> None:
        """Keep the main losses (one per phase, ``loss_<phase>``) for the next line."""
        self.loss_text = "  ".join(f"{k[len('loss_'):]} {v:.3f}" for k, v in scalars.items() if k.startswith("loss_"))

    def tick(self, step: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.first is None:
            self.first = (step, now)
        if now - self.last_draw < 0.1 and step != self.max_steps:
            return
        self.last_draw = now
        parts = [f"step {step}/{self.max_steps}"]
        done, elapsed = step - self.first[0], now - self.first[1]
        if done > 0 and elapsed > 0:
            rate = done / elapsed
            parts.append(f"{rate:.2f} steps/s" if rate >= 1 else f"{1 / rate:.2f} s/step")
            parts.append(f"ETA {format_duration((self.max_steps - step) / rate)}")
        if self.loss_text:
            parts.append(self.loss_text)
        self.stream.write("\r\x1b[2K" + "  ".join(parts))
        self.stream.flush()
        self.pending = True

    def note(self, text: str) -> None:
        """A message (a warning, the CPU time estimate) on a line of its own, below the live line."""
        self.close()
        err(text)

    def close(self) -> None:
        if self.pending:
            self.stream.write("\n")
            self.stream.flush()
            self.pending = False

"""Training faults: ``kill -9`` at random moments then ``--resume`` (2 trials here, 10 in the slow
soak), a corrupt newest checkpoint, NaN/Inf losses, a full disk during a checkpoint write, two runs
on one run folder, and the training loader's odd and bad inputs."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import torch
from conftest import tiny_train_args, write_domains, write_rgb
from faults import env, i2i, make_bad_inputs, make_good_inputs, run
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.data.transforms import Preprocess
from i2icli.data.unpaired import SkippedImageWarning, UnpairedImages
from i2icli.errors import CheckpointError
from i2icli.train.state import load_training_state

runner = CliRunner()
STEPS, SAVE_EVERY = 24, 4


@pytest.fixture(scope="module")
def domains(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domains(tmp_path_factory.mktemp("data"), 6, seed_b=100, size_b=(24, 18), ext_b=".jpg")


def _args(domains: Path, run_dir: Path, *extra: str, steps: int = STEPS) -> list[str]:
    return tiny_train_args(
        domains, run_dir, steps, "--seed", "3", "--log-every", "1", "--save-every", str(SAVE_EVERY), "--keep-last", "3", *extra
    )


def _state(path: Path) -> dict:
    return load_training_state(path, torch.device("cpu"))


def _same_state(a: dict, b: dict) -> bool:
    if a["step"] != b["step"]:
        return False
    for name in a["modules"]:
        if any(not torch.equal(v, b["modules"][name][k]) for k, v in a["modules"][name].items()):
            return False
    for name in a["optimizers"]:
        sa, sb = a["optimizers"][name]["state"], b["optimizers"][name]["state"]
        if any(not torch.equal(sa[i][m], sb[i][m]) for i in sa for m in ("exp_avg", "exp_avg_sq", "step")):
            return False
    return True


def _losses(run_dir: Path) -> dict[int, dict[str, float]]:
    """Per step, every logged value except the wall-clock time."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: {k: v for k, v in r.items() if k != "seconds"} for r in records}


@pytest.fixture(scope="module")
def reference(domains: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run every interrupted one must reproduce exactly."""
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    result = runner.invoke(app, _args(domains, run_dir))
    assert result.exit_code == 0, result.output
    return run_dir


# ----------------------------------------------------------------------------- kill -9


def _kill_trial(domains: Path, reference: Path, run_dir: Path, rng: random.Random, stratum: tuple[int, int]) -> dict[str, object]:
    """Start a run, SIGKILL it at a random moment in ``stratum`` (a range of logged steps; -1 is
    start-up, before any step), resume, and check the outcome against the reference."""
    target = rng.randint(*stratum)
    proc = subprocess.Popen(i2i(*_args(domains, run_dir)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    metrics = run_dir / "metrics.jsonl"
    if target < 0:
        time.sleep(rng.uniform(0.2, 3.0))
    else:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            lines = metrics.read_text().splitlines() if metrics.exists() else []
            if lines and lines[-1].endswith("}") and json.loads(lines[-1])["step"] >= target:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.08))  # anywhere in the next step, checkpoint writes included
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    present = sorted((run_dir / "checkpoints").glob("step_*.pt")) if (run_dir / "checkpoints").is_dir() else []
    corrupt = []
    for path in present:
        try:
            _state(path)
        except CheckpointError:
            corrupt.append(path.name)
    newest = int(present[-1].stem.split("_")[1]) if present else 0

    # --resume when the run folder exists; a run killed before writing run.json is simply started again.
    args = ["train", "--resume", str(run_dir), "--device", "cpu"] if (run_dir / "run.json").is_file() else _args(domains, run_dir)
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0, resumed.output
    assert "Traceback" not in resumed.output
    if newest:
        assert f"resuming from step_{newest:08d}.pt (step {newest})" in resumed.output, resumed.output

    final = _state(run_dir / "checkpoints" / f"step_{STEPS:08d}.pt")
    identical = _same_state(final, _state(reference / "checkpoints" / f"step_{STEPS:08d}.pt"))
    identical &= _losses(run_dir) == _losses(reference)
    exported, wanted = load_file(str(run_dir / "model" / "model.safetensors")), load_file(str(reference / "model" / "model.safetensors"))
    identical &= exported.keys() == wanted.keys() and all(torch.equal(exported[k], wanted[k]) for k in wanted)
    leftover = [p.name for p in run_dir.rglob("*.tmp")]
    return {"target": target, "killed": killed, "resumed_from": newest, "corrupt": corrupt, "identical": identical, "tmp": leftover}


def _soak(domains: Path, reference: Path, tmp_path: Path, trials: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    # The first trial dies during start-up; trial k > 0 draws its moment from the k-th of
    # ``trials - 1`` equal slices of the steps, so even a few trials cover early, middle and late kills.
    edges = [k * STEPS // (trials - 1) for k in range(trials)]
    strata = [(-1, -1)] + [(edges[k], edges[k + 1] - 1) for k in range(trials - 1)]
    results = [_kill_trial(domains, reference, tmp_path / f"trial{k}", rng, strata[k]) for k in range(trials)]
    summary = (
        f"kill -9 soak: {trials} trials, {sum(bool(r['killed']) for r in results)} killed mid-run, "
        f"resumed from steps {[r['resumed_from'] for r in results]}, "
        f"{sum(len(r['corrupt']) for r in results)} corrupt checkpoints, "  # type: ignore[arg-type]
        f"{sum(bool(r['identical']) for r in results)}/{trials} continuations identical"
    )
    print(summary)
    for r in results:
        assert r["corrupt"] == [] and r["tmp"] == [] and r["identical"], r
    return results


def test_kill_9_at_random_moments_then_resume_is_exact(domains: Path, reference: Path, tmp_path: Path) -> None:
    _soak(domains, reference, tmp_path, trials=2, seed=int(os.environ.get("I2I_SOAK_SEED", "13")))


@pytest.mark.slow
def test_kill_9_soak_ten_trials(domains: Path, reference: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    results = _soak(domains, reference, tmp_path, trials=10, seed=int(os.environ.get("I2I_SOAK_SEED", "2024")))
    assert sum(bool(r["killed"]) for r in results) >= 8  # the soak really interrupted runs
    if os.environ.get("I2I_SOAK_RECORD") == "1":  # writes its block of benchmarks/RESULTS.md
        _record_soak(results, time.perf_counter() - t0)


def _record_soak(results: list[dict[str, object]], wall: float) -> None:
    import platform
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from results_md import write_block

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), platform.processor())
    rows = "\n".join(
        f"| {k + 1} | {'start-up' if r['target'] == -1 else 'after step ' + str(r['target'])} | "
        f"{'yes' if r['killed'] else 'no (finished first)'} | {r['resumed_from'] or 'step 0 (no checkpoint yet)'} | "
        f"{len(r['corrupt'])} | {'yes' if r['identical'] else 'NO'} |"  # type: ignore[arg-type]
        for k, r in enumerate(results)
    )
    killed = sum(bool(r["killed"]) for r in results)
    identical = sum(bool(r["identical"]) for r in results)
    corrupt = sum(len(r["corrupt"]) for r in results)  # type: ignore[arg-type]
    block = f"""## Training kill -9 soak

Written by `I2I_SOAK_RECORD=1 pytest -m slow tests/reliability/test_rel_training.py -k soak`; do not edit by hand.

Each trial starts `i2i train --method cyclegan --preset cpu-tiny --max-steps {STEPS} --save-every {SAVE_EVERY} --keep-last 3`
(CPU, seed 3) in a fresh run folder and sends it SIGKILL at a random moment: trial 1 during
start-up, trial k > 1 0-80 ms after a random logged step from the (k-1)-th ninth of the run (inside
a step or a checkpoint write). It checks that every
checkpoint left behind reads back intact (sha256), then runs `i2i train --resume` (or the same
command again when the run died before writing `run.json`). The continuation must equal an
uninterrupted run bit for bit: the step-{STEPS} training state (weights and Adam moments), every
logged loss in `metrics.jsonl`, and the exported `model.safetensors`.

| trial | kill moment | killed mid-run | resumed from step | corrupt checkpoints | continuation identical |
|---|---|---|---|---|---|
{rows}

**{len(results)} trials: {killed} killed mid-run, {len(results)} resumed to the end, {corrupt} corrupt checkpoints, {identical}/{len(results)} continuations identical.**

Machine: {cpu}, {torch.get_num_threads()} torch thread(s) (`OMP_NUM_THREADS=1`), Python {platform.python_version()},
torch {torch.__version__}. Wall time {wall:.0f} s for the 10 trials (plus one uninterrupted reference run).
"""
    write_block(REPO / "benchmarks" / "RESULTS.md", "kill-soak", block)


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(domains: Path, reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    shutil.copytree(reference, run_dir)
    shutil.rmtree(run_dir / "checkpoints")
    shutil.rmtree(run_dir / "model")
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write('{"step": 25, "loss_ge')  # a line a kill cut in half
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir), "--device", "cpu"])
    assert resumed.exit_code == 0, resumed.output
    assert "starting from step 0" in resumed.output
    assert _losses(run_dir) == _losses(reference)
    assert _same_state(_state(run_dir / "checkpoints" / f"step_{STEPS:08d}.pt"), _state(reference / "checkpoints" / f"step_{STEPS:08d}.pt"))


# ----------------------------------------------------------------------------- corrupt checkpoints


def _flip_tensor_byte(path: Path) -> None:
    """Flip one byte inside a stored tensor's data (the zip container does not notice)."""
    state = torch.load(path, weights_only=True)
    weight = next(v for v in state["modules"]["gen_ab"].values() if v.numel() >= 16)
    data = bytearray(path.read_bytes())
    at = bytes(data).find(weight.numpy().tobytes()[:16])
    assert at > 0
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["bit-flip", "truncated", "zero-byte"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous_with_a_warning(
    domains: Path, reference: Path, tmp_path: Path, damage: str
) -> None:
    run_dir = tmp_path / "r"
    shutil.copytree(reference, run_dir)
    shutil.rmtree(run_dir / "model")
    newest = run_dir / "checkpoints" / f"step_{STEPS:08d}.pt"
    if damage == "bit-flip":
        _flip_tensor_byte(newest)
        # The negative control: torch alone loads the damaged file without complaint.
        torch.load(newest, weights_only=True)
    elif damage == "truncated":
        newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    else:
        newest.write_bytes(b"")
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir), "--device", "cpu"])
    assert resumed.exit_code == 0, resumed.output
    warning = [line for line in resumed.stderr.splitlines() if line.startswith("warning:")]
    previous = f"step_{STEPS - SAVE_EVERY:08d}.pt"
    assert len(warning) == 1 and newest.name in warning[0] and f"falling back to {previous}" in warning[0], resumed.stderr
    assert f"resuming from {previous}" in resumed.stderr
    assert (run_dir / "checkpoints" / f"{newest.name}.corrupt").is_file()  # kept for inspection
    assert _same_state(_state(newest), _state(reference / "checkpoints" / newest.name))


def test_a_pickle_planted_as_a_checkpoint_is_refused_and_skipped(domains: Path, reference: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    shutil.copytree(reference, run_dir)
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    torch.save({"step": 99, "modules": Evil()}, run_dir / "checkpoints" / "step_00000099.pt")
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir), "--device", "cpu", "--max-steps", str(STEPS)])
    assert resumed.exit_code == 0, resumed.output
    assert "step_00000099.pt: not a loadable tensor-only PyTorch file: refused to unpickle posix.system" in resumed.stderr
    assert not marker.exists()


# ----------------------------------------------------------------------------- divergence, full disk


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(
    domains: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: float
) -> None:
    from i2icli.methods.cyclegan import CycleGANObjective

    real = CycleGANObjective.generator_loss
    calls = {"n": 0}

    def poisoned(self, batch, carry):  # type: ignore[no-untyped-def]
        out = real(self, batch, carry)
        calls["n"] += 1
        if calls["n"] == 7:  # step 7 of the run
            out.loss = out.loss * bad
        return out

    monkeypatch.setattr(CycleGANObjective, "generator_loss", poisoned)
    run_dir = tmp_path / "r"
    # --log-every 10 > --save-every 4: the divergence is caught between logged steps, before step 8's save.
    args = _args(domains, run_dir, steps=12)
    args[args.index("--log-every") + 1] = "10"
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert f"step 7: loss_gen is {bad}" in line and "training diverged" in line
    assert "step_00000004.pt is kept" in line
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000004.pt"]
    state = _state(run_dir / "checkpoints" / "step_00000004.pt")
    assert all(torch.isfinite(v).all() for m in state["modules"].values() for v in m.values() if v.is_floating_point())
    assert not (run_dir / "model").exists()


def test_full_disk_during_a_checkpoint_write_keeps_the_previous_one(
    domains: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import i2icli.checkpoint as checkpoint

    real_fdopen = os.fdopen

    class Full:
        """A file whose disk fills up half-way through the checkpoint."""

        def __init__(self, handle) -> None:  # type: ignore[no-untyped-def]
            self.handle = handle

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_fdopen(fd, mode, *args, **kwargs)
        name = os.readlink(f"/proc/self/fd/{fd}")
        return Full(handle) if ".step_00000008.pt." in name else handle

    monkeypatch.setattr(checkpoint.os, "fdopen", fdopen)
    run_dir = tmp_path / "r"
    result = runner.invoke(app, _args(domains, run_dir, steps=12))
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "step_00000008.pt: cannot write checkpoint (No space left on device); step_00000004.pt is intact" in line
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["step_00000004.pt"]  # no half-written temp file
    assert _state(run_dir / "checkpoints" / "step_00000004.pt")["step"] == 4


def test_real_file_size_limit_during_a_checkpoint_write(domains: Path, reference: Path, tmp_path: Path) -> None:
    # A run with checkpoints up to step 8, resumed under RLIMIT_FSIZE: the kernel refuses the
    # step-12 checkpoint (larger than the limit) while the small files still fit.
    run_dir = tmp_path / "r"
    first = runner.invoke(app, _args(domains, run_dir, steps=8))
    assert first.exit_code == 0, first.output
    size = (run_dir / "checkpoints" / "step_00000008.pt").stat().st_size
    before = (run_dir / "checkpoints" / "step_00000008.pt").read_bytes()
    result = run(i2i("train", "--resume", run_dir, "--device", "cpu", "--max-steps", "12"), fsize=size // 2)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "step_00000012.pt: cannot write checkpoint (File too large)" in line
    assert (run_dir / "checkpoints" / "step_00000008.pt").read_bytes() == before
    assert not list(run_dir.rglob("*.tmp"))


# ----------------------------------------------------------------------------- one run folder, two runs


def test_a_second_train_on_the_same_run_folder_is_refused(domains: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    proc = subprocess.Popen(i2i(*_args(domains, run_dir, steps=100000)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env())
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        for args in (["train", "--resume", str(run_dir), "--device", "cpu"], _args(domains, run_dir)):
            second = runner.invoke(app, args)
            assert second.exit_code == 1, second.output
            (line,) = second.output.strip().splitlines()[-1:]
            assert f"another i2i train (pid {proc.pid}) is using this run folder" in line
    finally:
        proc.send_signal(signal.SIGTERM)  # the first run stops cleanly and saves
        proc.wait(timeout=120)
    assert proc.returncode == 0
    for ckpt in (run_dir / "checkpoints").glob("step_*.pt"):
        _state(ckpt)  # every checkpoint is intact
    again = runner.invoke(app, ["train", "--resume", str(run_dir), "--device", "cpu", "--max-steps", str(_state(sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1])["step"] + 2)])
    assert again.exit_code == 0, again.output  # the lock died with its owner


# ----------------------------------------------------------------------------- the training loader


def test_training_loader_reads_every_odd_input_and_skips_each_bad_one_with_one_warning(tmp_path: Path) -> None:
    good = make_good_inputs(tmp_path / "a")
    bad = make_bad_inputs(tmp_path / "a")
    for k in range(3):
        write_rgb(tmp_path / "b" / f"{k}.png", (20, 20), seed=k)
    pre = Preprocess(mode="resize_and_crop", load_size=20, crop_size=16, flip=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = UnpairedImages(tmp_path / "a", tmp_path / "b", pre, channels=3, seed=0, batch_size=2)
    lines = [str(w.message) for w in caught if issubclass(w.category, SkippedImageWarning)]
    assert len(lines) == len(bad), lines
    for name, words in bad.items():
        assert sum(f"/{name}: " in line and words in line for line in lines) == 1, (name, lines)
    assert {os.fsdecode(p.name) for p in ds.files_a} == set(good)
    # Every good file decodes into a batch (an epoch of A covers each file once).
    seen = set()
    for step in range(ds.steps_per_epoch()):
        batch = ds[step]
        assert batch["a"].shape[1:] == (3, 16, 16) and torch.isfinite(batch["a"]).all()
        seen |= set(batch["index_a"].tolist())
    assert seen == set(range(len(good)))
    assert len(ds.skipped) == len(bad)


def test_train_names_each_unreadable_file_once_and_honours_max_pixels(tmp_path: Path) -> None:
    for k in range(3):
        write_rgb(tmp_path / "d" / "trainA" / f"{k}.png", (20, 20), seed=k)
        write_rgb(tmp_path / "d" / "trainB" / f"{k}.png", (20, 20), seed=10 + k)
    write_rgb(tmp_path / "d" / "trainA" / "big.png", (40, 40))
    (tmp_path / "d" / "trainB" / "zero.png").write_bytes(b"")
    args = ["train", "--preset", "cpu-tiny", "--dataroot", str(tmp_path / "d"), "--run-dir", str(tmp_path / "r"),
            "--max-steps", "2", "--device", "cpu", "--sample-every", "0", "--max-pixels", "1000"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    warnings_ = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings_) == 2
    assert any("big.png" in w and "over 1000 pixels: 40x40 = 1600" in w for w in warnings_)
    assert any("zero.png" in w and "empty file" in w for w in warnings_)
    data = json.loads((tmp_path / "r" / "data.json").read_text())
    assert data["images_a"] == 3 and data["images_b"] == 3 and len(data["skipped"]) == 2

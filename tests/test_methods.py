"""The generic method suite: every registered method, with each of its tiny test presets, gets the
same checks. A method added to ``METHOD_MODULES`` gets them all by registering.

Per (method, test preset): the torch-free INFO equals the imported one; every optional capability
is declared exactly when its protocol (``base.CAPABILITY_PROTOCOLS``) is met; build; forward shapes in
every direction; save -> strict load round trip, and a shape mismatch named; training on a fixed
batch lowers the method's main loss; SIGTERM + resume equals an uninterrupted run; the exported
model translates through the CLI; capability refusals exit 2.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import write_rgb
from typer.testing import CliRunner

from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli.app import app
from i2icli.config import to_dict
from i2icli.errors import CheckpointError
from i2icli.methods import METHOD_MODULES, load_method, read_info
from i2icli.methods.base import CAPABILITY_PROTOCOLS, METHOD_CAPABILITIES, Method, Preset, Translator, split_direction
from i2icli.methods.info import COMMANDS, Capability
from i2icli.methods.load import load_checkpoint
from i2icli.runs.run import run
from i2icli.runs.spec import DataSpec, RunSpec
from i2icli.train.loop import LoopOptions, train

runner = CliRunner()

CASES = [
    pytest.param(name, preset_name, id=f"{name}-{preset_name}")
    for name in METHOD_MODULES
    for preset_name in load_method(name).test_presets
]


def _method_and_preset(name: str, preset_name: str) -> tuple[Method, Preset]:
    method = load_method(name)
    return method, method.test_presets[preset_name]


def _side(preset: Preset) -> int:
    return preset.config.data.crop_size


def _images(preset: Preset, domain: str, n: int, seed: int) -> torch.Tensor:
    cfg = preset.config
    channels = cfg.arch.channels_a if domain == "a" else cfg.arch.channels_b
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, _side(preset), _side(preset), generator=g) * 2 - 1


class FixedBatch:
    """``TrainingData`` whose every step is the same batch: training on it must lower the main loss."""

    def __init__(self, preset: Preset) -> None:
        bs = preset.batch_size
        self.batch = {
            "a": _images(preset, "a", bs, 1), "b": _images(preset, "b", bs, 2),
            "index_a": torch.arange(bs), "index_b": torch.arange(bs), "step": 0,
        }  # fmt: skip
        self.files_a = [Path(f"a{i}.png") for i in range(bs)]
        self.files_b = [Path(f"b{i}.png") for i in range(bs)]
        self.preset = preset

    def __getitem__(self, step: int) -> dict[str, Any]:
        return {**self.batch, "step": step}

    def __len__(self) -> int:
        return 1_000_000

    def sample(self, domain: str, n: int, seed: int) -> torch.Tensor:
        return self.batch[domain][:n]


def _write_domains(root: Path, preset: Preset, n: int = 6) -> DataSpec:
    cfg = preset.config
    side = max(cfg.data.load_size, cfg.data.crop_size)
    for domain, channels in (("A", cfg.arch.channels_a), ("B", cfg.arch.channels_b)):
        for i in range(n):
            path = write_rgb(root / f"train{domain}" / f"{i}.png", (side, side), seed=i + (100 if domain == "B" else 0))
            if channels == 1:
                from PIL import Image

                Image.open(path).convert("L").save(path)
    return DataSpec(str(root / "trainA"), str(root / "trainB"), ("left", "right"))


def _spec(name: str, preset_name: str, preset: Preset, data: DataSpec, steps: int) -> RunSpec:
    loop = LoopOptions(max_steps=steps, seed=3, save_every=2, keep_last=0, sample_every=0, log_every=1)
    return RunSpec(name, preset_name, to_dict(preset.config), loop, preset.batch_size, data)


# --------------------------------------------------------------------------- registration


def test_every_method_has_test_presets() -> None:
    for name in METHOD_MODULES:
        assert load_method(name).test_presets, f"{name}: no test presets; the generic suite would skip it"


@pytest.mark.parametrize("name", METHOD_MODULES)
def test_info_read_without_import_equals_the_module_info(name: str) -> None:
    method = load_method(name)
    assert read_info(name) == method.info
    assert method.info.name == name
    assert all(o.flag.startswith("--") for o in method.info.options)
    assert method.default_preset in method.presets
    if method.info.converts:  # the converter module the contract names provides the one entry point
        assert callable(importlib.import_module(method.info.converter).convert_official)
        assert method.info.convert_help


def _meets(obj: object, protocol: type) -> bool:
    """``obj`` has every member of ``protocol``, and each of its methods takes the protocol's arguments."""
    if not isinstance(obj, protocol):
        return False
    for member, spec in vars(protocol).items():
        if member.startswith("_") or not inspect.isfunction(spec):
            continue
        wanted = [p for p in inspect.signature(spec).parameters.values() if p.name != "self"]
        try:  # every parameter of the protocol, passed by position: the implementation must accept them
            inspect.signature(getattr(obj, member)).bind(*[None] * len(wanted))
        except TypeError:
            return False
    return True


@pytest.mark.parametrize(("name", "preset_name"), CASES)
def test_declared_capabilities_are_exactly_the_protocols_met(name: str, preset_name: str) -> None:
    method, preset = _method_and_preset(name, preset_name)
    model = method.build_model(preset.config.arch)
    assert _meets(model, Translator)
    caps = method.info.caps
    for capability, protocol in CAPABILITY_PROTOCOLS.items():
        holder = method.stages if capability in METHOD_CAPABILITIES else model
        assert _meets(holder, protocol) == (capability in caps), f"{name}: {capability.value} vs {protocol.__name__}"
    if Capability.OPTIONAL_STYLE in caps:  # supplying one's own style only means something for a style model
        assert Capability.STYLES in caps


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize(("name", "preset_name"), CASES)
def test_forward_shapes_in_every_direction(name: str, preset_name: str) -> None:
    method, preset = _method_and_preset(name, preset_name)
    torch.manual_seed(0)
    model = method.build_model(preset.config.arch).eval()
    assert model.directions, "a model must translate in at least one direction"
    side = _side(preset)
    for direction in model.directions:
        source, _ = split_direction(direction)
        c_in, c_out = model.channels(direction)
        x = _images(preset, source, 2, 0)
        assert x.shape[1] == c_in
        with torch.no_grad():
            if Capability.STYLES in method.info.caps:  # style models translate with a style code
                y = model.translate(x, direction, model.random_style(2, torch.Generator().manual_seed(0)))
            else:
                y = model.translate(x, direction)
        assert y.shape == (2, c_out, side, side), direction
        assert torch.isfinite(y).all() and y.abs().max() <= 1.0 + 1e-6


@pytest.mark.parametrize(("name", "preset_name"), CASES)
def test_save_then_strict_load_round_trip_and_a_named_shape_mismatch(name: str, preset_name: str, tmp_path: Path) -> None:
    method, preset = _method_and_preset(name, preset_name)
    torch.manual_seed(0)
    model = method.build_model(preset.config.arch).eval()
    config = ModelConfig(method=name, arch=to_dict(preset.config.arch), domains=("left", "right"), image_size=_side(preset))
    path = save_model(tmp_path / "m.safetensors", model, config)
    loaded, read = load_checkpoint(path)
    assert read.method == name
    own = model.state_dict()
    assert loaded.state_dict().keys() == own.keys()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in own.items())

    # The same tensors under a config whose first weight has another shape: the key and file are named.
    from i2icli.checkpoint import read_tensors

    tensors, _ = read_tensors(path)
    key = next(k for k, v in tensors.items() if v.dim() >= 2)
    bad = dict(tensors)
    bad[key] = torch.zeros(*(s + 1 for s in tensors[key].shape))

    class Holder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:  # type: ignore[override]
            return bad

    broken = save_model(tmp_path / "bad.safetensors", Holder(), config)
    with pytest.raises(CheckpointError, match=f"{key}.*shape"):
        load_checkpoint(broken)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize(("name", "preset_name"), CASES)
def test_training_on_a_fixed_batch_lowers_the_main_loss(name: str, preset_name: str, tmp_path: Path) -> None:
    method, preset = _method_and_preset(name, preset_name)
    # A larger step size than the paper's, so that 40 steps on one batch show the fall clearly.
    cfg = preset.config
    cfg = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=2e-3))
    torch.manual_seed(0)
    model = method.build_model(cfg.arch)
    data = FixedBatch(preset)
    objective = method.build_objective(cfg, model, data, 0)
    steps = 40
    opts = LoopOptions(max_steps=steps, seed=0, save_every=0, sample_every=0, log_every=1)
    for m in objective.training_modules().values():
        m.train()
    train(objective, data, opts, run_dir=tmp_path, device=torch.device("cpu"))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    values = [r[method.main_loss] for r in records if method.main_loss in r]
    assert len(values) >= steps // 2, f"{method.main_loss} is not logged"
    first, last = sum(values[:3]) / 3, sum(values[-3:]) / 3
    assert last < 0.9 * first, f"{method.main_loss}: {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize(("name", "preset_name"), CASES)
def test_sigterm_then_resume_equals_an_uninterrupted_run(name: str, preset_name: str, tmp_path: Path) -> None:
    method, preset = _method_and_preset(name, preset_name)
    data = _write_domains(tmp_path / "data", preset)
    steps = 4
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    run(_spec(name, preset_name, preset, data, steps), full_dir, torch.device("cpu"), log=lambda s: None)

    def stop_after_two(step: int, scalars: dict[str, float]) -> None:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the loop finishes the step, saves, and returns

    spec = _spec(name, preset_name, preset, data, steps)
    result, exported = run(spec, cut_dir, torch.device("cpu"), on_step=stop_after_two, log=lambda s: None)
    assert result.interrupted and result.step == 2 and exported is None
    result, exported = run(spec, cut_dir, torch.device("cpu"), resume=True, log=lambda s: None)
    assert result.step == steps and exported is not None

    full = torch.load(full_dir / "checkpoints" / f"step_{steps:08d}.pt", weights_only=True)
    resumed = torch.load(cut_dir / "checkpoints" / f"step_{steps:08d}.pt", weights_only=True)
    for module, state in full["modules"].items():
        for key, value in state.items():
            assert torch.equal(value, resumed["modules"][module][key]), f"{module}.{key}"


@pytest.mark.parametrize(("name", "preset_name"), CASES)
def test_export_translates_through_the_cli_and_refuses_what_it_cannot_do(
    name: str, preset_name: str, tmp_path: Path
) -> None:
    method, preset = _method_and_preset(name, preset_name)
    data = _write_domains(tmp_path / "data", preset, n=4)
    # 4 steps: every stage of the tiny presets starts within them (TransGaGa: 2 + 1 + the rest).
    _, exported = run(_spec(name, preset_name, preset, data, 4), tmp_path / "run", torch.device("cpu"), log=lambda s: None)
    assert exported is not None
    image = write_rgb(tmp_path / "in" / "x.png", (_side(preset) + 3, _side(preset) + 5))
    net, _ = load_checkpoint(exported)
    for direction in net.directions:
        out = tmp_path / f"out-{direction}"
        result = runner.invoke(
            # --size native: the input's own size, padded to the stride and cropped back (the default
            # --size auto would first resize it to the preset's training scale).
            app, ["translate", str(image), "--model", str(exported), "--direction", direction, "-o", str(out), "--device", "cpu",
                  "--size", "native"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        from PIL import Image

        assert Image.open(out / "x.png").size == (_side(preset) + 3, _side(preset) + 5)
    for direction in {"a2b", "b2a"} - set(net.directions):
        result = runner.invoke(app, ["translate", str(image), "--model", str(exported), "--direction", direction, "-o", str(tmp_path / "no")])
        assert result.exit_code == 2 and direction in result.output
    refusals = {
        "sample-styles": ["sample", str(image), "--n", "2"],
        "exemplar": ["exemplar", str(image), "--style", str(image)],
        "interpolate": ["interpolate", str(image), str(image)],
    }
    assert set(refusals) == set(COMMANDS)
    for command, args in refusals.items():
        if method.info.can(command):
            continue
        result = runner.invoke(app, [*args, "--model", str(exported), "-o", str(tmp_path / "refused")])
        assert result.exit_code == 2, (command, result.output)
        assert not (tmp_path / "refused").exists()


# --------------------------------------------------------------------------- bad input


def test_unknown_method_and_a_foreign_method_flag_are_refused_before_any_run_folder(tmp_path: Path) -> None:
    preset = load_method("cyclegan").test_presets["tiny"]
    data = _write_domains(tmp_path / "data", preset, n=2)
    base = ["train", "--domain-a", data.dir_a, "--domain-b", data.dir_b, "--run-dir", str(tmp_path / "run")]
    result = runner.invoke(app, [*base, "--method", "pix2pix"])
    assert result.exit_code == 2 and "--method 'pix2pix'" in result.output
    foreign = next(
        (o.flag, owner) for owner in METHOD_MODULES for o in read_info(owner).options if owner != "cyclegan"
    )
    result = runner.invoke(app, [*base, "--method", "cyclegan", foreign[0], "x"])
    assert result.exit_code == 2 and f"{foreign[0]}: not an option of --method cyclegan" in result.output
    assert not (tmp_path / "run").exists()


def test_val_every_without_a_validation_score_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from i2icli.methods.cyclegan import CycleGANObjective

    monkeypatch.setattr(CycleGANObjective, "validation", lambda self: None)
    preset = load_method("cyclegan").test_presets["tiny"]
    data = _write_domains(tmp_path / "data", preset, n=4)
    args = ["train", "--domain-a", data.dir_a, "--domain-b", data.dir_b, "--run-dir", str(tmp_path / "run")]
    result = runner.invoke(app, [*args, "--preset", "cpu-tiny", "--val-every", "1"])
    assert result.exit_code == 2 and "--val-every: cyclegan has no validation score" in result.output
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("with_test_folders", [False, True])
def test_val_every_keeps_the_best_model_and_records_it(tmp_path: Path, with_test_folders: bool) -> None:
    preset = load_method("cyclegan").test_presets["tiny"]
    data = _write_domains(tmp_path / "data", preset, n=10)
    if with_test_folders:
        for d in "AB":
            for i in range(3):
                write_rgb(tmp_path / "data" / f"test{d}" / f"t{i}.png", (20, 20), seed=50 + i)
    spec = _spec("cyclegan", "tiny", preset, data, 6)
    spec = dataclasses.replace(spec, loop=dataclasses.replace(spec.loop, val_every=2))
    run(spec, tmp_path / "run", torch.device("cpu"), log=lambda s: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    scores = {r["step"]: r["val_cycle_l1"] for r in records if "val_cycle_l1" in r}
    assert sorted(scores) == [2, 4, 6]
    best_step = min(scores, key=lambda k: scores[k])
    best = json.loads((tmp_path / "run" / "run.json").read_text())["best"]
    assert best["step"] == best_step and best["val_cycle_l1"] == pytest.approx(scores[best_step])
    _, config = load_checkpoint(tmp_path / "run" / "model-best")
    assert config.training["steps"] == best_step
    report = json.loads((tmp_path / "run" / "data.json").read_text())
    if with_test_folders:
        assert report["images_a"] == 10 and "testA" in report["validation"]
    else:  # one of ten files per domain held back from training
        assert report["images_a"] == 9 and "held back" in report["validation"]


def test_method_dataclass_fields_are_typed_configs() -> None:
    # Every config has arch (with the channel counts), data and optim, under one spelling.
    for name in METHOD_MODULES:
        method = load_method(name)
        fields = {f.name for f in dataclasses.fields(method.config_cls)}
        assert {"arch", "data", "optim"} <= fields, name
        arch_fields = {f.name for f in dataclasses.fields(method.arch_cls)}
        assert {"channels_a", "channels_b"} <= arch_fields, name

"""The faster training paths (``--compile``, ``--channels-last``) train the same model as the plain
eager fp32 loop: parameters after 3 steps from the same seed, within a stated tolerance."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from conftest import write_rgb

from i2icli.config import from_dict
from i2icli.methods import load_method
from i2icli.runs.run import open_data
from i2icli.runs.spec import DataSpec, build_spec
from i2icli.train.loop import train

STEPS = 3
LR = 2e-4  # cpu-tiny CycleGAN's Adam learning rate (checked below)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paths")
    for offset, domain in enumerate("AB"):
        for i in range(4):
            write_rgb(root / f"train{domain}" / f"{i}.png", (20, 20), seed=10 * offset + i)
    return root


def _parameters_after_steps(root: Path, **loop: bool) -> dict[str, torch.Tensor]:
    """Every training module's state after ``STEPS`` steps of CycleGAN cpu-tiny from seed 0."""
    spec = build_spec(
        method="cyclegan", preset="cpu-tiny", config_file=None, overrides=[],
        data=DataSpec(str(root / "trainA"), str(root / "trainB")), batch_size=None, lr=None, max_steps=STEPS,
        loop_kwargs=dict(save_every=0, sample_every=0, log_every=1, **loop), init_from=None, steps_per_epoch=lambda b: 1,
    )  # fmt: skip
    impl = load_method("cyclegan")
    cfg = from_dict(impl.config_cls, spec.config)
    assert cfg.optim.lr == LR
    torch.manual_seed(0)
    data = open_data(spec, 3)
    objective = impl.build_objective(cfg, impl.build_model(cfg.arch), data, 0)
    for m in objective.training_modules().values():
        m.train()
    with tempfile.TemporaryDirectory() as d:
        train(objective, data, spec.loop, run_dir=Path(d), device=torch.device("cpu"))
    modules = objective.training_modules()
    return {f"{k}.{n}": t.detach().clone() for k, m in modules.items() for n, t in m.state_dict().items()}


def _assert_close(fast: dict[str, torch.Tensor], eager: dict[str, torch.Tensor]) -> None:
    """Tolerance: a reordered reduction changes a gradient in its last bits; Adam's first steps move a
    weight by about ``lr`` whatever the gradient's size, so where a gradient is near zero its sign
    (and that step) can flip: at most ``2 * lr`` per step, ``6 * lr`` after 3 steps, for any entry.
    Everywhere else the weights agree to 1e-5: at least 98% of all entries must."""
    assert fast.keys() == eager.keys()
    diffs = torch.cat([(fast[k].float() - eager[k].float()).abs().reshape(-1) for k in eager])
    assert float(diffs.max()) <= 2 * LR * STEPS, float(diffs.max())
    assert float((diffs <= 1e-5).float().mean()) >= 0.98


def test_channels_last_trains_the_same_parameters(folders: Path) -> None:
    _assert_close(_parameters_after_steps(folders, channels_last=True), _parameters_after_steps(folders))


def test_compiled_graphs_train_the_same_parameters(folders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's ``--compile`` plumbing (modules compiled in place after resuming, phases freezing
    parameters between graphs) with dynamo and AOTAutograd graphs but no inductor code generation
    (``aot_eager``): seconds instead of minutes. Inductor itself: the slow test below."""
    compile_module, compiled = torch.nn.Module.compile, []

    def with_aot_eager(self: torch.nn.Module, **kwargs: object) -> None:
        compiled.append(type(self).__name__)
        compile_module(self, backend="aot_eager")

    monkeypatch.setattr(torch.nn.Module, "compile", with_aot_eager)
    torch._dynamo.reset()
    fast = _parameters_after_steps(folders, compile=True)
    assert len(compiled) == 4  # every training module: gen_ab, gen_ba, dis_a, dis_b
    _assert_close(fast, _parameters_after_steps(folders))


@pytest.mark.slow
def test_inductor_compiled_steps_train_the_same_parameters(folders: Path) -> None:
    """``--compile`` as shipped (inductor, C++ kernels on a CPU): about two minutes of compiling."""
    torch._dynamo.reset()
    _assert_close(_parameters_after_steps(folders, compile=True), _parameters_after_steps(folders))


def test_cpu_presets_take_their_faster_path_unless_told_otherwise(
    folders: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from i2icli import precision
    from i2icli.cli.app import app
    from i2icli.runs import spec as spec_module

    cpu = torch.device("cpu")
    assert spec_module.cpu_preset_path("paper", cpu, set()) == {}
    assert spec_module.cpu_preset_path("cpu-small", torch.device("cuda"), set()) == {}
    monkeypatch.setattr(spec_module, "CPU_PRESET_PATH", {"preload": True, "precision": "bf16"})
    monkeypatch.setattr(precision, "cpu_features", lambda: precision.CpuFeatures("test CPU", frozenset({"avx2"})))
    assert spec_module.cpu_preset_path("cpu-small", cpu, set()) == {"preload": True}  # no bf16 where it is emulated
    assert spec_module.cpu_preset_path("cpu-small", cpu, {"preload"}) == {}
    monkeypatch.undo()

    common = ["train", "--dataroot", str(folders), "--preset", "cpu-tiny", "--max-steps", "1", "--sample-every", "0",
              "--device", "cpu", "--quiet"]  # fmt: skip
    for flags, preload in (([], spec_module.CPU_PRESET_PATH.get("preload", False)), (["--no-preload"], False)):
        run = tmp_path / f"run{len(flags)}"
        result = CliRunner().invoke(app, [*common, "--run-dir", str(run), *flags])
        assert result.exit_code == 0, result.output
        assert json.loads((run / "run.json").read_text())["spec"]["data"]["preload"] is preload

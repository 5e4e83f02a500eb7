"""A seventh method needs one file: a module written here, registered at run time through
``i2icli.methods.register_method``, trains and translates through the CLI with no edit anywhere
else, and its declared capability (``latent-walk``) is what ``interpolate`` dispatches on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest
from conftest import write_rgb
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.methods import METHOD_MODULES, METHODS, load_method, register_method, unregister_method
from i2icli.methods.base import LatentModel, StyleModel, Translator
from i2icli.methods.info import Capability

runner = CliRunner()

# A whole method in one module: per-domain 1x1-conv encoders into a shared latent code and decoders
# out of it, trained on reconstruction and cycle L1 (a toy, not a paper).
TOY_SOURCE = '''
"""Toy: per-domain 1x1 encoders into one shared latent code, trained on reconstruction + cycle L1."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from i2icli.data.transforms import Preprocess
from i2icli.methods.base import Method, Optim, Preset
from i2icli.methods.info import MethodInfo
from i2icli.train.objective import Phase, SingleStage, StepOutput
from i2icli.train.schedule import constant

INFO = MethodInfo(
    name="toy",
    summary="a toy shared-latent model (tests only)",
    paper="none",
    capabilities=("translate", "bidirectional", "latent-walk"),
)


@dataclass(frozen=True)
class ToyArch:
    channels_a: int = 3
    channels_b: int = 3
    latent: int = 4


@dataclass(frozen=True)
class ToyConfig:
    arch: ToyArch = field(default_factory=ToyArch)
    data: Preprocess = field(default_factory=lambda: Preprocess(mode="resize_and_crop", load_size=20, crop_size=16))
    optim: Optim = field(default_factory=lambda: Optim(lr=1e-2))


class ToyModel(nn.Module):
    stride = 1
    min_size = 1
    directions = ("a2b", "b2a")

    def __init__(self, arch: ToyArch) -> None:
        super().__init__()
        self.arch = arch
        self.enc = nn.ModuleDict({"a": nn.Conv2d(arch.channels_a, arch.latent, 1), "b": nn.Conv2d(arch.channels_b, arch.latent, 1)})
        self.dec = nn.ModuleDict({"a": nn.Conv2d(arch.latent, arch.channels_a, 1), "b": nn.Conv2d(arch.latent, arch.channels_b, 1)})

    def channels(self, direction: str) -> tuple[int, int]:
        a, b = self.arch.channels_a, self.arch.channels_b
        return (a, b) if direction == "a2b" else (b, a)

    def encode_latent(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        return self.enc[domain](x)  # (B, C, H, W) -> (B, Z, H, W)

    def decode_latent(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        return torch.tanh(self.dec[domain](z))

    def translate(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        source, target = ("a", "b") if direction == "a2b" else ("b", "a")
        return self.decode_latent(self.encode_latent(x, source), target)


class ToyObjective(SingleStage):
    def __init__(self, cfg: ToyConfig, model: ToyModel, data: Any, seed: int) -> None:
        self.cfg, self.model = cfg, model

    def phases(self) -> list[Phase]:
        o = self.cfg.optim
        return [Phase("all", (self.model,), self.loss, o.lr, o.betas)]

    def loss(self, batch: Any, carry: Any) -> StepOutput:
        m, x_a, x_b = self.model, batch["a"], batch["b"]
        rec = (m.decode_latent(m.encode_latent(x_a, "a"), "a") - x_a).abs().mean()
        cyc = (m.translate(m.translate(x_b, "b2a"), "a2b") - x_b).abs().mean()
        return StepOutput(rec + cyc, {"rec": rec, "cyc": cyc})

    def lr_factor(self, step: int, max_steps: int) -> float:
        return constant(step, max_steps)

    def training_modules(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    @torch.no_grad()
    def samples(self, batch: Any) -> dict[str, torch.Tensor]:
        return {"A": batch["a"], "A->B": self.model.translate(batch["a"], "a2b")}


TINY = Preset("tiny", "16^2 RGB, latent 4", ToyConfig(), batch_size=2, max_steps=2)
METHOD = Method(
    info=INFO, arch_cls=ToyArch, config_cls=ToyConfig, build_model=ToyModel, build_objective=ToyObjective,
    presets={"tiny": TINY}, test_presets={"tiny": TINY}, main_loss="rec", default_preset="tiny",
)
'''


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "toy_i2i_method.py").write_text(TOY_SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(folder))
    info = register_method("toy_i2i_method")
    try:
        yield info.name
    finally:
        unregister_method(info.name)
        sys.modules.pop("toy_i2i_method", None)


def test_a_method_registered_at_run_time_trains_and_translates(toy: str, tmp_path: Path) -> None:
    assert toy == "toy" and METHOD_MODULES[toy] == "toy_i2i_method"
    assert METHODS[toy].caps == {Capability.TRANSLATE, Capability.BIDIRECTIONAL, Capability.LATENT_WALK}
    method = load_method(toy)
    net = method.build_model(method.test_presets["tiny"].config.arch)
    assert isinstance(net, Translator) and isinstance(net, LatentModel) and not isinstance(net, StyleModel)

    for domain, seed in (("A", 0), ("B", 50)):
        for i in range(4):
            write_rgb(tmp_path / "data" / f"train{domain}" / f"{i}.png", (20, 20), seed=seed + i)
    run_dir = tmp_path / "run"
    trained = runner.invoke(app, [
        "train", "--method", toy, "--preset", "tiny", "--max-steps", "2", "--device", "cpu", "--run-dir", str(run_dir),
        "--domain-a", str(tmp_path / "data" / "trainA"), "--domain-b", str(tmp_path / "data" / "trainB"),
    ])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert (run_dir / "model" / "model.safetensors").is_file()

    image = write_rgb(tmp_path / "in" / "x.png", (19, 13), seed=7)
    for direction in ("a2b", "b2a"):
        out = tmp_path / f"out-{direction}"
        result = runner.invoke(app, [
            "translate", str(image), "--model", str(run_dir), "--direction", direction, "-o", str(out), "--device", "cpu",
            "--size", "native",
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert Image.open(out / "x.png").size == (19, 13)

    # The declared latent-walk capability is what interpolate uses; the undeclared styles are refused.
    other = write_rgb(tmp_path / "in" / "y.png", (19, 13), seed=8)
    walk = runner.invoke(app, [
        "interpolate", str(image), str(other), "--model", str(run_dir), "--steps", "3", "-o", str(tmp_path / "walk"),
        "--device", "cpu", "--size", "native",
    ])  # fmt: skip
    assert walk.exit_code == 0, walk.output
    assert len(list((tmp_path / "walk").rglob("*.png"))) >= 3
    refused = runner.invoke(app, ["sample", str(image), "--n", "2", "--model", str(run_dir), "-o", str(tmp_path / "no")])
    assert refused.exit_code == 2 and "style" in refused.output
    assert not (tmp_path / "no").exists()


def test_register_refuses_a_second_module_under_a_taken_name(toy: str, tmp_path: Path) -> None:
    (tmp_path / "plugins" / "toy_again.py").write_text(TOY_SOURCE, encoding="utf-8")
    with pytest.raises(ValueError, match="already registered by toy_i2i_method"):
        register_method("toy_again")
    assert METHOD_MODULES[toy] == "toy_i2i_method"

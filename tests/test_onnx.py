"""ONNX export (``i2i export --format onnx``) and ``translate --runtime onnx``: parity with PyTorch."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import write_rgb
from typer.testing import CliRunner

from i2icli.api import load_model
from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli.app import app
from i2icli.config import to_dict
from i2icli.imageio import read_image, to_tensor
from i2icli.methods import METHOD_MODULES, load_method
from i2icli.runtime import export_onnx_file

MISSING = [m for m in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install 'i2icli[onnx]')")
runner = CliRunner()
# Known not to export: TransGaGa (torch.export cannot trace its landmark geometry) and UNIT da32
# (onnxruntime rejects an Expand for a batch of one).
NOT_EXPORTABLE = {("transgaga", p) for p in load_method("transgaga").test_presets} | {("unit", "da32")}


def _tiny(name: str, preset: str, folder: Path) -> Path:
    impl = load_method(name)
    cfg = impl.test_presets[preset].config
    torch.manual_seed(0)
    model = impl.build_model(cfg.arch).eval()
    return save_model(folder / f"{name}-{preset}.safetensors", model, ModelConfig(method=name, arch=to_dict(cfg.arch), image_size=16))


def _session(path: Path):  # type: ignore[no-untyped-def]
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize(
    ("name", "preset"),
    [("cyclegan", "tiny"), ("munit", "tiny"), ("unit", "master"), ("gcgan", "share-rot"), ("distancegan", "pairwise")],
)
def test_export_matches_pytorch_with_dynamic_shapes(name: str, preset: str, tmp_path: Path) -> None:
    """The stated parity (max abs diff) is small, the graph has dynamic batch/height/width, and an
    independent run at a third shape (batch 3, 48x24) agrees with PyTorch too."""
    model = load_model(str(_tiny(name, preset, tmp_path)), device="cpu")
    out = export_onnx_file(model, "a2b", tmp_path / "m.onnx")
    assert out.max_abs_diff < 1e-4 and len({s[0] for s in out.checked}) == 2  # two batch sizes were compared
    session = _session(out.path)
    assert [i.name for i in session.get_inputs()] == list(out.inputs)
    assert all(isinstance(d, str) for d in (session.get_inputs()[0].shape[0], session.get_inputs()[0].shape[2]))
    torch.manual_seed(3)
    x = torch.rand(3, model.channels("a2b")[0], 48, 24) * 2 - 1
    feeds = {"image": x.numpy()}
    args: tuple[torch.Tensor, ...] = ()
    if model.needs_style:
        style = model.net.random_style(3, torch.Generator().manual_seed(1), "cpu")
        feeds["style"] = style.numpy()
        args = (style,)
    got = torch.from_numpy(session.run(None, feeds)[0])
    with torch.inference_mode():
        ref = model.net.translate(x, "a2b", *args)
    assert got.shape == ref.shape and float((got - ref).abs().max()) < 1e-4
    meta = {p.key: p.value for p in __import__("onnx").load(str(out.path)).metadata_props}
    assert json.loads(meta["i2i_config"])["method"] == name and meta["i2i_direction"] == "a2b"


def test_cli_export_states_parity_and_refuses_bad_usage(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--model", "cyclegan-digits", "--format", "onnx", str(tmp_path / "d.onnx")])
    assert result.exit_code == 0, result.output
    line = result.stderr.strip()
    assert line.startswith(f"wrote {tmp_path / 'd.onnx'}: inputs image;") and "max abs diff" in line
    assert float(line.split("max abs diff ")[1].split()[0]) < 1e-4
    assert runner.invoke(app, ["export", "--format", "tflite", str(tmp_path / "x.onnx")]).exit_code == 2
    assert runner.invoke(app, ["export", str(tmp_path / "x.pt")]).exit_code == 2


def test_translate_runtime_onnx_matches_torch(tiny_model_file: Path, tmp_path: Path) -> None:
    write_rgb(tmp_path / "in" / "a.png", (36, 28))
    write_rgb(tmp_path / "in" / "b.png", (20, 20), seed=1)
    for runtime in ("torch", "onnx"):
        args = ["translate", str(tmp_path / "in"), "-m", str(tiny_model_file), "-o", str(tmp_path / runtime), "--runtime", runtime]
        assert runner.invoke(app, args).exit_code == 0
    for name in ("a.png", "b.png"):
        a, b = (to_tensor(read_image(tmp_path / r / name).image) for r in ("torch", "onnx"))
        assert (a - b).abs().max() <= 1 / 127.5 + 1e-6  # at most one 8-bit level apart


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "preset"), [(n, p) for n in METHOD_MODULES for p in load_method(n).test_presets]
)
def test_every_method_exports_or_fails_in_one_line(name: str, preset: str, tmp_path: Path) -> None:
    path = _tiny(name, preset, tmp_path)
    direction = load_model(str(path), device="cpu").directions[0]
    result = runner.invoke(app, ["export", "--model", str(path), "--direction", direction, str(tmp_path / "m.onnx")])
    if (name, preset) in NOT_EXPORTABLE:
        assert result.exit_code == 1 and result.stderr.startswith(f"error: cannot export a {name} model to ONNX")
        assert result.stderr.count("\n") == 1
    else:
        assert result.exit_code == 0, result.output
        assert float(result.stderr.split("max abs diff ")[1].split()[0]) < 1e-4

"""Precision: native-bf16 detection and refusal, ``auto`` from the model card, bf16 and int8 fidelity."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from conftest import REPO
from typer.testing import CliRunner

from i2icli import precision
from i2icli.api import load_model
from i2icli.cli.app import app
from i2icli.errors import UsageError
from i2icli.eval.metrics import psnr
from i2icli.imageio import read_image, to_tensor
from i2icli.inference import translate_tensors
from i2icli.listing import list_images
from i2icli.multimodal import named_style
from i2icli.runtime import Runtime

runner = CliRunner()
AVX2_ONLY = precision.CpuFeatures("AMD EPYC (test: AVX2 only)", frozenset({"avx", "avx2", "fma"}))
AVX512_BF16 = precision.CpuFeatures("AMD EPYC (test: AVX-512 BF16)", frozenset({"avx2", "avx512f", "avx512_bf16"}))
CPU = torch.device("cpu")


def _examples(name: str) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    model = load_model(name, device="cpu")
    files = list_images([str(REPO / "examples" / name)], recursive=False)
    images = [to_tensor(read_image(path, channels=1).image) for path, _ in files]
    styles = [named_style(model, rel.as_posix(), 0) for _, rel in files] if model.needs_style else None
    return images, styles


def test_flags_decide_native_half_precision() -> None:
    assert AVX512_BF16.native_bf16 and not AVX2_ONLY.native_bf16
    assert precision.CpuFeatures("arm", frozenset({"asimd", "bf16"})).native_bf16
    assert not AVX512_BF16.native_fp16
    assert precision.CpuFeatures("x", frozenset({"avx512_fp16"})).native_fp16
    assert precision.cpu_features().model  # this machine's CPU is read


def test_emulated_bf16_is_refused_with_a_measured_reason() -> None:
    with pytest.raises(UsageError) as info:
        precision.check_half_supported("bf16", CPU, "--amp", AVX2_ONLY)
    message = str(info.value)
    assert message.startswith("--amp: this CPU (AMD EPYC (test: AVX2 only)) has no native bf16")
    assert "avx512_bf16 or amx_bf16 missing" in message and "ms in bf16 vs" in message and "ms in fp32" in message
    precision.check_half_supported("bf16", CPU, "--amp", AVX512_BF16)  # native: accepted
    precision.check_half_supported("fp32", CPU, "--amp", AVX2_ONLY)  # fp32 is always fine


def test_auto_needs_native_bf16_and_a_card_of_at_least_35_db(tmp_path: Path) -> None:
    def card(db: float | None) -> Path:
        folder = tmp_path / f"m{db}"
        folder.mkdir(exist_ok=True)
        metrics = {} if db is None else {"precision": {"bf16": {"psnr_db": db}}}
        (folder / "metrics.json").write_text(json.dumps(metrics))
        return folder / "model.safetensors"

    assert precision.resolve("auto", CPU, card(40.0), AVX512_BF16)[0] == "bf16"
    assert precision.resolve("auto", CPU, card(40.0), AVX2_ONLY) == ("fp32", "auto: this CPU has no native bf16")
    assert precision.resolve("auto", CPU, card(34.9), AVX512_BF16)[0] == "fp32"
    assert precision.resolve("auto", CPU, card(None), AVX512_BF16)[0] == "fp32"
    assert precision.resolve("fp32", CPU, card(40.0), AVX512_BF16)[0] == "fp32"  # never more than asked
    with pytest.raises(UsageError, match="--precision bf16"):
        precision.resolve("bf16", CPU, card(40.0), AVX2_ONLY)


def test_cli_refuses_bf16_on_an_emulating_cpu(monkeypatch: pytest.MonkeyPatch, tiny_model_file: Path, tmp_path: Path) -> None:
    from conftest import write_rgb

    monkeypatch.setattr(precision, "cpu_features", lambda: AVX2_ONLY)
    write_rgb(tmp_path / "in" / "x.png", (20, 20))
    out = tmp_path / "out"
    result = runner.invoke(app, ["translate", str(tmp_path / "in"), "-m", str(tiny_model_file), "-o", str(out), "--precision", "bf16"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "no native bf16" in result.stderr
    assert not out.exists()
    auto = runner.invoke(app, ["translate", str(tmp_path / "in"), "-o", str(out), "--precision", "auto"])
    assert auto.exit_code == 0 and "precision auto: this CPU has no native bf16" in auto.stderr


def test_shipped_cards_record_bf16_fidelity_that_auto_reads() -> None:
    from i2icli.sources import fetch, resolve

    for name in ("cyclegan-digits", "munit-fashion"):
        db = precision.card_psnr(fetch(resolve(name)), "bf16")
        assert db is not None and db >= precision.AUTO_MIN_PSNR_DB


@pytest.mark.parametrize("name", ["cyclegan-digits", "munit-fashion"])
def test_bf16_fidelity_against_fp32_on_the_examples(name: str) -> None:
    """bf16 (autocast, channels_last) stays >= 35 dB from fp32 on every example, and is not fp32
    (it really ran in bf16). Built directly, so it also runs on CPUs that only emulate bf16."""
    images, styles = _examples(name)
    fp32 = load_model(name, device="cpu")
    bf16 = fp32.with_runtime(Runtime(precision="bf16", channels_last=True))
    ref = translate_tensors(fp32, images, "a2b", styles=styles)
    half = translate_tensors(bf16, images, "a2b", styles=styles)
    scores = [psnr(a[None], b[None]) for a, b in zip(half, ref)]
    assert min(scores) >= 35
    assert max(scores) < 100  # not bit-identical: bf16 arithmetic happened
    fp32.net.to(memory_format=torch.contiguous_format)


@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao (extra 'int8') is not installed")
def test_int8_static_quantisation_fidelity() -> None:
    """Static PTQ (PT2E, X86 inductor quantizer) calibrated on the examples, run as the quantised
    graph without compiling (same int8 rounding, simulated): >= 30 dB from fp32 on every example;
    the graph really quantises every (non-transposed) convolution's input and weights, and the
    output is not fp32's. The X86 quantizer leaves transposed convolutions in fp32."""
    from i2icli.padding import pad_for_network
    from i2icli.runtime import quantise

    images, _ = _examples("cyclegan-digits")
    model = load_model("cyclegan-digits", device="cpu")
    padded = [pad_for_network(x[None], model.net.stride, model.net.min_size)[0] for x in images]
    with torch.inference_mode():
        ref = [model.net.translate(p, "a2b") for p in padded]
    graph = quantise(model.net, "a2b", False, [(p, None) for p in padded])
    with torch.no_grad():
        quant = [graph(p) for p in padded]
    nodes = [str(n.target) for n in graph.graph.nodes]  # type: ignore[union-attr]
    convs = nodes.count("aten.conv2d.default")
    assert convs == 10  # cyclegan-digits: 7x7 in, two stride-2 downs, 3 blocks x 2, 7x7 out
    assert nodes.count("quantized_decomposed.quantize_per_tensor.default") == convs
    assert nodes.count("quantized_decomposed.dequantize_per_channel.default") == convs  # int8 weights
    scores = [psnr(q, r) for q, r in zip(quant, ref)]
    assert min(scores) >= 30
    assert max(scores) < 100  # not bit-identical to fp32


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torchao") is None, reason="torchao (extra 'int8') is not installed")
def test_cli_int8_compiled(tmp_path: Path) -> None:
    """The full --precision int8 path (calibration, compiled int8 kernels) against fp32."""
    src = REPO / "examples" / "cyclegan-digits"
    for precision_name in ("fp32", "int8"):
        result = runner.invoke(app, ["translate", str(src), "-o", str(tmp_path / precision_name), "--precision", precision_name])
        assert result.exit_code == 0, result.output
    for path, rel in list_images([str(tmp_path / "fp32")], recursive=False):
        a = to_tensor(read_image(path, channels=1).image)
        b = to_tensor(read_image(tmp_path / "int8" / rel, channels=1).image)
        assert psnr(a[None], b[None]) >= 30


def test_train_bf16_is_refused_in_one_line_on_an_emulating_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``train --precision bf16`` (and its older spelling ``--amp``) on a CPU whose flags lack native
    bf16 (simulated through the detection function): one error line, exit 2, no run folder."""
    from conftest import write_rgb

    monkeypatch.setattr(precision, "cpu_features", lambda: AVX2_ONLY)
    for domain in "AB":
        for i in range(2):
            write_rgb(tmp_path / "data" / f"train{domain}" / f"{i}.png", (20, 20), seed=i)
    run = tmp_path / "run"
    args = ["train", "--dataroot", str(tmp_path / "data"), "--preset", "cpu-tiny", "--max-steps", "2", "--run-dir", str(run)]
    for flags in (["--precision", "bf16"], ["--amp"]):
        result = runner.invoke(app, [*args, *flags])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith("error: --precision bf16: this CPU (AMD EPYC (test: AVX2 only)) has no native bf16")
        assert not run.exists()
    result = runner.invoke(app, [*args, "--amp", "--precision", "fp32"])
    assert result.exit_code == 2 and "contradicts --precision fp32" in result.stderr

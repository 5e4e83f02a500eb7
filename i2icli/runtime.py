"""How a loaded model runs: precision, memory layout, compiled / quantised / ONNX graphs.

Every inference path (``inference.translate_tensors``, the tiled path, the multimodal commands)
calls ``Runtime``-aware functions from here, so a new method inherits all of it:

- ``fp32`` eager (default): ``torch.inference_mode`` and, where it helps, channels_last;
- ``bf16`` / ``fp16``: autocast (convolutions in half precision, normalisation in fp32);
- ``int8``: static post-training quantisation (torchao PT2E, X86 inductor quantizer: per-channel
  int8 weights, per-tensor uint8 activations calibrated on the first inputs), lowered to int8
  kernels by ``torch.compile``; compiled once per input shape;
- ``compile``: ``torch.compile`` of the eager translation (once per input shape);
- ``engine="onnx"``: the translation exported to ONNX and run by onnxruntime.

Compiled, quantised and ONNX graphs cannot swap normalisation statistics, so tiled images always
run eagerly (in the model's half precision if it has one, else fp32).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import torch
from torch import Tensor, nn

from i2icli.errors import UsageError
from i2icli.precision import Precision, autocast

Engine = Literal["torch", "onnx"]
TranslateFn = Callable[[Tensor, Tensor | None], Tensor]  # (padded batch, styles or None) -> output


@dataclass(frozen=True)
class Runtime:
    """How the network runs; ``LoadedModel.runtime``."""

    precision: Precision = "fp32"
    channels_last: bool = False
    compile: bool = False
    engine: Engine = "torch"

    @property
    def eager(self) -> bool:
        """Whether translation runs the PyTorch modules directly (needed for tiling)."""
        return self.engine == "torch" and not self.compile and self.precision != "int8"

    @property
    def eager_precision(self) -> Precision:
        """The precision of eager fallbacks (tiles, style encoding): int8 falls back to fp32."""
        return "fp32" if self.precision == "int8" else self.precision

    def describe(self) -> str:
        parts = [self.precision] + (["channels_last"] if self.channels_last else [])
        parts += ["compiled"] if self.compile else []
        return " ".join(parts) + ("" if self.engine == "torch" else f" on {self.engine}runtime")


class DirectionModule(nn.Module):
    """``net.translate(x, direction[, style])`` as a module with tensor-only inputs (for export)."""

    def __init__(self, net: nn.Module, direction: str, with_style: bool) -> None:
        super().__init__()
        self.net = net
        self.direction = direction
        self.with_style = with_style

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        if self.with_style:
            return self.net.translate(x, self.direction, style)
        return self.net.translate(x, self.direction)


def eager_fn(net: nn.Module, direction: str, device: torch.device, precision: Precision, channels_last: bool) -> TranslateFn:
    """The eager translation in ``precision`` (int8 runs fp32 here)."""
    precision = "fp32" if precision == "int8" else precision

    def run(x: Tensor, style: Tensor | None) -> Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            y = net.translate(x, direction) if style is None else net.translate(x, direction, style)
        return y.float().contiguous()

    return run


def build_fn(
    net: nn.Module, direction: str, device: torch.device, runtime: Runtime, with_style: bool,
    calibration: Sequence[tuple[Tensor, Tensor | None]] = (),
) -> TranslateFn:  # fmt: skip
    """The translation function for ``runtime``; ``calibration`` (padded batches with their styles)
    is needed for int8 and is the example input for ONNX export."""
    if runtime.engine == "onnx":
        return onnx_fn(net, direction, with_style, calibration)
    if runtime.precision == "int8":
        return int8_fn(net, direction, device, with_style, calibration)
    run = eager_fn(net, direction, device, runtime.precision, runtime.channels_last)
    if runtime.compile:
        return torch.compile(run)  # type: ignore[return-value]
    return run


# --------------------------------------------------------------------------- int8


def _require(module: str, extra: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"{purpose} needs the {module.split('.')[0]} package: pip install 'i2icli[{extra}]'") from None


def int8_fn(
    net: nn.Module, direction: str, device: torch.device, with_style: bool, calibration: Sequence[tuple[Tensor, Tensor | None]]
) -> TranslateFn:
    """Static PTQ of the translation (``quantise``), compiled to int8 kernels by inductor."""
    if device.type != "cpu":
        raise UsageError("--precision int8: CPU only (the X86 inductor quantizer)")
    graph = torch.compile(quantise(net, direction, with_style, calibration))

    def run(x: Tensor, style: Tensor | None) -> Tensor:
        return graph(*_example_args((x, style), with_style)).float()

    return run


def quantise(
    net: nn.Module, direction: str, with_style: bool, calibration: Sequence[tuple[Tensor, Tensor | None]]
) -> nn.Module:
    """The translation exported (PT2E, dynamic batch/height/width), observed on ``calibration``
    (padded batches with their styles) and converted: per-channel int8 weights, per-tensor uint8
    activations, as quantise/dequantise pairs that inductor fuses into int8 kernels. Run without
    compiling, it gives the same rounding in fp32 arithmetic (for fidelity checks)."""
    if not calibration:
        raise ValueError("int8 quantisation needs calibration inputs")
    pt2e = _require("torchao.quantization.pt2e.quantize_pt2e", "int8", "--precision int8")
    x86 = _require("torchao.quantization.pt2e.quantizer.x86_inductor_quantizer", "int8", "--precision int8")
    module = DirectionModule(net, direction, with_style).eval()
    args, shapes = _dynamic_example(calibration[0], with_style)
    exported = torch.export.export(module, args, dynamic_shapes=shapes).module()
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config())
    prepared = pt2e.prepare_pt2e(exported, quantizer)
    for batch in calibration:
        prepared(*_example_args(batch, with_style))  # observers record activation ranges
    return pt2e.convert_pt2e(prepared)


def _dynamic_example(batch: tuple[Tensor, Tensor | None], with_style: bool) -> tuple[tuple[Tensor, ...], dict[str, Any]]:
    """Export arguments with batch, height and width dynamic. A size of 1 would be specialised to
    a constant, so a batch of one is exported as a batch of two."""
    from torch.export import Dim

    x, style = batch
    if x.shape[0] == 1:
        x = torch.cat([x, x])
    shapes: dict[str, Any] = {"x": {0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO}}
    if with_style:
        shapes["style"] = {0: Dim.AUTO}
    return _example_args((x, style), with_style), shapes


def _example_args(batch: tuple[Tensor, Tensor | None], with_style: bool) -> tuple[Tensor, ...]:
    x, style = batch
    if not with_style:
        return (x,)
    assert style is not None
    return (x, style.expand(x.shape[0], -1, -1, -1).contiguous())  # (B, S, 1, 1)


# --------------------------------------------------------------------------- ONNX


def export_onnx(net: nn.Module, direction: str, with_style: bool, example: tuple[Tensor, Tensor | None]) -> bytes:
    """The translation as an ONNX model (opset 18) with dynamic batch, height and width; inputs
    ``image`` (B, C, H, W) [and ``style`` (B, S, 1, 1)], output ``translated`` (B, C', H, W)."""
    _require("onnxscript", "onnx", "ONNX export")
    module = DirectionModule(net.float(), direction, with_style).eval()
    args, shapes = _dynamic_example(example, with_style)
    names = ["image", "style"][: len(args)]
    chatter = io.StringIO()  # the exporter prints progress, and graph dumps when it fails
    with torch.no_grad(), contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
        program = torch.onnx.export(
            module, args, dynamo=True, input_names=names, output_names=["translated"], dynamic_shapes=shapes,
            opset_version=18, verbose=False,
        )  # fmt: skip
    buf = io.BytesIO()
    program.save(buf)  # type: ignore[union-attr]
    return buf.getvalue()


def onnx_session(model_bytes: bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session (``threads``: intra-op threads, default torch's)."""
    ort = _require("onnxruntime", "onnx", "--runtime onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def onnx_fn(
    net: nn.Module, direction: str, with_style: bool, calibration: Sequence[tuple[Tensor, Tensor | None]]
) -> TranslateFn:
    if not calibration:
        raise ValueError("ONNX export needs an example input")
    session = onnx_session(export_onnx(net, direction, with_style, calibration[0]))

    def run(x: Tensor, style: Tensor | None) -> Tensor:
        args = _example_args((x.float().cpu(), None if style is None else style.float().cpu()), with_style)
        feeds = {name: a.numpy() for name, a in zip(["image", "style"], args)}
        return torch.from_numpy(session.run(None, feeds)[0]).to(x.device)

    return run


@dataclass(frozen=True)
class OnnxExport:
    """What ``export_onnx_file`` wrote and how closely onnxruntime reproduces PyTorch."""

    path: Path
    inputs: tuple[str, ...]  # "image" (B, C, H, W) [, "style" (B, S, 1, 1)]
    max_abs_diff: float  # onnxruntime vs PyTorch fp32 over the parity inputs, outputs in [-1, 1]
    checked: tuple[tuple[int, ...], ...]  # the input shapes compared


def export_onnx_file(model: Any, direction: str, path: Path) -> OnnxExport:
    """Write ``model``'s ``direction`` translation to ``path`` as ONNX (dynamic batch, height and
    width; style models take the target-domain style as a second input) and measure parity with
    PyTorch on two seeded batches of different sizes (the second not square)."""
    from i2icli.checkpoint import atomic_write_bytes
    from i2icli.config import to_dict
    from i2icli.methods.base import StyleModel

    onnx = _require("onnx", "onnx", "ONNX export")
    net = model.net
    with_style = model.needs_style
    c_in, _ = model.channels(direction)
    side = -(-max(net.min_size, 32) // net.stride) * net.stride
    gen = torch.Generator().manual_seed(0)

    def inputs(batch: int, height: int, width: int) -> tuple[Tensor, Tensor | None]:
        x = torch.rand(batch, c_in, height, width, generator=gen) * 2 - 1
        style = model.net_as(StyleModel).random_style(batch, gen, "cpu") if with_style else None
        return x, style

    x, style = inputs(2, side, side)
    data = export_onnx(net, direction, with_style, (x.to(model.device), None if style is None else style.to(model.device)))
    proto = onnx.load_from_string(data)
    meta = {"i2i_config": json.dumps(to_dict(model.config), sort_keys=True), "i2i_direction": direction, "i2i_inputs": ",".join(["image", "style"][: 1 + with_style])}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()
    session = onnx_session(data)
    worst = 0.0
    shapes = []
    for batch, height, width in ((2, side, side), (1, side + 2 * net.stride, side + net.stride)):
        x, style = inputs(batch, height, width)
        with torch.inference_mode():
            args = (x.to(model.device),) if style is None else (x.to(model.device), style.to(model.device))
            ref = net.translate(*args[:1], direction, *args[1:])
        feeds = {"image": x.numpy()} | ({} if style is None else {"style": style.numpy()})
        got = torch.from_numpy(session.run(None, feeds)[0])
        worst = max(worst, float((got - ref.float().cpu()).abs().max()))
        shapes.append(tuple(x.shape))
    atomic_write_bytes(path, data)
    return OnnxExport(path, tuple(meta["i2i_inputs"].split(",")), worst, tuple(shapes))

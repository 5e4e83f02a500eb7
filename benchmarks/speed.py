"""Speed benchmark: every figure is a ratio measured in one run, with interleaved repeats and medians.

Cells (each kept in ``benchmarks/results/speed.json`` once finished, so an interrupted run goes on
where it stopped; ``--force`` measures again):

    a  img/s of ``i2i translate``'s path (``translate_tensors`` with its runtime options) against a
       plain eager fp32 one-image-at-a-time loop (batch 1, ``no_grad``) at 256^2, per precision;
    b  the achieved fraction of the machine's peak in the precision used (the peak measured in the
       same rounds: the best of a 2048^3 matmul, the same GEMM as a 1x1 convolution and a 3x3
       convolution of 256 channels; the model's FLOPs counted from its convolutions);
    c  the folder pipeline (200 JPEG files decoded, translated, written) against the pure model rate
       on the same images already decoded;
    d  training steps/s of ``i2i train``'s loop against a plain eager step of the same networks on
       the same batch, fp32 (with and without ``--preload``), and bf16 autocast: speed and its loss
       curve against fp32 from the same start;
    e  peak RSS and time of ``i2i translate`` on large images: the untiled path (as before tiling)
       at 1024^2 and 2048^2, and tiles at 2048^2 and 4096^2; tile fidelity (PSNR against untiled)
       and the seam (error in blended overlaps / error elsewhere) with the shipped models;
    f  on a GPU, when there is one: bf16 throughput and MFU at 256^2 batch 16 (else "not measured");
    g  tile statistics on a photo (content that changes across the image): whole-image, pooled and
       per-tile statistics against untiled, with the (untrained) generator of (e);
    h  peak RSS of ``i2i translate FOLDER`` on a folder of 20 and of 200 small JPEG files (is the
       folder path's memory flat in the number of files?).

The generator is CycleGAN's resnet_9blocks (ngf 64, 99 GFLOP per 256^2 image) with the training
initialisation (N(0, 0.02)): speed does not depend on the weights. Rows record the machine (CPU
model, flags, threads) and the load average around them; on a shared machine the absolute
figures move with the load, the ratios much less.

    python benchmarks/speed.py                    # every missing cell
    python benchmarks/speed.py --cells a,b --force
    python benchmarks/speed.py --smoke            # tiny sizes in a temp folder (tests; < 60 s)
    python benchmarks/speed.py --report           # rewrite the RESULTS.md block from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from machine_info import machine, run_cli
from results_md import write_block

if TYPE_CHECKING:
    import torch
    from torch import nn

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "speed.json"
MARKDOWN = HERE / "RESULTS.md"
CELLS = ("a", "b", "c", "d", "e", "f", "g", "h")
Record = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    """Everything that scales between the real run and --smoke."""

    side: int = 256  # (a)-(c) image side
    ngf: int = 64
    n_blocks: int = 9
    images: int = 4  # per variant per round in (a)
    repeats: int = 4
    files: int = 200  # (c)
    files_side: int = 128  # (c): a quarter of the 256^2 compute, so 4 passes over 200 files fit a 15-minute cell
    pipeline_repeats: int = 2
    train_steps: int = 10  # per round in (d)
    curve_steps: int = 200  # (d) loss curves
    big: tuple[int, ...] = (1024, 2048)  # (e) untiled sides
    tiled: tuple[int, ...] = (2048, 4096)  # (e) tiled sides
    page: int = 1024  # (e) fidelity page side
    photo: int = 640  # (g) photo side
    matmul: int = 2048
    folders: tuple[int, int] = (20, 200)  # (h) files per folder
    slow_variants: bool = True  # int8 and compile (minutes of compiling)


SMOKE = Sizes(side=64, ngf=8, n_blocks=1, images=2, repeats=2, files=6, files_side=64, pipeline_repeats=1, train_steps=2,
              curve_steps=4, big=(128,), tiled=(192,), page=112, photo=96, matmul=256, folders=(2, 6), slow_variants=False)  # fmt: skip


# --------------------------------------------------------------------------- load


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- models and data


def paper_generator(sizes: Sizes) -> nn.Module:
    import torch

    from i2icli.methods.cyclegan import CycleGANArch, CycleGANModel
    from i2icli.nn.resnet import init_normal

    torch.manual_seed(0)
    model = CycleGANModel(CycleGANArch(ngf=sizes.ngf, n_blocks=sizes.n_blocks, directions=("a2b",)))
    init_normal(model, 0.02)
    return model.eval()


def save_generator(sizes: Sizes, path: Path) -> Path:
    from i2icli.checkpoint import ModelConfig, save_model
    from i2icli.config import to_dict

    if not path.is_file():
        model = paper_generator(sizes)
        save_model(path, model, ModelConfig(method="cyclegan", arch=to_dict(model.arch), image_size=256))
    return path


def photos(n: int, side: int) -> list[Any]:
    """``n`` RGB crops of ``side``^2 from scikit-image's CC0 photos (resized when smaller)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        img = Image.fromarray(sources[i % len(sources)]).convert("RGB")
        if min(img.size) < side + 16:
            img = img.resize((side + 16, side + 16), Image.Resampling.BICUBIC)
        x, y = (int(rng.integers(0, s - side + 1)) for s in img.size)
        out.append(img.crop((x, y, x + side, y + side)))
    return out


def conv_flops(net: nn.Module, x: torch.Tensor, run: Callable[[torch.Tensor], Any]) -> float:
    """Multiply-adds x 2 of every (transposed) convolution in one forward pass of ``x``."""
    from torch import nn

    total = 0.0

    def count(m: nn.Module, inputs: Any, out: Any) -> None:
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        if isinstance(m, nn.ConvTranspose2d):
            total += 2.0 * inputs[0].numel() * m.out_channels // m.groups * k
        else:
            total += 2.0 * out.numel() * m.in_channels // m.groups * k

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        run(x)
    finally:
        for h in hooks:
            h.remove()
    return total


def matmul_rate(n: int, dtype: torch.dtype, repeats: int = 3) -> float:
    """Peak FLOP/s in ``dtype``: the best of an n x n x n GEMM as ``torch.matmul`` (MKL for fp32, which
    takes a slow path on AMD CPUs), the same GEMM as a 1x1 convolution (oneDNN, which the generators'
    convolutions use) and a 3x3 convolution of 256 channels on a 64^2 map (the residual blocks' shape,
    oneDNN's best-blocked case). Best of ``repeats`` each."""
    import torch
    import torch.nn.functional as F

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    x = a.t().reshape(1, n, n, 1).contiguous()  # (1, K=n, M=n, 1): a 1x1 convolution is an (M x K) @ (K x N) GEMM
    w = b.t().reshape(n, n, 1, 1).contiguous()  # (N=n, K=n, 1, 1)
    x3, w3 = torch.randn(1, 256, 64, 64).to(dtype), torch.randn(256, 256, 3, 3).to(dtype)  # 2*64^2*256^2*9 FLOP
    kernels = ((lambda: a @ b, 2.0 * n**3), (lambda: F.conv2d(x, w), 2.0 * n**3),
               (lambda: F.conv2d(x3, w3, padding=1), 2.0 * 64 * 64 * 256 * 256 * 9))  # fmt: skip
    best = 0.0
    with torch.no_grad():
        for fn, flop in kernels:
            fn()
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best = max(best, flop / (time.perf_counter() - t0))
    return best


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(values: list[float]) -> float:
    return float(statistics.median(values))


# --------------------------------------------------------------------------- (a) and (b)


def cell_ab(sizes: Sizes, work: Path) -> Record:
    """Translate-path variants against the plain eager loop, interleaved; matmul peaks in the same rounds."""
    import importlib.util

    import torch

    from i2icli.api import load_model
    from i2icli.imageio import to_tensor
    from i2icli.inference import translate_tensors
    from i2icli.precision import cpu_features
    from i2icli.runtime import Runtime

    path = save_generator(sizes, work / "paper-cyclegan-a2b.safetensors")
    base = load_model(str(path), device="cpu")
    net = base.net
    images = [to_tensor(p) for p in photos(sizes.images, sizes.side)]
    native = cpu_features().native_bf16
    variants: dict[str, tuple[Runtime, int]] = {
        "fp32, batch 1": (Runtime(), 1),
        "fp32, channels_last, batch 1": (Runtime(channels_last=True), 1),
        "fp32, batch 4": (Runtime(), 4),
        "fp32, channels_last, batch 4": (Runtime(channels_last=True), 4),
    }
    skipped: dict[str, str] = {}
    if native:
        variants["bf16, channels_last, batch 1"] = (Runtime(precision="bf16", channels_last=True), 1)
        variants["bf16, channels_last, batch 4"] = (Runtime(precision="bf16", channels_last=True), 4)
    else:
        skipped["bf16"] = "no native bf16 on this CPU (emulated bf16 is refused)"
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
        variants["onnxruntime fp32, batch 1"] = (Runtime(engine="onnx"), 1)
    else:
        skipped["onnxruntime"] = "onnxruntime/onnxscript not installed"
    if sizes.slow_variants:
        variants["fp32 compiled, batch 1"] = (Runtime(compile=True), 1)
        if native:
            variants["bf16 compiled, channels_last, batch 1"] = (Runtime(precision="bf16", channels_last=True, compile=True), 1)
        if importlib.util.find_spec("torchao"):
            variants["int8 (PT2E static, compiled), batch 1"] = (Runtime(precision="int8"), 1)
        else:
            skipped["int8"] = "torchao not installed"
    else:
        skipped["int8, compiled"] = "not in --smoke (compiling takes minutes)"

    models = {}
    setup: dict[str, float] = {}
    for name, (runtime, batch) in variants.items():
        t0 = time.perf_counter()
        model = load_model(str(path), device="cpu").with_runtime(runtime)
        if runtime.precision == "int8":
            model.calibrate("a2b", [(x, None) for x in images])
        translate_tensors(model, images[:batch], "a2b", batch_size=batch)  # warm-up: export/compile happen here
        setup[name] = round(time.perf_counter() - t0, 2)
        models[name] = model

    def plain() -> None:
        with torch.no_grad():
            for x in images:
                net.translate(x[None], "a2b")

    flops = conv_flops(net, images[0][None], lambda x: net.translate(x, "a2b"))
    plain()  # warm-up
    rounds: list[dict[str, float]] = []
    names = ["plain eager fp32, batch 1", *variants]
    for r in range(sizes.repeats):
        row: dict[str, float] = {}
        for i in range(len(names)):  # a different variant goes first in each round
            name = names[(i + r) % len(names)]
            if name == names[0]:
                row[name] = len(images) / timed(plain)
            else:
                model, batch = models[name], variants[name][1]
                row[name] = len(images) / timed(lambda: translate_tensors(model, images, "a2b", batch_size=batch))  # noqa: B023 (called at once)
            if i == len(names) // 2:  # the peaks are measured amid the variants, under the same load
                row["matmul fp32"] = matmul_rate(sizes.matmul, torch.float32)
                if native:
                    row["matmul bf16"] = matmul_rate(sizes.matmul, torch.bfloat16)
        rounds.append(row)
    out_rows = []
    for name in ["plain eager fp32, batch 1", *variants]:
        rates = [r[name] for r in rounds]
        ratios = [r[name] / r["plain eager fp32, batch 1"] for r in rounds]
        precision = "bf16" if name.startswith("bf16") else ("int8" if name.startswith("int8") else "fp32")
        peak_key = f"matmul {precision}"
        # The peak is the best matmul rate seen in the run (a lower load never slows a matmul down).
        peak = max(r[peak_key] for r in rounds) if peak_key in rounds[0] else None
        fractions = [r[name] * flops / peak for r in rounds] if peak else []
        out_rows.append({
            "variant": name, "img_per_s": round(median(rates), 3), "vs_plain": round(median(ratios), 3),
            "ratios": [round(x, 3) for x in ratios], "setup_s": setup.get(name, 0.0),
            "peak_fraction": round(median(fractions), 3) if fractions else None,
            "precision": precision,
        })  # fmt: skip
    return {
        "model": f"CycleGAN resnet_{sizes.n_blocks}blocks ngf {sizes.ngf}, {sizes.side}^2",
        "gflop_per_image": round(flops / 1e9, 2),
        "rows": out_rows,
        "matmul_gflops": {k.split()[1]: round(max(r[k] for r in rounds) / 1e9, 1) for k in rounds[0] if k.startswith("matmul")},
        "matmul_side": sizes.matmul,
        "skipped": skipped,
        "images_per_round": len(images),
        "repeats": sizes.repeats,
    }


# --------------------------------------------------------------------------- (c)


def cell_c(sizes: Sizes, work: Path) -> Record:
    """The streaming pipeline over JPEG files against the model alone on the same decoded images."""
    from i2icli.api import load_model
    from i2icli.imageio import read_image, to_tensor
    from i2icli.inference import translate_tensors
    from i2icli.listing import list_images
    from i2icli.pipeline import Done, Job, translate_files
    from i2icli.precision import cpu_features

    folder = work / f"jpeg-{sizes.files}-{sizes.files_side}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for i, img in enumerate(photos(sizes.files, sizes.files_side)):
            img.save(folder / f"{i:04d}.jpg", quality=90)
    path = save_generator(sizes, work / "paper-cyclegan-a2b.safetensors")
    precision = "bf16" if cpu_features().native_bf16 else "fp32"
    model = load_model(str(path), device="cpu", precision=precision, channels_last=True)
    batch = 4
    files = list_images([str(folder)], recursive=False)
    decoded = [to_tensor(read_image(p).image) for p, _ in files]
    translate_tensors(model, decoded[:batch], "a2b", batch_size=batch)  # warm-up

    def pipeline(out: Path) -> float:
        import shutil

        jobs = [Job(p, rel, out / rel.with_suffix(".png")) for p, rel in files]
        t0 = time.perf_counter()
        done = sum(isinstance(e, Done) for e in translate_files(model, "a2b", jobs, batch_size=batch))
        seconds = time.perf_counter() - t0
        assert done == len(files)
        shutil.rmtree(out)  # the outputs are not kept (disk space is shared)
        return len(files) / seconds

    def pure() -> float:
        return len(decoded) / timed(lambda: translate_tensors(model, decoded, "a2b", batch_size=batch))

    rounds = []
    for r in range(sizes.pipeline_repeats):
        order = [pipeline, pure] if r % 2 == 0 else [pure, pipeline]
        rates = {}
        for fn in order:
            rates[fn.__name__] = fn(work / f"pipeline-out-{r}") if fn is pipeline else fn()
        rounds.append(rates)
    return {
        "files": len(files), "side": sizes.files_side, "precision": precision, "batch": batch,
        "pipeline_img_per_s": round(median([r["pipeline"] for r in rounds]), 3),
        "model_img_per_s": round(median([r["pure"] for r in rounds]), 3),
        "ratio": round(median([r["pipeline"] / r["pure"] for r in rounds]), 3),
        "ratios": [round(r["pipeline"] / r["pure"], 3) for r in rounds],
    }  # fmt: skip


# --------------------------------------------------------------------------- (d)


def cell_d(sizes: Sizes, work: Path) -> Record:
    """The training loop against a plain eager step; bf16 autocast speed and loss curve."""
    import torch

    from i2icli.config import from_dict
    from i2icli.methods import load_method
    from i2icli.precision import cpu_features
    from i2icli.runs.run import open_data
    from i2icli.runs.spec import DataSpec, build_spec
    from i2icli.train.loop import make_optimizer, train

    data_root = work / "train-photos"
    if not (data_root / "trainB").is_dir():
        for domain, offset in (("A", 0), ("B", 1)):
            (data_root / f"train{domain}").mkdir(parents=True)
            for i, img in enumerate(photos(40 + offset, 256)[offset:]):
                img.save(data_root / f"train{domain}" / f"{i:03d}.jpg", quality=90)
    smoke = sizes is SMOKE

    def setup(preload: bool, amp: bool = False):  # type: ignore[no-untyped-def]
        overrides = ["arch.ngf=4", "arch.n_blocks=1", "ndf=4", "n_layers_d=2", "data.crop_size=16", "data.load_size=18"] if smoke else []
        spec = build_spec(
            method="cyclegan", preset="cpu-small", config_file=None, overrides=overrides,
            data=DataSpec(str(data_root / "trainA"), str(data_root / "trainB"), preload=preload),
            batch_size=None, lr=None, max_steps=10**6, loop_kwargs=dict(save_every=0, sample_every=0, log_every=1, amp=amp),
            init_from=None, steps_per_epoch=lambda b: 10,
        )  # fmt: skip
        impl = load_method("cyclegan")
        cfg = from_dict(impl.config_cls, spec.config)
        torch.manual_seed(0)
        data = open_data(spec, 3)
        model = impl.build_model(cfg.arch)
        objective = impl.build_objective(cfg, model, data, 0)
        for m in objective.training_modules().values():
            m.train()
        return spec, data, objective

    def loop_rate(spec, data, objective, steps: int, **loop) -> float:  # type: ignore[no-untyped-def]
        stamps: dict[int, float] = {}
        opts = replace(spec.loop, max_steps=steps + 1, **loop)
        with tempfile.TemporaryDirectory() as d:
            train(objective, data, opts, run_dir=Path(d), device=torch.device("cpu"),
                  on_step=lambda step, s: stamps.__setitem__(step, time.perf_counter()))  # fmt: skip
        return steps / (stamps[steps + 1] - stamps[1])  # steps after the first (warm-up)

    spec, data, objective = setup(preload=False)
    spec_p, data_p, objective_p = setup(preload=True)
    phases = objective.phases()
    params = {p.name: p.parameters() for p in phases}
    optims = {p.name: make_optimizer(p, torch.device("cpu")) for p in phases}
    batch = data[0]

    def plain_step() -> None:
        """The same networks and losses as the official CycleGAN step: each phase with only its
        own parameters trainable (D frozen while G learns), on one fixed batch, no data loading."""
        carry: dict[str, torch.Tensor] = {}
        for phase in phases:
            for name, group in params.items():
                for p in group:
                    p.requires_grad_(name == phase.name)
            optims[phase.name].zero_grad(set_to_none=True)
            out = phase.loss_fn(batch, carry)
            out.loss.backward()
            optims[phase.name].step()
            carry.update(out.carry)

    native = cpu_features().native_bf16
    plain_step()
    rounds = []
    for _ in range(sizes.repeats):
        row = {"plain": sizes.train_steps / timed(lambda: [plain_step() for _ in range(sizes.train_steps)])}
        row["loop"] = loop_rate(spec, data, objective, sizes.train_steps)
        row["loop_preload"] = loop_rate(spec_p, data_p, objective_p, sizes.train_steps)
        if native:
            row["loop_bf16"] = loop_rate(spec, data, objective, sizes.train_steps, amp=True)
        rounds.append(row)
    result: Record = {
        "preset": "cpu-small (32^2 crops of 36^2 from 256^2 JPEG photos, batch 8, ngf 16, 3 blocks)" if not smoke else "tiny",
        "steps_per_round": sizes.train_steps,
        "repeats": sizes.repeats,
        "steps_per_s": {k: round(median([r[k] for r in rounds]), 3) for k in rounds[0]},
        "vs_plain": {k: round(median([r[k] / r["plain"] for r in rounds]), 3) for k in rounds[0] if k != "plain"},
        "ratios": [{k: round(r[k] / r["plain"], 3) for k in r if k != "plain"} for r in rounds],
    }
    if native:
        result["bf16_speedup"] = round(median([r["loop_bf16"] / r["loop"] for r in rounds]), 3)
        curves = {}
        for name, amp in (("fp32", False), ("bf16", True)):
            spec_c, data_c, objective_c = setup(preload=True, amp=amp)
            with tempfile.TemporaryDirectory() as d:
                opts = replace(spec_c.loop, max_steps=sizes.curve_steps, log_every=max(1, sizes.curve_steps // 10))
                train(objective_c, data_c, opts, run_dir=Path(d), device=torch.device("cpu"))
                lines = [json.loads(x) for x in (Path(d) / "metrics.jsonl").read_text().splitlines()]
            curves[name] = {str(x["step"]): {"loss_gen": round(x["loss_gen"], 4), "loss_dis": round(x["loss_dis"], 4)} for x in lines}
        result["loss_curves"] = curves
    return result


# --------------------------------------------------------------------------- (e)


def _measure_cli(args: list[str]) -> dict[str, float]:
    """Run ``i2i`` in a child process: wall seconds and its own peak RSS."""
    return run_cli(args, {**os.environ, "PYTHONWARNINGS": "ignore"})[0]


def cell_e(sizes: Sizes, work: Path) -> Record:
    """Large images: memory and time untiled (the old path) and tiled; tile fidelity and seams."""
    from PIL import Image

    path = save_generator(sizes, work / "paper-cyclegan-a2b.safetensors")
    rows = []
    for side, tiled in [(s, False) for s in sizes.big] + [(s, True) for s in sizes.tiled]:
        image = work / f"big-{side}.jpg"
        if not image.is_file():
            photos(1, 512)[0].resize((side, side), Image.Resampling.BICUBIC).save(image, quality=90)
        out = work / f"big-out-{side}-{'tiled' if tiled else 'whole'}"
        # --memory-budget 1000000 (MB): never tiles, i.e. the single forward pass translate made before tiling.
        budget = [] if tiled else ["--memory-budget", "1000000"]
        args = ["translate", str(image), "-m", str(path), "-o", str(out), "--device", "cpu", "-q", "--overwrite", "--size", "native"]
        row = _measure_cli([*args, "--threads", str(torch_threads()), *budget])
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        rows.append({"side": side, "path": "tiled (default 1 GiB budget)" if tiled else "untiled", **row})
    return {"model": f"CycleGAN resnet_{sizes.n_blocks}blocks ngf {sizes.ngf}, fp32, {torch_threads()} thread(s)", "runs": rows,
            "tiled_sides": list(sizes.tiled), "fidelity": tile_fidelity(sizes)}  # fmt: skip


def cell_h(sizes: Sizes, work: Path) -> Record:
    """Peak RSS of ``i2i translate`` over a folder of few and of many files (same model, same size)."""
    path = save_generator(sizes, work / "paper-cyclegan-a2b.safetensors")
    side = 64  # small files: the figure is memory against the number of files, not speed
    runs = []
    for n in sizes.folders:
        folder = work / f"folder-{n}-{side}"
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for i, img in enumerate(photos(n, side)):
                img.save(folder / f"{i:04d}.jpg", quality=90)
        out = work / f"folder-out-{n}"
        args = ["translate", str(folder), "-m", str(path), "-o", str(out), "--device", "cpu", "-q", "--overwrite"]
        runs.append({"files": n, **_measure_cli([*args, "--threads", str(torch_threads())])})
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    few, many = runs
    return {"model": f"CycleGAN resnet_{sizes.n_blocks}blocks ngf {sizes.ngf}, fp32", "side": side, "runs": runs,
            "rss_ratio": round(many["peak_rss_gb"] / few["peak_rss_gb"], 3)}  # fmt: skip


def tile_fidelity(sizes: Sizes) -> list[Record]:
    """Shipped models on a page of their examples: tiled (whole-image statistics; pooled over
    plain tiles; downscaled; each tile its own) against untiled: PSNR and the seam."""
    import torch

    from i2icli.api import load_model
    from i2icli.eval.metrics import psnr
    from i2icli.imageio import read_image, to_tensor
    from i2icli.listing import list_images
    from i2icli.multimodal import named_style
    from i2icli.padding import pad_for_network
    from i2icli.tiling import translate_tiled

    out = []
    for name in ("cyclegan-digits", "munit-fashion"):
        model = load_model(name, device="cpu")
        files = list_images([str(REPO / "examples" / name)], recursive=False)
        ims = [to_tensor(read_image(p, channels=1).image) for p, _ in files]
        n = sizes.page // 28
        page = torch.cat([torch.cat([ims[(r * n + c) % len(ims)] for c in range(n)], 2) for r in range(n)], 1)[None]
        style = named_style(model, "page", 0)[None] if model.needs_style else None
        run = model.eager_fn("a2b")

        def fn(t: torch.Tensor) -> torch.Tensor:
            return run(t, None if style is None else style.expand(t.shape[0], -1, -1, -1))  # noqa: B023 (called within this iteration)

        net = model.net
        tile = max(64, sizes.page // 4 // net.stride * net.stride)
        overlap = min(tile // 4, model.receptive_radius("a2b", style))
        with torch.inference_mode():
            padded, padding = pad_for_network(page, net.stride, net.min_size)
            whole = padding.crop(fn(padded))
            side = page.shape[-1]
            for label, stats_pixels, statistics in (
                ("whole image (one pass fits the budget)", side * side, "auto"),
                ("pooled over plain tiles (image over the budget)", side * side // 4, "auto"),
                ("downscaled to 1/4 the pixels (rejected)", side * side // 4, "downscaled"),
                ("each tile its own (naive)", side * side, "tile"),
            ):
                tiled = translate_tiled(fn, net, page, stride=net.stride, min_size=net.min_size, tile=tile,
                                        overlap=overlap, stats_pixels=stats_pixels, statistics=statistics)  # fmt: skip
                band, rest = seam_errors(tiled, whole, tile, overlap, net.stride)
                out.append({"model": name, "page": side, "tile": tile, "overlap": overlap, "statistics": label,
                            "psnr_db": round(psnr(tiled, whole), 2), "seam_levels": round(band, 3), "other_levels": round(rest, 3)})  # fmt: skip
    return out


def seam_errors(tiled: torch.Tensor, whole: torch.Tensor, tile: int, overlap: int, stride: int) -> tuple[float, float]:
    """Mean |tiled - untiled| in 8-bit levels inside the blended overlap bands, and elsewhere."""
    import torch

    from i2icli.tiling import tile_starts

    err = (tiled - whole).abs().mean(1)[0] * 127.5  # (H, W), 8-bit levels
    height, width = err.shape
    band = torch.zeros_like(err, dtype=torch.bool)
    for axis, length in ((0, height), (1, width)):
        starts = tile_starts(length, tile, overlap, stride)
        for a, b in zip(starts, starts[1:]):
            if axis == 0:
                band[b : a + tile, :] = True  # rows where tiles a and b overlap
            else:
                band[:, b : a + tile] = True
    return float(err[band].mean()), float(err[~band].mean())


# --------------------------------------------------------------------------- (g)


def cell_g(sizes: Sizes, work: Path) -> Record:
    """Tile statistics on a photo (content that changes across the image, unlike a digit page):
    the (e) generator on a CC0 photo, tiled with whole-image, pooled and per-tile statistics, PSNR
    against untiled. Its weights are the untrained N(0, 0.02) init (no photo model ships), whose
    deep instance-norm stack is likely more sensitive to statistics than a trained one."""
    import torch
    from PIL import Image
    from skimage import data

    from i2icli.eval.metrics import psnr
    from i2icli.imageio import to_tensor
    from i2icli.tiling import translate_tiled

    net = paper_generator(sizes)
    side = sizes.photo
    photo = to_tensor(Image.fromarray(data.astronaut()).resize((side, side), Image.Resampling.BICUBIC))[None]
    tile, overlap = side * 2 // 5 // 4 * 4, side // 16 // 4 * 4

    def fn(t: torch.Tensor) -> torch.Tensor:
        return net.translate(t, "a2b")

    rows = []
    with torch.inference_mode():
        whole = fn(photo)
        for label, stats_pixels, statistics in (
            ("whole image (one pass fits the budget)", side * side, "auto"),
            ("pooled over plain tiles (image over the budget)", side * side // 4, "auto"),
            ("each tile its own (naive)", side * side, "tile"),
        ):
            start = time.perf_counter()
            tiled = translate_tiled(fn, net, photo, stride=4, min_size=4, tile=tile, overlap=overlap,
                                    stats_pixels=stats_pixels, statistics=statistics)  # fmt: skip
            rows.append({"statistics": label, "psnr_db": round(psnr(tiled, whole), 2),
                         "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    return {"photo": f"scikit-image astronaut (CC0) at {side}^2", "tile": tile, "overlap": overlap, "rows": rows,
            "model": f"CycleGAN resnet_{sizes.n_blocks}blocks ngf {sizes.ngf}, untrained init"}  # fmt: skip


# --------------------------------------------------------------------------- (f)


def cell_f(sizes: Sizes, work: Path) -> Record:
    import torch

    if not torch.cuda.is_available():
        return {"measured": False, "why": "not measured: no GPU lent to this run"}
    from torch import nn  # noqa: F401

    net = paper_generator(sizes).cuda()
    x = torch.rand(16, 3, 256, 256, device="cuda") * 2 - 1
    flops = conv_flops(net, x[:1], lambda t: net.translate(t, "a2b"))
    rates = []
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        net.translate(x, "a2b")
        for _ in range(sizes.repeats):
            torch.cuda.synchronize()
            seconds = timed(lambda: (net.translate(x, "a2b"), torch.cuda.synchronize()))
            rates.append(16 / seconds)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    a @ a
    torch.cuda.synchronize()
    peak = 2 * 8192**3 / timed(lambda: (a @ a, torch.cuda.synchronize()))
    rate = median(rates)
    return {"measured": True, "gpu": torch.cuda.get_device_name(0), "img_per_s": round(rate, 1),
            "mfu_vs_matmul": round(rate * flops / peak, 3), "matmul_tflops": round(peak / 1e12, 1)}  # fmt: skip


# --------------------------------------------------------------------------- report


def render(results: Record) -> str:
    """The RESULTS.md block."""
    lines = ["## Speed (`benchmarks/speed.py`)", ""]
    meta = results.get("meta", {})
    lines.append(f"Command: `{meta.get('command', 'python benchmarks/speed.py')}`. Every ratio is a median over rounds that")
    lines.append("interleave the variants, so each ratio compares runs made under the same machine load.")
    lines.append("")
    cells = results.get("cells", {})
    busy = [c for c in cells.values() if max(c["load_before"][0], c["load_after"][0]) > c["machine"]["cores"]]
    if busy:
        worst = max(max(c["load_before"][0], c["load_after"][0]) for c in busy)
        lines.append(f"**The machine was shared while these ran** (1-minute load average up to {worst} on "
                     f"{busy[0]['machine']['cores']} cores): absolute rates are far below an idle machine's and vary from")
        lines.append("round to round; the medians of same-round ratios are the figures to read.")
        lines.append("")
    for key in CELLS:
        cell = cells.get(key)
        if cell is None:
            lines += [f"**({key})** not measured yet.", ""]
            continue
        m = cell["machine"]
        where = (f"{m['cpu']} ({m['flags']}), {m['cores']} cores, {m['threads']} torch threads, torch {m['torch']}; "
                 f"load average {cell['load_before']} before, {cell['load_after']} after; {cell['seconds']:.0f} s")  # fmt: skip
        lines += [RENDER[key](cell["result"]), "", f"_Machine: {where}._", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _render_a(r: Record) -> str:
    out = [f"**(a) translate path vs plain eager fp32 loop** ({r['model']}, {r['gflop_per_image']} GFLOP/image; "
           f"{r['images_per_round']} images x {r['repeats']} interleaved rounds)", "",
           "| variant | img/s | vs plain eager fp32 (median; per round) | setup s |", "|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        out.append(f"| {row['variant']} | {row['img_per_s']:.2f} | {row['vs_plain']:.2f}x ({', '.join(f'{x:.2f}' for x in row['ratios'])}) | {row['setup_s']} |")
    for what, why in r["skipped"].items():
        out.append(f"| {what} | - | not measured: {why} | - |")
    return "\n".join(out)


def _render_b(r: Record) -> str:
    peaks = ", ".join(f"{k} {v} GFLOP/s" for k, v in r["matmul_gflops"].items())
    out = [f"**(b) fraction of the machine's matmul peak** (peak: the best {r['matmul_side']}^3 GEMM rate measured amid the same rounds, "
           f"as a matmul, a 1x1 convolution or a 3x3 convolution of 256 channels at 64^2, whichever is fastest: {peaks}; the fraction uses each variant's median rate; "
           "int8 has no such peak here)", "",
           "| variant | precision | achieved GFLOP/s | fraction of matmul peak |", "|---|---|---|---|"]  # fmt: skip
    for row in r["rows"]:
        frac = "-" if row["peak_fraction"] is None else f"{row['peak_fraction']:.0%}"
        out.append(f"| {row['variant']} | {row['precision']} | {row['img_per_s'] * r['gflop_per_image']:.1f} | {frac} |")
    if any((row["peak_fraction"] or 0) > 1 for row in r["rows"]):
        out += ["", "A fraction above 100% means the GEMM measured here runs slower than the network's convolutions in that "
                "precision (on AMD CPUs torch's fp32 matmul takes MKL's slower path, while convolutions use oneDNN's "
                "AVX-512 kernels): there the matmul is no measure of the machine's peak, only a floor under it."]  # fmt: skip
    return "\n".join(out)


def _render_c(r: Record) -> str:
    return (f"**(c) folder pipeline / pure model rate**: {r['ratio']:.3f} (rounds {', '.join(map(str, r['ratios']))}); "
            f"{r['files']} JPEG files at {r['side']}^2, {r['precision']}, batch {r['batch']}: pipeline "
            f"{r['pipeline_img_per_s']:.2f} img/s, model alone on decoded images {r['model_img_per_s']:.2f} img/s.")  # fmt: skip


def _render_d(r: Record) -> str:
    sps, vs = r["steps_per_s"], r["vs_plain"]
    out = [f"**(d) training steps/s, `i2i train` loop vs a plain eager step** ({r['preset']}; {r['steps_per_round']} steps x {r['repeats']} rounds)", "",
           "| variant | steps/s | vs plain eager step |", "|---|---|---|", f"| plain eager step (fixed batch, no data) | {sps['plain']:.2f} | 1 |"]  # fmt: skip
    names = {"loop": "loop, fp32", "loop_preload": "loop, fp32, --preload", "loop_bf16": "loop, bf16 autocast (--amp)"}
    for k, label in names.items():
        if k in sps:
            out.append(f"| {label} | {sps[k]:.2f} | {vs[k]:.2f}x |")
    if "bf16_speedup" in r:
        out.append("")
        out.append(f"bf16 / fp32 loop speed: {r['bf16_speedup']:.2f}x. Loss curves from the same start (loss_gen / loss_dis):")
        out.append("")
        steps = list(r["loss_curves"]["fp32"])
        out.append("| step | " + " | ".join(steps) + " |")
        out.append("|---" * (len(steps) + 1) + "|")
        for name, curve in r["loss_curves"].items():
            out.append(f"| {name} | " + " | ".join(f"{curve[s]['loss_gen']:.3f} / {curve[s]['loss_dis']:.3f}" for s in steps) + " |")
    return "\n".join(out)


def _render_e(r: Record) -> str:
    out = [f"**(e) large images** ({r['model']}; peak RSS of the whole `i2i translate` process)", "",
           "| side | path | seconds | peak RSS GB |", "|---|---|---|---|"]  # fmt: skip
    for row in r["runs"]:
        out.append(f"| {row['side']}^2 | {row['path']} | {row['seconds']} | {row['peak_rss_gb']} |")
    untiled = [row for row in r["runs"] if row["path"] == "untiled"]
    if untiled:
        top = max(untiled, key=lambda row: row["side"])
        growth = (max(r["tiled_sides"]) / top["side"]) ** 2 if r.get("tiled_sides") else 4
        out += ["", f"The untiled path was not run above {top['side']}^2: activations grow with the pixel count, so "
                f"{max(r.get('tiled_sides', [top['side'] * 2]))}^2 would need about {growth:.0f} x {top['peak_rss_gb']} GB "
                "(not tried here)."]  # fmt: skip
    out += ["", "Tile fidelity on a page of each shipped model's examples (at the scale it was trained at); the seam is the",
            "mean error (8-bit levels) inside the blended overlaps against the mean error elsewhere:", "",
            "| model | page | tile / overlap | statistics | PSNR vs untiled dB | seam / elsewhere |", "|---|---|---|---|---|---|"]  # fmt: skip
    for row in r["fidelity"]:
        out.append(f"| {row['model']} | {row['page']}^2 | {row['tile']} / {row['overlap']} | {row['statistics']} | {row['psnr_db']} "
                   f"| {row['seam_levels']:.2f} / {row['other_levels']:.2f} |")
    return "\n".join(out)


def _render_f(r: Record) -> str:
    if not r["measured"]:
        return f"**(f) GPU**: {r['why']}."
    return (f"**(f) GPU** {r['gpu']}: bf16, 256^2, batch 16: {r['img_per_s']} img/s, {r['mfu_vs_matmul']:.0%} of a bf16 "
            f"8192^2 matmul ({r['matmul_tflops']} TFLOP/s).")  # fmt: skip


def _render_g(r: Record) -> str:
    out = [f"**(g) tile statistics on a photo** ({r['model']}; {r['photo']}, tile {r['tile']}, overlap {r['overlap']}; "
           "PSNR of the tiled output against the untiled one)", "",
           "| statistics | PSNR vs untiled dB | seconds |", "|---|---|---|"]  # fmt: skip
    out += [f"| {row['statistics']} | {row['psnr_db']} | {row['seconds']} |" for row in r["rows"]]
    return "\n".join(out)


def _render_h(r: Record) -> str:
    runs = "; ".join(f"{x['files']} files: {x['peak_rss_gb']} GB peak RSS in {x['seconds']} s" for x in r["runs"])
    return (f"**(h) memory of a folder translation** (`i2i translate FOLDER`, {r['model']}, {r['side']}^2 JPEGs): {runs}; "
            f"peak RSS with {r['runs'][1]['files']} files / with {r['runs'][0]['files']}: {r['rss_ratio']:.2f}.")


RENDER: dict[str, Callable[[Record], str]] = {
    "a": _render_a, "b": _render_b, "c": _render_c, "d": _render_d, "e": _render_e, "f": _render_f, "g": _render_g,
    "h": _render_h,
}  # fmt: skip
RUN: dict[str, Callable[[Sizes, Path], Record]] = {
    "a": cell_ab, "c": cell_c, "d": cell_d, "e": cell_e, "f": cell_f, "g": cell_g, "h": cell_h,
}  # fmt: skip


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated cells (a-h; a and b are measured together)")
    parser.add_argument("--force", action="store_true", help="measure cells again even when finished")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes in a temp folder (checks the script)")
    parser.add_argument("--work", type=Path, default=None, help="working folder (models, images); default runs/speed")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--report", action="store_true", help="only rewrite the RESULTS.md block from the JSON")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    wanted = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in CELLS]
    if unknown:
        parser.error(f"unknown cell {unknown[0]!r} (cells: {', '.join(CELLS)})")
    sizes = SMOKE if args.smoke else Sizes()
    temp = tempfile.TemporaryDirectory() if args.smoke and args.work is None else None
    work = Path(temp.name) if temp is not None else (args.work or REPO / "runs" / "speed")
    work.mkdir(parents=True, exist_ok=True)
    results_path = work / "speed.json" if args.smoke else RESULTS
    markdown = work / "RESULTS.md" if args.smoke else MARKDOWN
    results: Record = json.loads(results_path.read_text()) if results_path.is_file() else {"cells": {}}
    command = "python benchmarks/speed.py" + (f" --threads {args.threads}" if args.threads else "")
    results["meta"] = {"command": command + (" --smoke" if args.smoke else "")}
    try:
        if not args.report:
            for key in wanted:
                runner = RUN["a" if key == "b" else key]
                if key in results["cells"] and not args.force:
                    continue
                if key == "b" and "a" in wanted:
                    continue  # measured with a
                started, before = time.perf_counter(), load()
                print(f"speed: cell {key} ...", file=sys.stderr, flush=True)
                result = runner(sizes, work)
                record = {"result": result, "machine": machine(), "load_before": before, "load_after": load(),
                          "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
                results["cells"][key] = record
                if key == "a":
                    results["cells"]["b"] = record
                results_path.parent.mkdir(parents=True, exist_ok=True)
                results_path.write_text(json.dumps(results, indent=2) + "\n")
                write_block(markdown, "speed", render(results))
        write_block(markdown, "speed", render(results))
    finally:
        if temp is not None:
            temp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

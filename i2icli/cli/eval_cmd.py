"""``i2i eval``: measure translations (``folders``: two image folders; ``model``: a model on a dataset).

``adapt``: a domain-adaptation model's class head on labelled images. This module imports no torch: the
evaluation code is imported inside each command, so ``i2i --help`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from i2icli.cli.common import (
    BatchOpt,
    DeviceOpt,
    Group,
    ModelOpt,
    SeedOpt,
    SizeOpt,
    ThreadsOpt,
    handle_errors,
    parse_size,
    stage_bar,
)  # fmt: skip
from i2icli.errors import UsageError

if TYPE_CHECKING:
    from i2icli.eval.adapt import AdaptReport
    from i2icli.eval.report import FolderReport, ModelReport

app = typer.Typer(
    cls=Group,
    help="Measure translations with judges trained here (class kept, looks like target, FID-<judge>), "
    "paired ground truth, and Inception FID from a weights file you supply.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON (for scripts).")]
InceptionOpt = Annotated[
    Path | None,
    typer.Option(
        "--inception", help="pt_inception-2015-12-05 weights file: adds fid-inception and kid-inception.", readable=False
    ),
]
ThresholdOpt = Annotated[
    int,
    typer.Option("--pixel-threshold", help="pixel-acc: a pixel counts when all channels differ by < N levels."),
]


@app.command("folders")
def folders(
    real: Annotated[Path, typer.Option("--real", help="Folder of real target-domain images.")],
    fake: Annotated[Path, typer.Option("--fake", help="Folder of translations (paired metrics match names).")],
    metrics: Annotated[
        str,
        typer.Option("--metrics", help="Comma-separated: fid-<judge>, kid-<judge>, psnr, ssim, l1, pixel-acc, "
                     "fid-inception, kid-inception (e.g. fid-digits-uci,kid-digits-uci)."),
    ],
    inception: InceptionOpt = None,
    pixel_threshold: ThresholdOpt = 16,
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Compare a folder of translations with a folder of real images."""
    with handle_errors():
        if pixel_threshold < 1:
            raise UsageError(f"--pixel-threshold {pixel_threshold}: must be at least 1")
        from i2icli.threads import apply_threads, choose_threads

        choose_threads(threads)  # a bad --threads is a usage error before any work
        if inception is not None and not inception.is_file():
            raise UsageError(f"--inception {inception}: no such file")
        from i2icli.eval.catalogue import parse_metrics
        from i2icli.eval.report import evaluate_folders

        names = parse_metrics(metrics, inception=inception)
        apply_threads(threads)
        report = evaluate_folders(real, fake, names, inception=inception, pixel_threshold=pixel_threshold)
    _show(report, as_json, _print_folder_report)


def _show(report: Any, as_json: bool, print_table: Callable[[Any], None]) -> None:
    """A report as JSON (``--json``) or as the command's table."""
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_table(report)


@app.command("model")
def model(
    data: Annotated[Path, typer.Option("--data", help="Dataset root from 'i2i data prepare' (testA/, testB/ ...).")],
    model_ref: ModelOpt = None,
    do_nothing: Annotated[
        bool, typer.Option("--do-nothing", help="Score the baseline that returns each input unchanged instead.")
    ] = False,
    direction: Annotated[str, typer.Option("--direction", "-d", help="a2b, b2a or both.")] = "both",
    limit: Annotated[
        int | None, typer.Option("--limit", help="Score a seeded random subset of N test images per folder.")
    ] = None,
    styles: Annotated[int, typer.Option("--styles", help="Style models: samples per input for diversity.")] = 8,
    inception: InceptionOpt = None,
    pixel_threshold: ThresholdOpt = 16,
    batch_size: BatchOpt = 64,
    seed: SeedOpt = 0,
    device: DeviceOpt = "auto",
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
    size: SizeOpt = "auto",
) -> None:
    """Translate the test split of a dataset and report every metric that applies to the model and data.

    Test images are fed at the model's training scale (--size auto) and translations compared at the
    test images' own size."""
    with handle_errors():
        directions = _check_model_usage(model_ref, do_nothing, direction, limit, styles, batch_size, pixel_threshold)
        size_spec = parse_size(size)
        from i2icli.threads import apply_threads, choose_threads

        choose_threads(threads)  # a bad --threads is a usage error before any work
        if inception is not None and not inception.is_file():
            raise UsageError(f"--inception {inception}: no such file")
        from i2icli.eval.datasets import read_dataset_info
        from i2icli.eval.report import EvalOptions, do_nothing_subject, evaluate, model_subject

        read_dataset_info(data)  # a bad dataset or a missing judge is reported before the model loads
        apply_threads(threads)
        opts = EvalOptions(
            directions=directions, limit=limit, inception=inception, styles=styles, seed=seed,
            batch_size=batch_size, pixel_threshold=pixel_threshold,
        )  # fmt: skip
        if model_ref is None:
            subject = do_nothing_subject(data)
        else:
            from i2icli.api import load_model

            loaded = load_model(model_ref, device=device)
            subject = model_subject(loaded, model_ref, batch_size=batch_size, seed=seed, size=size_spec)
        with stage_bar(not as_json) as on_stage:
            report = evaluate(subject, data, opts, on_stage=on_stage)
    _show(report, as_json, _print_model_report)


@app.command("adapt")
def adapt(
    data: Annotated[Path, typer.Option("--data", help="Labelled images: a folder per class (0/, 1/, ...) or a CSV filename,label.")],
    model_ref: ModelOpt = None,
    domain: Annotated[str, typer.Option("--domain", help="Domain of the images: b (the target, default) or a.")] = "b",
    png: Annotated[Path | None, typer.Option("--png", help="Also write the confusion matrix as a PNG.")] = None,
    batch_size: BatchOpt = 64,
    device: DeviceOpt = "auto",
    as_json: JsonOpt = False,
    threads: ThreadsOpt = None,
) -> None:
    """Classify labelled images with a domain-adaptation model (UNIT da32): accuracy, per-class
    accuracy and the confusion matrix."""
    with handle_errors():
        from i2icli.threads import apply_threads, choose_threads

        choose_threads(threads)  # a bad --threads is a usage error before any work
        if model_ref is None:
            raise UsageError("pass --model M (a model with a class head, e.g. UNIT trained with --preset da32)")
        if domain not in ("a", "b"):
            raise UsageError(f"--domain {domain!r}: use a or b")
        if batch_size < 1:
            raise UsageError(f"--batch-size {batch_size}: must be at least 1")
        if not data.exists():
            raise UsageError(f"--data {data}: no such file or folder")
        if png is not None:
            from i2icli.cli.validate import writable_folder

            writable_folder("--png", png.parent)  # before the work, not after it
        from i2icli.api import load_model
        from i2icli.eval.adapt import classifier, confusion_png, evaluate_adaptation

        apply_threads(threads)
        loaded = load_model(model_ref, device=device)
        classifier(loaded)  # refuse a model without a class head before reading the data
        report = evaluate_adaptation(loaded, data, domain=domain, batch_size=batch_size, ref=model_ref)
        if png is not None:
            from i2icli.imageio import write_image

            write_image(png, confusion_png(report.confusion))
    _show(report, as_json, _print_adapt_report)


def _print_adapt_report(report: AdaptReport) -> None:
    typer.echo(f"{report.model} on {report.data} (domain {report.domain}, n={report.n})")
    typer.echo(f"accuracy: {report.accuracy:.4f}")
    width = max(5, len(str(report.n)))
    typer.echo("per class: " + "  ".join(f"{i}: {'-' if a is None else f'{a:.3f}'}" for i, a in enumerate(report.per_class)))
    typer.echo("confusion (rows: true class, columns: predicted):")
    n = len(report.confusion)
    typer.echo(" " * 4 + "".join(f"{j:>{width}}" for j in range(n)))
    for i, row in enumerate(report.confusion):
        typer.echo(f"{i:>3} " + "".join(f"{c:>{width}}" for c in row))


def _check_model_usage(
    model_ref: str | None, do_nothing: bool, direction: str, limit: int | None, styles: int, batch_size: int,
    pixel_threshold: int,
) -> tuple[str, ...] | None:  # fmt: skip
    """Validate options before any work; returns the directions (None: all the model has)."""
    if model_ref is not None and do_nothing:
        raise UsageError("--model and --do-nothing exclude each other: score one subject per run")
    if model_ref is None and not do_nothing:
        raise UsageError("pass --model M (or --do-nothing to score the unchanged-input baseline)")
    if direction not in ("a2b", "b2a", "both"):
        raise UsageError(f"--direction {direction!r}: use a2b, b2a or both")
    if limit is not None and limit < 2:
        raise UsageError(f"--limit {limit}: must be at least 2 (FID and KID need two images)")
    if styles < 2:
        raise UsageError(f"--styles {styles}: must be at least 2 (diversity compares pairs)")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size}: must be at least 1")
    if pixel_threshold < 1:
        raise UsageError(f"--pixel-threshold {pixel_threshold}: must be at least 1")
    return None if direction == "both" else (direction,)


def _print_model_report(report: ModelReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from i2icli.eval.catalogue import format_metric, metric_info

    title = f"{report.subject} on {report.dataset or report.data}"
    columns = [f"{d.source} -> {d.target} ({d.direction}, n={d.n})" for d in report.directions]
    table = Table("metric", *columns, title=title)
    keys = list(dict.fromkeys(k for d in report.directions for k in d.metrics))
    for key in keys:
        info = metric_info(key)
        arrow = "↑" if info.better == "higher" else "↓"
        cells = [format_metric(key, d.metrics[key]) if key in d.metrics else "-" for d in report.directions]
        table.add_row(f"{info.label} {arrow}", *cells)
    refs = list(dict.fromkeys(k for d in report.directions for k in d.reference))
    for key in refs:
        cells = [format_metric(key, d.reference[key]) if key in d.reference else "-" for d in report.directions]
        table.add_row(f"[dim]{metric_info(key).label} (reference)[/dim]", *cells)
    console = Console(width=120)
    console.print(table)
    if "pixel-acc" in keys:
        console.print(f"[dim]pixel acc: pixels whose channels all differ by < {report.pixel_threshold} levels[/dim]")
    for d in report.directions:
        for note in d.skipped:
            console.print(f"[dim]{d.direction}: skipped {note}[/dim]", highlight=False)
        for note in d.notes:
            console.print(f"[yellow]{d.direction}: note: {note}[/yellow]", highlight=False, markup=True)


def _print_folder_report(report: FolderReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from i2icli.eval.catalogue import format_metric, metric_info

    paired = f", {report.n_paired} pairs" if report.n_paired else ""
    console = Console(width=120)
    header = f"{report.fake} ({report.n_fake} images) vs {report.real} ({report.n_real} images{paired})"
    console.print(header, highlight=False)
    table = Table("metric", "value")
    for key, value in report.metrics.items():
        info = metric_info(key)
        table.add_row(f"{info.label} {'↑' if info.better == 'higher' else '↓'}", format_metric(key, value))
    console.print(table)
    if "pixel-acc" in report.metrics:
        console.print(f"[dim]pixel acc: pixels whose channels all differ by < {report.pixel_threshold} levels[/dim]")
    for note in report.notes:
        console.print(f"[yellow]note: {note}[/yellow]", highlight=False)

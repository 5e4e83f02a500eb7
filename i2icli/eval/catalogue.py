"""The metric catalogue: every metric's key, label, better direction and display format, and the
parsing of ``--metrics`` (what ``i2i eval`` reports; the scores themselves: ``report.py``)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from i2icli.errors import UsageError
from i2icli.eval.judges import list_judges

Better = Literal["higher", "lower", "reference"]  # reference: context for a score, not a score


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is shown: its label and which way is better."""

    label: str
    better: Better


_FIXED_METRICS: dict[str, MetricInfo] = {
    "class-kept": MetricInfo("class kept", "higher"),
    "looks-like-target": MetricInfo("looks like target", "higher"),
    "kept-as-target": MetricInfo("kept and looks like target", "higher"),
    "psnr": MetricInfo("PSNR (dB)", "higher"),
    "ssim": MetricInfo("SSIM", "higher"),
    "l1": MetricInfo("L1", "lower"),
    "pixel-acc": MetricInfo("pixel acc", "higher"),  # the threshold is in the report
    "diversity": MetricInfo("diversity", "higher"),
    "fid-inception": MetricInfo("FID (Inception)", "lower"),
    "kid-inception": MetricInfo("KID (Inception)", "lower"),
    "real-class-acc": MetricInfo("class judge on real target images", "reference"),
    "real-diversity": MetricInfo("diversity of real images", "reference"),
}
PAIRED_METRICS = ("psnr", "ssim", "l1", "pixel-acc")
# What `i2i eval folders --metrics` accepts besides fid-<judge> / kid-<judge>.
FOLDER_METRICS = (*PAIRED_METRICS, "fid-inception", "kid-inception")


def metric_info(key: str) -> MetricInfo:
    """Label and direction of a metric key such as ``class-kept`` or ``fid-digits-uci``."""
    if key in _FIXED_METRICS:
        return _FIXED_METRICS[key]
    kind, _, judge = key.partition("-")
    if kind in ("fid", "kid") and judge:
        return MetricInfo(f"{kind.upper()}-{judge}", "lower")
    raise KeyError(key)


_PERCENT = ("class-kept", "looks-like-target", "kept-as-target", "pixel-acc", "real-class-acc")


def format_metric(key: str, value: float) -> str:
    """A metric value as shown in tables: rates as percentages, distances to a few digits."""
    if key in _PERCENT:
        return f"{value:.1%}"
    if key == "psnr":
        return f"{value:.2f}"
    if key in ("ssim", "l1"):
        return f"{value:.3f}"
    if abs(value) >= 1000:  # judge-feature FID/KID run into the thousands; no exponent notation
        return f"{value:.0f}"
    return f"{value:.4g}"


def folder_metric_names() -> list[str]:
    """Every name ``parse_metrics`` accepts with the judges installed now."""
    judged = [f"{kind}-{name}" for name in list_judges() for kind in ("fid", "kid")]
    return [*judged, *FOLDER_METRICS]


def parse_metrics(text: str, *, inception: Path | None = None) -> list[str]:
    """``"fid-digits-uci,psnr"`` -> validated names; an unknown name raises ``UsageError`` with close matches."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--metrics: name at least one metric (e.g. fid-digits-uci,psnr)")
    known = folder_metric_names()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else f"available: {', '.join(known)}"
            raise UsageError(f"--metrics: unknown metric {name!r}; {hint}")
        if name.endswith("-inception") and inception is None:
            raise UsageError(f"--metrics {name}: needs --inception PATH (pt_inception-2015-12-05 weights)")
    return list(dict.fromkeys(names))

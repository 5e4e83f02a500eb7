"""Durations and rates as people read them (progress lines, estimates). No torch import here."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``42 s``, ``7 min 3 s``, ``5 h 20 min``, ``3.5 days``: two units at most, rounded down."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{seconds / 86400:.1f} days"

"""RESULTS.md is shared by the benchmark scripts: each one owns a section between two marker lines
and rewrites only that section, so running one benchmark never erases another's tables."""

from __future__ import annotations

from pathlib import Path


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}: begin (generated, do not edit by hand) -->\n", f"<!-- {name}: end -->\n"


def _span(text: str, name: str) -> tuple[int, int] | None:
    """(start of the begin marker, end of the end marker) of section ``name``, or None."""
    begin, end = _markers(name)
    start = text.find(begin)
    stop = text.find(end, start + len(begin)) if start >= 0 else -1
    return None if stop < 0 else (start, stop + len(end))


def read_section(text: str, name: str) -> str | None:
    """The body of section ``name`` in ``text`` (without the marker lines), or None if absent."""
    span = _span(text, name)
    if span is None:
        return None
    begin, end = _markers(name)
    return text[span[0] + len(begin) : span[1] - len(end)]


def write_section(path: Path, name: str, body: str) -> None:
    """Replace section ``name`` of the file with ``body`` (text ending in a newline), or append it."""
    begin, end = _markers(name)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = begin + body + end
    span = _span(text, name)
    if span is None:
        text = f"{text}\n{block}" if text else block
    else:
        text = text[: span[0]] + block + text[span[1] :]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # atomic: an interrupted write never loses the other sections

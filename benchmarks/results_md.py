"""``benchmarks/RESULTS.md`` is shared by every benchmark: each owns one block between
``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` and rewrites only that block, so running one
benchmark never drops another's figures. Blocks keep the order in which they were first written."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = "# Benchmark results\n\nEach section is written by the benchmark it names; do not edit by hand.\n"


@dataclass(frozen=True)
class Paths:
    """Where a benchmark keeps its JSON, its RESULTS.md, its figures and its scratch work."""

    results: Path
    markdown: Path
    figures: Path
    work: Path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s lock file, so runs in parallel processes can merge into
    one results JSON (read what is on disk, add their own cells, write) without losing each other's."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def read_block(path: Path, name: str) -> str | None:
    """The text of block ``name`` (without its markers), or None when the file has no such block."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    begin, end = _markers(name)
    if begin not in text or end not in text:
        return None
    return text[text.index(begin) + len(begin) : text.index(end)].strip("\n") + "\n"


def write_block(path: Path, name: str, body: str) -> None:
    """Replace (or append) block ``name`` with ``body``; the file is replaced atomically."""
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    begin, end = _markers(name)
    block = f"{begin}\n{body.strip(chr(10))}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def smoke_status(problems: list[str], cells: int, markdown: Path) -> int:
    """Print a smoke run's problems (stderr) and its summary line; the exit status (1 on a problem)."""
    import sys

    for problem in problems:
        print(f"smoke: {problem}", file=sys.stderr)
    print(f"smoke: {cells} cells, table in {markdown}")
    return 1 if problems else 0


def cell_directions(results: dict, key: str, expected: list[str], problems: list[str]) -> dict[str, dict] | None:
    """The direction reports of cell ``key`` by name, when it has exactly the ``expected`` directions,
    each scored on at least one image; otherwise None, with the reason added to ``problems``."""
    record = results["cells"].get(key)
    if record is None:
        problems.append(f"{key}: missing")
        return None
    dirs = {d["direction"]: d for d in record["directions"]}
    if sorted(dirs) != sorted(expected) or any(d["n"] < 1 for d in dirs.values()):
        problems.append(f"{key}: needs {' and '.join(expected)} with images, got {sorted(dirs)}")
        return None
    return dirs


def metric_text(metrics: dict, key: str, sd: dict | None = None) -> str:
    """A metric as the tables show it ("–" when absent); with ``sd`` (several seeds) as "mean ± sd"."""
    from i2icli.eval.catalogue import format_metric

    if key not in metrics:
        return "–"
    shown = format_metric(key, metrics[key])
    if sd and key in sd:
        shown += f" ± {format_metric(key, sd[key]).rstrip('%')}" + ("%" if shown.endswith("%") else "")
    return shown

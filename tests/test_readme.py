"""The README's promises: the Python snippet runs, CI runs the Quickstart test line verbatim."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO


def _quickstart_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## Quickstart", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if line.strip()]


def test_quickstart_has_exactly_two_lines_and_ci_runs_the_second() -> None:
    lines = _quickstart_lines()
    assert len(lines) == 2
    ci = (REPO / ".ci" / "run").read_text()
    assert lines[1] in ci.splitlines()
    example_dir = re.search(r"translate (\S+)", lines[0]).group(1)  # type: ignore[union-attr]
    assert any((REPO / example_dir).glob("*.png"))


def test_python_api_snippet_runs() -> None:
    text = (REPO / "README.md").read_text()
    snippet = text.split("## Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('mnist', 'uci') (28, 28)"


def test_readme_benchmark_table_is_the_generated_one() -> None:
    readme = (REPO / "README.md").read_text()
    results = (REPO / "benchmarks" / "RESULTS.md").read_text()
    generated = results.split("## Summary", 1)[1].split("## How they were made", 1)[0].strip()
    assert generated in readme

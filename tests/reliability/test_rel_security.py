"""Source-level guards for SECURITY.md: the only way a torch file is read is ``safe_torch_load``
(``weights_only=True``); nothing unpickles, evaluates or shells out; archives are extracted only
by the checked extractor; Pillow only ever opens images with an explicit list of formats."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

SOURCES = sorted((REPO / "i2icli").rglob("*.py"))


def _code_lines(pattern: str) -> list[str]:
    """``file:line: text`` for every source line matching ``pattern`` outside comments and docstrings."""
    hits = []
    for path in SOURCES:
        in_doc = False
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.count('"""') == 1:
                in_doc = not in_doc
                continue
            if in_doc or stripped.startswith(("#", '"""')):
                continue
            code = line.split("  #")[0]
            if re.search(pattern, code):
                hits.append(f"{path.relative_to(REPO)}:{number}: {stripped}")
    return hits


def test_sources_were_found() -> None:
    assert len(SOURCES) > 40  # the scan below really reads the package


def test_torch_files_are_read_only_through_safe_torch_load() -> None:
    hits = _code_lines(r"(?<!`)torch\.load\(")  # a backquoted one is text in a model card
    assert len(hits) == 1 and hits[0].startswith("i2icli/checkpoint.py") and "weights_only=True" in hits[0], hits


@pytest.mark.parametrize(
    "pattern",
    [r"weights_only\s*=\s*False", r"pickle\.loads?\(", r"\bUnpickler\(", r"yaml\.(unsafe_)?load\(", r"trust_remote_code",
     r"(?<![.\w])eval\(", r"(?<![.\w])exec\(", r"os\.system\(", r"shell\s*=\s*True", r"marshal\.loads?\("],
)  # fmt: skip
def test_nothing_unpickles_evaluates_or_shells_out(pattern: str) -> None:
    assert _code_lines(pattern) == []


def test_archives_are_extracted_only_by_the_checked_extractor() -> None:
    hits = _code_lines(r"extractall\(|\.extract\(")
    assert all(h.startswith("i2icli/data/download.py") for h in hits) and hits, hits
    assert any('filter="data"' in h for h in hits)


def test_pillow_opens_images_only_with_a_list_of_formats() -> None:
    hits = _code_lines(r"Image\.open\(")
    assert hits and all("formats=" in h for h in hits), hits

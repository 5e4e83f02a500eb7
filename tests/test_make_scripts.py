"""The scripts that make the embedded models (weights/make_*.py) show a library error, such as a
work folder holding another recipe's run, as one ``error:`` line with its exit code (no traceback)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from conftest import REPO

from i2icli.errors import UsageError

SCRIPTS = sorted((REPO / "weights").glob("make_*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_library_error_is_one_line_and_its_exit_code(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(REPO / "weights"))
    import geometry_default
    import recipe_steps

    refusal = f"{tmp_path}: holds a run of another recipe (config.lambda_content differ)"

    def refuse(*args: object, **kwargs: object) -> None:
        raise UsageError(refusal)

    # The first step of every script: recipe_steps.prepare (recipe scripts) or geometry_default.prepare.
    monkeypatch.setattr(recipe_steps, "prepare", refuse)
    monkeypatch.setattr(geometry_default, "prepare", refuse)
    monkeypatch.setattr(sys, "argv", [str(script), "--work", str(tmp_path / "work")])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(script), run_name="__main__")
    assert stopped.value.code == 2
    out, errors = capsys.readouterr()
    assert errors.strip().splitlines() == [f"error: {refusal}"] and out == ""
    assert not (tmp_path / "work").exists()

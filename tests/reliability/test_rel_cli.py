"""The CLI's last line of defence: an exception no command turned into an ``I2IError`` (a bug, or
an environment failure nobody anticipated) is one ``error:`` line and exit 1; ``--debug`` shows
the traceback instead."""

from __future__ import annotations

import errno
import sys

import pytest
import typer

from i2icli.cli import common


def _app(exc: BaseException) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def fine() -> None:
        pass

    return app


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (RuntimeError("tensor mismatch\nwith a second line"), "error: RuntimeError: tensor mismatch (unexpected; rerun with --debug for the traceback)"),
        (OSError(errno.ENOSPC, "No space left on device", "/data/out.png"), "error: /data/out.png: No space left on device (unexpected; rerun with --debug for the traceback)"),
        (MemoryError(), "error: out of memory (unexpected; rerun with --debug for the traceback)"),
    ],
)
def test_unexpected_errors_are_one_line_and_exit_1(
    exc: BaseException, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "_debug", [False])
    monkeypatch.setattr(sys, "argv", ["i2i", "boom"])
    with pytest.raises(SystemExit) as exit_:
        common.run_app(_app(exc))
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [line]


def test_debug_lets_the_traceback_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "_debug", [True])
    monkeypatch.setattr(sys, "argv", ["i2i", "boom"])
    with pytest.raises(RuntimeError, match="tensor mismatch"):
        common.run_app(_app(RuntimeError("tensor mismatch")))


def test_the_debug_flag_turns_debug_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from i2icli.cli.app import app

    monkeypatch.setattr(common, "_debug", [False])
    result = CliRunner().invoke(app, ["--debug", "models", "list", "--json"])
    assert result.exit_code == 0 and common.debug_enabled()

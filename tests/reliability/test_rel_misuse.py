"""Misuse a newcomer makes in the first hour: every one is refused in one line before any work
(usage errors exit 2 and leave nothing on disk), or, for an output that cannot be written, one
line and exit 1 found before the first input is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, write_rgb
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()
DIGITS = REPO / "examples" / "cyclegan-digits"
SNEAKER = REPO / "examples" / "munit-fashion" / "sneaker_0_00389.png"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for i in range(3):
        write_rgb(root / "trainA" / f"{i}.png", (20, 20), seed=i)
        write_rgb(root / "trainB" / f"{i}.png", (20, 20), seed=50 + i)
    return root


def _train(data: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--preset", "cpu-tiny", "--dataroot", str(data), "--run-dir", str(run_dir), "--max-steps", "1",
            "--device", "cpu", "--sample-every", "0", *extra]  # fmt: skip


def _one_error_line(result, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# --------------------------------------------------------------------------- --domains


@pytest.mark.parametrize(
    "domains",
    [["--domains", "horse"], ["--domains", "--max-steps", "2"], ["--domains", "horse,"], ["--domains", "a,b,c"]],
)
def test_domains_never_take_a_flag_and_name_the_right_form(data: Path, tmp_path: Path, domains: list[str]) -> None:
    run_dir = tmp_path / "run"
    result = runner.invoke(app, [*_train(data, run_dir), *domains, "--max-steps", "2"])
    line = _one_error_line(result)
    assert "--domains" in line and "--domains horse,zebra" in line
    assert not run_dir.exists()


def test_domains_as_one_value_or_the_older_two_values(data: Path, tmp_path: Path) -> None:
    import json

    for form, run in ((["--domains", "horse,zebra"], "one"), (["--domains", "horse", "zebra"], "two")):
        result = runner.invoke(app, [*_train(data, tmp_path / run), *form, "-q"])
        assert result.exit_code == 0, result.output
        spec = json.loads((tmp_path / run / "run.json").read_text())["spec"]
        assert spec["data"]["domains"] == ["horse", "zebra"]


# --------------------------------------------------------------------------- train: refused before the run folder


def _text_only(tmp_path: Path) -> Path:
    root = tmp_path / "textonly"
    (root / "trainA").mkdir(parents=True)
    (root / "trainA" / "notes.txt").write_text("not images")
    write_rgb(root / "trainB" / "0.png", (20, 20))
    return root


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--lr", "-1"], "--lr"),
        (["--lr", "0"], "--lr"),
        (["--set", "optim.lr=-0.5"], "optim.lr"),
        (["--max-steps", "0"], "--max-steps"),
        (["--batch-size", "0"], "--batch-size"),
        (["--log-every", "0"], "--log-every"),
        (["--threads", "0"], "--threads"),
        (["--save-every", "-1"], "--save-every"),
        (["--keep-last", "-1"], "--keep-last"),
        (["--config", "missing.json"], "--config"),
    ],
)
def test_train_refuses_bad_numbers_before_any_folder(data: Path, tmp_path: Path, extra: list[str], named: str) -> None:
    run_dir = tmp_path / "run"
    line = _one_error_line(runner.invoke(app, [*_train(data, run_dir), *extra]))
    assert named in line
    assert not run_dir.exists()


def test_train_refuses_bad_folders_before_any_folder(data: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    empty = tmp_path / "empty"
    (empty / "trainA").mkdir(parents=True)
    (empty / "trainB").mkdir(parents=True)
    for root, named in ((empty, "trainA"), (_text_only(tmp_path), "trainA"), (tmp_path / "nowhere", "nowhere")):
        line = _one_error_line(runner.invoke(app, _train(root, run_dir)))
        assert named in line and "--dataroot" in line
        assert not run_dir.exists()
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad in (afile, afile / "run"):
        line = _one_error_line(runner.invoke(app, _train(data, bad)))
        assert "--run-dir" in line and str(afile) in line
    assert afile.read_text() == "x"


@pytest.mark.parametrize(
    "args",
    [
        ["translate", str(DIGITS), "--batch-size", "0"],
        ["translate", str(DIGITS), "--threads", "0"],
        ["sample", str(SNEAKER), "--n", "0"],
        ["interpolate", str(SNEAKER), "--steps", "1"],
        ["exemplar", str(SNEAKER), "--style", str(SNEAKER), "--batch-size", "0"],
        ["export", "out.onnx", "--direction", "sideways"],
        ["eval", "model", "--data", "nowhere", "--model", "cyclegan-digits", "--limit", "1"],
    ],
)
def test_other_commands_refuse_before_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    _one_error_line(runner.invoke(app, [*args, *(["-o", "out"] if args[0] != "export" and args[0] != "eval" else [])]))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- unwritable output


@pytest.mark.parametrize(
    "args",
    [
        ["translate", str(DIGITS)],
        ["sample", str(SNEAKER), "-n", "2"],
        ["interpolate", str(SNEAKER), "--steps", "2"],
        ["exemplar", str(SNEAKER), "--style", str(SNEAKER)],
    ],
)
def test_an_unwritable_output_is_one_line_before_work(tmp_path: Path, args: list[str]) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    out = blocker / "out"  # under a file: no folder can be made there
    line = _one_error_line(runner.invoke(app, [*args, "-o", str(out), "--device", "cpu"]), code=1)
    assert str(out) in line and "cannot write" in line
    assert blocker.read_text() == "x"


def test_eval_adapt_checks_its_png_before_loading(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    args = ["eval", "adapt", "--data", str(DIGITS), "--model", "unit-digits", "--png", str(blocker / "confusion.png")]
    line = _one_error_line(runner.invoke(app, args), code=1)
    assert "--png" in line and "cannot write" in line


def test_failed_counts_count_inputs_once() -> None:
    from i2icli.cli.common import Report

    report = Report(1, as_json=False, quiet=False, verb="sampling", bar=False)
    report.failed("in.png", "in.png: broken")
    report.failed("in.png", "in.png: broken again")
    report.failed("out/grid.png", "out/grid.png: cannot write", output=True)
    assert report.failures == 2 and report.failed_inputs == {"in.png"}


# --------------------------------------------------------------------------- concurrent resume


def test_resume_of_a_run_in_progress_is_refused_before_any_claim(data: Path, tmp_path: Path) -> None:
    from i2icli.runs.run import run_lock

    run_dir = tmp_path / "run"
    assert runner.invoke(app, [*_train(data, run_dir), "-q"]).exit_code == 0
    with run_lock(run_dir):  # another process training there
        result = runner.invoke(app, ["train", "--resume", str(run_dir), "--max-steps", "3"])
    line = _one_error_line(result, code=1)
    assert "another i2i train" in line and "run length" not in result.stderr

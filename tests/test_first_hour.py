"""What a newcomer meets in the first hour: export refused up front, quiet and JSON output, the
out-of-domain warning, help text as printed, the CPU estimate on its own line, and the README's
promises (how to run i2i, the CPU-only install, a tour that writes outside the checkout)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, write_rgb
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()
DIGITS = REPO / "examples" / "cyclegan-digits"


# --------------------------------------------------------------------------- export


def test_export_of_a_method_that_cannot_trace_is_refused_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import i2icli.api

    def no_loading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr(i2icli.api, "load_model", no_loading)
    out = tmp_path / "t.onnx"
    result = runner.invoke(app, ["export", "--model", "transgaga-digits", str(out)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "transgaga" in line and "cyclegan" in line and "ONNX" in line
    assert not out.exists()


def test_a_model_that_exports_is_not_refused() -> None:
    from i2icli.cli import export_cmd

    for name in ("cyclegan-digits", "munit-fashion", "unit-digits", "gcgan-digits", "distancegan-digits"):
        assert Path(export_cmd._exportable(name)).is_file()


# --------------------------------------------------------------------------- quiet and JSON


def test_train_quiet_prints_nothing(tmp_path: Path) -> None:
    for side in "AB":
        for i in range(2):
            write_rgb(tmp_path / "d" / f"train{side}" / f"{i}.png", (20, 20), seed=i)
    args = ["train", "--preset", "cpu-tiny", "--dataroot", str(tmp_path / "d"), "--run-dir", str(tmp_path / "run"),
            "--max-steps", "1", "--device", "cpu", "--sample-every", "0", "-q"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and result.stdout == ""
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_json_lists_every_input_also_when_outputs_are_kept(tmp_path: Path) -> None:
    args = ["translate", str(DIGITS), "-o", str(tmp_path / "out"), "--json", "--device", "cpu"]
    first = runner.invoke(app, args)
    again = runner.invoke(app, args)
    assert first.exit_code == 0 and again.exit_code == 0, again.output
    inputs = sorted(str(p) for p in DIGITS.glob("*.png"))
    written = [json.loads(line) for line in first.stdout.splitlines()]
    kept = [json.loads(line) for line in again.stdout.splitlines()]
    assert sorted(r["input"] for r in written) == inputs and {r["status"] for r in written} == {"written"}
    assert sorted(r["input"] for r in kept) == inputs and {r["status"] for r in kept} == {"kept"}
    assert all(Path(r["output"]).is_file() for r in kept)


# --------------------------------------------------------------------------- out-of-domain input


def test_a_colour_photo_far_from_the_training_size_gets_one_warning(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(photo)
    result = runner.invoke(app, ["translate", str(photo), str(DIGITS / "mnist_0_00002.png"), "-o", str(tmp_path / "o"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(photo) in warnings[0]
    assert "colour" in warnings[0] and "28x28" in warnings[0] and "gray" in warnings[0]


def test_inputs_like_the_training_images_get_no_warning_and_no_resize_remark(tmp_path: Path) -> None:
    result = runner.invoke(app, ["translate", str(DIGITS), "-o", str(tmp_path / "o"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    # Said only where it matters (beside a far input), not after every summary.
    assert "records no training resize" not in result.stderr


# --------------------------------------------------------------------------- help as printed


_COMMANDS = [
    ["translate"], ["train"], ["export"], ["sample"], ["interpolate"], ["exemplar"], ["convert"], ["push"],
    ["export-checkpoint"], ["eval", "model"], ["eval", "folders"], ["eval", "adapt"], ["data", "prepare"],
    ["models", "info"],
]  # fmt: skip


def _help(command: list[str]) -> str:
    # A wide terminal: at 80 columns rich cuts long tokens such as hf-hub:org/name[@rev] with an ellipsis.
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", _COMMANDS, ids=" ".join)
def test_help_names_values_and_shows_defaults(command: list[str]) -> None:
    text = _help(command)
    assert not re.search(r"<(str|int|float|path|bool|list\[[a-z]+\]|[a-z]+,[a-z]+)>", text), text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and "<" not in usage, usage  # INPUT..., not {inputs}...
    assert not re.search(r"\(default[: ]", " ".join(text.split())), text  # a stated default reads [default: ...]


def test_help_keeps_install_hints_and_brackets_as_written() -> None:
    text = _help(["translate"])
    assert "i2icli[int8]" in text and "i2icli[onnx]" in text
    assert "hf-hub:org/name[@rev]" in text
    assert "-o" in text and "OUT" in text and "INPUT..." in text


def test_help_of_export_device_agrees_with_its_default() -> None:
    line = next(line for line in _help(["export"]).splitlines() if "--device" in line)
    assert "[default: cpu]" in line and "GPU when there is one" not in line.split("auto")[0]


def test_batch_size_defaults_are_explained() -> None:
    for command, default in ((["translate"], 1), (["sample"], 8), (["eval", "model"], 64)):
        text = " ".join(_help(command).split())
        assert "Defaults differ by command" in text and f"[default: {default}]" in text


def test_cpu_estimate_and_warnings_start_their_own_line(capsys: pytest.CaptureFixture[str]) -> None:
    from i2icli.cli.train_cmd import TrainDisplay

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    display = TrainDisplay(10, stream=stream, clock=iter(range(100)).__next__)
    display.tick(1)
    display.tick(2)
    display.note("note: the paper preset on a CPU: ...")
    assert stream.getvalue().endswith("\n")  # the live line was ended before the note
    assert capsys.readouterr().err == "note: the paper preset on a CPU: ...\n"


# --------------------------------------------------------------------------- README and tree


def _readme() -> str:
    return (REPO / "README.md").read_text()


def test_readme_says_how_to_run_i2i_after_the_install() -> None:
    quickstart = _readme().split("## Quickstart", 1)[1].split("## CLI tour", 1)[0]
    assert "source .venv/bin/activate" in quickstart and ".venv/bin/i2i" in quickstart


def test_readme_has_a_cpu_only_install_line_and_a_measured_size() -> None:
    # Its own section: the Quickstart holds exactly two command lines.
    section = _readme().split("## Installing without a GPU", 1)[1].split("## CLI tour", 1)[0]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in section
    assert re.search(r"\d\.\d GB", section)


def test_readme_tour_runs_in_a_scratch_folder() -> None:
    intro = _readme().split("## CLI tour", 1)[1].split("```bash", 1)[0]
    assert "mktemp -d" in intro and "never land in your checkout" in intro
    tour = _readme().split("## CLI tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert "--domains mnist,uci" in tour and "--domains mnist uci" not in tour


def test_example_folders_hold_the_source_domain_of_their_model() -> None:
    """``i2i translate examples/NAME/`` (a2b, as the tour runs it) gets only domain A images; a model's
    domain B examples, where there are any, are in a sub-folder named after it."""
    from i2icli.registry import PRETRAINED

    for folder in sorted(p for p in (REPO / "examples").iterdir() if p.is_dir()):
        domain_a, domain_b = PRETRAINED[folder.name].domains
        assert {f.name.split("_")[0] for f in folder.glob("*.png")} == {domain_a}, folder
        for sub in (p for p in folder.iterdir() if p.is_dir()):
            assert sub.name == domain_b and {f.name.split("_")[0] for f in sub.glob("*.png")} == {domain_b}

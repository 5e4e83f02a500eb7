"""The README's promises: the Python snippet runs, CI runs the Quickstart test line verbatim."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


def _quickstart_lines() -> list[str]:
    """Every command line in the Quickstart section, over all its code blocks."""
    section = (REPO / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```bash")[1:]
    return [line for b in blocks for line in b.split("```", 1)[0].strip().splitlines() if line.strip()]


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


# Tour lines not run by the test: they need the network or files the user brings.
_NOT_RUN = ("# online", "# your files")
# Import names of the distributions an extra installs (pyproject.toml's optional dependencies).
_MODULES = {
    "mlxtend": "mlxtend", "scikit-learn": "sklearn", "scikit-image": "skimage", "tensorboard": "tensorboard",
    "onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime", "torchao": "torchao",
}  # fmt: skip


def _tour_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("## CLI tour", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def _extra_modules(extra: str) -> list[str]:
    pyproject = (REPO / "pyproject.toml").read_text()
    body = re.search(rf"^{extra} = \[(.*?)\]", pyproject, re.M | re.S)
    assert body is not None, f"the tour names i2icli[{extra}], which pyproject.toml does not define"
    names = [re.split(r"[<>=\[]", item.strip().strip('"'))[0] for item in body.group(1).split(",") if item.strip()]
    return [_MODULES[n] for n in names]


@pytest.mark.slow
def test_cli_tour_runs_top_to_bottom(tmp_path: Path) -> None:
    """Every offline line of the README's CLI tour, in order, in a fresh folder with the shipped
    examples, with the extras the tour states installed; each must exit 0."""
    import importlib.util
    import json
    import os

    lines = _tour_lines()
    run = [line for line in lines if not any(marker in line for marker in _NOT_RUN)]
    assert len(run) >= 15 and len(lines) - len(run) <= 6
    for line in run:
        for extra in re.findall(r"needs i2icli\[(\w+)\]", line):
            missing = [m for m in _extra_modules(extra) if importlib.util.find_spec(m) is None]
            assert not missing, f"{line}: the tour says i2icli[{extra}], but {missing} are not installed here"
    (tmp_path / "examples").symlink_to(REPO / "examples")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    for line in run:
        out = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, f"{line}\n{out.stderr}"
    # What the lines promise.
    assert len(list((tmp_path / "out").glob("*.png"))) == len(list((REPO / "examples" / "cyclegan-digits").glob("*.png")))
    assert (tmp_path / "one.png").is_file() and (tmp_path / "piped.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "walk").is_dir() and any((tmp_path / "walk").glob("*.gif"))
    assert json.loads((tmp_path / "runs" / "tour" / "run.json").read_text())["spec"]["loop"]["max_steps"] == 30
    assert (tmp_path / "runs" / "tour-step20" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "eval.json").read_text())["directions"]


def test_package_points_only_inside_the_repository() -> None:
    """Every ``docs/...`` path the package, tests and weight scripts name exists in the repository,
    and none names a document or an absolute path that is not in it."""
    files = [p for folder in ("i2icli", "tests", "weights", "benchmarks") for p in (REPO / folder).rglob("*")]
    files = [p for p in files if p.suffix in (".py", ".md", ".json", ".toml") and p.is_file()]
    named: set[str] = set()
    outside = ("METHODS" + ".md", "/wo" + "rk/")  # spelled apart so that this file passes its own check
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert not any(s in text for s in outside), path
        named |= set(re.findall(r"docs/methods/[a-z0-9]+\.md", text))
    assert named and all((REPO / doc).is_file() for doc in named), sorted(named)
    # Every method module names its page.
    from i2icli.methods import METHOD_MODULES

    for name, module in METHOD_MODULES.items():
        source = REPO / (module.replace(".", "/") + ".py")
        assert f"docs/methods/{name}.md" in source.read_text(), source


def test_readme_precision_auto_figures_are_the_cards() -> None:
    """The `--precision auto` sentence counts the embedded models whose card qualifies and gives the
    range of their worst-example PSNR, as the cards (weights/<name>/metrics.json) record them."""
    from i2icli.precision import AUTO_MIN_PSNR_DB, CARD_KEY
    from i2icli.registry import PRETRAINED

    embedded = [name for name, entry in PRETRAINED.items() if entry.local is not None]
    cards = [json.loads((REPO / "weights" / name / "metrics.json").read_text()) for name in embedded]
    scores = [card[CARD_KEY]["bf16"]["psnr_db"] for card in cards if CARD_KEY in card]
    assert len(scores) == len(embedded) and min(scores) >= AUTO_MIN_PSNR_DB
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"all {len(embedded)} embedded models qualify (worst example {min(scores):.1f}-{max(scores):.1f} dB)" in readme


def test_every_embedded_model_has_the_script_that_made_it() -> None:
    from i2icli.registry import PRETRAINED

    for name, entry in PRETRAINED.items():
        if entry.local is not None:
            assert (REPO / "weights" / f"make_{name.replace('-', '_')}.py").is_file(), name


def test_readme_folder_memory_is_the_measured_one() -> None:
    """"Flat memory" is the speed benchmark's cell h: the same peak RSS for few and for many files."""
    h = json.loads((REPO / "benchmarks" / "results" / "speed.json").read_text())["cells"]["h"]["result"]
    few, many = h["runs"]
    assert few["files"] < many["files"] and many["peak_rss_gb"] <= 1.1 * few["peak_rss_gb"]
    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"peak RSS {few['peak_rss_gb']} GB for {few['files']} and for {many['files']} files" in readme

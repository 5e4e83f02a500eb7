"""A regular (non-editable) install carries the embedded models: build the wheel, read it, install it.

The wheel is built offline from a copy of the sources (``--no-build-isolation`` uses this
environment's setuptools), so the checkout gets no ``build/`` or ``*.egg-info`` folders.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from i2icli.registry import PRETRAINED

EXAMPLES = REPO / "examples" / "cyclegan-digits"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("i2icli", "weights"):
        shutil.copytree(REPO / folder, src / folder, ignore=skip)
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "-w", str(dist), str(src)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = dist.glob("i2icli-*.whl")
    return path


def test_wheel_carries_every_embedded_model_with_its_pinned_sha256(wheel: Path) -> None:
    embedded = [entry for entry in PRETRAINED.values() if entry.local is not None]
    assert embedded, "the registry has no embedded model to check"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for entry in embedded:
            member = f"i2icli/_weights/{entry.local}"
            assert member in names, f"{entry.name}: {member} is not in the wheel"
            assert entry.sha256 is not None, f"{entry.name}: embedded weights without a sha256 pin"
            digest = hashlib.sha256(archive.read(member)).hexdigest()
            assert digest == entry.sha256, f"{entry.name}: {member} does not match its pin"
            card = member.rsplit("/", 1)[0] + "/README.md"
            assert card in names, f"{entry.name}: model card missing"


def test_wheel_holds_all_package_code_and_not_the_weight_scripts(wheel: Path) -> None:
    # setup.py lists the packages itself; a subpackage it missed would be absent here.
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.endswith(".py")}
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "i2icli").rglob("*.py")}
    assert source - shipped == set()
    assert not any(n.startswith("i2icli/_weights/") for n in shipped)  # weights/make_*.py stay home
    assert shipped - source == set()


def _venv_seeing_our_dependencies(root: Path) -> Path:
    """A fresh venv whose own site-packages comes first and which borrows this one's packages (torch).

    The borrowed folders are plain ``sys.path`` entries (from a .pth file), so the ``.pth`` hooks
    inside them, such as this checkout's editable install, do not run: ``i2icli`` can only come from
    the wheel installed into the new venv.
    """
    venv.EnvBuilder(with_pip=True).create(root)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    borrowed = [*site.getsitepackages(), site.getusersitepackages()]
    (Path(purelib) / "_i2i_test_borrowed.pth").write_text("\n".join(borrowed) + "\n")
    return python


def test_installed_wheel_translates_with_the_embedded_default_from_any_folder(wheel: Path, tmp_path: Path) -> None:
    python = _venv_seeing_our_dependencies(tmp_path / "venv")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "I2I_WEIGHTS_DIR")}
    where = subprocess.run(
        [str(python), "-c", "import i2icli.registry as r; print(r.__file__); print(r.weights_dir())"],
        capture_output=True, text=True, cwd=elsewhere, env=env,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    module, weights = (Path(line) for line in where.stdout.splitlines())
    venv_root = (tmp_path / "venv").resolve()
    assert venv_root in module.resolve().parents and venv_root in weights.resolve().parents

    i2i = python.parent / ("i2i.exe" if os.name == "nt" else "i2i")
    run = subprocess.run(
        [str(i2i), "translate", str(EXAMPLES), "-o", "out"], capture_output=True, text=True, cwd=elsewhere, env=env
    )
    assert run.returncode == 0, run.stdout + run.stderr
    written = sorted(p.name for p in (elsewhere / "out").iterdir())
    assert written == sorted(p.name for p in EXAMPLES.iterdir()) and written

    # The same pixels as the source tree gives: the packaged copy is the model, not a stand-in.
    from typer.testing import CliRunner

    from i2icli.cli.app import app

    result = CliRunner().invoke(app, ["translate", str(EXAMPLES), "-o", str(tmp_path / "source-out")])
    assert result.exit_code == 0, result.output
    for name in written:
        assert (elsewhere / "out" / name).read_bytes() == (tmp_path / "source-out" / name).read_bytes(), name

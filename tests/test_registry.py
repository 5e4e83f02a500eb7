"""``resolve`` tables, and Hub models end to end through the CLI (mock Hub, then offline cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_tiny_cyclegan, save_tiny, write_rgb
from mockhub import MockHub

from i2icli.errors import ResolveError
from i2icli.registry import PRETRAINED
from i2icli.sources import resolve


@pytest.fixture
def local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    save_tiny(tmp_path / "model.safetensors", make_tiny_cyclegan())
    save_tiny(tmp_path / "folder", make_tiny_cyclegan())
    (tmp_path / "empty").mkdir()
    (tmp_path / "official.pth").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    weights = tmp_path / "weights"
    save_tiny(weights / "cyclegan-digits", make_tiny_cyclegan())
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(weights))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("ref", "kind", "expect"),
    [
        ("hf-hub:acme/horse2zebra", "hub", ("acme/horse2zebra", None)),
        ("hf-hub:acme/horse2zebra@v1.0", "hub", ("acme/horse2zebra", "v1.0")),
        ("hf-hub:acme/h2z@" + "a" * 40, "hub", ("acme/h2z", "a" * 40)),
        ("model.safetensors", "local", "model.safetensors"),
        ("./model.safetensors", "local", "model.safetensors"),
        ("folder", "local", "folder/model.safetensors"),
        ("folder/", "local", "folder/model.safetensors"),
        ("cyclegan-digits", "embedded", "weights/cyclegan-digits/model.safetensors"),
    ],
)
def test_resolve_accepts(local_files: Path, ref: str, kind: str, expect: object) -> None:
    got = resolve(ref)
    assert got.kind == kind
    if kind == "hub":
        assert (got.repo_id, got.revision) == expect
    else:
        assert got.path is not None and got.path.resolve() == (local_files / str(expect)).resolve()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "empty model reference"),
        ("cyclegan-digit", "did you mean cyclegan-digits"),
        ("zebra2giraffe", "unknown model 'zebra2giraffe'"),
        ("horse2zebraa", "did you mean horse2zebra"),
        ("missing.safetensors", "missing.safetensors: no such file or folder (for a Hub model write hf-hub:"),
        ("acme/horse2zebra", "no such file or folder (for a Hub model write hf-hub:"),
        ("empty", "empty: folder has no model.safetensors"),
        ("official.pth", "convert it first with `i2i convert"),
        ("notes.txt", "not a .safetensors checkpoint"),
        ("hf-hub:noslash", "noslash"),
        ("hf-hub:acme/x@", "hf-hub:acme/x@"),
    ],
)
def test_resolve_refuses(local_files: Path, ref: str, message: str) -> None:
    with pytest.raises(ResolveError) as e:
        resolve(ref)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_every_registry_entry_is_consistent() -> None:
    from i2icli.registry import METHODS

    for name, entry in PRETRAINED.items():
        assert entry.name == name
        assert entry.method in METHODS
        # Embedded, or got elsewhere: a Hub copy, the authors' release, or a recipe to train it.
        assert (entry.local is not None) != any(x is not None for x in (entry.repo_id, entry.release, entry.recipe))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(extra)
    return env


def _translate(model: str, image: Path, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "i2icli", "translate", str(image), "--model", model, "-o", str(out), "--device", "cpu"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)


def test_hub_model_pinned_revision_then_offline_cache(tmp_path: Path) -> None:
    old = save_tiny(tmp_path / "old", make_tiny_cyclegan(seed=1))
    new = save_tiny(tmp_path / "new", make_tiny_cyclegan(seed=2))
    image = write_rgb(tmp_path / "in" / "img.png", (20, 12))
    with MockHub() as hub:
        files = lambda p: {"model.safetensors": p.read_bytes(), "config.json": (p.parent / "config.json").read_bytes()}  # noqa: E731
        first = hub.add_commit("acme/tiny", files(old))
        hub.add_commit("acme/tiny", files(new))
        env = _env(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))
        pinned = _translate(f"hf-hub:acme/tiny@{first}", image, tmp_path / "pinned", env)
        assert pinned.returncode == 0, pinned.stderr
        requested = hub.paths_requested()
        assert any(first in p for p in requested)
        latest = _translate("hf-hub:acme/tiny", image, tmp_path / "latest", env)
        assert latest.returncode == 0, latest.stderr
    a = (tmp_path / "pinned" / "img.png").read_bytes()
    b = (tmp_path / "latest" / "img.png").read_bytes()
    assert a != b  # the two revisions hold different weights

    # Server stopped: a new process in offline mode finds the pinned revision in the cache.
    offline = _translate(f"hf-hub:acme/tiny@{first}", image, tmp_path / "offline", _env(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1"))
    assert offline.returncode == 0, offline.stderr
    assert (tmp_path / "offline" / "img.png").read_bytes() == a
    missing = _translate("hf-hub:acme/other", image, tmp_path / "x", _env(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1"))
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr and "acme/other" in missing.stderr


def test_embedded_default_is_pinned_and_a_tampered_copy_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from i2icli.api import load_model

    model = load_model("cyclegan-digits", device="cpu")
    assert model.config.domains == ("mnist", "uci") and model.channels("a2b") == (1, 1)
    copy = tmp_path / "cyclegan-digits"
    shutil.copytree(REPO / "weights" / "cyclegan-digits", copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    monkeypatch.setenv("I2I_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(ResolveError, match="sha256 mismatch"):
        load_model("cyclegan-digits", device="cpu")


def test_default_model_translates_the_examples(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from i2icli.cli.app import app

    result = CliRunner().invoke(app, ["translate", str(REPO / "examples" / "cyclegan-digits"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(p.name for p in (REPO / "examples" / "cyclegan-digits").iterdir())


def test_one_way_entries_match_their_weights_and_the_list_shows_the_arrow() -> None:
    """An embedded entry is one_way exactly when its model has one direction; `models list` draws
    -> for one-way entries (the authors' CycleGAN generators, gcgan-digits) and <-> otherwise."""
    import json

    from typer.testing import CliRunner

    from i2icli.api import load_model
    from i2icli.cli.app import app

    for entry in PRETRAINED.values():
        if entry.local is not None:
            assert entry.one_way == (len(load_model(entry.name, device="cpu").directions) == 1), entry.name
    assert all(e.one_way for e in PRETRAINED.values() if e.release is not None and e.method == "cyclegan")
    listed = {e["name"]: e for e in json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).stdout)}
    assert listed["gcgan-digits"]["one_way"] and not listed["cyclegan-digits"]["one_way"]
    table = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "250"}).stdout
    assert "mnist -> uci" in table and "mnist <-> uci" in table and "horse -> zebra" in table

"""Reliability of ``i2i eval``, ``i2i convert`` and ``i2i data prepare``: odd inputs that must
work, bad ones that must fail with one line (exit 1; 2 for usage), existing outputs, a full disk,
a read-only folder, hostile archives and hostile pickles."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES
from faults import (
    SETPRIV,
    assert_clean_failure,
    error_lines,
    i2i,
    make_bad_inputs,
    make_good_inputs,
    rgb_array,
    run,
    shared_tmp,
)  # fmt: skip
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()
OFFICIAL = FIXTURES / "cyclegan" / "cyclegan_G_small.pth"


# ----------------------------------------------------------------------------- eval


def test_eval_folders_reads_every_odd_input(tmp_path: Path) -> None:
    good = make_good_inputs(tmp_path / "real")
    make_good_inputs(tmp_path / "fake")
    result = runner.invoke(app, ["eval", "folders", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--metrics", "l1,psnr", "--json"])
    assert result.exit_code == 0, result.output
    report = __import__("json").loads(result.stdout)
    assert report["n_real"] == report["n_fake"] == report["n_paired"] == len(good)
    assert report["metrics"]["l1"] == 0.0  # the same files on both sides


@pytest.mark.parametrize("name", ["zero.png", "cut.png", "cutj.jpg", "notes.jpg", "page.png", "bomb.png", "loop.png", "gone.png", "fifo.png"])
def test_eval_folders_names_a_bad_file_in_one_line(tmp_path: Path, name: str) -> None:
    for side in ("real", "fake"):
        (tmp_path / side).mkdir()
        Image.fromarray(rgb_array(16, 16)).save(tmp_path / side / "a.png")
    words = make_bad_inputs(tmp_path / "bad")[name]
    os.rename(tmp_path / "bad" / name, tmp_path / "fake" / name)
    if name in ("loop.png", "gone.png"):  # relative links: recreate them where they now live
        os.remove(tmp_path / "fake" / name)
        os.symlink(name if name == "loop.png" else "nowhere.png", tmp_path / "fake" / name)
    result = runner.invoke(app, ["eval", "folders", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--metrics", "l1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and words in lines[0], lines


def test_eval_model_names_a_bad_first_test_image(tmp_path: Path) -> None:
    for split in ("testA", "testB"):
        (tmp_path / "data" / split).mkdir(parents=True)
        Image.fromarray(rgb_array(16, 16)).save(tmp_path / "data" / split / "b.png")
    (tmp_path / "data" / "testA" / "a.png").write_bytes(b"")
    result = runner.invoke(app, ["eval", "model", "--data", str(tmp_path / "data"), "--do-nothing"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert "testA/a.png: not an image (empty file)" in line


# ----------------------------------------------------------------------------- convert


def _evil(marker: Path) -> object:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    return Evil()


def _legacy_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"model.1.weight": _evil(marker)}, protocol=2))


def _zip_pickle(path: Path, marker: Path) -> None:
    torch.save({"model.1.weight": _evil(marker)}, path)


@pytest.mark.parametrize("writer", [_legacy_pickle, _zip_pickle], ids=["legacy-pickle", "torch-zip"])
@pytest.mark.parametrize("source", ["cyclegan", "munit", "unit", "gcgan", "distancegan"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path, writer, source: str) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pth"
    writer(evil, marker)
    # The positive control: a plain unpickle of this file really would create the marker.
    check = tmp_path / "control"
    writer(tmp_path / "control.pth", check)
    if writer is _legacy_pickle:
        pickle.loads((tmp_path / "control.pth").read_bytes())
    else:
        torch.load(tmp_path / "control.pth", weights_only=False)
    assert check.exists()

    result = runner.invoke(app, ["convert", "--from", source, str(evil), "-o", str(tmp_path / "out.safetensors")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert "evil.pth: not a loadable tensor-only PyTorch file" in line
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_pickle_refusal_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    _zip_pickle(tmp_path / "evil.pth", marker)
    result = run(i2i("convert", "--from", "cyclegan", tmp_path / "evil.pth", "-o", tmp_path / "out.safetensors"))
    assert_clean_failure(result, 1)
    assert result.stderr.count("\n") == 1, result.stderr  # torch's own warnings are not shown either
    assert "refused to unpickle posix.system" in result.stderr
    assert not marker.exists()


def test_translate_and_resume_refuse_a_pickle_too(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    _zip_pickle(tmp_path / "evil.pth", marker)
    Image.fromarray(rgb_array(8, 8)).save(tmp_path / "x.png")
    used = runner.invoke(app, ["translate", str(tmp_path / "x.png"), "-m", str(tmp_path / "evil.pth"), "-o", str(tmp_path / "o")])
    assert used.exit_code == 1 and "a PyTorch pickle, not an i2i checkpoint" in used.output
    renamed = tmp_path / "evil.safetensors"
    renamed.write_bytes((tmp_path / "evil.pth").read_bytes())
    used = runner.invoke(app, ["translate", str(tmp_path / "x.png"), "-m", str(renamed), "-o", str(tmp_path / "o")])
    assert used.exit_code == 1 and "not a readable safetensors file" in used.output
    assert not marker.exists()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_bytes(OFFICIAL.read_bytes()[:400]), "truncated or corrupt"),
        (lambda p: p.write_text("<!DOCTYPE html><html>Not Found</html>"), "looks like HTML"),
        (lambda p: p.mkdir(), "is a folder"),
    ],
    ids=["zero-byte", "truncated", "html", "folder"],
)
def test_convert_names_a_bad_weights_file(tmp_path: Path, make, words: str) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "latest_net_G_A.pth"
    make(bad)
    result = runner.invoke(app, ["convert", "--from", "cyclegan", str(bad), "-o", str(tmp_path / "o.safetensors")])
    assert result.exit_code in (1, 2) and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "latest_net_G_A.pth" in lines[0] and words in lines[0], lines
    assert not (tmp_path / "o.safetensors").exists()


def test_convert_keeps_an_existing_output_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"mine")
    kept = runner.invoke(app, ["convert", "--from", "cyclegan", str(OFFICIAL), "-o", str(out)])
    assert kept.exit_code == 0 and out.read_bytes() == b"mine"
    assert "kept it (pass --overwrite to replace it)" in kept.stderr
    replaced = runner.invoke(app, ["convert", "--from", "cyclegan", str(OFFICIAL), "-o", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    from i2icli.methods.load import load_checkpoint

    load_checkpoint(out)


def test_convert_on_a_full_disk_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"previous")
    result = run(i2i("convert", "--from", "cyclegan", OFFICIAL, "-o", out, "--overwrite"), fsize=4096)
    assert_clean_failure(result, 1)
    (line,) = error_lines(result.stderr)
    assert "cannot write (File too large)" in line
    assert out.read_bytes() == b"previous" and os.listdir(tmp_path) == ["o.safetensors"]


@pytest.mark.skipif(SETPRIV is None, reason="needs setpriv to drop root privileges")
def test_convert_into_a_read_only_folder_and_from_an_unreadable_file() -> None:
    with shared_tmp() as root:
        src = root / "g.pth"
        src.write_bytes(OFFICIAL.read_bytes())
        src.chmod(0o644)
        (root / "ro").mkdir(mode=0o555)
        (root / "ro").chmod(0o555)
        blocked = run(i2i("convert", "--from", "cyclegan", src, "-o", root / "ro" / "o.safetensors"), as_nobody=True)
        assert_clean_failure(blocked, 1)
        assert "cannot write (Permission denied)" in error_lines(blocked.stderr)[0]
        src.chmod(0o000)
        (root / "w").mkdir()
        (root / "w").chmod(0o777)
        unreadable = run(i2i("convert", "--from", "cyclegan", src, "-o", root / "w" / "o.safetensors"), as_nobody=True)
        assert_clean_failure(unreadable, 1)
        assert "g.pth: cannot read (Permission denied)" in error_lines(unreadable.stderr)[0]
        assert os.listdir(root / "ro") == [] and os.listdir(root / "w") == []


# ----------------------------------------------------------------------------- data prepare


def _archive(path: Path, *, extra: dict[str, bytes] | None = None, big: bool = False, unicode: bool = False) -> Path:
    """A horse2zebra.zip laid out like the official one; optionally with hostile extra members."""
    with zipfile.ZipFile(path, "w") as z:
        for split in ("trainA", "trainB", "testA", "testB"):
            for k in range(2):
                side = 120 if big and k else 16
                buf = io.BytesIO()
                Image.fromarray(rgb_array(side, side, k)).save(buf, "PNG")
                name = f"ünïcode_{k}.png" if unicode else f"{k}.png"
                z.writestr(f"horse2zebra/{split}/{name}", buf.getvalue())
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def test_prepare_from_a_local_archive_with_unicode_names(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "horse2zebra.zip", unicode=True)
    result = runner.invoke(app, ["data", "prepare", "horse2zebra", str(tmp_path / "out"), "--from", str(archive)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path / "out" / "trainA")) == ["ünïcode_0.png", "ünïcode_1.png"]
    again = runner.invoke(app, ["data", "prepare", "horse2zebra", str(tmp_path / "out"), "--from", str(archive)])
    assert again.exit_code == 2 and "already exists; pass --force" in again.output


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_bytes(b""), "not a zip or tar archive"),
        (lambda p: p.write_bytes(_archive(p.with_suffix(".full"), big=True).read_bytes()[:700]), "not a zip or tar archive"),
        (lambda p: p.write_text("<html><body>Service unavailable</body></html>"), "not a zip or tar archive"),
        (lambda p: _archive(p, extra={"horse2zebra/../../escaped.txt": b"x"}), "leaves the output folder"),
        (lambda p: _archive(p, extra={"/etc/i2i-escaped": b"x"}), "leaves the output folder"),
    ],
    ids=["zero-byte", "truncated", "html", "dot-dot", "absolute"],
)
def test_prepare_refuses_a_bad_archive_in_one_line_and_pins_nothing(tmp_path: Path, make, words: str) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "horse2zebra.zip"
    make(archive)
    out = tmp_path / "sub" / "out"
    result = runner.invoke(app, ["data", "prepare", "horse2zebra", str(out), "--from", str(archive)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert "horse2zebra.zip" in line and words in line
    assert not out.exists() and not (tmp_path / "escaped.txt").exists() and not Path("/etc/i2i-escaped").exists()
    # The bad archive was not pinned: the good one of the same name is accepted afterwards.
    _archive(archive)
    fixed = runner.invoke(app, ["data", "prepare", "horse2zebra", str(out), "--from", str(archive)])
    assert fixed.exit_code == 0, fixed.output


def test_prepare_refuses_a_tar_symlink_that_points_outside(tmp_path: Path) -> None:
    archive = tmp_path / "horse2zebra.zip"  # the recipe names the file; the content is a tar
    with tarfile.open(archive, "w") as tar:
        link = tarfile.TarInfo("horse2zebra/trainA/link.png")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
        tar.addfile(link)
    result = runner.invoke(app, ["data", "prepare", "horse2zebra", str(tmp_path / "out"), "--from", str(archive)])
    assert result.exit_code == 1 and "points outside the output folder" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("recipe", ["horse2zebra", "mnist-uci-digits"])
def test_prepare_on_a_full_disk_is_one_line_and_leaves_nothing_half_done(tmp_path: Path, recipe: str) -> None:
    extra = ["--from", str(_archive(tmp_path / "horse2zebra.zip", big=True))] if recipe == "horse2zebra" else []
    out = tmp_path / "out"
    result = run(i2i("data", "prepare", recipe, out, *extra), fsize=20000)
    assert_clean_failure(result, 1)
    (line,) = error_lines(result.stderr)
    assert "cannot write the dataset (File too large)" in line
    assert not out.exists()


@pytest.mark.skipif(SETPRIV is None, reason="needs setpriv to drop root privileges")
def test_prepare_into_a_read_only_folder() -> None:
    with shared_tmp() as root:
        archive = _archive(root / "horse2zebra.zip")
        archive.chmod(0o644)
        (root / "ro").mkdir()
        (root / "ro").chmod(0o555)
        result = run(i2i("data", "prepare", "horse2zebra", root / "ro", "--from", archive), as_nobody=True)
        assert_clean_failure(result, 1)
        (line,) = error_lines(result.stderr)
        assert "cannot write the dataset (Permission denied)" in line
        assert os.listdir(root / "ro") == []

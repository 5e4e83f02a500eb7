"""Reliability of ``i2i translate``: every input the issue lists that must work, every one that
must fail (one line each, the rest written, exit 1), and the environment failing under it:
permissions, a full disk, Ctrl-C, paths that would leave ``-o``, existing outputs."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_tiny_cyclegan, save_tiny
from faults import (
    SETPRIV,
    assert_clean_failure,
    assert_complete_images,
    env,
    error_lines,
    i2i,
    leftovers,
    make_bad_inputs,
    make_good_inputs,
    rgb_array,
    run,
    save_animation,
    shared_tmp,
)  # fmt: skip
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("model") / "tiny.safetensors", make_tiny_cyclegan())


def _out_names(folder: Path) -> set[str]:
    return {os.fsdecode(n) for n in os.listdir(os.fsencode(folder))}


def test_every_listed_input_works_and_every_bad_one_costs_one_line(model: Path, tmp_path: Path) -> None:
    good = make_good_inputs(tmp_path / "in")
    bad = make_bad_inputs(tmp_path / "in")
    out = tmp_path / "out"
    result = run(i2i("translate", tmp_path / "in", "-m", model, "-o", out, "--device", "cpu"))
    assert_clean_failure(result, 1)
    lines = error_lines(result.stderr)
    assert len(lines) == len(bad), result.stderr
    for name, words in bad.items():
        mine = [line for line in lines if f"/{name}:" in line]
        assert len(mine) == 1 and words in mine[0], (name, lines)
    assert f"{len(bad)} of {len(good) + len(bad)} inputs failed" in result.stderr
    # Every good file is written, upright, at its own size; nothing else is (no temp files).
    expected = {Path(name).stem + ".png": size for name, size in good.items()}
    assert _out_names(out) == set(expected)
    for name, size in expected.items():
        with Image.open(os.path.join(out, name)) as img:
            img.load()
            assert img.size == size, name
    assert not leftovers(out)


def test_bomb_limit_is_the_max_pixels_option_and_is_named(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    Image.fromarray(rgb_array(40, 40)).save(src)
    refused = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(tmp_path / "a"), "--max-pixels", "1599"])
    assert refused.exit_code == 1
    (line,) = error_lines(refused.stderr)
    assert str(src) in line and "over 1599 pixels" in line and "40x40 = 1600" in line
    allowed = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(tmp_path / "b"), "--max-pixels", "1600"])
    assert allowed.exit_code == 0, allowed.output
    assert (tmp_path / "b" / "big.png").is_file()
    bad = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(tmp_path / "c"), "--max-pixels", "-5"])
    assert bad.exit_code == 2 and "--max-pixels -5" in bad.output
    assert not (tmp_path / "c").exists()


def test_bomb_is_refused_by_default_before_decoding(model: Path, tmp_path: Path) -> None:
    make_bad_inputs(tmp_path / "in")
    result = runner.invoke(app, ["translate", str(tmp_path / "in" / "bomb.png"), "-m", str(model), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "over 89478485 pixels" in line and "20000x20000 = 400000000" in line


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_first_frame_by_default_every_frame_with_all_frames(model: Path, tmp_path: Path, ext: str) -> None:
    frames = [rgb_array(18, 22, seed) for seed in range(3)]
    anim = tmp_path / f"anim.{ext}"
    save_animation(anim, frames)
    # Each frame on its own, as a still PNG, is the reference.
    singles = tmp_path / "singles"
    for k in range(3):
        with Image.open(anim) as img:
            img.seek(k)
            (singles / f"anim_f{k:03d}.png").parent.mkdir(exist_ok=True)
            img.convert("RGB").save(singles / f"anim_f{k:03d}.png")
    ref = runner.invoke(app, ["translate", str(singles), "-m", str(model), "-o", str(tmp_path / "ref")])
    assert ref.exit_code == 0, ref.output

    first = runner.invoke(app, ["translate", str(anim), "-m", str(model), "-o", str(tmp_path / "first")])
    assert first.exit_code == 0, first.output
    assert os.listdir(tmp_path / "first") == ["anim.png"]
    still = tmp_path / "still.png"
    Image.fromarray(frames[0]).save(still)
    every = runner.invoke(app, ["translate", str(anim), str(still), "-m", str(model), "-o", str(tmp_path / "all"), "--all-frames"])
    assert every.exit_code == 0, every.output
    assert sorted(os.listdir(tmp_path / "all")) == [f"anim_f{k:03d}.png" for k in range(3)] + ["still.png"]
    for k in range(3):
        got = np.asarray(Image.open(tmp_path / "all" / f"anim_f{k:03d}.png"))
        want = np.asarray(Image.open(tmp_path / "ref" / f"anim_f{k:03d}.png"))
        assert np.array_equal(got, want), k
    assert np.array_equal(np.asarray(Image.open(tmp_path / "first" / "anim.png")), np.asarray(Image.open(tmp_path / "ref" / "anim_f000.png")))
    # Frames differ from one another (the negative control: not the first frame three times).
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "all" / "anim_f000.png")), np.asarray(Image.open(tmp_path / "all" / "anim_f001.png")))


def test_existing_outputs_are_kept_by_default_and_replaced_with_overwrite(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in" / "x.png"
    src.parent.mkdir()
    Image.fromarray(rgb_array(12, 12)).save(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.png").write_bytes(b"mine, keep me")
    kept = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(out)])
    assert kept.exit_code == 0, kept.output
    assert (out / "x.png").read_bytes() == b"mine, keep me"
    assert "kept 1 existing output" in kept.stderr and "--overwrite" in kept.stderr
    replaced = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert Image.open(out / "x.png").size == (12, 12)
    assert "kept" not in replaced.stderr


def test_a_glob_match_that_dot_dot_takes_outside_is_refused(model: Path, tmp_path: Path) -> None:
    Image.fromarray(rgb_array(8, 8)).save(tmp_path / "secret.png")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    pattern = str(tmp_path / "in") + "/*/../../*.png"
    out = tmp_path / "in" / "out"
    result = runner.invoke(app, ["translate", pattern, "-m", str(model), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert "outside" in result.output and "secret.png" in result.output
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["in", "secret.png"]
    suffix = runner.invoke(app, ["translate", str(tmp_path / "secret.png"), "-m", str(model), "-o", str(out), "--suffix", "/../../x"])
    assert suffix.exit_code == 2 and "--suffix" in suffix.output and not out.exists()


def test_a_folder_named_like_an_image_is_one_bad_input(model: Path, tmp_path: Path) -> None:
    (tmp_path / "in" / "folder.png").mkdir(parents=True)
    Image.fromarray(rgb_array(8, 8)).save(tmp_path / "in" / "good.png")
    result = runner.invoke(app, ["translate", str(tmp_path / "in") + "/*.png", "-m", str(model), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "folder.png: is a folder" in line
    assert os.listdir(tmp_path / "o") == ["good.png"]


def _injected_open(monkeypatch: pytest.MonkeyPatch, victim: str, code: int) -> None:
    """Make ``os.open`` of paths containing ``victim`` fail with errno ``code`` (in this process)."""
    real_open = os.open

    def fake(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if victim in os.fsdecode(path):
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def test_unreadable_file_injected(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.png", "locked.png", "z.png"):
        Image.fromarray(rgb_array(8, 8)).save(tmp_path / name)
    _injected_open(monkeypatch, "locked.png", errno.EACCES)
    result = runner.invoke(app, ["translate", str(tmp_path / "a.png"), str(tmp_path / "locked.png"), str(tmp_path / "z.png"), "-m", str(model), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "locked.png: cannot read (Permission denied)" in line
    assert sorted(os.listdir(tmp_path / "o")) == ["a.png", "z.png"]


@pytest.mark.skipif(SETPRIV is None, reason="needs setpriv to drop root privileges")
def test_unreadable_file_and_read_only_folder_as_unprivileged_user(model: Path) -> None:
    with shared_tmp() as root:
        (root / "in").mkdir()
        for name in ("a.png", "locked.png"):
            Image.fromarray(rgb_array(8, 8)).save(root / "in" / name)
        (root / "in" / "locked.png").chmod(0o000)
        (root / "in").chmod(0o755)
        ckpt = root / "model.safetensors"
        ckpt.write_bytes(model.read_bytes())
        ckpt.chmod(0o644)
        writable = root / "out"
        writable.mkdir(mode=0o777)
        writable.chmod(0o777)
        unreadable = run(i2i("translate", root / "in", "-m", ckpt, "-o", writable, "--device", "cpu"), as_nobody=True)
        assert_clean_failure(unreadable, 1)
        (line,) = error_lines(unreadable.stderr)
        assert "locked.png: cannot read (Permission denied)" in line
        assert os.listdir(writable) == ["a.png"]

        read_only = root / "ro"
        read_only.mkdir()
        read_only.chmod(0o555)
        blocked = run(i2i("translate", root / "in" / "a.png", "-m", ckpt, "-o", read_only, "--device", "cpu"), as_nobody=True)
        assert_clean_failure(blocked, 1)
        (line,) = error_lines(blocked.stderr)
        assert "a.png: cannot write (Permission denied)" in line
        assert os.listdir(read_only) == []


def test_read_only_output_folder_injected(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.png", "b.png"):
        Image.fromarray(rgb_array(8, 8)).save(tmp_path / name)
    out = tmp_path / "o"
    out.mkdir()
    real_open = open

    def refuse(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if "x" in mode or "w" in mode:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    import i2icli.imageio as imageio

    monkeypatch.setattr(imageio, "open", refuse, raising=False)
    result = runner.invoke(app, ["translate", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-m", str(model), "-o", str(out)])
    assert result.exit_code == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 2 and all("cannot write (Permission denied)" in line for line in lines)
    assert os.listdir(out) == []


def test_full_disk_costs_only_the_outputs_that_do_not_fit(model: Path, tmp_path: Path) -> None:
    # RLIMIT_FSIZE: the kernel fails any write past 16 KiB in the child, as a full disk would.
    (tmp_path / "in").mkdir()
    for k in range(3):
        Image.fromarray(rgb_array(8, 8, k)).save(tmp_path / "in" / f"small{k}.png")
    Image.fromarray(rgb_array(160, 160)).save(tmp_path / "in" / "large.png")  # ~77 KB as PNG
    out = tmp_path / "out"
    result = run(i2i("translate", tmp_path / "in", "-m", model, "-o", out, "--device", "cpu"), fsize=16 * 1024)
    assert_clean_failure(result, 1)
    (line,) = error_lines(result.stderr)
    assert "large.png: cannot write (File too large)" in line
    assert _out_names(out) == {"small0.png", "small1.png", "small2.png"}
    assert_complete_images(out)
    assert not leftovers(out)


def test_enospc_injected_leaves_no_partial_file(model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.png", "b.png"):
        Image.fromarray(rgb_array(8, 8)).save(tmp_path / name)
    real_open = open

    class Full(io.RawIOBase):
        def __init__(self, handle) -> None:  # type: ignore[no-untyped-def]
            self.handle = handle

        def writable(self) -> bool:
            return True

        def write(self, data) -> int:  # type: ignore[no-untyped-def]
            self.handle.write(bytes(data)[:10])  # a few bytes land, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self) -> None:
            self.handle.close()
            super().close()

    def opener(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        handle = real_open(file, mode, *args, **kwargs)
        return Full(handle) if "b.png" in str(file) and "x" in mode else handle

    import i2icli.imageio as imageio

    monkeypatch.setattr(imageio, "open", opener, raising=False)
    out = tmp_path / "o"
    result = runner.invoke(app, ["translate", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-m", str(model), "-o", str(out)])
    assert result.exit_code == 1
    (line,) = error_lines(result.stderr)
    assert "b.png: cannot write (No space left on device)" in line
    assert os.listdir(out) == ["a.png"]


def test_ctrl_c_mid_batch_keeps_finished_files_whole(model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for k in range(40):
        Image.fromarray(rgb_array(96, 96, k)).save(src / f"{k:02d}.png")
    reference = tmp_path / "ref"
    ref = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(reference)])
    assert ref.exit_code == 0, ref.output

    out = tmp_path / "out"
    cmd = i2i("translate", src, "-m", model, "-o", out, "--device", "cpu")
    # A shell's background job (`cmd &` in a script) starts with SIGINT ignored, and Python then
    # installs no Ctrl-C handler: give the child the default disposition, as a terminal would.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    deadline = time.monotonic() + 120

    def finished() -> int:  # outputs in place (not the hidden temp file of the one being written)
        return len([n for n in os.listdir(out) if not n.startswith(".")]) if out.is_dir() else 0

    while time.monotonic() < deadline and finished() < 3:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stdout + stderr
    written = sorted(os.listdir(out))
    assert 3 <= len(written) < 40, written
    assert not leftovers(out)
    for name in written:  # every finished file is complete and exactly the uninterrupted output
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name

    # Running again finishes the batch: the finished files are kept and said so.
    again = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(out)])
    assert again.exit_code == 0, again.output
    assert f"kept {len(written)} existing outputs" in again.stderr
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))


def test_debug_shows_the_traceback_that_is_hidden_otherwise(model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "zero.png"
    bad.write_bytes(b"")
    plain = run(i2i("translate", bad, "-m", model, "-o", tmp_path / "o", "--device", "cpu"))
    assert_clean_failure(plain, 1)
    debug = run(i2i("--debug", "translate", bad, "-m", model, "-o", tmp_path / "o", "--device", "cpu"))
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "empty file" in debug.stderr

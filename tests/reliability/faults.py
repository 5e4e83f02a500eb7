"""Helpers for the reliability suite: hostile inputs, real faults for child processes, and checks
that a command failed the way the promise says (one ``error:`` line per bad file, no traceback).

Faults are real where the kernel can give them to a child process: privileges dropped with
``setpriv`` (the suite runs as root, for whom permission bits mean nothing), a full disk through
``RLIMIT_FSIZE`` (writes beyond the limit fail with EFBIG instead of killing the process), SIGINT
and SIGKILL. In-process tests inject ``PermissionError`` / ``ENOSPC`` where a child cannot.
"""

from __future__ import annotations

import io
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
SETPRIV = shutil.which("setpriv")


# ----------------------------------------------------------------------------- child processes


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def i2i(*args: str | os.PathLike[str] | bytes) -> list[str | bytes]:
    """The command line of ``i2i ARGS`` run with this interpreter (bytes arguments stay bytes)."""
    return [sys.executable, "-m", "i2icli", *[a if isinstance(a, bytes) else os.fspath(a) for a in args]]


def _limits(fsize: int | None):  # type: ignore[no-untyped-def]
    def apply() -> None:
        if fsize is not None:
            # Ignoring SIGXFSZ turns "file too large" into an EFBIG error from write(), the way a
            # full disk turns into ENOSPC, instead of killing the process.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return apply


def run(
    cmd: list[str | bytes], *, as_nobody: bool = False, fsize: int | None = None, timeout: float = 300, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run a command; ``as_nobody`` drops to uid/gid 65534, ``fsize`` caps every file it writes."""
    if as_nobody:
        assert SETPRIV is not None
        cmd = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env(), cwd=cwd, timeout=timeout,
        preexec_fn=_limits(fsize) if fsize is not None else None,
    )  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int) -> None:
    """Exit ``code``, at least one ``error:`` line, and no Python traceback anywhere."""
    text = result.stdout + result.stderr
    assert result.returncode == code, (result.returncode, text)
    assert "Traceback" not in text, text
    assert error_lines(result.stderr), text


@contextmanager
def shared_tmp() -> Iterator[Path]:
    """A temporary folder that an unprivileged child can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="i2i-rel-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files an atomic write left behind (there must be none)."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".") and p.is_file()]


def assert_complete_images(folder: Path) -> list[Path]:
    """Every file under ``folder`` decodes completely; returns them."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for p in files:
        with Image.open(p) as img:
            img.load()
    return files


# ----------------------------------------------------------------------------- inputs that must work


def rgb_array(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_good_inputs(folder: Path) -> dict[str, tuple[int, int]]:
    """Every input the issue says must work, as ``{file name: expected (width, height) of the output}``.

    Names are str, or (for the non-UTF-8 one) the surrogate-escaped str of its bytes.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rgb = rgb_array(30, 40)
    expected: dict[str, tuple[int, int]] = {}

    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    expected["cmyk.jpg"] = (40, 30)
    Image.fromarray(np.random.default_rng(1).integers(0, 65536, (21, 17)).astype(np.uint16)).save(folder / "deep16.png")
    expected["deep16.png"] = (17, 21)
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(folder / "palette.png", transparency=0)
    expected["palette.png"] = (40, 30)
    la = np.dstack([rgb[..., 0], np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))])
    Image.fromarray(la, "LA").save(folder / "gray_alpha.png")
    expected["gray_alpha.png"] = (40, 30)
    rgba = np.dstack([rgb, np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1))])
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    expected["rgba.png"] = (40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif)
    expected["rotated.jpg"] = (30, 40)  # upright: width and height swap
    save_animation(folder / "anim.gif", [rgb_array(20, 24, s) for s in range(3)])
    expected["anim.gif"] = (24, 20)
    save_animation(folder / "anim_webp.webp", [rgb_array(18, 26, s) for s in range(3)])
    expected["anim_webp.webp"] = (26, 18)
    Image.fromarray(rgb[:1, :1]).save(folder / "one.png")
    expected["one.png"] = (1, 1)
    Image.fromarray(rgb_array(5000, 3, 2)).save(folder / "thin.png")  # 3 wide, 5000 tall
    expected["thin.png"] = (3, 5000)
    Image.fromarray(rgb).save(folder / "zèbre_🦓.png")
    expected["zèbre_🦓.png"] = (40, 30)
    # A Latin-1 name, invalid as UTF-8: Linux file names are bytes.
    raw = os.fsencode(folder) + b"/caf\xe9.png"
    Image.fromarray(rgb).save(os.fsdecode(raw))
    expected[os.fsdecode(b"caf\xe9.png")] = (40, 30)
    return expected


def save_animation(path: Path, frames: list[np.ndarray]) -> None:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0, lossless=True)


# ----------------------------------------------------------------------------- inputs that must fail


def _png_bytes(width: int, height: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb_array(height, width, seed)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb_array(height, width, 3)).save(buf, "JPEG")
    return buf.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A grey PNG whose header promises ``width`` x ``height`` but whose file is tiny (all-zero rows
    deflate to almost nothing): the classic decompression bomb."""
    raw = zlib.compress(b"\x00" * (width + 1) * min(height, 64), 9)  # only the first rows are real

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


# (file name, how to make it, words the error line must hold)
BAD_FILES: list[tuple[str, object, str]] = [
    ("zero.png", lambda p: p.write_bytes(b""), "empty file"),
    ("cut.png", lambda p: p.write_bytes(_png_bytes(48, 48)[:200]), "truncated or corrupt"),
    ("cutj.jpg", lambda p: p.write_bytes(_jpeg_bytes(48, 48)[:300]), "truncated or corrupt"),
    ("notes.jpg", lambda p: p.write_text("shopping list:\n- milk\n"), "looks like text"),
    ("page.png", lambda p: p.write_text("<!DOCTYPE html><html><body>404</body></html>\n"), "looks like HTML"),
    ("bomb.png", lambda p: p.write_bytes(bomb_png(20000, 20000)), "400000000"),
    ("loop.png", lambda p: os.symlink(p.name, p), "symbolic link loop"),
    ("gone.png", lambda p: os.symlink("nowhere.png", p), "broken symbolic link"),
    ("fifo.png", lambda p: os.mkfifo(p), "not a regular file"),
]


def make_bad_inputs(folder: Path) -> dict[str, str]:
    """The inputs that must fail, as ``{file name: words its error line holds}``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, make, words in BAD_FILES:
        make(folder / name)  # type: ignore[operator]
        out[name] = words
    return out

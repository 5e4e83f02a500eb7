"""Fetch dataset archives over HTTP(S) and unpack them safely.

Only the standard library does the network work (``urllib``), so downloading adds no dependency.
A download goes to ``DEST.part`` first and is renamed once complete and verified; an interrupted
download resumes from the ``.part`` file with an HTTP ``Range`` request. A JSON lock file remembers
the sha256 of every archive fetched into an output folder, so a later download of the same file
(from a mirror, or after the upstream file changed) is refused when its bytes differ.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import posixpath
import secrets
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from i2icli.errors import InputError, ResolveError, UsageError

LOCK_NAME = ".i2i-data.lock.json"
_CHUNK = 1 << 16
_USER_AGENT = "i2icli-data/1"

# A progress callback receives (bytes done so far, total bytes or None when the server does not say).
ProgressFn = Callable[[int, int | None], None]


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large archives do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Download with resume
# ---------------------------------------------------------------------------------------------


def download(
    url: str, dest: Path, *, sha256: str | None = None, lock_file: Path | None = None, progress: bool | None = None,
    retries: int = 3, timeout: float = 60.0, record: bool = True,
) -> Path:  # fmt: skip
    """Download ``url`` to ``dest`` and return ``dest``.

    Resumes from ``dest.part`` when one exists; an interrupted transfer is retried (resuming)
    up to ``retries`` times. ``sha256`` pins the expected hash; ``lock_file`` records the hash
    of the first download of ``dest.name`` and checks later ones against it. A file that fails a
    check is kept as ``dest.bad`` for inspection. ``progress``: None shows a bar only when stderr
    is a terminal. An existing ``dest`` is verified and reused without a request. ``record=False``
    checks against the lock file without adding to it (the caller records once the file proved usable).
    """
    dest = Path(dest)
    _normalise_hash(sha256, url)  # refuse a malformed hash before any bytes are fetched
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        show = sys.stderr.isatty() if progress is None else progress
        with _progress_bar(dest.name, show) as report:
            _fetch_with_retries(url, part, retries=retries, timeout=timeout, report=report)
        os.replace(part, dest)
    check_archive(dest, sha256=sha256, lock_file=lock_file, origin=url, record=record)
    return dest


def _normalise_hash(sha256: str | None, url: str) -> str | None:
    if sha256 is None:
        return None
    value = sha256.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise UsageError(f"--sha256 for {url}: expected 64 hex digits, got {sha256!r}")
    return value


def _fetch_with_retries(
    url: str, part: Path, *, retries: int, timeout: float, report: ProgressFn
) -> None:
    """Append to ``part`` until the server's full length has arrived; resume after a cut."""
    for _ in range(retries + 1):
        if _fetch_once(url, part, timeout=timeout, report=report):
            return
    size = part.stat().st_size if part.exists() else 0
    raise InputError(
        f"download of {url} was interrupted {retries + 1} times ({size} bytes kept in {part}); "
        "run the command again to resume"
    )


def _fetch_once(url: str, part: Path, *, timeout: float, report: ProgressFn) -> bool:
    """One request; returns True when the body arrived complete, False when it was cut short."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # The server cannot serve our range (the file changed or the part is bogus): start over.
            part.unlink()
            return False
        raise ResolveError(f"cannot download {url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ResolveError(f"cannot download {url}: {reason}") from None
    with response:
        start = _resume_offset(response, offset, url)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        return _copy_body(response, part, start=start, total=total, report=report)


def _resume_offset(response: http.client.HTTPResponse, offset: int, url: str) -> int:
    """Where the body starts in the file: ``offset`` for a 206, 0 for a 200 (Range ignored: restart)."""
    if response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")  # e.g. "bytes 100-199/200"
    try:
        first = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        first = -1
    if first != offset:
        raise ResolveError(f"cannot download {url}: asked for bytes from {offset}, got {content_range!r}")
    return first


def _copy_body(
    response: http.client.HTTPResponse, part: Path, *, start: int, total: int | None, report: ProgressFn
) -> bool:
    done = start
    with open(part, "r+b" if start else "wb") as f:
        f.seek(start)
        f.truncate()
        report(done, total)
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                done += len(chunk)
                report(done, total)
        except (OSError, http.client.HTTPException):
            return False  # connection reset mid-body: what arrived is kept for the next attempt
    # http.client returns a short body without an error when the peer closes early; compare lengths.
    return total is None or done >= total


def check_archive(
    path: Path,
    *,
    sha256: str | None,
    lock_file: Path | None,
    origin: str,
    quarantine: bool = True,
    name: str | None = None,
    record: bool = True,
) -> str:
    """Check ``path`` against ``sha256`` and against (or into) the lock file's record of ``name``
    (default ``path.name``); returns the file's sha256.

    The first file of a name seen with ``lock_file`` records its hash and ``origin`` there
    (unless ``record=False``: then see ``record_archive``).
    On a mismatch raises ``InputError``; with ``quarantine`` the file is first renamed to ``.bad``.
    """
    expected = _normalise_hash(sha256, origin)
    actual = sha256_file(path)
    if expected is not None and actual != expected:
        _reject(path, against="--sha256", expected=expected, actual=actual, quarantine=quarantine)
    if lock_file is None:
        return actual
    key = name or path.name
    lock = _read_lock(lock_file)
    recorded = lock.get(key, {}).get("sha256")
    if recorded is None and record:
        lock[key] = {"origin": origin, "sha256": actual}
        _write_lock(lock_file, lock)
    elif recorded is not None and recorded != actual:
        _reject(path, against=str(lock_file), expected=recorded, actual=actual, quarantine=quarantine)
    return actual


def record_archive(name: str, sha256: str, *, lock_file: Path, origin: str) -> None:
    """Pin ``name`` to ``sha256`` in the lock file unless it is pinned already. Called once an
    archive has been unpacked successfully, so a truncated first download is never pinned."""
    lock = _read_lock(lock_file)
    if name not in lock:
        lock[name] = {"origin": origin, "sha256": sha256}
        _write_lock(lock_file, lock)


def recorded_sha256(lock_file: Path, name: str) -> str | None:
    """The sha256 the lock file recorded for the first file called ``name``, or None."""
    return _read_lock(lock_file).get(name, {}).get("sha256")


def forget(lock_file: Path, name: str) -> bool:
    """Drop the lock file's record of ``name`` (the next download records afresh); True if one existed."""
    lock = _read_lock(lock_file)
    if lock.pop(name, None) is None:
        return False
    _write_lock(lock_file, lock)
    return True


def _reject(path: Path, *, against: str, expected: str, actual: str, quarantine: bool) -> None:
    kept = path
    if quarantine:
        kept = path.with_name(path.name + ".bad")
        os.replace(path, kept)
    raise InputError(
        f"{path.name}: sha256 mismatch with {against}: expected {expected[:12]}..., got {actual[:12]}... "
        f"(file kept as {kept})"
    )


def _read_lock(lock_file: Path) -> dict[str, dict[str, str]]:
    if not lock_file.exists():
        return {}
    try:
        data = json.loads(lock_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{lock_file}: cannot read lock file ({e})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise InputError(f"{lock_file}: lock file has no 'files' table")
    return files


def _write_lock(lock_file: Path, files: dict[str, dict[str, str]]) -> None:
    # Write-then-rename (a unique temp name, so two processes never share one) so that a crash
    # never leaves a half-written lock that would block later runs.
    tmp = lock_file.with_name(f"{lock_file.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(json.dumps({"version": 1, "files": files}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, lock_file)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _progress_bar(label: str, show: bool) -> Iterator[ProgressFn]:
    """Yield a progress callback: a rich bar on stderr when ``show``, otherwise a no-op."""
    if not show:
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress("[progress.description]{task.description}", *columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


# ---------------------------------------------------------------------------------------------
# Safe extraction
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """What extraction needs to know about one archive entry, whatever the archive format."""

    name: str
    kind: str  # "file" | "dir" | "symlink" | "hardlink" | "other"
    link: str = ""


def safe_extract(archive: Path, out: Path) -> list[str]:
    """Extract a zip or tar archive into ``out`` and return the member names.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    links that point outside ``out`` and special files (devices, fifos) are refused with an
    ``InputError`` naming the member.
    """
    archive, out = Path(archive), Path(out)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = [_zip_member(info, zf) for info in zf.infolist()]
            _check_members(members, archive)
            out.mkdir(parents=True, exist_ok=True)
            _extract_zip(zf, out, archive)
    elif _is_tar(archive):
        with tarfile.open(archive) as tf:
            infos = tf.getmembers()
            members = [_tar_member(info) for info in infos]
            _check_members(members, archive)
            out.mkdir(parents=True, exist_ok=True)
            _extract_tar(tf, infos, out)
    else:
        raise InputError(f"{archive}: not a zip or tar archive")
    return [m.name for m in members]


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


_S_IFMT, _S_IFLNK = 0o170000, 0o120000


def _zip_member(info: zipfile.ZipInfo, zf: zipfile.ZipFile) -> _Member:
    # Unix zips keep the file mode in the high 16 bits of external_attr; a symlink's target is its data.
    if (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
        return _Member(info.filename, "symlink", zf.read(info).decode("utf-8", "replace"))
    return _Member(info.filename, "dir" if info.is_dir() else "file")


def _tar_member(info: tarfile.TarInfo) -> _Member:
    if info.issym():
        return _Member(info.name, "symlink", info.linkname)
    if info.islnk():
        return _Member(info.name, "hardlink", info.linkname)
    if info.isdir():
        return _Member(info.name, "dir")
    return _Member(info.name, "file" if info.isfile() else "other")


def _check_members(members: list[_Member], archive: Path) -> None:
    def refuse(m: _Member, why: str) -> InputError:
        return InputError(f"{archive}: refusing member {m.name!r}: {why}")

    for m in members:
        if _escapes(m.name):
            raise refuse(m, "path is absolute or leaves the output folder")
        if m.kind == "other":
            raise refuse(m, "not a regular file, folder or link")
        if m.kind == "symlink":
            # A symlink's target is relative to the folder holding the link.
            target = posixpath.join(posixpath.dirname(m.name.replace("\\", "/")), m.link)
            if m.link.startswith(("/", "\\")) or _escapes(target):
                raise refuse(m, f"symlink to {m.link!r} points outside the output folder")
        if m.kind == "hardlink" and _escapes(m.link):
            raise refuse(m, f"hard link to {m.link!r} points outside the output folder")


def _escapes(name: str) -> bool:
    """True when a member path is absolute or normalises to somewhere above the archive root."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):  # "/x", "C:/x"
        return True
    if ".." in PurePosixPath(posix).parts:
        return True
    return posixpath.normpath(posix).startswith("..")


def _extract_zip(zf: zipfile.ZipFile, out: Path, archive: Path) -> None:
    root = out.resolve()
    for info in zf.infolist():
        target = out / info.filename
        # Re-check the real path at write time: an earlier (inside-pointing) symlink could redirect it.
        if not _inside(target.parent.resolve(), root):
            raise InputError(
                f"{archive}: refusing member {info.filename!r}: it would be written outside the output folder"
            )
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(zf.read(info).decode("utf-8"), target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)


def _extract_tar(tf: tarfile.TarFile, infos: list[tarfile.TarInfo], out: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        # Python's own "data" filter repeats our checks at write time (defence in depth).
        tf.extractall(out, members=infos, filter="data")
    else:
        tf.extractall(out, members=infos)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents

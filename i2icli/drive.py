"""Registry releases hosted on Google Drive (the MUNIT/UNIT authors' models): the download.

``download(entry, release, folder)``: Drive's large-file confirm page, the transfer itself (progress
bar on a terminal, resumable: an interrupted transfer leaves ``<file>XXXXXXXX.part`` and the next run
continues it) and Drive's own error pages are handled by the optional ``gdown`` package
(``pip install 'i2icli[drive]'``). ``sources.fetch_release`` does the rest as for any release: the
licence once, before the first download; the sha256 recorded on the first download and enforced
afterwards; conversion (``torch.load(weights_only=True)``), caching, deleting the file.

Every failure is one ``NotAvailableError`` line (exit 2) naming the model and what to do: no network,
Drive refusing the file (quota exceeded, permissions), an interrupted transfer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from i2icli.errors import NotAvailableError, UsageError
from i2icli.registry import Pretrained, Release

DRIVE_FILE_URL = "https://drive.google.com/uc?id={}"
INSTALL_HINT = "pip install 'i2icli[drive]'"
# Seconds to wait for Drive: to connect, and between bytes (a stalled transfer fails and resumes later).
TIMEOUT = (15.0, 120.0)


def require_gdown() -> ModuleType:
    """The gdown module, or a one-line install hint (exit 2)."""
    try:
        import gdown
    except ImportError:
        raise UsageError(f"Google Drive downloads need the gdown package: {INSTALL_HINT}") from None
    return gdown


def _manual(entry: Pretrained, release: Release) -> str:
    return f"or download {release.filename} from {release.url} yourself and run `i2i convert --model {entry.name} FILE`"


def partial_files(release: Release, folder: Path) -> list[Path]:
    """gdown's partial downloads of ``release`` in ``folder`` (``<filename>`` + 8 characters + ``.part``)."""
    n = len(release.filename) + 8 + len(".part")
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(release.filename) and p.name.endswith(".part") and len(p.name) == n]


def _file_id(gdown: ModuleType, entry: Pretrained, release: Release, quiet: bool) -> str:
    """The Drive id of the release file: given, or looked up by name in the release's Drive folder."""
    if not release.drive_folder:
        return release.drive_id
    listing = gdown.download_folder(
        id=release.drive_folder, skip_download=True, quiet=quiet, timeout=TIMEOUT, use_cookies=False
    )
    for item in listing or []:
        if Path(item.path).name == release.filename:
            return str(item.id)
    raise NotAvailableError(
        f"{entry.name}: {release.filename} is no longer in its Google Drive folder {release.url}; {_manual(entry, release)}"
    )


def download(entry: Pretrained, release: Release, folder: Path, *, progress: bool | None) -> tuple[Path, str]:
    """Download ``entry``'s Drive release into ``folder`` (resuming a partial one); (the file, its URL)."""
    gdown = require_gdown()
    import requests

    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / release.filename
    quiet = not (progress if progress is not None else sys.stderr.isatty())
    try:
        file_id = _file_id(gdown, entry, release, quiet)
        gdown.download(id=file_id, output=str(dest), quiet=quiet, resume=True, timeout=TIMEOUT, use_cookies=False)
    except gdown.exceptions.FileURLRetrievalError as err:
        # Drive answered with a page instead of the file: quota exceeded, permissions, removed.
        reason = " ".join(str(err).split())[:160]
        raise NotAvailableError(
            f"{entry.name}: Google Drive refused {release.filename} ({reason}); try again later (Drive limits "
            f"downloads per day), {_manual(entry, release)}"
        ) from None
    except gdown.exceptions.DownloadError as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise NotAvailableError(
            f"{entry.name}: the download of {release.filename} stopped ({first}); run the same command again to "
            f"resume it, {_manual(entry, release)}"
        ) from None
    except (requests.exceptions.RequestException, OSError) as err:
        kind = type(err).__name__
        partial = " (the part already downloaded is kept and resumed)" if partial_files(release, folder) else ""
        raise NotAvailableError(
            f"{entry.name} needs a one-time download of {release.filename} from Google Drive and it failed ({kind})"
            f"{partial}; check the network and run again, {_manual(entry, release)}"
        ) from None
    return dest, DRIVE_FILE_URL.format(file_id)

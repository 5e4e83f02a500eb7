"""Registry releases hosted on Google Drive (the MUNIT/UNIT authors' models), fetched in one command.

``fetch_drive(entry)``: Drive's large-file confirm page, the download itself (progress bar on a
terminal, resumable: an interrupted transfer leaves ``downloads/<file>XXXXXXXX.part`` and the next run
continues it) and Drive's own error pages are handled by the optional ``gdown`` package
(``pip install 'i2icli[drive]'``). The file then goes through ``releases.install``: its sha256 is
recorded on the first download and every later one must match it, it is converted by the method's
converter (``torch.load(weights_only=True)``), cached, and deleted. The licence is shown once, before
the first download of a model starts.

Every failure is one ``NotAvailableError`` line (exit 2) naming the model and what to do: offline
mode, no network, Drive refusing the file (quota exceeded, permissions), an interrupted transfer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

from i2icli.errors import NotAvailableError, UsageError
from i2icli.registry import Pretrained, Release

DRIVE_FILE_URL = "https://drive.google.com/uc?id={}"
DRIVE_FOLDER_URL = "https://drive.google.com/drive/folders/{}"
INSTALL_HINT = "pip install 'i2icli[drive]'"
# Seconds to wait for Drive: to connect, and between bytes (a stalled transfer fails and resumes later).
TIMEOUT = (15.0, 120.0)


def _gdown() -> ModuleType:
    try:
        import gdown
    except ImportError:
        raise UsageError(f"Google Drive downloads need the gdown package: {INSTALL_HINT}") from None
    return gdown


def licence_notice(entry: Pretrained) -> str:
    """The one-time notice shown before a first download."""
    from i2icli.sources import licence_line

    return f"{licence_line(entry)}; downloading it means accepting these terms"


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


def fetch_drive(entry: Pretrained, release: Release, *, offline: bool, progress: bool | None) -> Path:
    """Download ``entry``'s Drive release (resuming a partial one), convert, cache; return the checkpoint."""
    from i2icli.data.download import recorded_sha256
    from i2icli.sources import LOCK_NAME, downloads_dir, install, model_dir

    if offline:
        raise NotAvailableError(
            f"{entry.name} is not in the i2i cache ({model_dir(entry.name)}) and offline mode is on"
            f" (--offline or HF_HUB_OFFLINE=1); run it once online to download {release.filename} from Google Drive"
        )
    gdown = _gdown()
    import requests

    folder = downloads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / release.filename
    quiet = not (progress if progress is not None else sys.stderr.isatty())
    if recorded_sha256(folder / LOCK_NAME, release.filename) is None and not partial_files(release, folder):
        print(licence_notice(entry), file=sys.stderr)  # stderr: stdout may carry an image
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
    path = install(entry, [dest], origin=DRIVE_FILE_URL.format(file_id), downloaded=True, licence=False)
    dest.unlink(missing_ok=True)  # converted and cached; the lock file keeps the sha256
    return path

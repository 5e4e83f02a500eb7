"""Hugging Face Hub access: parse `hf-hub:` references, download and verify model files, push models.

This is the only module that imports `huggingface_hub`, and it does so inside functions so that importing
`i2icli.hub` stays cheap. Downloads go through `hf_hub_download`, which gives us the shared HF cache,
`HF_HUB_OFFLINE`, `HF_ENDPOINT`, revisions and tokens for free; this module only adds reference parsing,
optional sha256 pinning and one-line errors that say what to do.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from i2icli.errors import ResolveError

if TYPE_CHECKING:
    from huggingface_hub.errors import HfHubHTTPError

HUB_PREFIX = "hf-hub:"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
README_FILE = "README.md"

# One repo-id part ("org" or "name"): Hub rules are letters, digits, '.', '_', '-', starting and ending with a
# letter or digit, at most 96 characters, and no '--' or '..' (the cache uses '--' as its separator).
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID_RE = re.compile(rf"{_PART}/{_PART}")
# A branch, tag or commit sha; '/' is allowed for refs such as 'refs/pr/1'.
_REVISION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,254}[A-Za-z0-9])?")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_HASH_CHUNK = 1 << 20  # 1 MiB: hash large checkpoints without reading them into memory at once
_REF_FORM = f"expected '{HUB_PREFIX}ORG/NAME' or '{HUB_PREFIX}ORG/NAME@REVISION'"


@dataclass(frozen=True)
class HubRef:
    """A model on the Hub: `repo_id` is 'org/name'; `revision` is a branch, tag or commit sha (None = main)."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        suffix = f"@{self.revision}" if self.revision is not None else ""
        return f"{HUB_PREFIX}{self.repo_id}{suffix}"


def _repo_id_problem(repo_id: str) -> str | None:
    """Why `repo_id` is not a valid 'org/name' Hub id, or None when it is."""
    if not repo_id:
        return "the repo id is empty"
    if repo_id.count("/") != 1:
        return "the repo id must be exactly 'ORG/NAME' (one '/')"
    if not _REPO_ID_RE.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        return "the repo id may only use letters, digits, '.', '_', '-' (no '--' or '..', at most 96 per part)"
    return None


def _revision_problem(revision: str) -> str | None:
    """Why `revision` is not a usable revision name, or None when it is."""
    if not revision:
        return "the revision after '@' is empty"
    if not _REVISION_RE.fullmatch(revision) or ".." in revision or "//" in revision:
        return "the revision may only use letters, digits, '.', '_', '-', '/'"
    return None


def push_target_problem(repo_id: str, revision: str | None) -> str | None:
    """Why ``repo_id`` (and branch ``revision``) cannot be pushed to, or None when they look valid."""
    return _repo_id_problem(repo_id) or (None if revision is None else _revision_problem(revision))


def parse_hub_ref(ref: str) -> HubRef:
    """Parse 'hf-hub:org/name' or 'hf-hub:org/name@revision'; raise ResolveError quoting `ref` if malformed."""
    if not ref.startswith(HUB_PREFIX):
        raise ResolveError(f"bad Hub reference {ref!r}: {_REF_FORM}")
    body = ref[len(HUB_PREFIX) :]
    repo_id, at, revision = body.partition("@")
    problem = _repo_id_problem(repo_id)
    if problem is None and at:
        problem = "more than one '@'" if "@" in revision else _revision_problem(revision)
    if problem is not None:
        raise ResolveError(f"bad Hub reference {ref!r}: {problem}; {_REF_FORM}")
    return HubRef(repo_id=repo_id, revision=revision if at else None)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks so that large checkpoints are never held in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hub_errors() -> ModuleType:
    """The module holding huggingface_hub's exception classes (`errors` since 0.23, `utils` before)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # older huggingface_hub: the same classes live in utils
        from huggingface_hub import utils as errors
    return errors


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of huggingface_hub's HTTP client (httpx2 since 2.0, httpx in 1.x)."""
    try:
        import httpx2 as client
    except ImportError:  # huggingface_hub 1.x
        import httpx as client  # type: ignore[no-redef]
    return (client.TransportError, OSError)


def _is_offline() -> bool:
    """Whether huggingface_hub runs in offline mode (HF_HUB_OFFLINE, read by the library at import)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def env_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for offline mode now (huggingface_hub's spelling of true)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


PROBE_SECONDS = 1.5  # how long a Hub may take to accept a connection before it counts as unreachable


def unreachable(endpoint: str, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``endpoint`` (or the proxy that leads to it) cannot be reached within ``timeout`` seconds,
    or None when a TCP connection opens. Name lookup runs in a thread, since it has no timeout."""
    import os
    import socket
    import threading
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    proxy = os.environ.get("HTTPS_PROXY" if url.scheme == "https" else "HTTP_PROXY") or os.environ.get("ALL_PROXY")
    target = urlsplit(proxy if proxy and "://" in proxy else f"http://{proxy}") if proxy else url
    host, port = target.hostname or "", target.port or (443 if target.scheme == "https" else 80)
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except socket.gaierror:
            outcome.append(f"cannot resolve {host}")
        except OSError as e:
            outcome.append(f"{host}:{port}: {e.strerror or e}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"{host}:{port} did not answer within {timeout:g} s"


def _http_status(err: HfHubHTTPError) -> int | None:
    """HTTP status code carried by a huggingface_hub HfHubHTTPError (its response may be None in old versions)."""
    response = err.response
    return None if response is None else response.status_code


def _explain_hub_error(
    err: Exception, *, repo_id: str, filename: str, revision: str | None, endpoint: str, offline: bool
) -> ResolveError | None:
    """Turn a huggingface_hub download error into a one-line ResolveError, or None if it is not one we know."""
    errors = _hub_errors()
    what = f"{filename!r} from Hub repo {repo_id!r} at revision {revision or 'main'!r}"
    # Order matters: GatedRepoError subclasses RepositoryNotFoundError, and LocalEntryNotFoundError
    # subclasses EntryNotFoundError.
    if isinstance(err, errors.GatedRepoError):
        return ResolveError(
            f"Hub repo {repo_id!r} is gated: accept its terms on the Hub, then log in (`hf auth login`) or set HF_TOKEN"
        )
    if isinstance(err, errors.RepositoryNotFoundError):
        return ResolveError(
            f"Hub repo {repo_id!r} not found at {endpoint}: check the name, or log in / set HF_TOKEN if it is private"
        )
    if isinstance(err, errors.RevisionNotFoundError):
        return ResolveError(
            f"revision {revision!r} not found in Hub repo {repo_id!r}: check the branch, tag or commit after '@'"
        )
    if isinstance(err, errors.LocalEntryNotFoundError):
        if offline:
            return ResolveError(
                f"cannot load {what}: not in the local cache and HF_HUB_OFFLINE=1 is set;"
                " download it once online or unset HF_HUB_OFFLINE"
            )
        return ResolveError(
            f"cannot load {what}: the Hub at {endpoint} could not be reached (or is not a Hub) and the file is not"
            " in the local cache; check your connection, proxy and HF_ENDPOINT"
        )
    if isinstance(err, errors.EntryNotFoundError):
        return ResolveError(f"{filename!r} not found in Hub repo {repo_id!r} at revision {revision or 'main'!r}")
    if isinstance(err, errors.OfflineModeIsEnabled):
        return ResolveError(f"cannot load {what}: HF_HUB_OFFLINE=1 is set; unset it to download")
    if isinstance(err, errors.HfHubHTTPError):
        status = _http_status(err)
        if status in (401, 403):
            return ResolveError(
                f"access to Hub repo {repo_id!r} denied (HTTP {status}): log in (`hf auth login`) or set HF_TOKEN"
                " with read access"
            )
        return ResolveError(f"cannot download {what}: the Hub at {endpoint} answered HTTP {status}")
    if isinstance(err, errors.HFValidationError):
        return ResolveError(f"bad Hub download arguments for repo {repo_id!r}: {str(err).splitlines()[0]}")
    return None


def download_model_file(
    repo_id: str,
    filename: str = MODEL_FILE,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    sha256: str | None = None,
    endpoint: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> Path:
    """Download one file of a Hub repo into the HF cache (or find it there) and return its local path.

    `sha256` (hex) pins the file's content: a mismatch raises ResolveError. Hub failures raise ResolveError.
    `offline` looks in the cache only, as `HF_HUB_OFFLINE=1` does.
    """
    problem = _repo_id_problem(repo_id) or (None if revision is None else _revision_problem(revision))
    if problem is not None:
        raise ResolveError(f"bad Hub repo {repo_id!r} (revision {revision!r}): {problem}")
    expected = None if sha256 is None else sha256.strip().lower()
    if expected is not None and not _SHA256_RE.fullmatch(expected):
        raise ResolveError(f"bad sha256 {sha256!r} for {repo_id}/{filename}: expected 64 hex digits")

    from huggingface_hub import constants, hf_hub_download

    # huggingface_hub retries an unreachable Hub for ~25 s; a quick probe answers in ~1 s, and a
    # cached file is then used as offline mode would.
    why = None if offline or _is_offline() else unreachable(endpoint or constants.ENDPOINT)
    try:
        local = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            token=token,
            endpoint=endpoint,
            cache_dir=str(cache_dir) if cache_dir is not None else None,
            local_files_only=offline or why is not None,
        )
    except Exception as err:  # only huggingface_hub's own errors are translated; anything else propagates
        if why is not None and isinstance(err, _hub_errors().LocalEntryNotFoundError):
            raise ResolveError(
                f"cannot load {filename!r} from Hub repo {repo_id!r}: the Hub at {endpoint or constants.ENDPOINT} "
                f"cannot be reached ({why}) and the file is not in the local cache; check your connection, proxy "
                "and HF_ENDPOINT"
            ) from err
        explained = _explain_hub_error(
            err,
            repo_id=repo_id,
            filename=filename,
            revision=revision,
            endpoint=endpoint or constants.ENDPOINT,
            offline=offline or _is_offline(),
        )
        if explained is None:
            raise
        raise explained from err

    path = Path(local)
    if expected is not None:
        actual = sha256_file(path)
        if actual != expected:
            raise ResolveError(
                f"sha256 mismatch for {filename!r} from Hub repo {repo_id!r}: expected {expected[:12]}...,"
                f" got {actual[:12]}... (the file changed on the Hub or the pinned hash is wrong)"
            )
    return path


def push_model(
    folder: Path,
    repo_id: str,
    *,
    token: str | None = None,
    revision: str | None = None,
    private: bool = False,
) -> str:
    """Upload `model.safetensors`, `config.json` and README.md (if present) from `folder` in one commit
    (on branch `revision`, created from main when missing); return the commit url."""
    folder = Path(folder)
    problem = push_target_problem(repo_id, revision)
    if problem is not None:
        raise ResolveError(f"cannot push to Hub repo {repo_id!r}: {problem}")
    missing = [name for name in (MODEL_FILE, CONFIG_FILE) if not (folder / name).is_file()]
    if missing:
        raise ResolveError(f"cannot push {folder}: missing {', '.join(missing)} (save the model there first)")

    from huggingface_hub import CommitOperationAdd, HfApi

    errors = _hub_errors()
    files = [MODEL_FILE, CONFIG_FILE] + ([README_FILE] if (folder / README_FILE).is_file() else [])
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in files]
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id, operations, commit_message=f"Upload i2i model ({', '.join(files)})", revision=revision
        )
    except errors.LocalTokenNotFoundError as err:
        raise ResolveError(
            f"cannot push to Hub repo {repo_id!r}: no token; log in (`hf auth login`) or set HF_TOKEN"
        ) from err
    except errors.HfHubHTTPError as err:
        raise ResolveError(
            f"cannot push to Hub repo {repo_id!r}: the Hub answered HTTP {_http_status(err)};"
            " check that your token has write access"
        ) from err
    except _transport_errors() as err:
        raise ResolveError(
            f"cannot push to Hub repo {repo_id!r}: the Hub at {api.endpoint} could not be reached ({err});"
            " check your connection, proxy and HF_ENDPOINT"
        ) from err
    return commit.commit_url

"""Where a model's weights come from: resolving a reference, fetching it, installing and removing
the authors' releases in the i2i cache, and the card of any reference. The one module that turns
a reference into a local file.

References (``resolve``):
    ``hf-hub:org/name[@revision]``   a Hugging Face Hub repo holding model.safetensors + config.json
    an existing path                 a ``.safetensors`` file, or a folder holding ``model.safetensors``
    a ``PRETRAINED`` name or alias   an embedded default in ``weights/``, or weights ``fetch`` gets from
                                     the i2i cache, a Hub copy or the authors' release (below)

A string that looks like a path but does not exist is an error (never a silent registry lookup), and
an unknown name lists close matches. Torch is imported only where a checkpoint or a download is handled.

``fetch_release(entry)`` returns an i2i checkpoint for a ``registry.PRETRAINED`` entry, trying:

1. the i2i cache: ``cache_dir()/models/<name>/`` holds ``model.safetensors``, ``config.json`` and
   the card ``README.md``; a cached model is never converted again;
2. the converted copy on the Hub, where the entry names one (``repo_id``), through the HF cache;
3. the authors' own file, where it is a plain HTTP file (CycleGAN): downloaded once into
   ``cache_dir()/downloads/`` (resumable ``.part``, progress bar), converted by the method's
   converter (``torch.load(weights_only=True)``, strict load), cached, then deleted. The first
   download of a file records its sha256 in ``downloads/sha256.lock.json``; every later one must
   match it (the upstream file changed: refused in one line, the bytes kept as ``.bad``).

4. the authors' file on Google Drive (MUNIT, UNIT): ``i2icli.drive`` (optional ``gdown``), the same
   install path; a person may also download it and hand it to ``install`` with ``i2i convert --model NAME FILE``.

Everything else stops with a ``NotAvailableError`` (one line, exit code 2) that says what to do:
offline mode (``offline=True`` or ``HF_HUB_OFFLINE=1``) without a cached copy; no network; and entries
with nothing published yet, which say how to train them.
``$I2I_MODELS_URL`` replaces the base of every HTTP release URL (a mirror; the file name is kept).
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from i2icli.cards import model_card, read_metrics
from i2icli.errors import CheckpointError, I2IError, InputError, NotAvailableError, ResolveError, UnknownModelError
from i2icli.hub import download_model_file, env_offline, parse_hub_ref, sha256_file
from i2icli.registry import ALIASES, HUB_PREFIX, PRETRAINED, Pretrained, Release, lookup, weights_dir
from i2icli.runfolder import RUN_FILE, export_command

CACHE_ENV = "I2I_CACHE_DIR"
MIRROR_ENV = "I2I_MODELS_URL"
LOCK_NAME = "sha256.lock.json"
MODEL_FILE = "model.safetensors"
CARD_FILE = "README.md"


def cache_dir() -> Path:
    """The i2i cache: ``$I2I_CACHE_DIR``, else ``$XDG_CACHE_HOME/i2i``, else ``~/.cache/i2i``."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "i2i"


def model_dir(name: str) -> Path:
    """Where the converted model ``name`` is cached (whether or not it is there)."""
    return cache_dir() / "models" / name


def downloads_dir() -> Path:
    return cache_dir() / "downloads"


def cached_file(entry: Pretrained) -> Path | None:
    """The cached ``model.safetensors`` of ``entry``, or None."""
    path = model_dir(entry.name) / MODEL_FILE
    return path if path.is_file() else None


def release_url(release: Release) -> str:
    """The release's file URL, its base replaced by ``$I2I_MODELS_URL`` when set."""
    base = os.environ.get(MIRROR_ENV)
    return f"{base.rstrip('/')}/{release.filename}" if base else release.url


def _say(message: str) -> None:
    """A notice for the person at the terminal (stderr; stdout may carry an image)."""
    print(message, file=sys.stderr)


def licence_line(entry: Pretrained) -> str:
    """``NAME: licence ...`` with its note (for NVIDIA's releases: non-commercial use only)."""
    note = f" ({entry.license_note})" if entry.license_note else ""
    return f"{entry.name}: licence {entry.license}{note}"


# ---------------------------------------------------------------------------------------------
# Resolve
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """Where a reference points. ``path`` is set for local files; ``fetch`` gets the others:
    ``hub`` refs through the HF cache, ``registry`` entries (``name``) through ``fetch_release``."""

    ref: str
    kind: Literal["local", "hub", "embedded", "registry"]
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None
    filename: str = "model.safetensors"
    sha256: str | None = None
    name: str | None = None  # the registry name, for ``registry`` and ``embedded``


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.startswith((".", "~")) or bool(Path(ref).suffix)


def _local(ref: str, path: Path) -> Resolved:
    if path.is_dir():
        inner = path / "model.safetensors"
        if inner.is_file():
            return Resolved(ref, "local", path=inner)
        if (path / RUN_FILE).is_file():  # a training run: its exported model
            if (path / "model" / "model.safetensors").is_file():
                return Resolved(ref, "local", path=path / "model" / "model.safetensors")
            raise ResolveError(
                f"{ref}: a training run without an exported model yet; export its last checkpoint with "
                f"`i2i export-checkpoint {ref}` or finish it with `i2i train --resume {ref}`"
            )
        raise ResolveError(f"{ref}: folder has no model.safetensors")
    export = export_command(path)
    if export is not None:
        raise ResolveError(f"{ref}: a training checkpoint (optimiser state and all), not a model; export it with {export}")
    if path.suffix in (".pth", ".pt", ".ckpt"):
        raise ResolveError(
            f"{ref}: a PyTorch pickle, not an i2i checkpoint; convert it first with `i2i convert --from METHOD {ref}`"
        )
    if path.suffix != ".safetensors":
        raise ResolveError(f"{ref}: not a .safetensors checkpoint or a model folder")
    return Resolved(ref, "local", path=path)


def resolve(ref: str) -> Resolved:
    """Turn a model reference into a ``Resolved`` source (no download happens here)."""
    ref = ref.strip()
    if not ref:
        raise UnknownModelError("empty model reference")
    if ref.startswith(HUB_PREFIX):
        hub = parse_hub_ref(ref)
        return Resolved(ref, "hub", repo_id=hub.repo_id, revision=hub.revision)
    path = Path(ref).expanduser()
    entry = lookup(ref)
    # A dataset folder called like a model ("horse2zebra/" beside "--model horse2zebra") is not a model.
    dataset_folder = entry is not None and path.is_dir() and not (path / "model.safetensors").exists()
    if path.exists() and not dataset_folder:
        return _local(ref, path)
    if entry is None:
        if _looks_like_path(ref):
            raise UnknownModelError(f"{ref}: no such file or folder (for a Hub model write hf-hub:org/name)")
        close = difflib.get_close_matches(ref, [*PRETRAINED, *ALIASES], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(PRETRAINED)}"
        raise UnknownModelError(f"unknown model {ref!r}{hint} (see `i2i models list`)")
    if entry.local is not None:
        local = weights_dir() / entry.local
        if not local.is_file():
            raise ResolveError(f"{ref}: embedded weights {local} are missing (a partial install? reinstall i2icli)")
        return Resolved(ref, "embedded", path=local, sha256=entry.sha256, name=entry.name)
    return Resolved(ref, "registry", name=entry.name)


def fetch(resolved: Resolved, *, token: str | bool | None = None, offline: bool = False) -> Path:
    """Local path of the checkpoint file, downloading it when needed and allowed.

    Hub weights come through the HF cache; registry entries from the i2i cache, their Hub copy or
    the authors' release (``fetch_release``). ``offline`` (or ``HF_HUB_OFFLINE=1``) uses caches only.
    """
    if resolved.path is not None:
        if resolved.sha256:
            actual = sha256_file(resolved.path)
            if actual != resolved.sha256:
                raise ResolveError(
                    f"{resolved.path}: sha256 mismatch (expected {resolved.sha256[:12]}..., got {actual[:12]}...)"
                )
        return resolved.path
    if resolved.kind == "registry":
        assert resolved.name is not None
        return fetch_release(PRETRAINED[resolved.name], token=token, offline=offline)
    assert resolved.repo_id is not None
    return download_model_file(
        resolved.repo_id, resolved.filename, revision=resolved.revision, token=token, sha256=resolved.sha256,
        offline=offline,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Fetch
# ---------------------------------------------------------------------------------------------


def fetch_release(
    entry: Pretrained, *, token: str | bool | None = None, offline: bool = False, progress: bool | None = None
) -> Path:
    """The local checkpoint of ``entry``: cached, from its Hub copy, or downloaded and converted once."""
    offline = offline or env_offline()
    cached = cached_file(entry)
    if cached is not None:
        return cached
    if entry.repo_id is not None:
        try:
            return _hub_copy(entry, token=token, offline=offline)
        except ResolveError:
            if offline or entry.release is None or entry.release.hosting != "http":
                raise
            # Hub unreachable or the copy withdrawn: the authors' file is the fallback.
    release = entry.release
    if release is None:
        raise NotAvailableError(_not_published(entry))
    if release.hosting == "manual":
        raise NotAvailableError(manual_steps(entry))
    if release.hosting == "drive":
        return _drive_install(entry, release, offline=offline, progress=progress)
    url = release_url(release)
    if offline:
        raise NotAvailableError(
            f"{entry.name} is not in the i2i cache ({model_dir(entry.name)}) and offline mode is on"
            f" (--offline or HF_HUB_OFFLINE=1); run it once online to download {release.filename} from {url}"
        )
    return _download_and_install(entry, release, url, progress=progress)


def _hub_copy(entry: Pretrained, *, token: str | bool | None, offline: bool) -> Path:
    assert entry.repo_id is not None
    return download_model_file(
        entry.repo_id, entry.filename, revision=entry.revision, token=token, sha256=entry.sha256, offline=offline
    )


def _not_published(entry: Pretrained) -> str:
    how = f"train it yourself: {entry.recipe}" if entry.recipe else "train one yourself with `i2i train`"
    return (
        f"{entry.name}: its Hub copy is not yet published; {how};"
        " or point --model at a Hub repo you trust (hf-hub:ORG/NAME)"
    )


def manual_steps(entry: Pretrained) -> str:
    """The exact steps for a release i2i cannot download itself (Google Drive), as one line."""
    release = entry.release
    assert release is not None
    return (
        f"{entry.name} is released on Google Drive, which i2i cannot download for you:"
        f" 1) open {release.url} and download {release.filename};"
        f" 2) run `i2i convert --model {entry.name} PATH/TO/{release.filename}`;"
        f" then --model {entry.name} works, offline too. Licence: {entry.license}"
        + (f" ({entry.license_note})" if entry.license_note else "")
    )


def _drive_install(entry: Pretrained, release: Release, *, offline: bool, progress: bool | None) -> Path:
    """A Google Drive release (``i2icli.drive``), downloaded once and installed like any other."""
    from i2icli import drive
    from i2icli.data.download import recorded_sha256

    if offline:
        raise NotAvailableError(
            f"{entry.name} is not in the i2i cache ({model_dir(entry.name)}) and offline mode is on"
            f" (--offline or HF_HUB_OFFLINE=1); run it once online to download {release.filename} from Google Drive"
        )
    drive.require_gdown()  # the install hint before anything else is said
    folder = downloads_dir()
    if recorded_sha256(folder / LOCK_NAME, release.filename) is None and not drive.partial_files(release, folder):
        _say(f"{licence_line(entry)}; downloading it means accepting these terms")  # once: before the first download
    path, origin = drive.download(entry, release, folder, progress=progress)
    cached = install(entry, [path], origin=origin, downloaded=True, licence=False)
    path.unlink(missing_ok=True)  # converted and cached; the lock file keeps the sha256
    return cached


def _download_and_install(entry: Pretrained, release: Release, url: str, *, progress: bool | None) -> Path:
    from i2icli.data.download import download  # the i2icli.data package imports torch

    dest = downloads_dir() / release.filename
    try:
        download(url, dest, progress=progress)
    except ResolveError as err:  # no network, DNS, refused, HTTP error: nothing usable arrived
        raise NotAvailableError(
            f"{entry.name} needs a one-time download of {release.filename} and it failed ({err}); check the network"
            f" and run again, or fetch the file yourself and run `i2i convert --model {entry.name} FILE`"
        ) from None
    path = install(entry, [dest], origin=url, downloaded=True)
    dest.unlink(missing_ok=True)  # the converted copy is cached; the lock file keeps the sha256
    return path


# ---------------------------------------------------------------------------------------------
# Install (convert into the cache)
# ---------------------------------------------------------------------------------------------


def install(
    entry: Pretrained, files: Sequence[Path], *, origin: str | None = None, downloaded: bool = False, licence: bool = True
) -> Path:
    """Convert the authors' ``files`` of ``entry`` into the i2i cache and return the cached checkpoint.

    The release file's sha256 is checked against the one recorded for it (recorded here after the
    first successful conversion). ``downloaded``: the file is ours, so a mismatch renames it ``.bad``.
    ``licence``: end with the licence line (the Drive flow shows it before its first download instead).
    """
    from i2icli.data.download import check_archive, recorded_sha256  # torch, through i2icli.data

    release = entry.release
    if release is None:
        raise NotAvailableError(f"{entry.name} has no authors' release to convert ({_not_published(entry)})")
    if len(files) != 1:
        raise CheckpointError(f"{entry.name}: expected the one release file {release.filename}, got {len(files)} files")
    file = Path(files[0])
    origin = origin or str(file)
    lock = downloads_dir() / LOCK_NAME
    lock.parent.mkdir(parents=True, exist_ok=True)
    first = recorded_sha256(lock, release.filename) is None
    # A later copy must be the bytes recorded the first time, checked before any conversion; the
    # first is recorded only once it converts (a broken first download must not become the reference).
    verify = functools.partial(check_archive, file, sha256=None, lock_file=lock, origin=origin, name=release.filename)
    try:
        digest = None if first else verify(quarantine=downloaded)
    except InputError as err:
        raise InputError(
            f"{err}; the file differs from the first one seen. If you trust the new one:"
            f" `i2i models rm {entry.name} --forget-sha256`"
        ) from None
    final = model_dir(entry.name)
    stage = final.with_name(f".{entry.name}.{os.getpid()}.tmp")
    shutil.rmtree(stage, ignore_errors=True)
    from i2icli.convert import convert_files  # torch

    try:
        _, summary = convert_files(
            entry.method, [file], stage, domains=entry.domains, image_size=entry.image_size,
            provenance={"files": [release.filename], "release": release.url, "registry_name": entry.name, **_scale(release)},
        )  # fmt: skip
        if digest is None:
            digest = verify(quarantine=False)
        _write_card(entry, stage)
        if final.exists():  # another process cached it meanwhile: keep theirs
            shutil.rmtree(stage)
        else:
            os.replace(stage, final)
    except I2IError as err:
        shutil.rmtree(stage, ignore_errors=True)
        if downloaded and isinstance(err, CheckpointError) and file.exists():
            os.replace(file, file.with_name(file.name + ".bad"))
            raise CheckpointError(f"{err} (the download is kept as {file.name}.bad)") from None
        raise
    status = "recorded" if first else "verified"
    _say(
        f"{entry.name}: converted {release.filename} from {origin} ({summary}) and cached in {final};"
        f" its sha256 {status}: {digest[:16]}"
    )
    if licence:
        _say(licence_line(entry))
    return final / MODEL_FILE


def _scale(release: Release) -> dict[str, object]:
    """The authors' training resize as i2i preprocessing, so ``--size auto`` feeds that scale."""
    if release.trained_at is None:
        return {}
    n = release.trained_at
    return {"preprocess": {"mode": "resize_and_crop", "load_size": n, "crop_size": n}}


def _write_card(entry: Pretrained, folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / CARD_FILE).write_text(model_card(entry=entry, config=config), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Remove
# ---------------------------------------------------------------------------------------------


def remove(entry: Pretrained, *, forget_sha256: bool = False) -> list[str]:
    """Delete ``entry``'s cached model and any (partial) download; returns one line per thing done.

    The recorded sha256 of its release file stays (a later download is still checked) unless
    ``forget_sha256``: then the next download records a new one.
    """
    from i2icli.data.download import forget  # torch, through i2icli.data

    done: list[str] = []
    folder = model_dir(entry.name)
    if folder.exists():
        shutil.rmtree(folder)
        done.append(f"removed {folder}")
    if entry.release is not None:
        name = entry.release.filename
        # gdown's partial Drive downloads are NAME + 8 random characters + .part
        partial = sorted(downloads_dir().glob(f"{name}{'?' * 8}.part")) if downloads_dir().is_dir() else []
        for path in [*(downloads_dir() / n for n in (name, f"{name}.part", f"{name}.bad")), *partial]:
            if path.exists():
                path.unlink()
                done.append(f"removed {path}")
        lock = downloads_dir() / LOCK_NAME
        if forget_sha256 and lock.exists() and forget(lock, name):
            done.append(f"forgot the recorded sha256 of {name} ({lock})")
    return done


# ---------------------------------------------------------------------------------------------
# Cards
# ---------------------------------------------------------------------------------------------


def card_for(ref: str, *, offline: bool = False) -> str:
    """The card of any model reference. Registry entries never download for it: their card comes
    from the entry (and the cached config, once cached); embedded models have a written card."""
    resolved = resolve(ref)
    if resolved.kind == "embedded":
        assert resolved.path is not None
        written = resolved.path.parent / "README.md"
        if written.is_file():
            return written.read_text(encoding="utf-8")
    if resolved.kind == "registry":
        assert resolved.name is not None
        entry = PRETRAINED[resolved.name]
        cached = cached_file(entry)
        if cached is None:
            return model_card(entry=entry)
        config = json.loads((cached.parent / "config.json").read_text(encoding="utf-8"))
        return model_card(entry=entry, config=config, metrics=read_metrics(cached))
    from i2icli.checkpoint import read_config  # torch
    from i2icli.config import to_dict

    path = fetch(resolved, offline=offline)
    entry = PRETRAINED.get(resolved.name) if resolved.name else None
    return model_card(entry=entry, config=to_dict(read_config(path)), metrics=read_metrics(path), ref=ref)

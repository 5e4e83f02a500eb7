"""Checkpoint format v1: one self-describing ``model.safetensors``.

The file holds every tensor inference needs, keys prefixed by component (``gen_ab.``, ``gen_a.``, ...),
and its safetensors metadata holds:
    ``i2i_config``       the ``ModelConfig`` JSON (method, arch, domains, image size, training provenance)
    ``format_version``   "1"
    ``i2i_sha256``       sha256 over the stored tensors (key order, dtype, shape, bytes), so that a
                         corrupted byte fails the load instead of silently changing outputs
Folders (and Hub repos) also carry ``config.json`` beside it with the same config. Nothing is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from i2icli.config import ConfigError, from_dict, to_dict
from i2icli.errors import CheckpointError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelConfig:
    """What a checkpoint says about itself; ``arch`` is the method's arch dataclass as a dict."""

    method: str
    arch: dict[str, Any]
    domains: tuple[str, str] = ("a", "b")
    image_size: int = 256  # the training crop size; inference runs at native resolution
    format_version: int = FORMAT_VERSION
    normalization: str = "tanh, pixels scaled to [-1, 1] as (x / 255 - 0.5) / 0.5"
    training: dict[str, Any] = field(default_factory=dict)  # provenance: preset, steps, seed, data


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (key, dtype, shape, raw bytes) of every tensor, in sorted key order."""
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim too (BN counters)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_torch_load(path: str | Path, *, map_location: str | torch.device = "cpu") -> Any:
    """Read a ``torch.save`` file with ``weights_only=True``: tensors, numbers, strings and plain
    containers only. A pickle naming any other Python object (the way a malicious file runs code)
    is refused before that object is built; every failure is one ``CheckpointError`` line."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (the file is empty)")
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of files it is about to refuse; the error says it all.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found (no such file)") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file") from None
    except pickle.UnpicklingError as e:
        blocked = re.search(r"GLOBAL ([\w.]+)", str(e))
        if blocked:
            raise CheckpointError(
                f"{path}: not a loadable tensor-only PyTorch file: refused to unpickle {blocked.group(1)}, "
                "a Python object that could run code (i2i only reads tensors and plain containers)"
            ) from None
        if _starts_with(path, b"\x80"):  # the PROTO opcode: a pickle, of a kind the safe reader refuses
            raise CheckpointError(
                f"{path}: not a loadable tensor-only PyTorch file: a pickle holding more than tensors (refused unread)"
            ) from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (unsupported data{_looks_like(path)})") from None
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or _first_line(e)})") from None
    except (RuntimeError, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint, truncated or corrupt ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(prefix)) == prefix
    except OSError:
        return False


def _looks_like(path: Path) -> str:
    """``; looks like HTML`` for a saved error page, and so on (for messages)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
    except OSError:
        return ""
    if head.startswith((b"<!doctype html", b"<html")):
        return "; looks like HTML, e.g. an error page saved instead of the file"
    if not head:
        return "; the file is empty"
    return ""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def model_file(path: Path) -> Path:
    """A checkpoint path: ``X.safetensors`` itself, or ``X/model.safetensors`` for a folder."""
    return path if path.suffix == ".safetensors" else path / "model.safetensors"


def save_model(path: str | Path, model: nn.Module, config: ModelConfig, *, fp16: bool = False) -> Path:
    """Write ``model``'s state dict and ``config`` atomically; returns the ``.safetensors`` path.

    ``path`` ending in ``.safetensors`` writes that single file; otherwise ``path`` is a folder that
    receives ``model.safetensors`` and ``config.json``. ``fp16`` halves the file (floats stored as fp16).
    """
    from safetensors.torch import save

    path = Path(path)
    dtype = torch.float16 if fp16 else torch.float32
    tensors = {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
        for k, v in model.state_dict().items()
    }
    cfg_json = json.dumps(to_dict(config), sort_keys=True)
    meta = {"i2i_config": cfg_json, "format_version": str(FORMAT_VERSION), "i2i_sha256": tensor_digest(tensors)}
    target = model_file(path)
    try:
        atomic_write_bytes(target, _sorted_header(save(tensors, metadata=meta)))
        if target != path:
            atomic_write_bytes(path / "config.json", (json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n").encode())
    except OSError as e:
        # The temp file is gone and any previous checkpoint at ``target`` is untouched.
        raise CheckpointError(f"{e.filename or target}: cannot write ({e.strerror or e})") from None
    return target


# How to read older formats: ``_MIGRATIONS[v]`` turns a format-v config dict into a format-(v+1)
# one. Version 1 is the first format, so there is nothing to migrate yet and any other version is
# refused with its number named.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _check_version(version: object, where: Path) -> int:
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{where}: checkpoint format_version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: checkpoint format_version {version} is newer than this i2i reads ({FORMAT_VERSION}); "
            "upgrade i2icli to load it"
        )
    return version


def _sorted_header(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted. The library writes the metadata from a
    hash map whose order changes from call to call, so the same model would get another sha256 on
    every export; sorting makes an export a pure function of tensors and config. The header stays
    padded with spaces to a multiple of 8 bytes; tensor offsets are relative to the data, unchanged."""
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header + data[8 + n :]


def _parse_config(raw: str, where: Path) -> ModelConfig:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{where}: config is not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{where}: config is not a JSON object")
    version = _check_version(data.get("format_version"), where)
    while version < FORMAT_VERSION:
        migrate = _MIGRATIONS.get(version)
        if migrate is None:
            raise CheckpointError(
                f"{where}: checkpoint format_version {version} is older than this i2i reads ({FORMAT_VERSION}) "
                "and has no migration; convert or export the model again"
            )
        data = migrate(dict(data))
        version = _check_version(data.get("format_version"), where)
    try:
        return from_dict(ModelConfig, data)
    except ConfigError as e:
        raise CheckpointError(f"{where}: {e}") from None


def read_config(path: str | Path) -> ModelConfig:
    """The ``ModelConfig`` stored in a checkpoint's metadata, without reading any tensor."""
    from safetensors import safe_open

    file = model_file(Path(path))
    if not file.is_file():
        raise CheckpointError(f"{file}: no such checkpoint file")
    try:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise CheckpointError(f"{file}: not a readable safetensors file ({_first_line(e)})") from None
    if "i2i_config" not in meta:
        raise CheckpointError(f"{file}: safetensors file without an i2i config (not an i2i checkpoint?)")
    if "format_version" in meta:  # the file-level version, written beside the config's own
        _check_version(meta["format_version"], file)
    return _parse_config(meta["i2i_config"], file)


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file, with integrity checked."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(e)})") from None
    expected = meta.get("i2i_sha256")
    if expected is not None and tensor_digest(tensors) != expected:
        raise CheckpointError(f"{path}: tensor data does not match its recorded sha256 (file corrupted)")
    return tensors, meta


def load_state_strict(module: nn.Module, tensors: dict[str, torch.Tensor], where: Path) -> None:
    """``load_state_dict(strict=True)`` with errors that name the key, the shapes and the file."""
    own = module.state_dict()
    missing = [k for k in own if k not in tensors]
    unexpected = [k for k in tensors if k not in own]
    if missing:
        raise CheckpointError(f"{where}: missing key {missing[0]!r}" + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        raise CheckpointError(
            f"{where}: unexpected key {unexpected[0]!r}" + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
        )
    for k, v in own.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"{where}: key {k!r} has shape {tuple(tensors[k].shape)}, the config expects {tuple(v.shape)}"
            )
    cast = {k: t.to(own[k].dtype) if t.is_floating_point() else t for k, t in tensors.items()}
    module.load_state_dict(cast, strict=True)

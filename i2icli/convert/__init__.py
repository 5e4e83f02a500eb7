"""Official checkpoints -> i2i checkpoints: one small filter module per codebase, named by its
method's ``INFO.converter`` (a converter imports its method, never the reverse) and providing
``convert_official(files) -> Converted``; ``convert_files`` is the one path that builds, checks and saves."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Sequence

from i2icli.checkpoint import ModelConfig, load_state_strict, save_model
from i2icli.config import to_dict
from i2icli.errors import InputError, UsageError
from i2icli.imageio import describe_non_image, image_mode
from i2icli.methods import load_method, read_info
from i2icli.methods.base import Converted
from i2icli.runfolder import export_command

ConvertFn = Callable[[Sequence[Path]], Converted]


def load_converter(method: str) -> ConvertFn:
    """The ``convert_official`` of the module ``method``'s ``INFO.converter`` names."""
    info = read_info(method)
    if not info.converter:
        raise UsageError(f"--from {method}: this method has no converter for official checkpoints")
    convert: ConvertFn = importlib.import_module(info.converter).convert_official
    return convert


def convert_files(
    method: str,
    files: Sequence[Path],
    output: Path,
    *,
    domains: tuple[str, str] = ("a", "b"),
    image_size: int = 256,
    fp16: bool = False,
    provenance: Mapping[str, object] | None = None,
) -> tuple[Path, str]:
    """Convert ``files`` with ``method``'s converter, load the result strictly into a freshly built
    model, and save it to ``output``; returns (written path, one-line summary). ``provenance`` is
    recorded in the config's ``training`` (over the default: the method and the file paths)."""
    convert = load_converter(method)
    impl = load_method(method)
    for f in files:
        if Path(f).is_dir():
            raise UsageError(f"{f}: is a folder, not a weights file")
        if not Path(f).is_file():
            raise UsageError(f"{f}: no such file")
        check_official_file(Path(f), method, impl.info.convert_help)
    converted = convert(list(files))
    model = impl.build_model(converted.arch)
    load_state_strict(model, converted.state, Path(files[0]))
    config = ModelConfig(
        method=method, arch=to_dict(converted.arch), domains=domains, image_size=image_size,
        training={"converted_from": method, "files": [str(f) for f in files], **(provenance or {})},
    )  # fmt: skip
    return save_model(output, model.eval(), config, fp16=fp16), converted.summary


# How PyTorch files start: a zip archive (torch.save since 1.6) or a pickle (older releases).
_TORCH_STARTS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def check_official_file(path: Path, method: str, expected: str) -> None:
    """Refuse, in the command's own words, a file that is not an official PyTorch checkpoint: an i2i
    model, an i2i training checkpoint, an image, text or anything else that is not a torch file."""
    export = export_command(path)
    if export is not None:
        raise UsageError(f"{path}: an i2i training checkpoint, not an official one; export its model with {export}")
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return  # unreadable: the converter's reader names the problem
    if not head or head.startswith(_TORCH_STARTS):
        return  # an empty file is named by the converter's reader, a torch file is read there
    if path.suffix == ".safetensors" or _is_safetensors(head):
        raise UsageError(f"{path}: already an i2i checkpoint (safetensors); use it directly, e.g. --model {path}")
    raise UsageError(f"{path}: not a PyTorch checkpoint ({_what(path, head)}); --from {method} expects {expected}")


def _is_safetensors(head: bytes) -> bool:
    # An 8-byte little-endian header length, then the JSON header.
    return len(head) > 9 and head[8:10] == b'{"'


def _what(path: Path, head: bytes) -> str:
    try:
        image_mode(path)
    except InputError:
        return describe_non_image(head)
    return "an image"

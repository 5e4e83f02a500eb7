"""Official checkpoints -> i2i checkpoints: one small filter module per codebase, reached through
each method's ``Method.convert``; ``convert_files`` is the one path that builds, checks and saves."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Sequence


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
    from i2icli.checkpoint import ModelConfig, load_state_strict, save_model
    from i2icli.config import to_dict
    from i2icli.errors import UsageError
    from i2icli.methods import load_method

    impl = load_method(method)
    if impl.convert is None:
        raise UsageError(f"--from {method}: this method has no converter for official checkpoints")
    for f in files:
        if Path(f).is_dir():
            raise UsageError(f"{f}: is a folder, not a weights file")
        if not Path(f).is_file():
            raise UsageError(f"{f}: no such file")
    converted = impl.convert(list(files))
    model = impl.build_model(converted.arch)
    load_state_strict(model, converted.state, Path(files[0]))
    config = ModelConfig(
        method=method, arch=to_dict(converted.arch), domains=domains, image_size=image_size,
        training={"converted_from": method, "files": [str(f) for f in files], **(provenance or {})},
    )  # fmt: skip
    return save_model(output, model.eval(), config, fp16=fp16), converted.summary

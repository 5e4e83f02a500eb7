"""Checks every command runs on its options before any work: a usage error (exit 2) names the
option and the accepted form, and nothing is created; an output location that cannot be written
is one line (exit 1), found once, before the first input is read. No torch import here."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from i2icli.errors import I2IError, UsageError


def at_least(minimum: float, **values: float | None) -> None:
    """Each option (keyword: its parameter name) must be >= ``minimum``; None means not given."""
    for name, value in values.items():
        if value is not None and value < minimum:
            raise UsageError(f"{flag(name)} {value}: must be at least {minimum:g}")


def positive(**values: float | None) -> None:
    """Each option must be > 0 (a rate, a scale)."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise UsageError(f"{flag(name)} {value}: must be greater than 0")


def positive_rates(config: dict, path: str = "") -> None:
    """Every learning rate in a resolved config (a field named ``lr``, at any depth) is
    > 0: the optimiser would refuse it only after the run folder exists."""
    for key, value in config.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            positive_rates(value, where)
        elif key == "lr" and isinstance(value, (int, float)) and not value > 0:
            raise UsageError(f"{where} = {value}: a learning rate must be greater than 0 (--lr or --set {where}=...)")


def flag(name: str) -> str:
    """The flag of a parameter name: ``max_steps`` -> ``--max-steps``."""
    return "--" + name.replace("_", "-")


def parse_domains(values: list[str] | tuple[str, ...] | str) -> tuple[str, str]:
    """``--domains horse,zebra`` (or the older two-value form, joined before parsing): two names.
    A name that begins with ``-`` is a flag the option swallowed, never a domain."""
    text = values if isinstance(values, str) else ",".join(values)
    names = [part.strip() for part in text.split(",")]
    if any(name.startswith("-") for name in names):
        raise UsageError(f"--domains {text}: give the two domain names, e.g. --domains horse,zebra (a flag is not a name)")
    if len(names) != 2 or not all(names):
        raise UsageError(f"--domains {text}: give two names separated by a comma, e.g. --domains horse,zebra")
    return names[0], names[1]


def join_domains(args: list[str]) -> list[str]:
    """Command-line arguments with ``--domains A B`` rewritten as ``--domains A,B``, so the option
    takes one value and can never swallow the next flag (``--domains horse --max-steps 2``)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        out.append(arg)
        if arg == "--domains" and i + 1 < len(args) and args[i + 1].startswith("-"):
            parse_domains(args[i + 1])  # raises: a flag right after --domains is never a name
        if arg == "--domains" and i + 2 < len(args) and _name_like(args[i + 1]) and _name_like(args[i + 2]):
            out.append(f"{args[i + 1]},{args[i + 2]}")
            i += 3
            continue
        i += 1
    return out


def _name_like(arg: str) -> bool:
    return not arg.startswith("-") and "," not in arg


def image_folder(option: str, folder: Path) -> None:
    """``folder`` exists, is a folder and holds at least one image file (by extension)."""
    from i2icli.listing import list_images

    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such folder"
        raise UsageError(f"{option} {folder}: {what}")
    if not list_images([str(folder)], recursive=True):
        raise UsageError(f"{option} {folder}: holds no image files (.png, .jpg, ...)")


def new_folder(option: str, folder: Path) -> None:
    """A folder the command will create or fill: it must not be an existing file, nor lie under one."""
    for path in (folder, *folder.parents):
        if path.exists():
            if not path.is_dir():
                where = "is an existing file" if path == folder else f"lies under {path}, which is a file"
                raise UsageError(f"{option} {folder}: {where}; give a folder")
            return


def writable_folder(option: str, folder: Path) -> None:
    """Prove that ``folder`` can be created (if missing) and written: one ``I2IError`` line (exit 1)
    when it cannot, before any input is read. Leaves nothing behind: the probe is a temporary entry
    in ``folder``, or in its nearest existing parent when ``folder`` does not exist yet."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(existing))
        probe = tempfile.mkdtemp(prefix=".i2i-write-test-", dir=existing)
        os.rmdir(probe)
    except OSError as e:
        raise I2IError(f"{option} {folder}: cannot write there ({e.strerror or e})") from None

"""Command-line inputs (files, folders, globs) expanded into image files, and header-only checks
over such a list."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

from i2icli.errors import I2IError, UsageError
from i2icli.imageio import GRAY_MODES, IMAGE_EXTENSIONS, image_mode


def images_are_gray(files: list[Path], limit: int = 64) -> bool:
    """Whether the images (up to ``limit``, spread over the list) are all single-channel; headers only.

    Gray with alpha counts as gray, palette images as colour. Unreadable files are skipped (training
    names them later); a list with nothing readable is not gray.
    """
    step = max(1, len(files) // limit)
    seen = False
    for path in files[::step][:limit]:
        try:
            mode = image_mode(path)
        except I2IError:
            continue
        if mode not in GRAY_MODES:
            return False
        seen = True
    return seen


def list_images(inputs: list[str], recursive: bool) -> list[tuple[Path, Path]]:
    """Expand files, folders and globs into sorted, deduplicated (path, relative_path) pairs.

    A folder yields its image-extension files (its whole tree when ``recursive``; hidden files and
    folders are skipped), each relative to that folder. A named file is kept whatever its extension
    and is relative to its own name. A glob (``*``, ``?``, ``[``; ``**`` needs ``recursive``) yields
    matching image-extension files, relative to the pattern's folder part before the first wildcard.
    Raises ``UsageError`` for a path that does not exist or a pattern that matches nothing.
    The order is that of the paths' POSIX text, the same on every OS (training indexes files by it).
    """
    pairs: dict[Path, tuple[Path, Path]] = {}
    for entry in inputs:
        for path, relative in _expand(entry, recursive):
            # os.path.realpath, unlike Path.resolve, does not raise on a symlink loop.
            pairs.setdefault(Path(os.path.realpath(path)), (path, relative))
    return sorted(pairs.values(), key=lambda pair: (pair[0].as_posix(), pair[1].as_posix()))


def _expand(entry: str, recursive: bool) -> Iterator[tuple[Path, Path]]:
    path = Path(entry)
    if path.is_dir():
        yield from _folder_images(path, recursive)
    elif path.exists() or path.is_symlink():
        # A named broken link or link loop is one bad input (reported when it is read), not a usage error.
        yield path, Path(path.name)
    elif _is_glob(entry):
        matches = _glob_images(entry, recursive)
        if not matches:
            raise UsageError(f"{entry}: no image files match this pattern")
        yield from matches
    else:
        raise UsageError(f"{entry}: no such file or folder")


def _is_glob(entry: str) -> bool:
    return any(ch in entry for ch in "*?[")


def _has_image_extension(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _folder_images(folder: Path, recursive: bool) -> Iterator[tuple[Path, Path]]:
    for root, dirs, files in os.walk(folder):
        # Hidden folders (.git, .ipynb_checkpoints) and files (macOS "._x.jpg" forks) are not data.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for file_name in sorted(files):
            path = Path(root) / file_name
            if not file_name.startswith(".") and _has_image_extension(path):
                yield path, path.relative_to(folder)


def _glob_images(pattern: str, recursive: bool) -> list[tuple[Path, Path]]:
    """Image-extension matches of ``pattern``; a folder named like an image is kept so that it is
    reported as a bad input instead of vanishing. Relative paths are normalised, and a match that
    ``..`` takes outside the pattern's folder is refused: its output would land outside ``-o``."""
    base = os.path.normpath(_glob_base(pattern))
    found: list[tuple[Path, Path]] = []
    for match in glob.glob(pattern, recursive=recursive):
        path = Path(match)
        if not _has_image_extension(path) or path.name.startswith("."):
            continue
        relative = os.path.relpath(os.path.normpath(match), base)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            raise UsageError(
                f"{match}: matched by {pattern!r} but outside its folder {base}, so its output would be "
                "written outside the output folder; name the file directly or start the pattern higher up"
            )
        found.append((path, Path(relative)))
    return found


def _glob_base(pattern: str) -> Path:
    """The folder part of a pattern before its first wildcard component ("." if none)."""
    parts = Path(pattern).parts
    literal = []
    for part in parts[:-1]:
        if _is_glob(part):
            break
        literal.append(part)
    return Path(*literal) if literal else Path(".")


def check_suffix(suffix: str, option: str = "--suffix") -> None:
    """An output-name suffix may not hold a path separator (it could move outputs out of ``-o``)."""
    if any(sep in suffix for sep in ("/", "\\", os.sep)) or "\x00" in suffix:
        raise UsageError(f"{option} {suffix!r}: must not contain a path separator")

"""Class labels of images: a CSV ``filename,label`` or a folder with one sub-folder per class.

Used by domain adaptation (UNIT da32 ``--labels-a``), by ``i2i eval adapt`` and (through
``read_label_rows``) by the evaluation of prepared datasets. Every problem is one line naming the
file (and row) and the problem.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from i2icli.errors import I2IError, UsageError
from i2icli.imageio import IMAGE_EXTENSIONS


def read_labels(path: str | Path, n_classes: int, *, option: str = "--labels", require_all: bool = True) -> dict[Path, int]:
    """``{image path: class}`` from ``path``.

    A CSV has rows ``filename,label`` (an optional ``filename,label`` header); names are relative
    to the CSV's folder and must exist. A folder holds sub-folders named 0..n_classes-1 with that
    class's images (searched recursively). ``require_all``: every class must have an image.
    """
    p = Path(path)
    labels: dict[Path, int] = {}
    if p.is_dir():
        for sub in sorted(d for d in p.iterdir() if d.is_dir()):
            label = _parse_label(sub.name, n_classes, f"{option} {p}: folder {sub.name!r}")
            for f in sorted(sub.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                    labels[f] = label
    elif p.is_file():
        for row_no, name, label in read_label_rows(p, f"{option} {p}", n_classes):
            file = p.parent / name
            if not file.is_file():
                raise UsageError(f"{option} {p}: row {row_no}: {name} does not exist (names are relative to the CSV's folder)")
            labels[file] = label
    else:
        raise UsageError(f"{option} {p}: no such file or folder")
    if not labels:
        raise UsageError(f"{option} {p}: no labelled images")
    missing = sorted(set(range(n_classes)) - set(labels.values()))
    if require_all and missing:
        raise UsageError(f"{option} {p}: class {missing[0]} has no labelled image (need all of 0..{n_classes - 1})")
    return labels


def read_label_rows(
    path: Path, where: str, n_classes: int | None = None, *, error: type[I2IError] = UsageError
) -> list[tuple[int, str, int]]:
    """(row number, name, class) of each row of a CSV of ``filename,label`` rows: an optional ``filename,label``
    header, blank rows skipped, exactly two fields, whole-number labels (in 0..n_classes-1 when
    ``n_classes`` is given). The one parser of label CSVs; callers decide what a name is relative to.
    A problem raises ``error`` naming ``where`` and the row."""
    rows: list[tuple[int, str, int]] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            for row_no, row in enumerate(csv.reader(fh), start=1):
                if not "".join(row).strip():
                    continue
                at = f"{where}: row {row_no}"
                if len(row) != 2:
                    raise error(f"{at}: expected 'filename,label', got {len(row)} fields")
                name, value = row[0].strip(), row[1].strip()
                if row_no == 1 and (name.lower(), value.lower()) == ("filename", "label"):
                    continue
                rows.append((row_no, name, _parse_label(value, n_classes, at, error)))
    except UnicodeDecodeError:
        raise error(f"{where}: not UTF-8 text") from None
    return rows


def _parse_label(text: str, n_classes: int | None, where: str, error: type[I2IError] = UsageError) -> int:
    try:
        label = int(text)
    except ValueError:
        raise error(f"{where}: label {text!r} is not a whole number") from None
    if n_classes is not None and not 0 <= label < n_classes:
        raise error(f"{where}: label {label} is outside 0..{n_classes - 1}")
    return label


def labels_for_files(labels: dict[Path, int], files: Sequence[Path], source: str, *, option: str = "--labels") -> list[int]:
    """Class of each training file (-1: unlabelled): by resolved path, else by file name."""
    by_path = {f.resolve(): v for f, v in labels.items()}
    by_name = {f.name: v for f, v in labels.items()}
    out = [by_path.get(f.resolve(), by_name.get(f.name, -1)) for f in files]
    if all(v < 0 for v in out):
        raise UsageError(f"{option} {source}: none of the {len(files)} training images has a label")
    return out

"""One module per paper; this tuple is the one list of them.

Each module declares ``INFO`` (torch-free, see ``info.py``) and ``METHOD`` (a ``base.Method``:
classes, builders, presets, test presets, converter). Adding a method = writing its module and
adding its name here; the registry, the CLI, the benchmark and ``tests/test_methods.py`` pick it up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from i2icli.methods.base import Method

METHOD_MODULES: tuple[str, ...] = ("cyclegan", "munit", "unit", "gcgan", "distancegan", "transgaga")
DEFAULT_METHOD = "cyclegan"  # `i2i train` without --method


def load_method(name: str) -> Method:
    """Import ``i2icli.methods.<name>`` (and torch) and return its ``METHOD``."""
    if name not in METHOD_MODULES:
        raise KeyError(name)
    method: Method = importlib.import_module(f"i2icli.methods.{name}").METHOD
    return method

"""The method table: which methods exist, and the one place a method name becomes its module.

Each method module declares ``INFO`` (torch-free, see ``info.py``) and ``METHOD`` (a ``base.Method``:
classes, builders, presets, test presets; its optional capabilities are the protocols of
``base.py``, declared in ``INFO.capabilities``). The built-in ones are listed here;
``register_method("pkg.module")`` adds another at run time. Either way the registry, the CLI, the
training run, the benchmark and ``tests/test_methods.py`` pick it up. This module imports no method
(names resolve through ``importlib`` on use) and no torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from i2icli.errors import ResolveError
from i2icli.methods.info import MethodInfo, parse_info

if TYPE_CHECKING:
    from i2icli.methods.base import Method

# Method name -> the module that declares it; ``register_method`` adds entries.
METHOD_MODULES: dict[str, str] = {
    name: f"{__name__}.{name}" for name in ("cyclegan", "munit", "unit", "gcgan", "distancegan", "transgaga")
}
DEFAULT_METHOD = "cyclegan"  # `i2i train` without --method


@cache
def _info_of(module: str) -> MethodInfo:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ResolveError(f"method module {module!r}: no such Python source file")
    return parse_info(Path(spec.origin))


def read_info(name: str) -> MethodInfo:
    """The ``INFO`` of the method called ``name``, read from its source without importing it."""
    info = _info_of(METHOD_MODULES[name])
    if info.name != name:
        raise ValueError(f"{METHOD_MODULES[name]}: INFO.name {info.name!r} differs from the method name {name!r}")
    return info


def method_info(name: str) -> MethodInfo:
    """``read_info`` for a name that may be unknown: the error lists the known methods."""
    if name not in METHOD_MODULES:
        raise ResolveError(f"method {name!r} is not available in this version (known: {', '.join(METHOD_MODULES)})")
    return read_info(name)


def load_method(name: str) -> Method:
    """Import the method's module (and torch) and return its ``METHOD``."""
    method: Method = importlib.import_module(METHOD_MODULES[name]).METHOD
    return method


def register_method(module: str) -> MethodInfo:
    """Add the method declared in ``module`` (an importable dotted name) to the table; returns its
    ``INFO``. The module is read, not imported, until the method is used."""
    info = _info_of(module)
    known = METHOD_MODULES.get(info.name)
    if known is not None and known != module:
        raise ValueError(f"method {info.name!r} is already registered by {known}")
    METHOD_MODULES[info.name] = module
    return info


def unregister_method(name: str) -> None:
    """Remove a method ``register_method`` added (built-in methods stay)."""
    if METHOD_MODULES.get(name) != f"{__name__}.{name}":
        METHOD_MODULES.pop(name, None)


class _Methods(Mapping[str, MethodInfo]):
    """Every method, built-in or registered, by name: its torch-free ``MethodInfo``."""

    def __getitem__(self, name: str) -> MethodInfo:
        if name not in METHOD_MODULES:
            raise KeyError(name)
        return read_info(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(METHOD_MODULES))

    def __len__(self) -> int:
        return len(METHOD_MODULES)


METHODS: Mapping[str, MethodInfo] = _Methods()

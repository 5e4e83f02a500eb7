"""The torch-free half of the method contract: what a method is called, what it can do, and which
method-specific command-line options it has.

Each method module declares ``INFO = MethodInfo(...)`` near its top, written with literals only
(strings, numbers, tuples and nested ``MethodOption(...)`` calls). ``read_info`` reads that
declaration from the module's source with ``ast`` instead of importing it, so ``i2i --help``,
``i2i models list`` and capability checks never import torch, and the description is written once,
in the method's own file. ``tests/test_methods.py`` checks that the parsed value equals the
imported one.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Literal


class Capability(str, Enum):
    TRANSLATE = "translate"
    BIDIRECTIONAL = "bidirectional"
    SAMPLE_STYLES = "sample-styles"
    INTERPOLATE = "interpolate"
    EXEMPLAR = "exemplar"
    ONNX = "onnx"  # ``i2i export``: the translation traces to an ONNX graph


OptionKind = Literal["path", "str", "int", "float", "bool"]


@dataclass(frozen=True)
class MethodOption:
    """A method-specific flag of ``i2i train`` that sets one field of the method's config.

    ``i2i train --method M --vgg-weights FILE`` is ``--set vgg_weights=FILE``; the flag given to
    a method that does not declare it is a usage error.
    """

    flag: str  # e.g. "--vgg-weights"
    field: str  # dotted config field it sets, e.g. "vgg_weights"
    help: str
    kind: OptionKind = "str"


@dataclass(frozen=True)
class MethodInfo:
    """A method as the registry and the CLI see it before anything heavy is imported."""

    name: str
    summary: str
    paper: str
    capabilities: tuple[str, ...]  # ``Capability`` values
    options: tuple[MethodOption, ...] = ()  # method-specific ``i2i train`` flags
    convert_help: str = ""  # what ``i2i convert --from NAME FILE...`` expects; "" when no converter
    one_sided: bool = False  # trains a single direction (the checkpoint records which)

    @property
    def caps(self) -> frozenset[Capability]:
        return frozenset(Capability(c) for c in self.capabilities)

    @property
    def converts(self) -> bool:
        return bool(self.convert_help)


_CONSTRUCTORS = {"MethodInfo": MethodInfo, "MethodOption": MethodOption}


def _evaluate(node: ast.expr, where: str) -> object:
    """A literal, or a ``MethodInfo``/``MethodOption`` call whose arguments are literals."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONSTRUCTORS:
        if node.args:
            raise ValueError(f"{where}: {node.func.id}(...) must use keyword arguments only")
        kwargs = {kw.arg: _evaluate(kw.value, where) for kw in node.keywords if kw.arg is not None}
        return _CONSTRUCTORS[node.func.id](**kwargs)
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(e, where) for e in node.elts)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"{where}: INFO must be written with literals only") from None


@cache
def read_info(module: str) -> MethodInfo:
    """The ``INFO`` declared in ``i2icli/methods/<module>.py``, read without importing it."""
    path = Path(__file__).with_name(f"{module}.py")
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "INFO" for t in targets) and stmt.value is not None:
            info = _evaluate(stmt.value, str(path))
            if not isinstance(info, MethodInfo):
                raise ValueError(f"{path}: INFO must be a MethodInfo(...)")
            if info.name != module:
                raise ValueError(f"{path}: INFO.name {info.name!r} differs from the module name")
            return info
    raise ValueError(f"{path}: no INFO = MethodInfo(...) declaration")

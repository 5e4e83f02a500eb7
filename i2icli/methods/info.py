"""The torch-free half of the method contract: what a method is called, what it can do, and which
method-specific command-line options it has.

Each method module declares ``INFO = MethodInfo(...)`` near its top, written with literals only
(strings, numbers, tuples and nested ``MethodOption(...)`` calls). ``parse_info`` reads that
declaration from the module's source with ``ast`` instead of importing it (``i2icli.methods.read_info``
finds the source by method name), so ``i2i --help``, ``i2i models list`` and capability checks never
import torch, and the description is written once, in the method's own file. ``tests/test_methods.py`` checks that the parsed value equals the
imported one, and that every declared capability is met by its protocol in ``base.py``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal


class Capability(str, Enum):
    """What a method can do beyond translating one way. Each optional one is a protocol in
    ``base.py`` (``CAPABILITY_PROTOCOLS``) that the method's model, or for ``stage-budgets`` its
    ``Method``, meets; inference and the CLI dispatch on the declaration, read here without torch."""

    TRANSLATE = "translate"
    BIDIRECTIONAL = "bidirectional"
    STYLES = "styles"  # content and style codes: prior styles, reference styles (``StyleModel``)
    LATENT_WALK = "latent-walk"  # one shared latent code to walk between two inputs (``LatentModel``)
    LANDMARKS = "landmarks"  # a global geometry of K points; never tiled (``LandmarkModel``)
    OPTIONAL_STYLE = "optional-style"  # a style model that supplies an input's style itself (``OwnStyleModel``)
    STAGE_BUDGETS = "stage-budgets"  # trained in stages that fit a shared step budget (``StageBudgets``)


# Multimodal commands and the capabilities that let a method run them (any one suffices).
COMMANDS: dict[str, frozenset[Capability]] = {
    "sample-styles": frozenset({Capability.STYLES}),
    "exemplar": frozenset({Capability.STYLES}),
    "interpolate": frozenset({Capability.STYLES, Capability.LATENT_WALK}),
}


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
    # The module whose ``convert_official(files) -> Converted`` reads official checkpoints, e.g.
    # "i2icli.convert.cyclegan" ("" when none). Converters import their method, never the reverse.
    converter: str = ""
    one_sided: bool = False  # trains a single direction (the checkpoint records which)

    @property
    def caps(self) -> frozenset[Capability]:
        return frozenset(Capability(c) for c in self.capabilities)

    def can(self, command: str) -> bool:
        """Whether the method runs the multimodal ``command`` (``COMMANDS``)."""
        return bool(COMMANDS[command] & self.caps)

    @property
    def converts(self) -> bool:
        return bool(self.converter)


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


def parse_info(path: Path) -> MethodInfo:
    """The ``INFO`` declared in the method module at ``path``, read without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for stmt in tree.body:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "INFO" for t in targets) and stmt.value is not None:
            info = _evaluate(stmt.value, str(path))
            if not isinstance(info, MethodInfo):
                raise ValueError(f"{path}: INFO must be a MethodInfo(...)")
            if info.converter and not info.convert_help:
                raise ValueError(f"{path}: INFO names a converter but no convert_help")
            return info
    raise ValueError(f"{path}: no INFO = MethodInfo(...) declaration")

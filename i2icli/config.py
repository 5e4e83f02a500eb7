"""Typed dataclass configs <-> plain dicts.

Every config in i2i is a frozen dataclass whose fields are JSON scalars, lists or nested config
dataclasses. ``from_dict`` refuses unknown keys so a typo in a config file or a ``--set`` never
passes silently, and ``to_dict`` gives the JSON stored in checkpoints and run folders.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config dict or ``field=value`` override does not fit its dataclass."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> nested dict of JSON values (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        elif isinstance(value, tuple):
            value = [to_dict(v) if dataclasses.is_dataclass(v) else v for v in value]
        out[f.name] = value
    return out


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; converts lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(a) for a in typing.get_args(tp))
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where=where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported field type {tp!r}")


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Build ``cls`` from ``data``; unknown keys and wrongly typed values raise ``ConfigError``."""
    types_ = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    prefix = f"{where}." if where else ""
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]!r} for {cls.__name__} "
            f"(known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(types_[k], v, f"{prefix}{k}") for k, v in data.items()}
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'a.b=3'`` -> (['a', 'b'], 3). Values are read as JSON when they parse, else as strings."""
    import json

    if "=" not in text:
        raise ConfigError(f"--set expects field=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(cfg: T, overrides: dict[str, Any] | list[str]) -> T:
    """Return a copy of ``cfg`` with ``field=value`` strings (or a nested dict) applied."""
    data = to_dict(cfg)
    if isinstance(overrides, dict):
        items = [(k.split("."), v) for k, v in _flatten(overrides)]
    else:
        items = [parse_override(t) for t in overrides]
    for path, value in items:
        node = data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"unknown config key {'.'.join(path)!r} for {type(cfg).__name__}")
            node = node[part]
        if path[-1] not in node:
            known = ", ".join(sorted(node))
            raise ConfigError(
                f"unknown config key {'.'.join(path)!r} for {type(cfg).__name__} (known: {known})"
            )
        node[path[-1]] = value
    return from_dict(type(cfg), data)


def override_keys(overrides: dict[str, Any] | list[str]) -> set[str]:
    """The dotted field names a nested dict or ``field=value`` strings set (``{"arch.ngf", ...}``)."""
    if isinstance(overrides, dict):
        return {k for k, _ in _flatten(overrides)}
    return {".".join(parse_override(t)[0]) for t in overrides}


def require(cfg: Any, names: Sequence[str], ok: Callable[[Any], bool], rule: str, prefix: str = "") -> None:
    """In a config's ``__post_init__``: a usage error naming the first field of ``names`` whose
    value fails ``ok``, e.g. ``require(self, ("dim", "n_res"), lambda v: v >= 1, "must be at least 1", "arch.")``."""
    from i2icli.errors import UsageError

    values = {f.name: v for f, v in zip(dataclasses.fields(cfg), dataclasses.astuple(cfg))}
    for name in names:
        if not ok(values[name]):
            raise UsageError(f"{prefix}{name} {values[name]}: {rule}")


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out

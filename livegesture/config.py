"""Frozen dataclass configs loaded from YAML/JSON with validation.

Configs are plain frozen dataclasses (typed, hashable, importable without any
framework). Files are YAML; unknown keys are an error that names the key, and
values are type-checked by pydantic.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from .errors import ConfigError

T = TypeVar("T")


def _check_keys(cls: type, data: Any, where: str) -> None:
    if not (dataclasses.is_dataclass(cls) and isinstance(data, dict)):
        return
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}unknown key(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
    hints = _type_hints(cls)
    for name, value in data.items():
        sub = hints.get(name)
        if dataclasses.is_dataclass(sub):
            _check_keys(sub, value, f"{where}{name}.")


def _type_hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build a (nested) config dataclass from a dict, checking keys and types."""
    data = data or {}
    _check_keys(cls, data, where)
    try:
        return TypeAdapter(cls).validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigError(f"{where}{loc}: {first['msg']} (got {first.get('input')!r})") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def load_config(cls: type[T], path: str | os.PathLike | None = None,
                overrides: dict[str, Any] | None = None) -> T:
    """Load `cls` from a YAML/JSON file (or defaults), then apply dotted `overrides`."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a config file must hold a mapping at the top level")
    apply_overrides(data, overrides or {})
    where = f"{path}: " if path is not None else ""
    return from_dict(cls, data, where)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted `overrides` (``{"fuse.steps": 200}``) in the nested dict `data`, in place."""
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def replace(cfg: T, **changes: Any) -> T:
    return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]

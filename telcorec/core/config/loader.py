"""The typed YAML loader: a mapping (a YAML file following `extends:`) into frozen dataclasses.

A config file may name a parent with `extends:` (relative to itself); mappings are merged key by
key, the child winning, so a child that sets one key of a mapping keeps the parent's others. A
key set to null (`weight: null` or `~`) removes what the parent set there: a setting falls back
to its code default, an entry of a free mapping (a column mapping) is gone. To replace a whole
inherited mapping, set each inherited key you do not want to null. (No custom YAML tag such as
`!replace`: the launcher and other tools read these files with plain `yaml.safe_load`.) Unknown keys and values of the wrong type are refused with a message
naming the full key, so a typo fails at start-up instead of silently using a default. Nothing
here knows telcorec's settings: each area declares its own dataclasses beside it in this package."""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from telcorec.core.exceptions import ConfigError


def check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}': {message}")


def coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        check(isinstance(value, dict), key, f"must be a mapping, got {type(value).__name__}")
        return build(tp, value, key)
    if origin is dict:
        check(isinstance(value, dict), key, "must be a mapping")
        _, value_tp = typing.get_args(tp)
        return {str(k): coerce(value_tp, v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        check(isinstance(value, (list, tuple)), key, "must be a list")
        (item_tp, _) = typing.get_args(tp)
        return tuple(coerce(item_tp, v, f"{key}[]") for v in value)
    if tp is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool), key,
               f"must be a number, got {value!r}")
        return float(value)
    if tp is int:
        check(isinstance(value, int) and not isinstance(value, bool), key,
               f"must be an integer, got {value!r}")
        return value
    if tp is str:
        check(isinstance(value, str), key, f"must be a string, got {value!r}")
        return value
    if tp is bool:
        check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if isinstance(tp, types.UnionType):
        return value
    raise ConfigError(f"config key '{key}': unsupported type {tp}")


def build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            full = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"config key '{full}' is unknown; allowed here: {sorted(names)}")
    kwargs = {k: coerce(hints[k], v, f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    return cls(**kwargs)


def merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`child` over `base` key by key: mappings merge recursively, null removes the key."""
    out = dict(base)
    for key, value in child.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = merge({}, value) if isinstance(value, dict) else value
    return out


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --conf with a file from conf/")
    check(path.resolve() not in seen, "extends", f"cycle through {path}")
    data = yaml.safe_load(path.read_text()) or {}
    check(isinstance(data, dict), str(path), "the file must hold a mapping")
    parent = data.pop("extends", None)
    base = {} if parent is None else read_yaml(path.parent / parent, seen + (path.resolve(),))
    return merge(base, data)

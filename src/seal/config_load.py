"""Filling the config dataclasses from YAML files and flags: unknown keys and wrong types are one clear error.

    values = merge(load_yaml("configs/rest-em-squad.yaml"), {"inner": {"epochs": 3}})
    config = from_dict(RunConfig, values).validate()
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from seal.errors import SealError


def checked(value: Any, hint: Any, where: str) -> Any:
    """`value` if it has the type `hint` (int for float is widened, nothing else is converted).

    >>> checked([0, 1], list[int], "inner.seeds")
    [0, 1]
    >>> checked(1, float, "inner.lr")
    1.0
    >>> checked("10", int, "inner.epochs")
    Traceback (most recent call last):
    seal.errors.SealError: inner.epochs must be an integer, not '10'
    >>> checked("q_proj", list[str], "inner.target_modules")
    Traceback (most recent call last):
    seal.errors.SealError: inner.target_modules must be a list of strings, not 'q_proj'
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return checked(value, inner[0] if len(inner) == 1 else Any, where)
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if origin is list:
        element = args[0] if args else Any
        if not isinstance(value, list):
            raise SealError(f"{where} must be a list of {names.get(element, 'values').split(' ', 1)[-1]}s, not {value!r}")
        return [checked(v, element, f"{where}[{i}]") for i, v in enumerate(value)]
    ok = {bool: isinstance(value, bool), int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool), str: isinstance(value, str)}
    if hint in ok:
        if not ok[hint]:
            raise SealError(f"{where} must be {names[hint]}, not {value!r}")
        return float(value) if hint is float else value
    return value


def from_dict(cls: type, values: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys by name and values by type.

    >>> from seal.config import InnerLoopConfig
    >>> from_dict(InnerLoopConfig, {"lr": 3e-4}).lr
    0.0003
    >>> from_dict(InnerLoopConfig, {"learning_rate": 1})
    Traceback (most recent call last):
    seal.errors.SealError: config: unknown key 'learning_rate' (known: rank, alpha, dropout, lr, epochs, ...)
    >>> from_dict(InnerLoopConfig, {"rank": 8.7})
    Traceback (most recent call last):
    seal.errors.SealError: config.rank must be an integer, not 8.7
    """
    if not isinstance(values, dict):
        raise SealError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            names = list(known)
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise SealError(f"{where}: unknown key {key!r} (known: {shown})")
        default = getattr(cls(), key) if _has_default(known[key]) else None
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise SealError(f"{where}.{key} must be a mapping of settings, not {value!r}")
            value = from_dict(type(default), value, f"{where}.{key}")
        else:
            value = checked(value, typing.get_type_hints(cls)[key], f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def _has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SealError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise SealError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise SealError(f"config file {path} must hold a mapping at the top level")
    return values


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge, `override` winning.

    >>> merge({"inner": {"lr": 1, "epochs": 2}}, {"inner": {"lr": 3}})
    {'inner': {'lr': 3, 'epochs': 2}}
    """
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out

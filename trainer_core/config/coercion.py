"""Turning config values from files and forms ("2e-5", "true", "{...}") into the fields' types."""

from __future__ import annotations

import contextlib
import enum
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from trainer_core.errors import ConfigError

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the field's declared type, or raise ConfigError saying what was expected."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(name, value, hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _coerce_enum(name, value, hint)
    if origin in (list, tuple):
        return _coerce_list(name, value)
    if origin is dict or hint is dict:
        return _coerce_dict(name, value)
    scalar = _SCALARS.get(hint)
    return scalar(name, value) if scalar else value


def _coerce_union(name: str, value: Any, hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    nullable = type(None) in typing.get_args(hint)
    empty = ("", "null") if str in args else ("", "none", "null")
    if isinstance(value, str) and value.strip().lower() in empty and nullable:
        return None
    if (
        isinstance(value, str)
        and value.strip().startswith(("{", "["))
        and (dict in args or typing.get_origin(args[0]) is dict)
    ):
        return _coerce_dict(name, value)
    for member in args:
        if member is bool and isinstance(value, bool):
            return value
        if isinstance(member, type) and isinstance(value, member) and not isinstance(value, bool):
            # Already the right type; a float still has to be finite.
            return _coerce_float(name, value) if member is float else value
    errors = []
    # Try the scalar members first so '3' becomes 3 for `int | str` fields.
    for member in sorted(args, key=lambda a: a is str):
        try:
            return coerce(name, value, member)
        except ConfigError as exc:
            errors.append(exc)
    raise errors[0]


def _coerce_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(name, f"expected true or false, got {value!r}")


def _coerce_int(name: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = None
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is not None and math.isfinite(number) and number.is_integer():
        return int(number)
    raise ConfigError(name, f"expected a whole number such as 8, got {value!r}")


def _coerce_float(name: str, value: Any) -> float:
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None:
        raise ConfigError(name, f"expected a number such as 0.1 or 2e-5, got {value!r}")
    # NaN and infinity parse as floats ("nan", YAML's .inf, JSON's NaN) but no training value can be
    # one: Trainer would run, log NaN losses and leave a useless checkpoint.
    if not math.isfinite(number):
        raise ConfigError(name, f"must be a finite number, got {value!r}; enter a real value such as 0.1")
    return number


def _coerce_str(name: str, value: Any) -> str:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(name, f"expected text, got {value!r}")


_SCALARS: dict[Any, Callable[[str, Any], Any]] = {
    bool: _coerce_bool,
    int: _coerce_int,
    float: _coerce_float,
    str: _coerce_str,
}


def _coerce_enum(name: str, value: Any, hint: type[enum.Enum]) -> Any:
    if isinstance(value, hint):
        return value
    choices = [m.value for m in hint]
    if str(value) in choices:
        return str(value)
    raise ConfigError(name, f"{value!r} is not one of {', '.join(map(str, choices))}")


def _coerce_list(name: str, value: Any) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise ConfigError(name, f"expected a list, got {value!r}")


def _coerce_dict(name: str, value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(name, f"expected a JSON object such as {{}}, got {value!r}") from exc
    if not isinstance(value, dict):
        raise ConfigError(name, f"expected a mapping, got {value!r}")
    return value

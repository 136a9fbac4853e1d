"""Turning config values from files and forms ("2e-5", "true", "{...}") into the fields' types."""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

from trainer_core.errors import ConfigError

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the field's declared type, or raise ConfigError saying what was expected."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        empty = ("", "null") if str in args else ("", "none", "null")
        if isinstance(value, str) and value.strip().lower() in empty and type(None) in typing.get_args(hint):
            return None
        if (
            isinstance(value, str)
            and value.strip().startswith(("{", "["))
            and (dict in args or typing.get_origin(args[0]) is dict)
        ):
            return coerce(name, value, dict)
        for member in args:
            if (
                isinstance(member, type)
                and isinstance(value, member)
                and not isinstance(value, bool)
                or member is bool
                and isinstance(value, bool)
            ):
                return value
        errors = []
        # Try the scalar members first so '3' becomes 3 for `int | str` fields.
        for member in sorted(args, key=lambda a: a is str):
            try:
                return coerce(name, value, member)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(name, f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(name, f"expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(name, f"expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(name, f"expected text, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        choices = [m.value for m in hint]
        if str(value) in choices:
            return str(value)
        raise ConfigError(name, f"{value!r} is not one of {', '.join(map(str, choices))}")
    if origin in (list, tuple):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(name, f"expected a list, got {value!r}")
    if origin is dict or hint is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(name, f"expected a JSON object, got {value!r}") from exc
        if not isinstance(value, dict):
            raise ConfigError(name, f"expected a mapping, got {value!r}")
        return value
    return value

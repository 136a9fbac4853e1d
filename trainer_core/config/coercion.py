"""Turning config values from files and forms ("2e-5", "true", "{...}") into the fields' types.

One rule for text wherever it comes from: a YAML or JSON string value, the CLI, or a box of the dashboard's
form (``value_from_text``), so "1e3", " 5 " and "1,000" mean the same thing in each of them.
"""

from __future__ import annotations

import contextlib
import decimal
import enum
import json
import math
import re
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


def value_from_text(name: str, text: str | None) -> Any:
    """A config field's value from the text of a form box, by the rule a YAML file's strings follow.

    Args:
        name: the config field the box fills; its declared type decides how the text is read.
        text: what the box holds, exactly as typed or pasted.
    Returns:
        None for a blank box: the field's "not set" (all rows, off), which the checks refuse as empty
        where the field needs a value. Otherwise the value, e.g. 1000 for "1e3" in a whole-number field.
    Raises:
        ConfigError: naming ``name``, when the text is not a value of the field's type.
    """
    if text is None or not str(text).strip():
        return None
    # args is a leaf like this module, imported here so that coercion needs nothing at import time.
    from trainer_core.config.args import field_types

    hint = field_types()[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        # "none" and "null" are YAML's words for not set; in a box, not set is the empty box (its
        # placeholder says what that means), and a word typed there is a mistake to show, not "all rows".
        members = tuple(a for a in typing.get_args(hint) if a is not type(None))
        hint = members[0] if len(members) == 1 else hint  # (no box fills a field of several types)
    return coerce(name, str(text), hint)


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
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        number = _whole_from_text(name, value)
    if number is None:
        raise ConfigError(name, f"expected a whole number such as 8, got {value!r}{_separator_hint(value)}")
    return number


def _whole_from_text(name: str, text: str) -> int | None:
    """The whole number ``text`` writes ("8", " 8 ", "8.0", "1e3", "1_000"), exactly, or None.

    Read as a Decimal, not a float: float("9007199254740993") is 9007199254740992, so a seed or a row cap
    past 2**53 would have run as a neighbour of the number on screen.
    """
    try:
        number = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    if number.adjusted() >= _MAX_WHOLE_DIGITS:
        # int(Decimal("1e999999999")) would build a billion-digit integer, and a 300-digit one would be
        # printed whole in the range check's message.
        raise ConfigError(name, f"{text!r} is too large for a whole number; enter a value such as 8")
    return int(number)


# No whole-number field takes more than 19 digits (the checks refuse counts past 2**63 - 1): text with
# more than this many is refused here, before it becomes an integer.
_MAX_WHOLE_DIGITS = 21


def _coerce_float(name: str, value: Any) -> float:
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None:
        raise ConfigError(
            name, f"expected a number such as 0.1 or 2e-5, got {value!r}{_separator_hint(value)}"
        )
    if isinstance(value, str) and math.isinf(number) and not _names_infinity(value):
        raise ConfigError(name, f"{value!r} is too large for a number; enter a real value such as 0.1")
    if isinstance(value, str) and _rounded_whole(value, number):
        raise ConfigError(
            name, f"{value.strip()} has no exact float (it would run as {number:.0f}); enter a smaller number"
        )
    # NaN and infinity parse as floats ("nan", YAML's .inf, JSON's NaN) but no training value can be
    # one: Trainer would run, log NaN losses and leave a useless checkpoint.
    if not math.isfinite(number):
        raise ConfigError(name, f"must be a finite number, got {value!r}; enter a real value such as 0.1")
    return number


def _rounded_whole(text: str, number: float) -> bool:
    """Whether ``text`` writes out the digits of a whole number that its float ``number`` is not: past 2**53
    floats skip integers, so "9007199254740993" epochs would run as 9007199254740992 under those digits.
    (Written with an exponent, "1.5e300" shows no digits to contradict, and its float is what it says.)"""
    if not math.isfinite(number) or abs(number) < 2**53 or not _DIGITS.fullmatch(text.strip()):
        return False
    return decimal.Decimal(text.strip().replace("_", "")) != decimal.Decimal(number)


_DIGITS = re.compile(r"[+-]?[0-9][0-9_]*(\.0*)?")


def _names_infinity(text: str) -> bool:
    """Whether ``text`` is a word for infinity ("inf", "-Infinity") rather than a number past float's range."""
    return text.strip().lstrip("+-").lower() in ("inf", "infinity")


def _separator_hint(value: Any) -> str:
    # "1,000" is a thousand to some readers and one to others (a decimal comma): neither is guessed.
    if isinstance(value, str) and "," in value:
        return "; write it without separators (1000) and with a point for decimals (0.5)"
    return ""


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

"""Reading a run config from YAML, JSON or a flat mapping, and writing it back.

The dashboard form, the CLI and saved runs all go through :func:`config_from_dict`, so every run can be
replayed from its saved file.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from trainer_core.config.args import (
    SECRET_FIELDS,
    TRAINING_DEFAULTS,
    DataArguments,
    ModelArguments,
    RunArguments,
    RunConfig,
    _default_of,
    _jsonable,
    argument_classes,
    field_help,
    field_owner,
    field_types,
)
from trainer_core.config.checks import clean_message, guess_field, validate_combinations, validate_values
from trainer_core.config.coercion import coerce
from trainer_core.errors import ConfigError


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a YAML or JSON config file (flat, run_glue style) and validate it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(None, f"{str(path)!r} is a folder; give the path of a YAML or JSON config file")
    if not path.is_file():
        raise ConfigError(
            None,
            f"config file {str(path)!r} does not exist (looked for {str(path.resolve())!r}); check the path",
        )
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            None, f"config file {str(path)!r} is not valid {path.suffix[1:].upper() or 'YAML'}: {exc}"
        ) from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            None,
            f"config file {str(path)!r} holds a {type(raw).__name__}; it must hold a mapping of field: value "
            "lines such as 'learning_rate: 2e-5'",
        )
    return config_from_dict(raw, base_dir=path.parent)


def config_from_dict(raw: dict[str, Any], base_dir: str | os.PathLike | None = None) -> RunConfig:
    """Build and validate a config from a flat mapping (form values, a parsed file, a saved run).

    Values may be strings (e.g. ``"2e-5"`` from YAML or a text box); they are converted to the field's
    type. Relative data and checkpoint paths are resolved against ``base_dir`` when they exist there.

    Raises:
        ConfigError: naming the first field at fault and what to do.
    """
    from transformers import HfArgumentParser

    if not isinstance(raw, dict):
        raise ConfigError(None, f"a config is a mapping of field: value, not a {type(raw).__name__}")
    values = {k: v for k, v in raw.items() if v is not None or field_owner(k) is not None}
    _reject_unknown_keys(values)
    for cls in (ModelArguments, DataArguments, RunArguments):
        for f in dataclasses.fields(cls):
            values.setdefault(f.name, _default_of(f))
    if values.get("train_file") and "dataset_name" not in raw:
        values["dataset_name"] = None  # a file replaces the built-in default dataset
    for key, value in TRAINING_DEFAULTS.items():
        values.setdefault(key, value)
    values.setdefault("output_dir", "runs/unset")
    for key in SECRET_FIELDS:
        values.pop(key, None)

    typed: dict[str, Any] = {}
    hints = field_types()
    for key, value in values.items():
        typed[key] = coerce(key, value, hints[key])
    _resolve_relative_paths(typed, Path(base_dir) if base_dir is not None else Path.cwd())

    validate_values(typed)
    parser = HfArgumentParser(argument_classes())
    try:
        model_args, data_args, run_args, training_args = parser.parse_dict(typed)
    except ConfigError:
        raise
    except ImportError as exc:  # e.g. deepspeed/accelerate extras TrainingArguments imports on demand
        raise ConfigError(
            guess_field(str(exc), typed),
            f"{clean_message(str(exc))}; install the missing package or turn this option off",
        ) from exc
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise ConfigError(guess_field(str(exc), typed), clean_message(str(exc))) from exc
    config = RunConfig(model=model_args, data=data_args, run=run_args, training=training_args)
    validate_combinations(config)
    return config


def _reject_unknown_keys(values: dict[str, Any]) -> None:
    known = set(field_help())
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else " Remove it (field_help() lists the fields)."
            if isinstance(value, dict):
                hint += " A config is flat: write the fields inside it at the top level."
            raise ConfigError(key, f"unknown config field.{hint}")


def _resolve_relative_paths(values: dict[str, Any], base: Path) -> None:
    # Paths in a config file may be relative to the working directory or to the file itself; store them
    # absolute so the worker (and a later replay from another directory) finds the same files.
    for key in ("train_file", "validation_file", "model_name_or_path", "tokenizer_name"):
        value = values.get(key)
        if (
            not isinstance(value, str)
            or not value
            or value.startswith("builtin:")
            or Path(value).is_absolute()
        ):
            continue
        for candidate in (Path(value).expanduser(), base / value):
            if candidate.exists():
                values[key] = str(candidate.resolve())
                break


# --------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------


def to_yaml(config: RunConfig | dict[str, Any], minimal: bool = True) -> str:
    """The config as a YAML file a user can save and run with ``python -m trainer_core run``."""
    data = config.to_dict(minimal=minimal) if isinstance(config, RunConfig) else _jsonable(config)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def save_config(config: RunConfig, path: str | os.PathLike) -> None:
    """Write the full resolved config (every field, secrets left out) as YAML."""
    Path(path).write_text(to_yaml(config, minimal=False), encoding="utf-8")


def config_diff(configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Keys whose values differ between configs.

    Args:
        configs: run id (or name) -> flat config dict.
    Returns:
        key -> {run id: value} for every key that is not the same in all configs.
    """
    keys: list[str] = []
    for cfg in configs.values():
        keys.extend(k for k in cfg if k not in keys)
    out = {}
    for key in keys:
        values = {rid: cfg.get(key) for rid, cfg in configs.items()}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            out[key] = values
    return out

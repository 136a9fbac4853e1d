"""A sweep's search space: which run config fields can be searched, and each row checked by the run
config's own rules (``config_from_dict`` on the base config with the bound or value in place), so a bad
bound gets the very message a bad hyperparameter gets, with the field named."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Mapping
from typing import Any

from trainer_core.config import config_from_dict
from trainer_core.config.args import field_types
from trainer_core.config.coercion import coerce
from trainer_core.errors import ConfigError

DISTRIBUTIONS = ("log_uniform", "uniform", "int", "choice")

# Fields a trial may not change, and why: trials are compared with each other, so they train on the same
# checkpoint and data, score the same way, and are evaluated at the same points (the pruner compares
# them evaluation by evaluation); where a run writes and what devices it gets are the launcher's.
_SAME_FOR_ALL = {
    **dict.fromkeys(
        ("model_name_or_path", "tokenizer_name", "revision", "cache_dir", "trust_remote_code"),
        "the trials must fine-tune the same checkpoint to be compared; set it in the base config "
        "(one sweep per checkpoint)",
    ),
    **dict.fromkeys(
        (
            "dataset_name",
            "dataset_config_name",
            "train_file",
            "validation_file",
            "train_split",
            "validation_split",
            "text_column",
            "text_pair_column",
            "label_column",
            "validation_split_ratio",
            "max_eval_samples",
            "f1_average",
            "pos_label",
        ),
        "the trials must be scored on the same data in the same way to be compared; set it in the base config",
    ),
    **dict.fromkeys(
        ("eval_strategy", "eval_steps", "eval_delay", "metric_for_best_model", "greater_is_better"),
        "the pruner compares trials evaluation by evaluation, so all of them evaluate alike; set it in the "
        "base config",
    ),
    **dict.fromkeys(
        ("output_dir", "logging_dir", "run_name", "num_processes", "use_cpu", "report_to", "push_to_hub"),
        "it says where or on what a run trains, not how; set it in the base config",
    ),
}


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One row of the search space: a run config field and the distribution its values come from."""

    field: str
    distribution: str
    low: float | int | None = None
    high: float | int | None = None
    values: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "distribution": self.distribution}
        if self.distribution == "choice":
            out["values"] = list(self.values)
        else:
            out.update(low=self.low, high=self.high)
        return out

    def grid_values(self) -> list[Any]:
        """Every value a grid tries (choice values; every whole number of an int range)."""
        if self.distribution == "choice":
            return list(self.values)
        return list(range(int(self.low), int(self.high) + 1))


# -- the space --------------------------------------------------------------------------------------


def space_rows(space: Any) -> list[dict[str, Any]]:
    """The space as rows of {field, distribution, ...}, from a mapping (YAML) or a list (the form's table)."""
    if isinstance(space, Mapping):
        rows = []
        for field, row in space.items():
            if not isinstance(row, Mapping):
                raise ConfigError(
                    str(field),
                    "search space: give a mapping such as {distribution: log_uniform, low: 1e-5, high: 1e-3}",
                )
            rows.append({**row, "field": field})
    elif isinstance(space, (list, tuple)):
        rows = [dict(r) for r in space if isinstance(r, Mapping) and r.get("field")]
    else:
        rows = []
    if not rows:
        raise ConfigError(
            "space",
            "the search space is empty; add at least one field to search (e.g. learning_rate, log_uniform)",
        )
    fields = [str(r["field"]).strip() for r in rows]
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        raise ConfigError(repeated[0], "search space: this field has two rows; keep one")
    return rows


def sweepable_fields() -> list[str]:
    """The run config fields a sweep may search (every field whose value says how a run trains)."""
    return [name for name in field_types() if name not in _SAME_FOR_ALL and _kind(name) is not None]


def _kind(name: str) -> str | None:
    """'int', 'float', 'bool' or 'choice' (an enum field), or None for text and mappings."""
    hint = field_types()[name]
    members = {a for a in typing.get_args(hint) if a is not type(None)} or {hint}
    if members <= {int}:
        return "int"
    if members <= {int, float} and float in members:
        return "float"
    if members == {bool}:
        return "bool"
    if any(isinstance(m, type) and issubclass(m, str) and m is not str for m in members):
        return "choice"  # a transformers enum (lr_scheduler_type, optim ...)
    return None


def _check_field(name: str) -> None:
    if name not in field_types():
        close = difflib.get_close_matches(name, sweepable_fields(), n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else "; see sweepable_fields() for those that can be swept"
        )
        raise ConfigError(name, f"search space: not a run config field{hint}")
    if name in _SAME_FOR_ALL:
        raise ConfigError(name, f"search space: cannot be swept: {_SAME_FOR_ALL[name]}")
    if _kind(name) is None:
        raise ConfigError(
            name,
            "search space: cannot be swept: it is text or a mapping; a sweep searches numbers, switches and "
            "choice fields such as lr_scheduler_type",
        )


def dimension_from_row(row: Mapping[str, Any], base: dict[str, Any]) -> Dimension:
    name = str(row["field"]).strip()
    _check_field(name)
    raw_kind = row.get("distribution", row.get("type"))
    if raw_kind is None:
        raise ConfigError(name, f"search space: choose a distribution: {', '.join(DISTRIBUTIONS)}")
    distribution = str(raw_kind).strip().lower().replace("-", "_").replace("loguniform", "log_uniform")
    if distribution not in DISTRIBUTIONS:
        raise ConfigError(
            name, f"search space: distribution {raw_kind!r} is not one of {', '.join(DISTRIBUTIONS)}"
        )
    if distribution == "choice":
        values = row.get("values")
        if isinstance(values, str):
            values = [v.strip() for v in values.split(",") if v.strip()]
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(name, "search space: a choice needs values, e.g. [8, 16, 32]")
        typed = tuple(_checked_value(name, v, base, "value") for v in values)
        if len(set(map(repr, typed))) != len(typed):
            raise ConfigError(name, "search space: a choice lists a value twice; keep one")
        return Dimension(name, distribution, values=typed)
    kind = _kind(name)
    if kind not in ("int", "float"):
        raise ConfigError(name, f"search space: {name} is not a number; use a choice of its values")
    if distribution != "int" and kind == "int":
        raise ConfigError(name, f"search space: {name} takes whole numbers; use the int distribution")
    bounds = []
    for which in ("low", "high"):
        if row.get(which) is None or str(row.get(which)).strip() == "":
            raise ConfigError(name, f"search space: give the {which} bound")
        value = coerce(name, row[which], int if distribution == "int" else float)
        bounds.append(_checked_value(name, value, base, f"{which} bound"))
    low, high = bounds
    if low >= high:
        raise ConfigError(
            name, f"search space: the low bound ({low}) must be below the high bound ({high}); swap them"
        )
    if distribution == "log_uniform" and low <= 0:
        raise ConfigError(
            name,
            f"search space: a log_uniform range needs a low bound above 0 (got {low}); e.g. 1e-6, or use uniform",
        )
    return Dimension(name, distribution, low=low, high=high)


def _checked_value(name: str, value: Any, base: dict[str, Any], what: str) -> Any:
    """``value`` in the field's type, checked by the run config's own rules in the base config's context."""
    try:
        typed = coerce(name, value, field_types()[name])
        if isinstance(typed, float) and not math.isfinite(typed):
            raise ConfigError(name, f"must be a finite number, got {value!r}")
        config_from_dict({**base, name: typed})
    except ConfigError as exc:
        # The run config's message, tied to the row: "learning_rate: search space low bound: must be ...".
        raise ConfigError(exc.field or name, f"search space {what} {value!r}: {exc.message}") from exc
    return typed


def enqueued_trial(trial: Any, space: tuple[Dimension, ...], base: dict[str, Any]) -> dict[str, Any]:
    """A trial to run before the sampler's own (e.g. the course's defaults): a value for every field."""
    fields = [d.field for d in space]
    if not isinstance(trial, Mapping) or set(trial) != set(fields):
        raise ConfigError(
            "enqueue_trials", f"each enqueued trial gives a value for each of {', '.join(fields)}"
        )
    return {name: _checked_value(name, value, base, "enqueued value") for name, value in trial.items()}

"""A sweep's spec: the base run config, the search space, the budget, the objective, sampler and pruner.

Read from YAML (``trainer_core sweep sweep.yaml``), the dashboard's New sweep form or a dict, and checked
before anything starts. Every bound and choice of the space is checked by the run config's own rules
(``config_from_dict`` on the base config with that value in place), so a bad bound gets the very message
a bad hyperparameter gets, with the field named; the rules that belong to a sweep (a space to search, bounds
in order, a grid that fits the budget, an objective the runs report) are written here once.

A spec file::

    name: lr and batch size             # optional
    base_config: smoke.yaml             # and/or `base:` with run config fields inline (on top of it)
    space:
      learning_rate: {distribution: log_uniform, low: 1e-5, high: 1e-3}
      per_device_train_batch_size: {distribution: choice, values: [8, 16]}
    n_trials: 8
    parallel: 2
    objective: eval_f1                  # direction follows: loss minimises, the rest maximise
    sampler: tpe                        # tpe | random | grid
    pruner: median                      # none | median | successive_halving
    pruner_startup_trials: 2            # (median) completed trials before any is pruned
    # (successive_halving instead) the first rung, the share kept at each rung, the rungs skipped:
    # pruner_min_resource: 1            # auto (Optuna's guess from the first completed trial) or >= 1
    # pruner_reduction_factor: 2        # >= 2: about 1 trial in this many goes on at each rung
    # pruner_min_early_stopping_rate: 0 # >= 0: the first rung is at min_resource x factor^this
    enqueue_trials: [{learning_rate: 2e-5, per_device_train_batch_size: 8}]   # tried first
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from trainer_core.config import REPORTED_METRICS, RunConfig, config_from_dict
from trainer_core.config.coercion import coerce
from trainer_core.errors import ConfigError
from trainer_core.sweeps.pruners import (
    DEFAULT_PRUNER_STARTUP_TRIALS,
    PRUNER_SETTINGS,
    check_first_rung,
    pruner_settings,
)
from trainer_core.sweeps.space import (
    Dimension,
    dimension_from_row,
    enqueued_trial,
    space_rows,
)
from trainer_core.tracking.status import lower_is_better

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("none", "median", "successive_halving")
DIRECTIONS = ("maximize", "minimize")
DEFAULT_OBJECTIVE = "eval_f1"
# Every objective a run reports per evaluation: Trainer's eval_ prefix on what compute_metrics returns.
OBJECTIVES = tuple(f"eval_{name}" for name in REPORTED_METRICS)
_SPEC_KEYS = (
    "name",
    "base",
    "base_config",
    "space",
    "n_trials",
    "parallel",
    "objective",
    "direction",
    "sampler",
    "pruner",
    "seed",
    "enqueue_trials",
)
_SPEC_KEYS += tuple(s.key for settings in PRUNER_SETTINGS.values() for s in settings)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A checked sweep spec (make one with :func:`parse_sweep_spec`)."""

    base: dict[str, Any]
    space: tuple[Dimension, ...]
    n_trials: int
    parallel: int = 1
    objective: str = DEFAULT_OBJECTIVE
    direction: str = "maximize"
    sampler: str = "tpe"
    pruner: str = "none"
    seed: int | None = None
    name: str | None = None
    enqueue_trials: tuple[dict[str, Any], ...] = ()
    pruner_startup_trials: int = DEFAULT_PRUNER_STARTUP_TRIALS
    pruner_min_resource: int | str = "auto"
    pruner_reduction_factor: int = 4
    pruner_min_early_stopping_rate: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON/YAML mapping :func:`parse_sweep_spec` turns back into this spec."""
        out = {
            "name": self.name,
            "base": self.base,
            "space": [d.to_dict() for d in self.space],
            "n_trials": self.n_trials,
            "parallel": self.parallel,
            "objective": self.objective,
            "direction": self.direction,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "seed": self.seed,
            # The chosen pruner's settings only: parse_sweep_spec refuses another pruner's.
            **{p.key: getattr(self, p.key) for p in PRUNER_SETTINGS[self.pruner]},
        }
        if self.enqueue_trials:
            out["enqueue_trials"] = [dict(t) for t in self.enqueue_trials]
        return json.loads(json.dumps(out))

    def trial_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The run config of a trial: the base config with the trial's sampled values in place."""
        return {**self.base, **params}

    @property
    def grid(self) -> dict[str, list[Any]]:
        """The grid sampler's search space: each field's values."""
        return {d.field: d.grid_values() for d in self.space}


def load_sweep_spec(path: str | os.PathLike) -> SweepSpec:
    """Read a sweep spec from a YAML or JSON file and check it (paths in it are relative to the file)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            None, f"sweep file {str(path)!r} does not exist (looked for {str(path.resolve())!r})"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(None, f"sweep file {str(path)!r} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            None, f"sweep file {str(path)!r} must hold a mapping (base_config, space, n_trials ...)"
        )
    return parse_sweep_spec(raw, base_dir=path.parent)


def parse_sweep_spec(raw: Mapping[str, Any], base_dir: str | os.PathLike | None = None) -> SweepSpec:
    """Check a sweep spec mapping and return it as a :class:`SweepSpec`.

    Args:
        raw: the spec's keys (see the module docstring); ``base`` a run config mapping, or
            ``base_config`` the path of a run config file.
        base_dir: what relative paths (``base_config``, data files) are relative to.
    Raises:
        ConfigError: naming the field at fault (a run config field for a bad bound or choice, else
            ``space``, ``n_trials``, ``parallel``, ``objective``, ``direction``, ``sampler``, ``pruner``).
    """
    unknown = [k for k in raw if k not in _SPEC_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), _SPEC_KEYS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; a sweep takes {', '.join(_SPEC_KEYS)}"
        raise ConfigError(str(unknown[0]), f"unknown sweep key{hint}")
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    base, config = _base_config(raw, base_dir)
    sampler = _one_of("sampler", raw.get("sampler") or "tpe", SAMPLERS)
    pruner = _one_of("pruner", raw.get("pruner") or "none", PRUNERS)
    objective, direction = _objective(raw.get("objective"), raw.get("direction"))
    if pruner != "none" and str(base.get("eval_strategy")) == "no":
        raise ConfigError(
            "eval_strategy",
            f"the {pruner} pruner needs an evaluation per epoch (or every eval_steps) to compare trials; "
            "set eval_strategy to 'epoch' in the base config, or choose pruner 'none'",
        )
    pruning = pruner_settings(raw, pruner)
    space = tuple(dimension_from_row(row, base) for row in space_rows(raw.get("space")))
    if pruner == "successive_halving":
        check_first_rung(pruning, base, [d.field for d in space])
    n_trials = raw.get("n_trials")
    if sampler == "grid":
        n_trials = _grid_budget(space, n_trials)
    n_trials = _count("n_trials", n_trials if n_trials is not None else 10)
    parallel = _count("parallel", raw.get("parallel") if raw.get("parallel") is not None else 1)
    if parallel > n_trials:
        raise ConfigError(
            "parallel", f"{parallel} parallel trials is more than n_trials ({n_trials}); lower it"
        )
    seed = raw.get("seed")
    enqueued = tuple(enqueued_trial(t, space, base) for t in raw.get("enqueue_trials") or ())
    name = str(raw["name"]).strip() if raw.get("name") else None
    return SweepSpec(
        base=base,
        space=space,
        n_trials=n_trials,
        parallel=parallel,
        objective=objective,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        seed=None if seed is None else coerce("seed", seed, int),
        name=name,
        enqueue_trials=enqueued,
        **pruning,
    )


# -- the base config --------------------------------------------------------------------------------


def _base_config(raw: Mapping[str, Any], base_dir: Path) -> tuple[dict[str, Any], RunConfig]:
    """The base run config as a full flat mapping (paths resolved), checked like any run's: the file
    ``base_config`` names, with the fields of ``base`` on top (or ``base`` alone)."""
    base = raw.get("base") or {}
    if not isinstance(base, dict):
        raise ConfigError("base", f"must be a mapping of run config fields, not {type(base).__name__}")
    if raw.get("base_config"):
        from trainer_core.config import load_config

        path = Path(str(raw["base_config"])).expanduser()
        base = {**load_config(path if path.is_absolute() else base_dir / path).to_dict(), **base}
    elif not base:
        raise ConfigError("base", "give the run config the trials start from: base (inline) or base_config")
    config = config_from_dict(dict(base), base_dir=base_dir)
    return config.to_dict(), config


# -- the objective ----------------------------------------------------------------------------------


def _objective(objective: Any, direction: Any) -> tuple[str, str]:
    objective = str(objective or DEFAULT_OBJECTIVE).strip()
    if not objective.startswith("eval_"):
        objective = f"eval_{objective}"
    if objective not in OBJECTIVES:
        raise ConfigError(
            "objective",
            f"{objective!r} is not a metric the runs report at each evaluation; use one of {', '.join(OBJECTIVES)}",
        )
    natural = "minimize" if lower_is_better(objective) else "maximize"
    if direction is None or str(direction).strip() == "":
        return objective, natural
    direction = _one_of("direction", direction, DIRECTIONS)
    if direction != natural:
        raise ConfigError(
            "direction",
            f"{objective} is better when {'lower' if natural == 'minimize' else 'higher'}; "
            f"{direction} would search for the worst trials (use {natural}, or leave it empty)",
        )
    return objective, direction


def _one_of(key: str, value: Any, choices: tuple[str, ...]) -> str:
    # British spellings and dashes are accepted: "successive-halving", "maximise".
    text = str(value).strip().lower().replace("-", "_").replace("ise", "ize")
    if text not in choices:
        raise ConfigError(key, f"{value!r} is not one of {', '.join(choices)}")
    return text


def _count(key: str, value: Any) -> int:
    number = coerce(key, value, int)
    if number < 1:
        raise ConfigError(key, f"must be at least 1, got {number}")
    return number


def _grid_budget(space: tuple[Dimension, ...], n_trials: Any) -> int:
    """The grid's size, which is the budget: a grid sampler tries every point once."""
    for d in space:
        if d.distribution not in ("choice", "int"):
            raise ConfigError(
                d.field, "search space: the grid sampler needs values to try; use a choice (or an int range)"
            )
    size = math.prod(len(d.grid_values()) for d in space)
    if n_trials is None:
        return size
    n_trials = _count("n_trials", n_trials)
    if n_trials < size:
        raise ConfigError(
            "n_trials",
            f"the grid has {size} points but the budget is {n_trials} trials; raise n_trials to {size}, "
            "or remove values from the space",
        )
    if n_trials > size:
        raise ConfigError(
            "n_trials", f"the grid has only {size} points; set n_trials to {size} (more would repeat points)"
        )
    return size


def spec_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """A spec as :meth:`SweepSpec.to_dict` wrote it (a sweep's stored row), without checking it again:
    it was checked when the sweep was created, and a worker reads it at every trial start."""
    fields = {f.name for f in dataclasses.fields(SweepSpec)}
    values = {k: v for k, v in data.items() if k in fields}
    values["space"] = tuple(
        Dimension(
            d["field"],
            d["distribution"],
            low=d.get("low"),
            high=d.get("high"),
            values=tuple(d.get("values") or ()),
        )
        for d in data["space"]
    )
    values["enqueue_trials"] = tuple(data.get("enqueue_trials") or ())
    return SweepSpec(**values)

"""What each pruner of a sweep can be told, and those settings read and checked.

The table :data:`PRUNER_SETTINGS` is the one place a pruner's settings are named: the spec's checks
(here), the study's Optuna pruner (``study.make_pruner``) and the dashboard's New sweep form all read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from trainer_core.config.coercion import coerce
from trainer_core.errors import ConfigError

# Median pruning prunes nothing before this many trials completed: a median of one trial is noise.
DEFAULT_PRUNER_STARTUP_TRIALS = 2


@dataclasses.dataclass(frozen=True)
class PrunerSetting:
    """One setting of a pruner: its spec key, the form's label, its default, its lowest value, its help."""

    key: str
    label: str
    default: int | str
    minimum: int
    help: str
    auto: bool = False  # "auto" is a value too (Optuna's own guess)

    def read(self, value: Any) -> int | str:
        """The setting's value from a file or a form box (blank: the default), or ConfigError naming it."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.default
        if self.auto and isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        try:
            number = coerce(self.key, value, int)
        except ConfigError as exc:
            if not self.auto:
                raise
            raise ConfigError(self.key, f"expected auto or a whole number such as 2, got {value!r}") from exc
        if number < self.minimum:
            also = " (or auto)" if self.auto else ""
            raise ConfigError(self.key, f"must be at least {self.minimum}{also}, got {number}")
        return number


# A report's step is the epoch number when trials evaluate per epoch, else the step.
PRUNER_SETTINGS: dict[str, tuple[PrunerSetting, ...]] = {
    "none": (),
    "median": (
        PrunerSetting(
            "pruner_startup_trials",
            "Startup trials",
            DEFAULT_PRUNER_STARTUP_TRIALS,
            1,
            "Trials that must complete before the median pruner prunes any (a median of one is noise).",
        ),
    ),
    "successive_halving": (
        PrunerSetting(
            "pruner_min_resource",
            "Min resource",
            "auto",
            1,
            "The first rung: the evaluation (epoch number, or step with eval_strategy steps) at which "
            "trials are first compared. auto: Optuna's guess from the first completed trial, so nothing "
            "is pruned before one completes.",
            auto=True,
        ),
        PrunerSetting(
            "pruner_reduction_factor",
            "Reduction factor",
            4,
            2,
            "At each rung about 1 trial in this many goes on; the others are pruned. Each rung is this "
            "many times further than the one before.",
        ),
        PrunerSetting(
            "pruner_min_early_stopping_rate",
            "Min early-stopping rate",
            0,
            0,
            "Rungs skipped: the first comparison is at min resource × reduction factor ^ this rate.",
        ),
    ),
}


def pruner_settings(raw: Mapping[str, Any], pruner: str) -> dict[str, Any]:
    """The chosen pruner's settings, each read and checked; another pruner's setting is refused, as
    it would be silently ignored (a file whose pruner was changed and its old settings left behind)."""
    own = PRUNER_SETTINGS[pruner]
    for other, settings in PRUNER_SETTINGS.items():
        for setting in settings:
            value = raw.get(setting.key)
            given = value is not None and not (isinstance(value, str) and not value.strip())
            if setting not in own and given:
                raise ConfigError(
                    setting.key,
                    f"only the {other} pruner uses it and this sweep's pruner is {pruner}; "
                    f"remove it, or set pruner to {other}",
                )
    return {setting.key: setting.read(raw.get(setting.key)) for setting in own}


def check_first_rung(pruning: dict[str, Any], base: dict[str, Any], fields: list[str]) -> None:
    """Refuse successive halving settings whose first rung is at or past the trials' last evaluation:
    a trial is never pruned at its last evaluation (there is nothing left to save), so such a sweep
    would prune nothing. Checked where it is certain: per-epoch evaluation of a fixed number of epochs."""
    if str(base.get("eval_strategy")) != "epoch" or (base.get("max_steps") or -1) > 0:
        return
    if {"num_train_epochs", "max_steps"} & set(fields):
        return  # the trials' lengths differ; some may be long enough
    epochs = float(base.get("num_train_epochs") or 0)
    # "auto" is at least 1 (Optuna: the longest completed trial's last step // 100, at least 1).
    resource = pruning["pruner_min_resource"]
    first = (1 if resource == "auto" else resource) * (
        pruning["pruner_reduction_factor"] ** pruning["pruner_min_early_stopping_rate"]
    )
    if first < epochs:
        return
    if epochs <= 1:
        field, fix = "num_train_epochs", "train 2 epochs or more, or choose pruner none"
    elif resource != "auto" and resource >= epochs:
        field, fix = "pruner_min_resource", f"set it below {epochs:g}, or train more epochs"
    else:  # min_resource alone is early enough: the rungs skipped put the first one too far
        field, fix = (
            "pruner_min_early_stopping_rate",
            "lower it (0 compares at min resource), or train more epochs",
        )
    raise ConfigError(
        field,
        f"successive halving would first compare trials at epoch {first:g}, but they train {epochs:g} "
        f"epoch{'' if epochs == 1 else 's'} and a trial is never pruned at its last evaluation, so nothing "
        f"would be pruned; {fix}",
    )

"""A sweep's Optuna study, kept in the project's own database through Optuna's RDB storage.

The study shares the store's SQLite file or PostgreSQL database, so it survives restarts and every
machine on one PostgreSQL store can work it. Optuna's tables (``studies``, ``trials``, ``trial_params``,
``trial_values``, ``trial_intermediate_values``, ``version_info``, ``alembic_version`` ...) have none of
the store's names (``runs``, ``metrics``, ``metric_rollups``, ``events``, ``sweeps``,
``trainer_core_schema``), and the store's schema version lives in ``PRAGMA user_version``, which
Optuna does not use.

Optuna keeps neither the sampler nor the pruner in the database: every process that loads the study
builds them again from the sweep's spec, here.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from trainer_core.sweeps.spec import Dimension, SweepSpec
from trainer_core.tracking.postgres import is_postgres_url
from trainer_core.tracking.schema import sqlite_path

# SQLAlchemy's SQLite driver waits 5 s for a lock by default; trial workers write their metric points to
# the same file all the time, so Optuna's writes wait as long as the store's own do.
SQLITE_BUSY_TIMEOUT_S = 30.0


def optuna_storage_url(store_url: str) -> str:
    """The SQLAlchemy URL of the store's database (``sqlite:///path``, ``postgresql+psycopg://...``)."""
    if is_postgres_url(store_url):
        rest = store_url.split("://", 1)[1]
        return f"postgresql+psycopg://{rest}"  # psycopg 3, the driver the store itself uses
    return f"sqlite:///{sqlite_path(store_url)}"


@functools.cache
def _storage(url: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per trial in every worker log
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    # One storage (and connection pool) per process and database.
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def storage(store_url: str):
    """The Optuna RDB storage of a metrics store (cached per process)."""
    return _storage(optuna_storage_url(store_url))


def make_sampler(spec: SweepSpec, offset: int = 0):
    """The spec's sampler. ``offset`` (the number of trials so far) moves a seeded sampler's stream on:
    each ask loads the study afresh, and a sampler seeded alike each time would draw the same values."""
    import optuna

    seed = None if spec.seed is None else spec.seed + offset
    if spec.sampler == "grid":
        # The grid's order is its own shuffle (seeded once, never offset): trial n takes point n.
        return optuna.samplers.GridSampler(spec.grid, seed=spec.seed or 0)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec):
    import optuna

    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner_startup_trials)
    if spec.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec.pruner_min_resource,
            reduction_factor=spec.pruner_reduction_factor,
            min_early_stopping_rate=spec.pruner_min_early_stopping_rate,
        )
    return optuna.pruners.NopPruner()


def create_study(store_url: str, study_name: str, spec: SweepSpec):
    import optuna

    study = optuna.create_study(
        study_name=study_name,
        storage=storage(store_url),
        direction=spec.direction,
        sampler=make_sampler(spec),
        pruner=make_pruner(spec),
    )
    for params in spec.enqueue_trials:
        study.enqueue_trial(dict(params))
    return study


def load_study(store_url: str, study_name: str, spec: SweepSpec, sampler_offset: int = 0):
    import optuna

    return optuna.load_study(
        study_name=study_name,
        storage=storage(store_url),
        sampler=make_sampler(spec, sampler_offset),
        pruner=make_pruner(spec),
    )


def delete_study(store_url: str, study_name: str) -> None:
    import optuna

    with contextlib.suppress(KeyError):  # already gone
        optuna.delete_study(study_name=study_name, storage=storage(store_url))


def distributions(spec: SweepSpec) -> dict[str, Any]:
    """The space as Optuna distributions, for ``study.ask``."""
    return {d.field: _distribution(d) for d in spec.space}


def _distribution(d: Dimension):
    import optuna

    if d.distribution == "choice":
        return optuna.distributions.CategoricalDistribution(list(d.values))
    if d.distribution == "int":
        return optuna.distributions.IntDistribution(int(d.low), int(d.high))
    return optuna.distributions.FloatDistribution(
        float(d.low), float(d.high), log=d.distribution == "log_uniform"
    )

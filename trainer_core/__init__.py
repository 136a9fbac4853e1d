"""trainer_core: run, supervise and record Hugging Face fine-tuning runs, headless.

The public surface is small: a run config, a launcher that runs configs in worker processes, the
metrics store they write to, and the facts and checks a front end must not restate (run statuses,
metric names, built-in names, config defaults and rules). Everything outside the package (the
dashboard) imports from here only; ruff's TID251 enforces it.

Heavy layers (checkpoints, data, inference: the ones that load torch, transformers or datasets when
used) are imported on first use of their names, so ``import trainer_core`` stays as cheap as the store.

Layers, imports pointing one way (``config`` <- ``data``/``models`` <- ``runs``; ``tracking`` a leaf):
``errors``, ``assets`` (built-ins), ``weights`` (are saved weights whole), ``hub_errors``, ``models``,
``metrics``, ``inference``, then the sub-packages ``config/``, ``data/``, ``tracking/``, ``runs/``, ``cli/``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trainer_core.assets import BUILTIN_DATASETS, BUILTIN_MODELS, BUILTIN_PREFIX, is_builtin
from trainer_core.config import (
    REPORTED_METRICS,
    DataArguments,
    ModelArguments,
    RunArguments,
    RunConfig,
    config_diff,
    config_from_dict,
    field_help,
    load_config,
    looks_like_path,
    to_yaml,
)
from trainer_core.config.args import training_choices, training_field_defaults
from trainer_core.config.checks import EXECUTORS
from trainer_core.config.coercion import value_from_text
from trainer_core.errors import (
    ConfigError,
    RunNotFoundError,
    RunStateError,
    StoreDamagedError,
    SweepNotFoundError,
)
from trainer_core.metrics import F1_AVERAGES, METRIC_NAMES, f1_meaning, f1_positive_class, resolve_f1
from trainer_core.runs.folder import MODEL as RUN_MODEL_DIR
from trainer_core.runs.home import default_home, default_store_url
from trainer_core.runs.launcher import Launcher
from trainer_core.runs.preflight import check_max_length
from trainer_core.runs.ray_executor import where_it_runs
from trainer_core.runs.ray_jobs import cluster_status
from trainer_core.runs.ray_jobs import configured_address as configured_ray_address
from trainer_core.runs.rebuild import rebuild_store
from trainer_core.runs.resources import describe_system_series
from trainer_core.sweeps.budget import TrialEstimate, estimate_trial_time
from trainer_core.sweeps.driver import COUNTED as COUNTED_TRIAL_STATUSES
from trainer_core.sweeps.driver import Sweeps, SweepStatus
from trainer_core.sweeps.pruners import PRUNER_SETTINGS
from trainer_core.sweeps.review import SweepReview, review_sweep_spec
from trainer_core.sweeps.space import DISTRIBUTIONS, sweepable_fields
from trainer_core.sweeps.spec import (
    OBJECTIVES,
    PRUNERS,
    SAMPLERS,
    SweepSpec,
    load_sweep_spec,
    parse_sweep_spec,
)
from trainer_core.tracking.status import (
    ACTIVE_STATUSES,
    ALL_STATUSES,
    FINAL_STATUSES,
    RESUMABLE_STATUSES,
    RunStatus,
    is_system_series,
    lower_is_better,
    run_progress,
)
from trainer_core.tracking.store import MetricsStore

if TYPE_CHECKING:
    from trainer_core.data.prepare import preview_dataset
    from trainer_core.inference import Predictor
    from trainer_core.models import inspect_checkpoint

# name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "inspect_checkpoint": "trainer_core.models",
    "preview_dataset": "trainer_core.data.prepare",
    "Predictor": "trainer_core.inference",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'trainer_core' has no attribute {name!r}")


__all__ = [
    "ACTIVE_STATUSES",
    "ALL_STATUSES",
    "COUNTED_TRIAL_STATUSES",
    "DISTRIBUTIONS",
    "EXECUTORS",
    "OBJECTIVES",
    "PRUNERS",
    "PRUNER_SETTINGS",
    "RESUMABLE_STATUSES",
    "SAMPLERS",
    "SweepNotFoundError",
    "SweepReview",
    "SweepSpec",
    "SweepStatus",
    "Sweeps",
    "load_sweep_spec",
    "parse_sweep_spec",
    "sweepable_fields",
    "TrialEstimate",
    "estimate_trial_time",
    "review_sweep_spec",
    "BUILTIN_DATASETS",
    "BUILTIN_MODELS",
    "BUILTIN_PREFIX",
    "F1_AVERAGES",
    "FINAL_STATUSES",
    "METRIC_NAMES",
    "REPORTED_METRICS",
    "RUN_MODEL_DIR",
    "ConfigError",
    "DataArguments",
    "Launcher",
    "MetricsStore",
    "ModelArguments",
    "Predictor",
    "RunArguments",
    "RunConfig",
    "RunNotFoundError",
    "RunStateError",
    "StoreDamagedError",
    "RunStatus",
    "check_max_length",
    "cluster_status",
    "configured_ray_address",
    "config_diff",
    "config_from_dict",
    "f1_meaning",
    "f1_positive_class",
    "default_home",
    "default_store_url",
    "describe_system_series",
    "field_help",
    "inspect_checkpoint",
    "is_builtin",
    "is_system_series",
    "load_config",
    "looks_like_path",
    "lower_is_better",
    "preview_dataset",
    "rebuild_store",
    "resolve_f1",
    "run_progress",
    "to_yaml",
    "training_choices",
    "training_field_defaults",
    "value_from_text",
    "where_it_runs",
]

"""trainer_core: run, supervise and record Hugging Face fine-tuning runs, headless.

The public surface is small: a run config, a launcher that runs configs in worker processes, and the
metrics store they write to. Heavy libraries (torch, transformers) load only when a name needs them.
"""

from trainer_core.config import (
    DataArguments,
    ModelArguments,
    RunArguments,
    RunConfig,
    config_diff,
    config_from_dict,
    field_help,
    load_config,
    to_yaml,
)
from trainer_core.errors import ConfigError, RunNotFoundError, RunStateError
from trainer_core.runs.launcher import Launcher
from trainer_core.tracking.status import run_progress
from trainer_core.tracking.store import MetricsStore

__all__ = [
    "ConfigError",
    "DataArguments",
    "Launcher",
    "MetricsStore",
    "ModelArguments",
    "RunArguments",
    "RunConfig",
    "RunNotFoundError",
    "RunStateError",
    "config_diff",
    "config_from_dict",
    "field_help",
    "load_config",
    "run_progress",
    "to_yaml",
]

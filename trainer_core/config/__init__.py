"""The run config, in run_glue.py's shape.

- ``args``: the argument dataclasses (``ModelArguments``, ``DataArguments``, ``RunArguments``) beside the
  stock ``TrainingArguments``, the project's defaults for it, and ``RunConfig``; a leaf.
- ``coercion``: strings from files and forms ("2e-5", "true") turned into each field's type.
- ``checks``: every rule on single values and their combinations, each written once.
- ``environment``: what this machine must have for a config (GPU for fp16/bf16/tf32, the packages an
  ``optim``, ``report_to`` or ``deepspeed`` value needs).
- ``parse``: YAML / JSON / dict in, validated ``RunConfig`` out, and back to YAML.
"""

from trainer_core.config.args import (
    REPORTED_METRICS,
    TABLE_EXTENSIONS,
    TRAINING_DEFAULTS,
    DataArguments,
    ModelArguments,
    RunArguments,
    RunConfig,
    argument_classes,
    field_help,
    field_owner,
    looks_like_path,
)
from trainer_core.config.parse import config_diff, config_from_dict, load_config, save_config, to_yaml

__all__ = [
    "REPORTED_METRICS",
    "TABLE_EXTENSIONS",
    "TRAINING_DEFAULTS",
    "DataArguments",
    "ModelArguments",
    "RunArguments",
    "RunConfig",
    "argument_classes",
    "config_diff",
    "config_from_dict",
    "field_help",
    "field_owner",
    "load_config",
    "looks_like_path",
    "save_config",
    "to_yaml",
]

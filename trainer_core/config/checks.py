"""Checks on a run config's values and their combinations, with messages in this project's words."""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Any

from trainer_core.assets import BUILTIN_DATASETS, BUILTIN_MODELS
from trainer_core.config.args import (
    REPORTED_METRICS,
    TABLE_EXTENSIONS,
    TRAINING_DEFAULTS,
    RunConfig,
    field_help,
    looks_like_path,
)
from trainer_core.errors import ConfigError


def validate_values(v: dict[str, Any]) -> None:
    """Checks on single values, with messages in this project's words, before TrainingArguments sees them."""

    def positive(name, allow_zero=False):
        value = v.get(name)
        if value is None:
            return
        if value < 0 or (value == 0 and not allow_zero):
            raise ConfigError(
                name, f"must be {'zero or more' if allow_zero else 'greater than 0'}, got {value}"
            )

    # Model
    model = v.get("model_name_or_path")
    if not model or not str(model).strip():
        raise ConfigError("model_name_or_path", "choose a checkpoint: a built-in, a local folder or a Hub id")
    if str(model).startswith("builtin:") and model not in BUILTIN_MODELS:
        raise ConfigError(
            "model_name_or_path", f"unknown built-in {model!r}; choose one of {', '.join(BUILTIN_MODELS)}"
        )
    if not str(model).startswith("builtin:") and looks_like_path(str(model)):
        path = Path(str(model)).expanduser()
        if not path.is_dir():
            raise ConfigError("model_name_or_path", f"checkpoint folder {str(model)!r} does not exist")
        if not (path / "config.json").is_file():
            raise ConfigError(
                "model_name_or_path",
                f"{str(model)!r} has no config.json; point to a folder written by save_pretrained()",
            )

    # Data
    dataset, train_file = v.get("dataset_name"), v.get("train_file")
    if dataset and train_file:
        raise ConfigError(
            "train_file",
            "give either dataset_name or train_file, not both (clear dataset_name to use a file)",
        )
    if not dataset and not train_file:
        raise ConfigError(
            "dataset_name", "choose a dataset: a built-in, a Hub dataset id, or a local train_file"
        )
    if dataset and str(dataset).startswith("builtin:") and dataset not in BUILTIN_DATASETS:
        raise ConfigError(
            "dataset_name", f"unknown built-in {dataset!r}; choose one of {', '.join(BUILTIN_DATASETS)}"
        )
    if v.get("validation_file") and not train_file:
        raise ConfigError("validation_file", "a validation_file needs a train_file")
    for key in ("train_file", "validation_file"):
        value = v.get(key)
        if not value:
            continue
        path = Path(value).expanduser()
        if path.suffix.lower() not in TABLE_EXTENSIONS and not (path.suffix.lower() == ".txt"):
            raise ConfigError(
                key, f"{value!r} has an unsupported extension; use one of {', '.join(TABLE_EXTENSIONS)}"
            )
        if not path.is_file():
            raise ConfigError(key, f"file {value!r} does not exist")
    for key in ("text_column", "text_pair_column", "label_column"):
        if isinstance(v.get(key), str) and not v[key].strip():
            v[key] = None
    cols = [v.get("text_column"), v.get("text_pair_column"), v.get("label_column")]
    named = [c for c in cols if c]
    if len(named) != len(set(named)):
        raise ConfigError(
            "label_column", "text_column, text_pair_column and label_column must be different columns"
        )
    ratio = v.get("validation_split_ratio")
    if ratio is not None and not 0 < ratio < 1:
        raise ConfigError("validation_split_ratio", f"must be between 0 and 1 (e.g. 0.1), got {ratio}")
    for key in ("max_train_samples", "max_eval_samples", "max_seq_length"):
        positive(key)
    if v.get("max_seq_length") is not None and v["max_seq_length"] > 8192:
        raise ConfigError(
            "max_seq_length",
            f"{v['max_seq_length']} tokens is more than any supported checkpoint takes; use 512 or less",
        )

    # Optimisation
    positive("learning_rate")
    if v.get("learning_rate") is not None and v["learning_rate"] >= 1:
        raise ConfigError(
            "learning_rate", f"{v['learning_rate']} would diverge; fine-tuning uses values like 2e-5"
        )
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        positive(key)
    positive("weight_decay", allow_zero=True)
    positive("num_train_epochs", allow_zero=True)
    positive("warmup_steps", allow_zero=True)
    positive("max_grad_norm", allow_zero=True)
    epochs, max_steps = v.get("num_train_epochs"), v.get("max_steps")
    if (epochs is not None and epochs <= 0) and (max_steps is None or max_steps <= 0):
        raise ConfigError("num_train_epochs", "must be greater than 0 (or set max_steps)")
    for key in ("logging_steps", "eval_steps", "save_steps"):
        value = v.get(key)
        if value is not None and value <= 0:
            raise ConfigError(key, f"must be greater than 0, got {value}")
    if v.get("seed") is not None and v["seed"] < 0:
        raise ConfigError("seed", f"must be zero or more, got {v['seed']}")
    if v.get("fp16") and v.get("bf16"):
        raise ConfigError("fp16", "choose fp16 or bf16, not both")
    if v.get("fp16") and not _cuda_available():
        raise ConfigError(
            "fp16", "fp16 mixed precision needs a CUDA GPU and none is available; turn it off (or use bf16)"
        )
    if v.get("load_best_model_at_end") and str(v.get("eval_strategy")) in ("no", "IntervalStrategy.NO"):
        raise ConfigError(
            "load_best_model_at_end",
            "needs an eval_strategy ('epoch' or 'steps') to know which checkpoint is best",
        )
    patience = v.get("early_stopping_patience")
    if patience is not None and patience < 1:
        raise ConfigError("early_stopping_patience", f"must be 1 or more, got {patience}")


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken torch install means "no GPU" here
        return False


def validate_combinations(config: RunConfig) -> None:
    t = config.training
    eval_strategy = _value(t.eval_strategy)
    metric = t.metric_for_best_model
    if metric is not None:
        bare = metric[5:] if metric.startswith("eval_") else metric
        if bare not in REPORTED_METRICS:
            raise ConfigError(
                "metric_for_best_model",
                f"{metric!r} is not a reported metric; use one of {', '.join(REPORTED_METRICS)}",
            )
    if t.load_best_model_at_end and eval_strategy == "no":
        raise ConfigError(
            "load_best_model_at_end",
            "needs an eval_strategy ('epoch' or 'steps') to know which checkpoint is best",
        )
    if config.run.early_stopping_patience is not None:
        if eval_strategy == "no":
            raise ConfigError("early_stopping_patience", "needs an eval_strategy ('epoch' or 'steps')")
        if not t.load_best_model_at_end:
            raise ConfigError("early_stopping_patience", "needs load_best_model_at_end turned on")
    if config.data.text_pair_column and not config.data.text_column:
        raise ConfigError("text_column", "a text_pair_column needs a text_column for the first text")


def _value(x: Any) -> Any:
    return x.value if isinstance(x, enum.Enum) else x


def guess_field(message: str, values: dict[str, Any]) -> str | None:
    """Which field a TrainingArguments error is about.

    Prefers a mentioned field the user actually set (``bf16`` over ``use_cpu`` in "bf16 needs ...
    use_cpu"), then the longest mentioned name.
    """
    mentioned = [k for k in field_help() if re.search(rf"\b{re.escape(k)}\b", message)]
    chosen = [k for k in mentioned if values.get(k) not in (None, False) and k not in TRAINING_DEFAULTS]
    if chosen or mentioned:
        return max(chosen or mentioned, key=len)
    for key, value in values.items():
        if isinstance(value, str) and value and value in message:
            return key
    return None


def clean_message(message: str) -> str:
    return " ".join(message.replace("--", "").split())

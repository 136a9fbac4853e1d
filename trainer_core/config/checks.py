"""Checks on a run config's values and their combinations, with messages in this project's words."""

from __future__ import annotations

import dataclasses
import enum
import functools
import re
import typing
from pathlib import Path
from typing import Any

from trainer_core.assets import check_builtin, is_builtin
from trainer_core.config.args import (
    REPORTED_METRICS,
    TABLE_EXTENSIONS,
    TRAINING_DEFAULTS,
    RunConfig,
    _default_of,
    argument_classes,
    field_help,
    field_types,
)
from trainer_core.config.environment import check_hardware, check_packages, check_training_packages
from trainer_core.errors import ConfigError

COLUMN_FIELDS = ("text_column", "text_pair_column", "label_column")


def validate_values(v: dict[str, Any]) -> None:
    """Checks on single values, with messages in this project's words, before TrainingArguments sees them."""
    _check_sources(v)
    for key in COLUMN_FIELDS:
        if isinstance(v.get(key), str) and not v[key].strip():
            v[key] = None
    check_column_choice(*(v.get(k) for k in COLUMN_FIELDS))
    check_required(v)
    check_numbers(v)
    check_executor(v)
    _check_training(v)
    check_hardware(v)
    check_packages(v)


def _check_sources(v: dict[str, Any]) -> None:
    """A checkpoint and exactly one data source; files that exist with a readable extension.

    A local checkpoint folder is checked by ``models.resolve_checkpoint`` (at preflight), which owns
    what a complete checkpoint folder holds.
    """
    model = v.get("model_name_or_path")
    if not model or not str(model).strip():
        raise ConfigError("model_name_or_path", "choose a checkpoint: a built-in, a local folder or a Hub id")
    if is_builtin(model):
        check_builtin(model, "model", "model_name_or_path")
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
    if is_builtin(dataset):
        check_builtin(dataset, "dataset", "dataset_name")
    if v.get("validation_file") and not train_file:
        raise ConfigError("validation_file", "a validation_file needs a train_file")
    for key in ("train_file", "validation_file"):
        if v.get(key):
            _check_data_file(key, v[key])


def _check_data_file(key: str, value: str) -> None:
    path = Path(value).expanduser()
    if path.is_dir():
        tables = sorted(p.name for p in path.iterdir() if p.suffix.lower() in TABLE_EXTENSIONS)
        inside = f" (it holds {', '.join(tables[:5])})" if tables else ""
        raise ConfigError(key, f"{value!r} is a folder{inside}; give the path of one data file in it")
    if path.suffix.lower() not in (*TABLE_EXTENSIONS, ".txt"):
        raise ConfigError(
            key, f"{value!r} has an unsupported extension; use one of {', '.join(TABLE_EXTENSIONS)}"
        )
    if not path.is_file():
        raise ConfigError(
            key,
            f"file {value!r} does not exist (looked for {str(path.resolve())!r}); give an absolute path "
            "or one relative to the config file",
        )


def check_column_choice(text: str | None, pair: str | None, label: str | None) -> None:
    """The column mapping's own rules: a pair column needs a first text, and all columns differ.

    Called on the columns a config names and again by ``data.columns`` on the mapping after guessing.
    """
    if pair and not text:
        raise ConfigError("text_column", "a text_pair_column needs a text_column for the first text")
    named = [c for c in (text, pair, label) if c]
    if len(named) != len(set(named)):
        raise ConfigError(
            "label_column", "text_column, text_pair_column and label_column must be different columns"
        )


# Where a negative number means "not set" (TrainingArguments' own convention), the value that says so.
_UNSET = {"max_steps": -1, "local_rank": -1}
# Zero makes no sense for these: nothing to train on, no step size, a division by zero, no patience.
_POSITIVE = {
    "learning_rate",
    "adam_epsilon",
    "logging_steps",
    "eval_steps",
    "save_steps",
    "eval_accumulation_steps",
    "torch_empty_cache_steps",
    "dataloader_prefetch_factor",
    "ddp_timeout",
    "max_seq_length",
    "max_train_samples",
    "max_eval_samples",
    "num_processes",
    "num_workers",
    "early_stopping_patience",
}
# numpy's RandomState (used by Trainer's seeding) takes seeds up to 2**32 - 1.
_MAX_SEED = 2**32 - 1
# Beyond a signed 64-bit integer a count cannot be stored or used: a batch size of 2**63 fails in the
# DataLoader (islice: "Stop argument ... <= sys.maxsize") and SQLite refuses such a step count.
_MAX_NUMBER = 2**63 - 1
# Below this many tokens the special tokens leave no room for text, and below their count (1 for one
# text, 2 for a pair, measured on both built-in tokenizers) the tokenizer does not truncate at all: a
# max_seq_length of 1 gave 9-token inputs, so the run would not use the length the config says.
_MIN_SEQ_LENGTH = 8
_MAX_SEQ_LENGTH = 8192


@functools.cache
def _numeric_fields() -> tuple[str, ...]:
    numbers = {int, float, type(None)}
    out = []
    for name, hint in field_types().items():
        members = set(typing.get_args(hint)) or {hint}
        if members <= numbers and members & {int, float}:
            out.append(name)
    return tuple(out)


def check_required(v: dict[str, Any]) -> None:
    """A field whose type has no None must have a value.

    An emptied number box or a bare ``seed:`` line in YAML arrives as None; TrainingArguments takes
    ``num_train_epochs=None`` without a word and the worker crashes on it after the start.
    """
    for name, hint in field_types().items():
        if v.get(name, 0) is not None or type(None) in typing.get_args(hint):
            continue
        default = _defaults().get(name)
        if default is None:  # declared without None but defaulting to it: None is its "not set"
            continue
        kind = "a number" if name in _numeric_fields() else "a value"
        raise ConfigError(name, f"is empty; enter {kind} (the default is {_shown(default)})")


def _shown(value: Any) -> str:
    """A value as a person writes it: 3, not 3.0; 2e-05 stays; text quoted."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def check_numbers(v: dict[str, Any]) -> None:
    """Ranges of every numeric field, TrainingArguments' included, by kind of field.

    Non-finite values were already refused by coercion. Negative is refused everywhere (except where it
    means "not set"), zero where the value is a size, step or rate, and [0, 1) is enforced on betas,
    smoothing factors and ratios. Every message names the field and the value it got.
    """
    for name in _numeric_fields():
        value = v.get(name)
        if value is None or value == _UNSET.get(name):
            continue
        _check_range(name, value, v)
    ratio = v.get("validation_split_ratio")
    if ratio is not None and not 0 < ratio < 1:
        raise ConfigError(
            "validation_split_ratio", f"must be between 0 and 1 (e.g. 0.1), got {_shown(ratio)}"
        )
    length = v.get("max_seq_length")
    if length is not None and length > _MAX_SEQ_LENGTH:
        raise ConfigError(
            "max_seq_length", f"{length} tokens is more than any supported checkpoint takes; use 512 or less"
        )
    if length is not None and 0 < length < _MIN_SEQ_LENGTH:
        raise ConfigError(
            "max_seq_length",
            f"must be at least {_MIN_SEQ_LENGTH} tokens, got {length}: the special tokens leave no room "
            "for text below that; use e.g. 128",
        )
    if v.get("learning_rate") is not None and v["learning_rate"] >= 1:
        raise ConfigError(
            "learning_rate", f"{v['learning_rate']} would diverge; fine-tuning uses values like 2e-5"
        )


def _check_range(name: str, value: float, v: dict[str, Any]) -> None:
    """One numeric field's range (its kind read from its name), with the default as the way out."""
    default = _defaults().get(name)
    hint = f"; use the default ({_shown(default)}) or another value" if default is not None else ""
    got = _shown(value)
    if abs(value) > _MAX_NUMBER:
        raise ConfigError(name, f"{got} is too large; enter a value below {_MAX_NUMBER:.1e}{hint}")
    max_steps = v.get("max_steps")
    if name == "num_train_epochs" and value <= 0 and (max_steps is None or max_steps <= 0):
        # Zero epochs is the way to let max_steps alone decide the length; negative never is.
        raise ConfigError(name, f"must be greater than 0 (or set max_steps), got {got}{hint}")
    if name.endswith(("_batch_size", "_accumulation_steps")) or name in _POSITIVE:
        if value <= 0:
            raise ConfigError(name, f"must be greater than 0, got {got}{hint}")
    elif value < 0:
        raise ConfigError(name, f"must be zero or more, got {got}{hint}")
    if name.startswith(("adam_beta", "label_smoothing")) and value >= 1:
        raise ConfigError(name, f"must be at least 0 and below 1, got {got}{hint}")
    if name in ("seed", "data_seed") and value > _MAX_SEED:
        raise ConfigError(name, f"{got} is beyond numpy's largest seed ({_MAX_SEED}); use a smaller number")


@functools.cache
def _defaults() -> dict[str, Any]:
    out = {}
    for cls in argument_classes():
        for f in dataclasses.fields(cls):
            out[f.name] = _default_of(f)
    out.update(TRAINING_DEFAULTS)
    return {k: v for k, v in out.items() if v is not dataclasses.MISSING}


EXECUTORS = ("local", "ray")
# Fields that only mean something to a run on a Ray cluster, with the value that says "not set".
RAY_ONLY_FIELDS = {
    "ray_address": None,
    "num_workers": 1,
    "use_gpu": False,
    "resources_per_worker": None,
    "storage_path": None,
}


def check_executor(v: dict[str, Any]) -> None:
    """Where the run trains: the executor's name, and the fields that only one executor takes.

    What needs the cluster itself (its address answering, its nodes, whether it is this machine) is
    checked at launch, by ``runs/ray_jobs.py``.
    """
    executor = v.get("executor") or "local"
    if executor not in EXECUTORS:
        raise ConfigError("executor", f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    v["executor"] = executor
    if executor == "local":
        for name, unset in RAY_ONLY_FIELDS.items():
            if v.get(name, unset) not in (unset, "", {}):
                raise ConfigError(
                    name, "only applies to a run on a Ray cluster: set executor: ray, or clear it"
                )
        return
    if (v.get("num_processes") or 1) > 1:
        raise ConfigError(
            "num_processes",
            "on a Ray cluster Ray Train starts the processes: leave num_processes at 1 and set num_workers",
        )
    if v.get("use_gpu") and v.get("use_cpu"):
        raise ConfigError("use_gpu", "use_gpu and use_cpu contradict each other; turn one off")
    _check_resources(v.get("resources_per_worker"), bool(v.get("use_gpu")))
    address = v.get("ray_address")
    if address is not None and (not str(address).strip() or any(c.isspace() for c in str(address).strip())):
        raise ConfigError("ray_address", f"{address!r} is not an address; use e.g. http://head-node:8265")
    _check_storage_path(v.get("storage_path"))


def _check_resources(resources: Any, use_gpu: bool) -> None:
    if resources is None:
        return
    if not isinstance(resources, dict) or not resources:
        raise ConfigError("resources_per_worker", "give a mapping of resource to amount, e.g. {CPU: 2}")
    for name, amount in resources.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not amount >= 0:
            raise ConfigError(
                "resources_per_worker", f"{name}: {amount!r} is not an amount; use a number of 0 or more"
            )
    if resources.get("GPU") and not use_gpu:
        # Ray Train refuses this too, but only in the cluster, after the run was recorded.
        raise ConfigError("resources_per_worker", "asks for GPUs while use_gpu is off; turn use_gpu on")


def _check_storage_path(path: Any) -> None:
    if path is None:
        return
    text = str(path).strip()
    if "://" in text:
        raise ConfigError(
            "storage_path",
            f"{text!r} is a URL; give a folder mounted at the same path on every Ray node and on this "
            "machine (object store URLs are not supported: the dashboard reads the run's files from it)",
        )
    if not Path(text).expanduser().is_absolute():
        raise ConfigError(
            "storage_path", f"{text!r} is relative; give an absolute path, the same on every node"
        )


def _check_training(v: dict[str, Any]) -> None:
    if v.get("fp16") and v.get("bf16"):
        raise ConfigError("fp16", "choose fp16 or bf16, not both")
    # Checked here, before TrainingArguments, whose own error for this talks about matching strategies.
    if v.get("load_best_model_at_end") and str(v.get("eval_strategy")) in ("no", "IntervalStrategy.NO"):
        raise ConfigError(
            "load_best_model_at_end",
            "needs an eval_strategy ('epoch' or 'steps') to know which checkpoint is best",
        )


def validate_combinations(config: RunConfig) -> None:
    """Rules across fields of a parsed config, and what its TrainingArguments need installed."""
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
    if config.run.early_stopping_patience is not None:
        if eval_strategy == "no":
            raise ConfigError("early_stopping_patience", "needs an eval_strategy ('epoch' or 'steps')")
        if not t.load_best_model_at_end:
            raise ConfigError("early_stopping_patience", "needs load_best_model_at_end turned on")
    check_training_packages(t)


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

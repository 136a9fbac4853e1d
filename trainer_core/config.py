"""Run config: run_glue.py-style argument dataclasses beside the stock ``TrainingArguments``.

A config is one flat mapping (as in run_glue's JSON/YAML files): each key belongs to exactly one of
``ModelArguments``, ``DataArguments``, ``RunArguments`` or ``TrainingArguments``. The dashboard form,
the CLI and saved runs all go through :func:`config_from_dict`, so every run can be replayed from its
saved file.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainer_core.errors import ConfigError

BUILTIN_MODELS = ("builtin:minilm-l6", "builtin:tiny-bert")
BUILTIN_DATASETS = ("builtin:rotten-tomatoes",)
TABLE_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
# Metrics compute_metrics reports; metric_for_best_model must name one of them (or the eval loss).
REPORTED_METRICS = ("accuracy", "f1", "precision", "recall", "loss")


@dataclass
class ModelArguments:
    """Which checkpoint to fine-tune and how to load it."""

    model_name_or_path: str = field(
        default="builtin:minilm-l6",
        metadata={
            "help": "Checkpoint to fine-tune: 'builtin:minilm-l6' (pretrained all-MiniLM-L6-v2, offline), "
            "'builtin:tiny-bert' (random 2-layer BERT for smoke tests), a local save_pretrained folder, "
            "or a Hugging Face Hub model id such as 'bert-base-uncased'."
        },
    )
    tokenizer_name: str | None = field(
        default=None,
        metadata={"help": "Tokenizer to use if not the checkpoint's own (Hub id or local folder)."},
    )
    revision: str = field(
        default="main",
        metadata={
            "help": "Hub revision (branch, tag or commit) of the checkpoint; ignored for local folders."
        },
    )
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Where Hub downloads are cached (defaults to the Hugging Face cache)."},
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "Allow the checkpoint to run its own modelling code from the Hub. Only enable for "
            "repositories you trust."
        },
    )


@dataclass
class DataArguments:
    """Which dataset to train and evaluate on, and how to turn it into model inputs."""

    dataset_name: str | None = field(
        default="builtin:rotten-tomatoes",
        metadata={
            "help": "Dataset: 'builtin:rotten-tomatoes' (offline movie reviews, fresh/rotten) or a Hub "
            "dataset id such as 'glue'. Leave empty when using train_file."
        },
    )
    dataset_config_name: str | None = field(
        default=None,
        metadata={"help": "Hub dataset configuration, e.g. 'mrpc' for dataset 'glue'."},
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Local training file: .csv, .tsv, .json, .jsonl or .parquet (instead of dataset_name)."
        },
    )
    validation_file: str | None = field(
        default=None,
        metadata={
            "help": "Local validation file in the same format. If empty, a validation split is carved out "
            "of the training data (see validation_split_ratio)."
        },
    )
    train_split: str = field(
        default="train", metadata={"help": "Name of the training split in a Hub or built-in dataset."}
    )
    validation_split: str | None = field(
        default=None,
        metadata={
            "help": "Name of the validation split in a Hub dataset (e.g. 'validation'). If empty or absent, "
            "one is carved out of the training split."
        },
    )
    text_column: str | None = field(
        default=None,
        metadata={"help": "Column holding the (first) text. Empty: guessed from the column names."},
    )
    text_pair_column: str | None = field(
        default=None,
        metadata={
            "help": "Column holding the second text for sentence-pair tasks such as MRPC. Empty: single text."
        },
    )
    label_column: str | None = field(
        default=None,
        metadata={
            "help": "Column holding the class label (strings or integers). Empty: guessed from the column names."
        },
    )
    validation_split_ratio: float = field(
        default=0.1,
        metadata={
            "help": "Share of the training rows held out for validation when the data has no validation "
            "split (stratified by label, seeded by seed). Between 0 and 1."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training rows (for quick runs)."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many validation rows."}
    )
    max_seq_length: int = field(
        default=128,
        metadata={
            "help": "Maximum length in tokens; longer inputs are truncated. Batches are padded to their "
            "longest row, not to this length."
        },
    )


@dataclass
class RunArguments:
    """Run-level options this project adds on top of TrainingArguments."""

    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop when metric_for_best_model has not improved for this many evaluations. "
            "Needs load_best_model_at_end and an eval strategy."
        },
    )
    early_stopping_threshold: float = field(
        default=0.0,
        metadata={
            "help": "Minimum improvement of metric_for_best_model that resets early-stopping patience."
        },
    )


# TrainingArguments defaults this project changes, because a dashboard run is watched per epoch: evaluate
# and checkpoint every epoch, log often enough to draw a loss curve, report to no external tracker.
TRAINING_DEFAULTS: dict[str, Any] = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "steps",
    "logging_steps": 10,
    "report_to": "none",
    "disable_tqdm": True,
}
# Fields the launcher owns; a user value is replaced by the run folder's.
LAUNCHER_OWNED = ("output_dir",)
# Never written to disk.
SECRET_FIELDS = ("hub_token",)


def _training_arguments_cls():
    # transformers is slow to import; keep `import trainer_core.config` cheap for the CLI and dashboard.
    from transformers import TrainingArguments

    return TrainingArguments


@dataclass
class RunConfig:
    """A complete, validated run config."""

    model: ModelArguments
    data: DataArguments
    run: RunArguments
    training: Any  # transformers.TrainingArguments

    def to_dict(self, minimal: bool = False) -> dict[str, Any]:
        """The flat mapping that recreates this config.

        Args:
            minimal: only the values that differ from the defaults (short, for display and diffs).
        Returns:
            A JSON/YAML-serialisable dict that :func:`config_from_dict` turns back into an equal config.
        """
        out: dict[str, Any] = {}
        for part in (self.model, self.data, self.run):
            for f in dataclasses.fields(part):
                value = getattr(part, f.name)
                if minimal and value == _default_of(f):
                    continue
                out[f.name] = value
        training = self.training.to_dict()
        defaults = _default_training_dict() if minimal else {}
        for key, value in training.items():
            if key in SECRET_FIELDS or (minimal and key in LAUNCHER_OWNED):
                continue
            if minimal and (defaults.get(key) == value or _is_derived(key, value, training)):
                continue
            out[key] = value
        for key in _WHOLE_WHEN_INTEGRAL:
            if isinstance(out.get(key), float) and out[key].is_integer() and out[key] >= 1:
                out[key] = int(out[key])
        return _jsonable(out)


# TrainingArguments types these as float (they may be ratios below 1); written as 10, not 10.0.
_WHOLE_WHEN_INTEGRAL = ("logging_steps", "eval_steps", "save_steps", "num_train_epochs", "warmup_steps")


def _is_derived(key: str, value: Any, training: dict[str, Any]) -> bool:
    """True for values TrainingArguments fills in from others (left out of minimal configs)."""
    metric = training.get("metric_for_best_model")
    if key == "greater_is_better" and metric is not None:
        return value == (not str(metric).endswith("loss"))
    if key == "metric_for_best_model" and training.get("load_best_model_at_end"):
        return value == "loss"
    if key == "eval_steps" and value is not None:
        return value == training.get("logging_steps") and training.get("eval_strategy") == "steps"
    return False


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


_DEFAULT_TRAINING: dict[str, Any] | None = None


def _default_training_dict() -> dict[str, Any]:
    global _DEFAULT_TRAINING
    if _DEFAULT_TRAINING is None:
        ta = _training_arguments_cls()(output_dir="unset", **TRAINING_DEFAULTS)
        _DEFAULT_TRAINING = ta.to_dict()
    return _DEFAULT_TRAINING


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def argument_classes() -> tuple[type, ...]:
    """The dataclasses a config is parsed into, in order."""
    return (ModelArguments, DataArguments, RunArguments, _training_arguments_cls())


def field_help() -> dict[str, str]:
    """Each config key's help text (the dashboard shows these next to its fields)."""
    out = {}
    for cls in argument_classes():
        for f in dataclasses.fields(cls):
            if f.init:
                out[f.name] = f.metadata.get("help", "")
    return out


def field_owner(name: str) -> str | None:
    """Which argument group ('model', 'data', 'run', 'training') a key belongs to."""
    for group, cls in zip(("model", "data", "run", "training"), argument_classes(), strict=True):
        if name in {f.name for f in dataclasses.fields(cls) if f.init}:
            return group
    return None


# --------------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------------


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a YAML or JSON config file (flat, run_glue style) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(None, f"config file {str(path)!r} does not exist")
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
        raise ConfigError(None, f"config file {str(path)!r} must hold a mapping of field: value")
    return config_from_dict(raw, base_dir=path.parent)


def config_from_dict(raw: dict[str, Any], base_dir: str | os.PathLike | None = None) -> RunConfig:
    """Build and validate a config from a flat mapping (form values, a parsed file, a saved run).

    Values may be strings (e.g. ``"2e-5"`` from YAML or a text box); they are converted to the field's
    type. Relative data and checkpoint paths are resolved against ``base_dir`` when they exist there.

    Raises:
        ConfigError: naming the first field at fault and what to do.
    """
    from transformers import HfArgumentParser

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
    hints = _field_types()
    for key, value in values.items():
        typed[key] = _coerce(key, value, hints[key])
    _resolve_relative_paths(typed, Path(base_dir) if base_dir is not None else Path.cwd())

    _validate_before_parse(typed)
    parser = HfArgumentParser(argument_classes())
    try:
        model_args, data_args, run_args, training_args = parser.parse_dict(typed)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(_guess_field(str(exc), typed), _clean_message(str(exc))) from exc
    config = RunConfig(model=model_args, data=data_args, run=run_args, training=training_args)
    _validate_combinations(config)
    return config


def _reject_unknown_keys(values: dict[str, Any]) -> None:
    known = set(field_help())
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(key, f"unknown config field.{hint}")


_FIELD_TYPES: dict[str, Any] | None = None


def _field_types() -> dict[str, Any]:
    global _FIELD_TYPES
    if _FIELD_TYPES is None:
        out = {}
        for cls in argument_classes():
            hints = typing.get_type_hints(cls)
            for f in dataclasses.fields(cls):
                if f.init:
                    out[f.name] = hints.get(f.name, Any)
        _FIELD_TYPES = out
    return _FIELD_TYPES


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` to the field's declared type, or raise ConfigError saying what was expected."""
    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        empty = ("", "null") if str in args else ("", "none", "null")
        if isinstance(value, str) and value.strip().lower() in empty and type(None) in typing.get_args(hint):
            return None
        if (
            isinstance(value, str)
            and value.strip().startswith(("{", "["))
            and (dict in args or typing.get_origin(args[0]) is dict)
        ):
            return _coerce(name, value, dict)
        for member in args:
            if (
                isinstance(member, type)
                and isinstance(value, member)
                and not isinstance(value, bool)
                or member is bool
                and isinstance(value, bool)
            ):
                return value
        errors = []
        # Try the scalar members first so '3' becomes 3 for `int | str` fields.
        for member in sorted(args, key=lambda a: a is str):
            try:
                return _coerce(name, value, member)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(name, f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(name, f"expected a whole number, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(name, f"expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(name, f"expected text, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        choices = [m.value for m in hint]
        if str(value) in choices:
            return str(value)
        raise ConfigError(name, f"{value!r} is not one of {', '.join(map(str, choices))}")
    if origin in (list, tuple):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(name, f"expected a list, got {value!r}")
    if origin is dict or hint is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(name, f"expected a JSON object, got {value!r}") from exc
        if not isinstance(value, dict):
            raise ConfigError(name, f"expected a mapping, got {value!r}")
        return value
    return value


def looks_like_path(name: str) -> bool:
    """True when a checkpoint or dataset name is meant as a local path rather than a Hub id."""
    return (
        name.startswith((".", "/", "~"))
        or os.sep in name.strip("/").split("/", 1)[-1]
        or name.count("/") > 1
        or Path(name).expanduser().exists()
    )


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


def _validate_before_parse(v: dict[str, Any]) -> None:
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


def _validate_combinations(config: RunConfig) -> None:
    t = config.training
    eval_strategy = _value(t.eval_strategy)
    _value(t.save_strategy)
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


def _guess_field(message: str, values: dict[str, Any]) -> str | None:
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


def _clean_message(message: str) -> str:
    return " ".join(message.replace("--", "").split())


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

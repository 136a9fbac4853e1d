"""Run config: run_glue.py-style argument dataclasses beside the stock ``TrainingArguments``.

A config is one flat mapping (as in run_glue's JSON/YAML files): each key belongs to exactly one of
``ModelArguments``, ``DataArguments``, ``RunArguments`` or ``TrainingArguments``. The dashboard form,
the CLI and saved runs all go through :func:`config_from_dict`, so every run can be replayed from its
saved file.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer_core.metrics import F1_AVERAGES, METRIC_NAMES, check_f1_options

TABLE_EXTENSIONS = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
# Metrics compute_metrics reports; metric_for_best_model must name one of them (or the eval loss).
REPORTED_METRICS = (*METRIC_NAMES, "loss")


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
    f1_average: str | None = field(
        default=None,
        metadata={
            "help": f"How F1, precision and recall are computed: {' / '.join(F1_AVERAGES)}. 'binary' "
            "scores the positive class of two (see pos_label); 'macro' averages the classes, each counting "
            "the same; 'weighted' weights each class by its rows. Empty: binary for two classes, macro "
            "for more."
        },
    )
    pos_label: str | None = field(
        default=None,
        metadata={
            "help": "The positive class a binary F1 scores, as the label appears in the data (e.g. 'spam', "
            "or '1' for MRPC's paraphrases). Empty: class id 1 (label 1 of 0/1; of two text labels, the "
            "later in sorted order)."
        },
    )

    def __post_init__(self):
        # Normalised as labels and choices are read (stripped; averages in lower case), then checked for
        # what holds whatever the labels; the labels' own checks are at preflight.
        if isinstance(self.f1_average, str):
            self.f1_average = self.f1_average.strip().lower() or None
        if isinstance(self.pos_label, str):
            self.pos_label = self.pos_label.strip() or None
        check_f1_options(self.f1_average, self.pos_label)


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

    # -- processes ---------------------------------------------------------------------------------
    num_processes: int = field(
        default=1,
        metadata={
            "help": "Training processes on this machine, started with torchrun: one per GPU (nccl), or "
            "CPU processes (gloo) when there is no GPU or use_cpu is on. Each process takes "
            "per_device_train_batch_size rows per step, so with N processes the batch is N times larger "
            "and an epoch has 1/N of the steps. At most the number of GPUs (or CPU cores)."
        },
    )

    # -- where the run trains (see runs/ray_executor.py) -------------------------------------------
    executor: str = field(
        default="local",
        metadata={
            "help": "Where the run trains: 'local' (a worker process on this machine, the default) or "
            "'ray' (a Ray job on the cluster at ray_address, trained by Ray Train with num_workers "
            "workers)."
        },
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "The Ray cluster's Jobs address, as `ray job submit --address` takes it (e.g. "
            "http://head-node:8265). Empty: TRAINER_CORE_RAY_ADDRESS. Only with executor: ray."
        },
    )
    num_workers: int = field(
        default=1,
        metadata={
            "help": "Ray Train workers (one process each, anywhere in the cluster). Like num_processes, "
            "the batch is num_workers times larger and an epoch has 1/num_workers of the steps. Only "
            "with executor: ray."
        },
    )
    use_gpu: bool = field(
        default=False,
        metadata={"help": "Give each Ray Train worker one GPU (nccl); off, CPU workers (gloo)."},
    )
    resources_per_worker: dict[str, float] | None = field(
        default=None,
        metadata={
            "help": "What each Ray Train worker reserves, e.g. {CPU: 2} or {CPU: 4, GPU: 1}. Empty: "
            "Ray Train's default (1 CPU, plus 1 GPU with use_gpu)."
        },
    )
    storage_path: str | None = field(
        default=None,
        metadata={
            "help": "A folder every Ray node and this machine reach at the same path (a shared mount): "
            "the run's folder (checkpoints, final model, predictions, log) goes there. Empty: the runs "
            "folder, allowed only when the cluster is this machine. Only with executor: ray."
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


@functools.cache
def _default_training_dict() -> dict[str, Any]:
    """TrainingArguments' values with this project's defaults (read-only: the dict is shared)."""
    return _training_arguments_cls()(output_dir="unset", **TRAINING_DEFAULTS).to_dict()


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


@functools.cache
def field_types() -> dict[str, Any]:
    """Each config key's declared type (``int``, ``float | None``, an enum...), read-only."""
    out = {}
    for cls in argument_classes():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.init:
                out[f.name] = hints.get(f.name, Any)
    return out


def field_help() -> dict[str, str]:
    """Each config key's help text (the dashboard shows these next to its fields)."""
    out = {}
    for cls in argument_classes():
        for f in dataclasses.fields(cls):
            if f.init:
                out[f.name] = f.metadata.get("help", "")
    return out


def training_field_defaults() -> dict[str, Any]:
    """Each ``TrainingArguments`` field's default as a run gets it (with ``TRAINING_DEFAULTS`` applied).

    Returns:
        Field name -> default, enums as their string values; fields without a default are left out.
    """
    return dict(_training_field_defaults())


@functools.cache
def _training_field_defaults() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(_training_arguments_cls()):
        default = _default_of(f)
        if f.init and default is not dataclasses.MISSING:
            out[f.name] = _jsonable(default)
    return {**out, **TRAINING_DEFAULTS}


# Schedulers that need lr_scheduler_kwargs (a minimum rate, decay steps ...) or an eval metric besides
# the usual arguments: a form offers the others; these remain reachable through a config's own fields.
SCHEDULERS_NEEDING_KWARGS = (
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
    "greedy",
)


def training_choices() -> dict[str, tuple[str, ...]]:
    """The values of ``TrainingArguments``' choice fields, from transformers' own enums.

    Returns:
        ``lr_scheduler_type`` (schedulers that work without ``lr_scheduler_kwargs``),
        ``logging_strategy``, ``eval_strategy`` and ``save_strategy`` -> their values, in enum order.
    """
    return dict(_training_choices())


@functools.cache
def _training_choices() -> dict[str, tuple[str, ...]]:
    from transformers.trainer_utils import IntervalStrategy, SaveStrategy, SchedulerType

    intervals = tuple(s.value for s in IntervalStrategy)
    return {
        "lr_scheduler_type": tuple(
            s.value for s in SchedulerType if s.value not in SCHEDULERS_NEEDING_KWARGS
        ),
        "logging_strategy": intervals,
        "eval_strategy": intervals,
        "save_strategy": tuple(s.value for s in SaveStrategy),
    }


def field_owner(name: str) -> str | None:
    """Which argument group ('model', 'data', 'run', 'training') a key belongs to."""
    for group, cls in zip(("model", "data", "run", "training"), argument_classes(), strict=True):
        if name in {f.name for f in dataclasses.fields(cls) if f.init}:
            return group
    return None


def looks_like_path(name: str) -> bool:
    """True when a checkpoint or dataset name is meant as a local path rather than a Hub id."""
    return (
        name.startswith((".", "/", "~"))
        or os.sep in name.strip("/").split("/", 1)[-1]
        or name.count("/") > 1
        or Path(name).expanduser().exists()
    )

"""The New run form's model: widget values <-> the flat run config, with no Streamlit in it.

The page keeps one value per widget in session state under ``new.<name>``; :func:`form_to_config` turns
those values into the flat mapping ``config_from_dict`` takes (the same one a YAML file holds), and
:func:`config_to_form` goes back, for cloning a run into the form.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from dashboard.form_numbers import NUMBER_FIELDS, STEP_BOXES, number_text, read_numbers
from dashboard.form_where import WHERE_DEFAULTS, WHERE_OPTIONS, where_to_config, where_to_form
from trainer_core import (
    BUILTIN_DATASETS,
    BUILTIN_MODELS,
    REPORTED_METRICS,
    DataArguments,
    RunArguments,
    is_builtin,
    looks_like_path,
    training_choices,
    training_field_defaults,
)

PREFIX = "new."

MODEL_SOURCES = ("Built-in", "Hugging Face Hub", "Local folder", "Finished run")
DATA_SOURCES = ("Built-in", "Hugging Face Hub", "Upload a file", "File on this machine")
UPLOAD_TYPES = ["csv", "tsv", "json", "jsonl", "parquet"]
# The select widgets' options are the values transformers' own enums allow (the schedulers that need
# no lr_scheduler_kwargs), and the metrics compute_metrics reports.
CHOICES: dict[str, tuple[str, ...]] = training_choices()
BEST_METRICS = REPORTED_METRICS
BUILTIN_MODEL_NOTES = {
    "builtin:minilm-l6": "MiniLM-L6 (pretrained all-MiniLM-L6-v2, 22M parameters, offline)",
    "builtin:tiny-bert": "tiny-bert (random 2-layer BERT, for smoke tests)",
}
BUILTIN_DATASET_NOTES = {"builtin:rotten-tomatoes": "Rotten Tomatoes (4.9k movie reviews, fresh / rotten)"}

# The argument dataclasses' own defaults, TrainingArguments' with the project's TRAINING_DEFAULTS, so
# the YAML shown for an untouched form lists only what the user chose.
_CONFIG_DEFAULTS = {
    **{f.name: f.default for cls in (DataArguments, RunArguments) for f in dataclasses.fields(cls)},
    **training_field_defaults(),
}
# Widgets whose value is the config value of the same name, unchanged.
DIRECT_KEYS = (
    "text_column",
    "text_pair_column",
    "label_column",
    "validation_split_ratio",
    "max_train_samples",
    "max_eval_samples",
    "max_seq_length",
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "weight_decay",
    "lr_scheduler_type",
    "seed",
    "gradient_accumulation_steps",
    "logging_strategy",
    "eval_strategy",
    "save_strategy",
    "fp16",
    "bf16",
    "early_stopping_patience",
    "load_best_model_at_end",
    "num_processes",
    "f1_average",
    "pos_label",
)


def _field_default(name: str) -> Any:
    """A config field's default, as its widget holds it (a number box holds text)."""
    value = _CONFIG_DEFAULTS[name]
    return number_text(value) if name in NUMBER_FIELDS else value


# Widget name -> initial value.
DEFAULTS: dict[str, Any] = {
    "model_source": MODEL_SOURCES[0],
    "model_builtin": BUILTIN_MODELS[0],
    "model_hub": "",
    "model_local": "",
    "model_run": None,
    "data_source": DATA_SOURCES[0],
    "data_builtin": BUILTIN_DATASETS[0],
    "data_hub": "",
    "data_hub_config": "",
    "train_split": _CONFIG_DEFAULTS["train_split"],
    "validation_split": "",
    "upload_train": None,
    "upload_validation": None,
    "train_file": "",
    "validation_file": "",
    # Widgets of config fields start at their field's default; the form's own choices follow.
    **{name: _field_default(name) for name in DIRECT_KEYS + ("logging_steps", "save_steps")},
    "warmup_ratio": number_text(_CONFIG_DEFAULTS["warmup_steps"]),  # below 1, warmup_steps is a ratio
    # TrainingArguments has no eval_steps of its own (None: logging_steps); the disabled box needs one.
    "eval_steps": "100",
    # metric_for_best_model is None until best-model tracking is on; the disabled select shows the first.
    "metric_for_best_model": BEST_METRICS[0],
    "advanced_json": "",
    "run_name": "",
    **WHERE_DEFAULTS,  # this machine, unless the user picks a Ray cluster
}
# Config keys the form's widgets own; anything else a cloned config sets goes to the advanced box.
FORM_CONFIG_KEYS = frozenset(
    DIRECT_KEYS
    + (
        "model_name_or_path",
        "dataset_name",
        "dataset_config_name",
        "train_split",
        "validation_split",
        "train_file",
        "validation_file",
        "logging_steps",
        "eval_steps",
        "save_steps",
        "metric_for_best_model",
        "warmup_steps",
        *WHERE_DEFAULTS,
    )
)
# Keys that are per-run by construction and never worth pre-filling.
NOT_CLONED = ("output_dir", "logging_dir", "run_name")
# Where an error about a config key is shown when the key has no widget of its own.
SLOT_ALIASES = {
    "warmup_steps": "warmup_ratio",
    "tokenizer_name": "model_name_or_path",
    "revision": "model_name_or_path",
    "trust_remote_code": "model_name_or_path",
    "early_stopping_threshold": "early_stopping_patience",
    "max_steps": "num_train_epochs",
    # TrainingArguments rejects bf16 on a machine without support with a message naming use_cpu.
    "use_cpu": "bf16",
}


def key(name: str) -> str:
    """The session-state key of a form widget."""
    return PREFIX + name


def model_name(values: Mapping[str, Any]) -> str:
    """The checkpoint the form names (model_name_or_path)."""
    source = values.get("model_source")
    if source == "Hugging Face Hub":
        return (values.get("model_hub") or "").strip()
    if source == "Local folder":
        return (values.get("model_local") or "").strip()
    if source == "Finished run":
        return (values.get("model_run") or "").strip()
    return values.get("model_builtin") or BUILTIN_MODELS[0]


def data_args(values: Mapping[str, Any], with_columns: bool = True) -> dict[str, Any]:
    """The DataArguments part of the config (what the dataset preview needs)."""
    source = values.get("data_source")
    out: dict[str, Any] = {"dataset_name": None, "train_file": None, "validation_file": None}
    if source == "Hugging Face Hub":
        out["dataset_name"] = (values.get("data_hub") or "").strip() or None
        out["dataset_config_name"] = (values.get("data_hub_config") or "").strip() or None
        out["train_split"] = (values.get("train_split") or "").strip() or "train"
        out["validation_split"] = (values.get("validation_split") or "").strip() or None
    elif source == "Upload a file":
        out["train_file"] = values.get("upload_train") or None
        out["validation_file"] = values.get("upload_validation") or None
    elif source == "File on this machine":
        out["train_file"] = (values.get("train_file") or "").strip() or None
        out["validation_file"] = (values.get("validation_file") or "").strip() or None
    else:
        out["dataset_name"] = values.get("data_builtin") or BUILTIN_DATASETS[0]
    for name in ("validation_split_ratio", "max_train_samples", "max_eval_samples", "max_seq_length"):
        out[name] = values.get(name)
    if with_columns:
        for name in ("text_column", "text_pair_column", "label_column"):
            out[name] = values.get(name) or None
    return out


def dataset_signature(v: Mapping[str, Any]) -> str:
    """What identifies the dataset the form names (a change means the column mapping must be guessed anew)."""
    args = data_args(v, with_columns=False)
    keys = (
        "dataset_name",
        "dataset_config_name",
        "train_split",
        "validation_split",
        "train_file",
        "validation_file",
    )
    return json.dumps({k: args.get(k) for k in keys}, sort_keys=True)


def parse_advanced(text: str | None) -> dict[str, Any]:
    """The advanced box's JSON object. Raises ValueError with a readable message."""
    text = (text or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text, object_pairs_hook=_one_value_per_key)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise ValueError('write a JSON object of field: value pairs, e.g. {"max_grad_norm": 0.5}')
    return value


def _one_value_per_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys, so {"seed": 1, "seed": 2} would run with 2 while the
    # box also shows 1: refused, like any value that would run other than as it reads.
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"{key} is given twice; keep one of its values")
        seen[key] = value
    return seen


def form_to_config(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], set[str]]:
    """Build the flat run config from the form's values.

    Returns:
        (config, errors, advanced_keys): errors maps a field to a problem found before validation (a
        number box's text that is no number, the advanced box's JSON); advanced_keys are the fields the
        advanced box set, whose errors belong next to that box.
    """
    values, errors = read_numbers(form)
    config: dict[str, Any] = {"model_name_or_path": model_name(values)}
    config.update(data_args(values))
    for name in DIRECT_KEYS:
        value = values.get(name)
        if name in ("text_column", "text_pair_column", "label_column") and not value:
            value = None
        config[name] = value
    config["warmup_steps"] = values.get("warmup_ratio")  # empty stays None: the engine asks for a number
    for steps, strategy in STEP_BOXES.items():
        if values.get(strategy) == "steps":
            config[steps] = values.get(steps)
    if values.get("load_best_model_at_end") or values.get("early_stopping_patience") is not None:
        config["metric_for_best_model"] = values.get("metric_for_best_model")
    try:
        advanced = parse_advanced(values.get("advanced_json"))
    except ValueError as exc:
        errors["advanced_json"] = str(exc)
        advanced = {}
    if problem := _boxed_in_advanced(advanced, values):
        errors["advanced_json"] = problem
    where_to_config(values, config, errors)
    config.update(advanced)
    if "warmup_steps" not in advanced and _not_a_ratio(values.get("warmup_ratio")):
        # transformers reads a warmup_steps of 1 or more as a step count: 5 in the ratio box would run
        # 5 warmup steps while the box says a ratio of 5.
        errors["warmup_ratio"] = (
            f"is a share of the training steps: enter a value from 0 to below 1 (e.g. 0.06), got "
            f"{number_text(values['warmup_ratio'])}; a number of steps goes in the advanced box as warmup_steps"
        )
    return config, errors, set(advanced)


def _boxed_in_advanced(advanced: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """Why the advanced box may not set these keys, or None. A key with its own box on the form would
    run with the advanced value while the box shows another, so it is refused; only a value its box
    cannot show (a column the select does not list, say) and a warmup step count may go there."""
    boxed = []
    for key, value in advanced.items():
        if key == "warmup_steps":
            ratio = values.get("warmup_ratio")
            if _not_a_ratio(value) and not ratio:
                continue  # a step count: the ratio box is empty (or 0), so nothing on screen disagrees
            boxed.append("warmup_steps (or empty the Warmup ratio box)" if _not_a_ratio(value) else key)
        elif key in FORM_CONFIG_KEYS and (
            key not in DIRECT_KEYS + tuple(STEP_BOXES) or (_as_widget_value(key, value) is not _UNSAYABLE)
        ):
            boxed.append(key)
    if not boxed:
        return None
    return (
        f"{', '.join(boxed)}: {'has its' if len(boxed) == 1 else 'have their'} own box on this form; set "
        "the value there and remove it here, so that what the form shows is what runs"
    )


def _not_a_ratio(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1


def slot_for(field: str | None, slots: set[str] | frozenset[str], advanced_keys: set[str]) -> str:
    """Which widget an error about ``field`` is shown under ('general' when none fits)."""
    if field in advanced_keys:
        return "advanced_json"
    if field in slots:
        return field
    alias = SLOT_ALIASES.get(field or "")
    if alias in slots:
        return alias
    return "general"


def config_to_form(
    config: Mapping[str, Any],
    finished_models: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Form values that reproduce ``config`` (a run's flat config, ideally its minimal form).

    Args:
        config: flat config; keys the form has no widget for go to the advanced JSON box.
        finished_models: [{id, name, path}] of completed runs, so a checkpoint that is a finished run's
            model is shown as "Finished run" (the widget's value is the model's path) rather than as a
            bare folder.
    Returns:
        A complete set of form values (defaults where the config says nothing).
    """
    values = dict(DEFAULTS)
    model = str(config.get("model_name_or_path") or BUILTIN_MODELS[0])
    by_path = {str(m["path"]).rstrip("/"): m for m in finished_models or []}
    if is_builtin(model):
        values.update(model_source=MODEL_SOURCES[0], model_builtin=model)
    elif model.rstrip("/") in by_path:
        values.update(model_source="Finished run", model_run=by_path[model.rstrip("/")]["path"])
    elif looks_like_path(model):
        values.update(model_source="Local folder", model_local=model)
    else:
        values.update(model_source="Hugging Face Hub", model_hub=model)

    dataset, train_file = config.get("dataset_name"), config.get("train_file")
    if train_file:
        values.update(
            data_source="File on this machine",
            train_file=train_file,
            validation_file=config.get("validation_file") or "",
        )
    elif is_builtin(dataset):
        values.update(data_source=DATA_SOURCES[0], data_builtin=dataset)
    elif dataset:
        values.update(
            data_source="Hugging Face Hub",
            data_hub=dataset,
            data_hub_config=config.get("dataset_config_name") or "",
            train_split=config.get("train_split") or "train",
            validation_split=config.get("validation_split") or "",
        )

    values.update(where_to_form(config))
    advanced: dict[str, Any] = {}
    for name in DIRECT_KEYS + ("logging_steps", "eval_steps", "save_steps"):
        if name not in config:
            continue
        value = _as_widget_value(name, config[name])
        if value is _UNSAYABLE:
            advanced[name] = config[name]  # e.g. a scheduler the select does not offer: the JSON box says it
        else:
            values[name] = value
    metric = config.get("metric_for_best_model")
    if metric:
        bare = str(metric).removeprefix("eval_")
        values["metric_for_best_model"] = bare if bare in BEST_METRICS else DEFAULTS["metric_for_best_model"]

    advanced.update({k: v for k, v in config.items() if k not in FORM_CONFIG_KEYS and k not in NOT_CLONED})
    if metric and advanced.get("greater_is_better") == (not str(metric).endswith("loss")):
        del advanced["greater_is_better"]  # TrainingArguments derives it from the metric; not a user choice
    warmup = config.get("warmup_steps")
    if isinstance(warmup, (int, float)) and not isinstance(warmup, bool):
        if 0 <= warmup < 1:
            values["warmup_ratio"] = number_text(warmup)
        else:  # a step count, not a ratio: the ratio widget cannot say it, the advanced box can
            advanced["warmup_steps"] = int(warmup) if float(warmup).is_integer() else warmup
    values["advanced_json"] = json.dumps(advanced, indent=2, default=str) if advanced else ""
    return values


_UNSAYABLE = object()


def _as_widget_value(name: str, value: Any) -> Any:
    """``value`` in the type its widget holds, or _UNSAYABLE when the widget cannot show it."""
    if name in CHOICES:
        return value if value in CHOICES[name] else _UNSAYABLE
    if name in NUMBER_FIELDS:
        # Text as it was (a config that failed its checks is cloned as it stands, and its box shows the
        # error), a number as the shortest text that reads back as it.
        ok = value is None or isinstance(value, (str, int, float)) and not isinstance(value, bool)
        return number_text(value) if ok else _UNSAYABLE
    return value


# --------------------------------------------------------------------------------------------------
# drafts: the form's values as a small JSON text, kept on disk so a browser reload does not lose them
# --------------------------------------------------------------------------------------------------

# Widgets whose options are fixed: a draft's value outside them is dropped (a select refuses it). The
# column selects are left out: their options are the data's columns, and the page shows a missing one.
_FIXED_OPTIONS: dict[str, tuple[Any, ...]] = {
    **CHOICES,
    "model_source": MODEL_SOURCES,
    "model_builtin": tuple(BUILTIN_MODELS),
    "data_source": DATA_SOURCES,
    "data_builtin": tuple(BUILTIN_DATASETS),
    "metric_for_best_model": tuple(BEST_METRICS),
    **WHERE_OPTIONS,
}


def draft_text(values: Mapping[str, Any], cloned_from: str | None = None) -> str:
    """The form as a draft: the values that differ from the defaults (an untouched form is ``{}``)."""
    changed = {k: values[k] for k, default in DEFAULTS.items() if k in values and values[k] != default}
    draft: dict[str, Any] = {"form": changed}
    if cloned_from:
        draft["cloned_from"] = cloned_from
    return json.dumps(draft, sort_keys=True)


def form_from_draft(draft: Mapping[str, Any]) -> dict[str, Any]:
    """The widget values a draft holds, each checked against its widget: a value the widget cannot hold
    (a field renamed or an option removed since the draft was saved, a hand-edited file) is left out, so
    that widget starts at its default instead of failing the page."""
    saved = draft.get("form")
    if not isinstance(saved, Mapping):
        return {}
    out: dict[str, Any] = {}
    for name, value in saved.items():
        if name in DEFAULTS and (kept := _draft_value(name, value)) is not _UNSAYABLE:
            out[name] = kept
    return out


def _draft_value(name: str, value: Any) -> Any:
    default = DEFAULTS[name]
    if name in _FIXED_OPTIONS:
        return value if value in _FIXED_OPTIONS[name] else _UNSAYABLE
    if name in NUMBER_FIELDS:  # text since the boxes are text boxes; a number in an older draft
        return _as_widget_value(name, value)
    if value is None:
        return None if default is None else _UNSAYABLE
    if isinstance(default, bool):
        return value if isinstance(value, bool) else _UNSAYABLE
    return value if isinstance(value, str) else _UNSAYABLE

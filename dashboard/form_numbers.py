"""The New run form's number boxes: text boxes whose text the engine reads, and numbers written back.

No Streamlit in it, like ``form``, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer_core import ConfigError, value_from_text

# The number boxes and the config field each fills. They are text boxes (see ``new_run_inputs.number_box``)
# whose text the engine reads by the field's type (``value_from_text``): "1e3", " 5 " and "1,000" get the
# rule a YAML file's strings get, and text that is no number is refused under its box.
NUMBER_FIELDS: dict[str, str] = {
    "validation_split_ratio": "validation_split_ratio",
    "max_train_samples": "max_train_samples",
    "max_eval_samples": "max_eval_samples",
    "max_seq_length": "max_seq_length",
    "learning_rate": "learning_rate",
    "num_train_epochs": "num_train_epochs",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "per_device_eval_batch_size": "per_device_eval_batch_size",
    "weight_decay": "weight_decay",
    "warmup_ratio": "warmup_steps",  # below 1, warmup_steps is a ratio (see form_to_config)
    "seed": "seed",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "logging_steps": "logging_steps",
    "eval_steps": "eval_steps",
    "save_steps": "save_steps",
    "early_stopping_patience": "early_stopping_patience",
    "num_processes": "num_processes",
}
# Each step box counts only under its strategy's "steps"; otherwise it is disabled and not read.
STEP_BOXES = {
    "logging_steps": "logging_strategy",
    "eval_steps": "eval_strategy",
    "save_steps": "save_strategy",
}


def number_text(value: Any) -> str:
    """A number as its box shows it: the shortest text that reads back as the same value ("3", "3e-05").

    ``repr``, not ``%g``: "%g" keeps six digits, so a cloned learning rate of 1.2345678e-05 came back as
    1.23457e-05 and the clone would have run with another value.
    """
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))  # 3, not 3.0: the field's type is the engine's to apply
    return repr(value)


def read_numbers(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's values with each number box's text read as its field's value, by the engine's rule.

    Returns:
        (values, errors): ``values`` with a number in place of each box's text (None for an empty box,
        and for one whose text is no number); ``errors`` maps the field of each such box to the engine's
        message, e.g. {"max_train_samples": "expected a whole number such as 8, got 'abc'"}. A step box
        whose strategy is not "steps" is disabled and unused: its text is no error.
    """
    out, errors = dict(values), {}
    for name, field in NUMBER_FIELDS.items():
        text = values.get(name)
        try:
            out[name] = value_from_text(field, text if isinstance(text, str) else number_text(text))
        except ConfigError as exc:
            out[name] = None
            if name not in STEP_BOXES or values.get(STEP_BOXES[name]) == "steps":
                errors[exc.field or field] = exc.message
    return out, errors

"""The New run form's where-to-run part: this machine or a Ray cluster, and the cluster run's fields.

No Streamlit in it, like ``form``, which uses these names. The rules (a worker count above 0, an absolute
storage path, GPUs only with use_gpu ...) are the engine's: these functions only move values between
the widgets and the flat config, and the engine's ConfigError lands under the widget of its field.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from dashboard.form_numbers import number_text
from trainer_core import EXECUTORS, ConfigError, RunArguments, value_from_text

_RUN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunArguments)}
EXECUTOR_LABELS = {"local": "This machine", "ray": "Ray cluster"}
# The widgets of a run on a Ray cluster: read only when the executor is "ray" (the engine refuses each
# of them on this machine), as the Processes box is read only on this machine.
WHERE_KEYS = ("ray_address", "num_workers", "use_gpu", "resources_per_worker", "storage_path")
# Widget name -> initial value (the number box holds text; resources are JSON text, e.g. {"CPU": 2}).
WHERE_DEFAULTS: dict[str, Any] = {
    "executor": _RUN_DEFAULTS["executor"],
    "ray_address": "",
    "num_workers": number_text(_RUN_DEFAULTS["num_workers"]),
    "use_gpu": bool(_RUN_DEFAULTS["use_gpu"]),
    "resources_per_worker": "",
    "storage_path": "",
}
WHERE_OPTIONS = {"executor": tuple(EXECUTORS)}


def where_to_config(values: Mapping[str, Any], config: dict[str, Any], errors: dict[str, str]) -> None:
    """Put the executor and the fields that apply to it into ``config``; the other executor's boxes are
    hidden, so neither their values nor their errors count.

    Args:
        values: the form's values (the number boxes of ``form_numbers`` already read).
        config: the flat config being built (``num_processes`` already in it).
        errors: field -> message of the boxes that could not be read; updated in place.
    """
    executor = values.get("executor") or WHERE_DEFAULTS["executor"]
    config["executor"] = executor
    if executor != "ray":
        return
    config.pop("num_processes", None)  # Ray Train starts the processes: that box is not shown
    errors.pop("num_processes", None)
    config["ray_address"] = (values.get("ray_address") or "").strip() or None  # empty: the engine's default
    config["use_gpu"] = bool(values.get("use_gpu"))
    config["storage_path"] = (values.get("storage_path") or "").strip() or None
    # Text boxes read by the engine's rule for text (see new_run_inputs.number_box): "2", " 2 ", "1e1".
    for name in ("num_workers", "resources_per_worker"):
        try:
            config[name] = value_from_text(name, values.get(name))
        except ConfigError as exc:
            errors[name] = exc.message


def where_to_form(config: Mapping[str, Any]) -> dict[str, Any]:
    """The where-to-run widgets' values for a config (a Ray run's clone goes to the same cluster)."""
    executor = config.get("executor") or WHERE_DEFAULTS["executor"]
    resources = config.get("resources_per_worker")
    workers = config.get("num_workers")
    return {
        "executor": executor if executor in EXECUTORS else WHERE_DEFAULTS["executor"],
        "ray_address": str(config.get("ray_address") or ""),
        "num_workers": WHERE_DEFAULTS["num_workers"] if workers is None else number_text(workers),
        "use_gpu": bool(config.get("use_gpu")),
        "resources_per_worker": json.dumps(resources) if resources else "",
        "storage_path": str(config.get("storage_path") or ""),
    }

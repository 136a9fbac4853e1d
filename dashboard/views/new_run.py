"""New run: a checkpoint, a dataset (previewed before anything starts), hyperparameters, Start.

Every widget keeps its value in session state under ``new.<name>`` (kept across page switches), and on
every rerun the whole form is turned into a flat config and validated with ``config_from_dict``: the
error lands under the widget of the field it names, and Start stays disabled until there is none. The
sections' widgets live in ``new_run_inputs`` (1, 2, 4) and ``new_run_preview`` (3); this page holds the
form's state, the review and the start.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, state
from dashboard import form as F
from dashboard.views.new_run_inputs import (
    KEEP,
    K,
    render_checkpoint,
    render_dataset,
    render_f1_choice,
    render_hyperparameters,
    values,
)
from dashboard.views.new_run_preview import render_preview
from dashboard.views.runs_queue import render_start_forecast
from trainer_core import ConfigError, check_max_length, to_yaml


def init_state() -> None:
    for name, default in F.DEFAULTS.items():
        st.session_state.setdefault(K(name), default)
    if st.session_state.pop("new._clear_name", False):
        st.session_state[K("run_name")] = ""


def apply_prefill() -> None:
    """Fill the form from a cloned run (set by the Runs or Run page before switching here)."""
    prefill = st.session_state.pop(state.PREFILL_KEY, None)
    if not prefill:
        return
    config = prefill["config"]
    try:
        # The minimal form lists only what differs from the defaults: that is what the advanced box
        # should receive, not every TrainingArguments field of the saved file.
        config = data.validate(config).to_dict(minimal=True)
    except ConfigError:
        config = {k: v for k, v in config.items() if v is not None}
    form_values = F.config_to_form(config, data.finished_models())
    form_values["run_name"] = prefill.get("name") or ""
    for name, value in form_values.items():
        st.session_state[K(name)] = value
    st.session_state["new._mapping_for"] = F.dataset_signature(form_values)
    st.session_state["new._cloned_from"] = prefill.get("name")


# --------------------------------------------------------------------------------------------------
# 5. review and start
# --------------------------------------------------------------------------------------------------


def collect_errors(
    slots: dict,
    config_dict: dict,
    pre_errors: dict,
    advanced_keys: set,
    checkpoint: dict | None,
    preview: dict | None,
):
    """Validate the whole form; returns (RunConfig or None, {slot: (field, message)})."""
    names = set(slots)
    errors: dict[str, tuple[str | None, str]] = {}

    def add(field, message):
        slot = F.slot_for(field, names, advanced_keys)
        errors.setdefault(slot, (field, message))

    for field, message in pre_errors.items():
        add(field, message)
    config = None
    if not pre_errors:
        try:
            config = data.validate(config_dict)
        except ConfigError as exc:
            add(exc.field, exc.message)
    if checkpoint is not None and not checkpoint.get("ok"):
        add("model_name_or_path", checkpoint.get("error") or "this checkpoint cannot be used")
    elif not config_dict.get("model_name_or_path"):
        add("model_name_or_path", "choose a checkpoint")
    try:
        check_max_length(config_dict.get("max_seq_length"), checkpoint or {})
    except ConfigError as exc:
        add(exc.field, exc.message)
    if preview is not None and not preview.get("ok"):
        error = preview.get("error") or {}
        add(error.get("field"), error.get("message") or "the dataset cannot be read")
    return (config if not errors else None), errors


def render_review(config, config_dict: dict, errors: dict, general) -> None:
    c1, c2 = st.columns([3, 2])
    with c1:
        st.text_input(
            "Run name",
            key=K("run_name"),
            persist_state=KEEP,
            placeholder="default: model-dataset-id",
            help="Shown in the runs table; you can rename the run later.",
        )
    if errors:
        listed = "\n".join(f"- **{field or 'config'}**: {message}" for field, message in errors.values())
        general.error(
            f"Start is disabled until {'this is' if len(errors) == 1 else 'these are'} fixed:\n{listed}"
        )
    with c2:
        st.write("")  # aligns the button with the name box
        start = st.button(
            "Start run",
            key="new.start",
            type="primary",
            disabled=config is None,
            icon=":material/play_arrow:",
            width="stretch",
        )
        render_start_forecast()
    if config is not None:
        left, right = st.columns(2)
        yaml_text = to_yaml(config)
        with left:
            st.caption("Config file (`config.yaml`): the same run from a terminal")
            st.code(yaml_text, language="yaml")
            st.download_button(
                "Download config.yaml",
                yaml_text,
                file_name="config.yaml",
                key="new.download_yaml",
                mime="text/yaml",
                on_click="ignore",
            )
        with right:
            name = st.session_state.get(K("run_name")) or ""
            suffix = f' --name "{name}"' if name else ""
            st.caption("Command line (train in the foreground; `launch` starts it in the background)")
            # Wrapped: a long run name would otherwise run off the box's edge.
            st.code(f"python -m trainer_core run config.yaml{suffix}", language="bash", wrap_lines=True)
    if start and config is not None:
        launch(config_dict, general)


def launch(config_dict: dict, general) -> None:
    name = (st.session_state.get(K("run_name")) or "").strip() or None
    try:
        with st.spinner("Checking the checkpoint and the data, then starting the worker…"):
            run_id = data.launch(config_dict, name)
    except ConfigError as exc:
        general.error(f"Not started: {exc.field + ': ' if exc.field else ''}{exc.message}")
        return
    state.flash(f"Run {name or run_id} started")
    # A second run from the same form needs its own name; the box is cleared on the next visit, as a
    # widget's value cannot change once it is drawn in this run.
    st.session_state["new._clear_name"] = True
    state.open_run(run_id)


def main() -> None:
    st.title("New run")
    init_state()
    apply_prefill()
    help_ = data.field_help()
    cloned = st.session_state.get("new._cloned_from")
    if cloned:
        st.info(
            f"Pre-filled from run **{cloned}**. Change what you like, then start.",
            icon=":material/content_copy:",
        )
    slots: dict = {}
    with st.container(border=True):
        checkpoint = render_checkpoint(slots, help_)
    with st.container(border=True):
        render_dataset(slots, help_)
        preview = render_preview(slots, help_, checkpoint)
        preview = render_f1_choice(slots, help_, preview)
    with st.container(border=True):
        render_hyperparameters(slots, help_)
    config_dict, pre_errors, advanced_keys = F.form_to_config(values())
    with st.container(border=True):
        st.subheader("5 · Review and start")
        general = st.empty()
        slots["general"] = general
        config, errors = collect_errors(slots, config_dict, pre_errors, advanced_keys, checkpoint, preview)
        for slot, (field, message) in errors.items():
            if slot == "advanced_json" and field != "advanced_json":
                message = f"{field}: {message}"  # the box holds many fields: say which one
            if slot != "general":
                slots[slot].error(message, icon=":material/warning:")
        render_review(config, config_dict, errors, general)


main()

"""New run: a checkpoint, a dataset (previewed before anything starts), hyperparameters, Start.

Every widget keeps its value in session state under ``new.<name>`` (kept across page switches), and on
every rerun the whole form is turned into a flat config and validated with ``config_from_dict``: the
error lands under the widget of the field it names, and Start stays disabled until there is none. The
sections' widgets live in ``new_run_inputs`` (1, 2, 4) and ``new_run_preview`` (3); this page holds the
form's state, the review and the start.

The address says where the form comes from: ``?clone=<run id>`` (a Clone link, applied once) and
``?draft=<id>``, the form's draft on disk (``dashboard/drafts.py``), which is what a reload reopens.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import data, drafts, inputs_data, state
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
from dashboard.views.new_run_preview import MAPPING, render_preview
from dashboard.views.runs_queue import render_start_forecast
from trainer_core import ConfigError, check_max_length, to_yaml

CLONED_FROM = "new._cloned_from"
DRAFT = "new._draft"  # this session's draft id
DRAFT_SAVED = "new._draft_saved"  # the text last written to it, so an unchanged form is not rewritten


def init_state() -> None:
    for name, default in F.DEFAULTS.items():
        st.session_state.setdefault(K(name), default)
    if st.session_state.pop("new._clear_name", False):
        st.session_state[K("run_name")] = ""


def open_form() -> None:
    """Before any widget is drawn: fill the form from the address (a Clone link, or the draft of a page
    that was reloaded), and make the address name this session's draft."""
    params = st.query_params
    clone, finetune = params.get(state.CLONE_PARAM), params.get(state.FINETUNE_PARAM)
    if clone or finetune:
        prefill_from_run(finetune or clone, finetune=bool(finetune))
        # Done once: a reload must show the form as edited since, not the clone again.
        params.pop(state.CLONE_PARAM, None)
        params.pop(state.FINETUNE_PARAM, None)
    elif DRAFT not in st.session_state:
        restore_draft(params.get(state.DRAFT_PARAM))
    if DRAFT not in st.session_state:
        st.session_state[DRAFT] = drafts.new_id()
        st.session_state.setdefault(DRAFT_SAVED, F.draft_text({}))  # nothing to write for an untouched form
        drafts.prune(drafts_folder())
    if params.get(state.DRAFT_PARAM) != st.session_state[DRAFT]:
        params[state.DRAFT_PARAM] = st.session_state[DRAFT]


def drafts_folder() -> Path:
    return drafts.folder(data.location()[0])


def restore_draft(draft_id: str | None) -> None:
    """A new session (the page was reloaded, or its address opened in another tab): the form as the
    draft the address names left it. This session then writes a draft of its own, started from it."""
    saved = drafts.load(drafts_folder(), draft_id) if draft_id else None
    if saved is None:
        return
    fill_form(F.form_from_draft(saved), saved.get("cloned_from"))


def prefill_from_run(run_id: str, finetune: bool) -> None:
    """Fill the form from a saved run (its Clone or Fine-tune further link)."""
    run = data.get_run(run_id)
    try:
        config = dict(data.config_of(run_id)) if run is not None else None
    except state.ACTION_ERRORS:
        config = None
    if run is None or config is None:
        st.warning(
            f"There is no run `{run_id}` to copy (it may have been deleted).", icon=":material/warning:"
        )
        return
    name = f"{run['name']}-copy"
    if finetune:
        model = data.model_dir(run)
        if model is None:
            st.warning(
                f"Run **{run['name']}** has no fine-tuned model (only a completed run has one): its config "
                "is copied with its own checkpoint.",
                icon=":material/warning:",
            )
        else:
            config["model_name_or_path"] = str(model)
            name = f"{run['name']}-further"
    apply_prefill(config, name, run["name"])


def apply_prefill(config: dict, name: str, source: str) -> None:
    """Fill the form from a run's flat config, named ``name``."""
    try:
        # The minimal form lists only what differs from the defaults: that is what the advanced box
        # should receive, not every TrainingArguments field of the saved file.
        config = inputs_data.validate(config).to_dict(minimal=True)
    except ConfigError:
        config = {k: v for k, v in config.items() if v is not None}
    form_values = F.config_to_form(config, data.finished_models())
    form_values["run_name"] = name
    fill_form(form_values, source)


def fill_form(form_values: dict, source: str | None) -> None:
    for name, value in form_values.items():
        st.session_state[K(name)] = value
    # The columns come with the values: the preview must not guess them anew for this dataset.
    st.session_state["new._mapping_for"] = F.dataset_signature({**F.DEFAULTS, **form_values})
    st.session_state[CLONED_FROM] = source


def save_draft() -> None:
    """Write the form to this session's draft when it changed (after every widget took its value)."""
    v = values()
    auto = st.session_state.get("new._auto_mapping")
    if auto and auto[0] == F.dataset_signature(v) and all(v[m] == auto[1].get(m) for m in MAPPING):
        # The columns the preview guessed are guessed again from the same data: an untouched form is
        # the empty draft, and nothing is written for a visit where nothing was typed.
        v.update(dict.fromkeys(MAPPING))
    text = F.draft_text(v, st.session_state.get(CLONED_FROM))
    if text != st.session_state.get(DRAFT_SAVED):
        drafts.save(drafts_folder(), st.session_state[DRAFT], text)
        st.session_state[DRAFT_SAVED] = text


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
            config = inputs_data.validate(config_dict)
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
        render_start_forecast(st.session_state.get(F.key("executor")))
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
    # Switched on the server: the run's address is known only now. The sidebar's timer may still ask for
    # New run's fragments meanwhile; dashboard/stale_fragments.py drops those requests.
    state.open_run(run_id)


def render_base_form(help_: dict) -> tuple[dict, str | None, dict | None, tuple]:
    """Sections 1-4 (checkpoint, data, hyperparameters) and the config they make, as New run and New
    sweep (whose base config this is) both draw them: (error slots, checkpoint, preview, form_to_config)."""
    slots: dict = {}
    with st.container(border=True):
        checkpoint = render_checkpoint(slots, help_)
    with st.container(border=True):
        render_dataset(slots, help_)
        preview = render_preview(slots, help_, checkpoint)
        preview = render_f1_choice(slots, help_, preview)
    with st.container(border=True):
        render_hyperparameters(slots, help_)
    return slots, checkpoint, preview, F.form_to_config(values())


def main() -> None:
    st.title("New run")
    init_state()
    open_form()
    help_ = inputs_data.field_help()
    cloned = st.session_state.get(CLONED_FROM)
    if cloned:
        st.info(
            f"Pre-filled from run **{cloned}**. Change what you like, then start.",
            icon=":material/content_copy:",
        )
    slots, checkpoint, preview, (config_dict, pre_errors, advanced_keys) = render_base_form(help_)
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
        save_draft()  # before the review: Start leaves the page from inside it
        render_review(config, config_dict, errors, general)


# Only as a page (Streamlit runs it as __main__): New sweep imports this module for its form's checks.
if __name__ == "__main__":
    main()

"""New run, sections 1, 2 and 4: the widgets of the checkpoint, the dataset and the hyperparameters.

Not a page (st.navigation runs ``new_run.py``); it holds the widget helpers every section shares. Each
widget keeps its value in session state under ``new.<name>``, and each field has an error slot below it
that the page fills once the whole form has been validated.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, inputs_data
from dashboard import form as F
from dashboard.tables import checkpoint_summary
from trainer_core import BUILTIN_DATASETS, BUILTIN_MODELS, F1_AVERAGES, ConfigError, f1_meaning, resolve_f1

K = F.key
KEEP = "session"  # persist_state: the form survives a visit to another page


def values() -> dict:
    """The form's current values, by widget name, as the widgets hold them (a number box's text)."""
    return {name: st.session_state.get(K(name), default) for name, default in F.DEFAULTS.items()}


def numbers() -> dict:
    """The form's values with each number box's text read as its number (None where it is none)."""
    return F.read_numbers(values())[0]


def error_slot(slots: dict, name: str) -> None:
    slots[name] = st.empty()


def form_field(slots: dict, help_: dict, col, name: str, widget, label: str, help_key=None, **kw) -> None:
    """One config field in a column: its widget with the field's own help, and a slot for its error."""
    with col:
        widget(label, key=K(name), persist_state=KEEP, help=help_.get(help_key or name), **kw)
        error_slot(slots, name)


# --------------------------------------------------------------------------------------------------
# 1. checkpoint
# --------------------------------------------------------------------------------------------------


def render_checkpoint(slots: dict, help_: dict) -> dict | None:
    """Where the checkpoint comes from, and what it turned out to be."""
    st.subheader("1 · Checkpoint")
    source = st.radio(
        "Checkpoint source",
        F.MODEL_SOURCES,
        key=K("model_source"),
        horizontal=True,
        persist_state=KEEP,
        help=help_.get("model_name_or_path"),
    )
    if source == "Built-in":
        st.selectbox(
            "Built-in checkpoint",
            BUILTIN_MODELS,
            key=K("model_builtin"),
            persist_state=KEEP,
            format_func=lambda m: F.BUILTIN_MODEL_NOTES.get(m, m),
        )
    elif source == "Hugging Face Hub":
        st.text_input(
            "Hub model id",
            key=K("model_hub"),
            placeholder="e.g. distilbert-base-uncased",
            persist_state=KEEP,
            help="Loaded from the local Hugging Face cache when offline.",
        )
    elif source == "Local folder":
        st.text_input(
            "Checkpoint folder",
            key=K("model_local"),
            persist_state=KEEP,
            placeholder="/path/to/a/save_pretrained/folder",
            help="A folder with config.json and weights.",
        )
    else:
        finished = data.finished_models()
        if not finished:
            st.info("No run has completed yet. A finished run's model can be fine-tuned further from here.")
        paths = {m["path"]: m["name"] for m in finished}
        if st.session_state.get(K("model_run")) not in paths:
            st.session_state[K("model_run")] = None
        st.selectbox(
            "Finished run",
            list(paths),
            key=K("model_run"),
            index=None,
            persist_state=KEEP,
            format_func=lambda p: paths.get(p, p),
            placeholder="Choose a completed run",
        )
    error_slot(slots, "model_name_or_path")
    name = F.model_name(values())
    if not name:
        return None
    info = inputs_data.inspect_checkpoint(name)
    if info.get("ok"):
        st.caption(checkpoint_summary(info))
    return info


# --------------------------------------------------------------------------------------------------
# 2. dataset
# --------------------------------------------------------------------------------------------------


def render_dataset(slots: dict, help_: dict) -> None:
    st.subheader("2 · Dataset")
    source = st.radio(
        "Dataset source", F.DATA_SOURCES, key=K("data_source"), horizontal=True, persist_state=KEEP
    )
    if source == "Built-in":
        st.selectbox(
            "Built-in dataset",
            BUILTIN_DATASETS,
            key=K("data_builtin"),
            persist_state=KEEP,
            format_func=lambda d: F.BUILTIN_DATASET_NOTES.get(d, d),
            help=help_.get("dataset_name"),
        )
        error_slot(slots, "dataset_name")
    elif source == "Hugging Face Hub":
        render_hub_dataset(slots, help_)
    elif source == "Upload a file":
        c1, c2 = st.columns(2)
        with c1:
            render_upload("Training file", "upload_train", help_.get("train_file"))
            error_slot(slots, "train_file")
        with c2:
            render_upload("Validation file (optional)", "upload_validation", help_.get("validation_file"))
            error_slot(slots, "validation_file")
    else:
        c1, c2 = st.columns(2)
        with c1:
            st.text_input(
                "Training file path",
                key=K("train_file"),
                persist_state=KEEP,
                placeholder="/data/train.csv",
                help=help_.get("train_file"),
            )
            error_slot(slots, "train_file")
        with c2:
            st.text_input(
                "Validation file path (optional)",
                key=K("validation_file"),
                persist_state=KEEP,
                help=help_.get("validation_file"),
            )
            error_slot(slots, "validation_file")
    render_row_limits(slots, help_)


def render_hub_dataset(slots: dict, help_: dict) -> None:
    """A Hub dataset: its id, configuration and splits (the id's errors under the id)."""
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    with c1:
        st.text_input(
            "Hub dataset id",
            key=K("data_hub"),
            placeholder="e.g. glue",
            persist_state=KEEP,
            help=help_.get("dataset_name"),
        )
        error_slot(slots, "dataset_name")
    with c2:
        st.text_input(
            "Configuration",
            key=K("data_hub_config"),
            placeholder="e.g. mrpc",
            persist_state=KEEP,
            help=help_.get("dataset_config_name"),
        )
        error_slot(slots, "dataset_config_name")
    with c3:
        st.text_input("Train split", key=K("train_split"), persist_state=KEEP, help=help_.get("train_split"))
        error_slot(slots, "train_split")
    with c4:
        st.text_input(
            "Validation split",
            key=K("validation_split"),
            placeholder="carve from train",
            persist_state=KEEP,
            help=help_.get("validation_split"),
        )
        error_slot(slots, "validation_split")


def render_row_limits(slots: dict, help_: dict) -> None:
    """The validation share and the row caps, whatever the source."""
    c1, c2, c3 = st.columns(3)
    form_field(slots, help_, c1, "validation_split_ratio", number_box, "Validation share")
    every = {"placeholder": "all rows (leave empty)"}
    form_field(slots, help_, c2, "max_train_samples", number_box, "Max training rows", **every)
    form_field(slots, help_, c3, "max_eval_samples", number_box, "Max validation rows", **every)


def number_box(label: str, **kw):
    """A text box for a number: what it shows is the text the engine reads, or the error it gives.

    Not ``st.number_input``: its box is an <input type="number"> whose text the browser filters and
    rereads on its own. Measured in headless Chromium with Streamlit 1.67 (pasted, then Enter): "0x10"
    became 10, "12abc" 12 and "1,000" 1000 (the browser drops the characters it does not take, so "1,5"
    is 15); "--3" and "2e308" stayed on screen while the server got None, which an optional box reads as
    "all rows" or "off"; an int box sent None for 9007199254740993 (past 2**53) and 1 for "1e3". A text
    box sends its text as shown, and ``form.read_numbers`` has the engine read it: a number, an empty
    box (the field's default, said by the placeholder), or the engine's message under the box.
    """
    return st.text_input(label, **kw)


def render_upload(label: str, name: str, help_text: str | None) -> None:
    """A file uploader whose file is saved under <home>/uploads; the form keeps the saved path."""
    uploaded = st.file_uploader(label, type=F.UPLOAD_TYPES, key=K(name + "_widget"), help=help_text)
    saved = st.session_state.setdefault("new._uploads", {})
    if uploaded is not None:
        if uploaded.file_id not in saved:  # hash and write each upload once, not on every rerun
            saved[uploaded.file_id] = inputs_data.save_upload(uploaded.name, uploaded.getvalue())
        st.session_state[K(name)] = saved[uploaded.file_id]
    elif st.session_state.get(K(name)):
        path = st.session_state[K(name)]
        st.caption(f"Using the earlier upload `{path.rsplit('/', 1)[-1]}`.")
        if st.button("Forget it", key=K(name + "_clear")):
            st.session_state[K(name)] = None
            st.rerun()


def render_f1_choice(slots: dict, help_: dict, preview: dict | None) -> dict | None:
    """How F1 is computed: its average, and the positive class from the labels the preview found.

    Returns:
        ``preview``, or a copy of it marked not ok with the engine's message when the choice does not
        fit the data's labels (a positive class it lacks, 'binary' with more than two classes), so the
        page shows that message under the field and keeps Start disabled.
    """
    names = [str(n) for n in ((preview or {}).get("label_counts") or {})]
    c1, c2 = st.columns(2)
    with c1:
        default = f"default ({f1_meaning(names, short=True)})" if names else "default"
        st.selectbox(
            "F1 average",
            (None, *F1_AVERAGES),
            key=K("f1_average"),
            persist_state=KEEP,
            help=help_.get("f1_average"),
            format_func=lambda a: default if a is None else a,
        )
        error_slot(slots, "f1_average")
    v = values()
    try:
        binary = bool(names) and resolve_f1(names, v["f1_average"]).positive is not None
    except ConfigError:
        binary = False  # 'binary' of more than two classes: said under the average
    if v["f1_average"] not in (None, "binary"):
        st.session_state[K("pos_label")] = None  # an average over every class has no positive class
    current = st.session_state.get(K("pos_label"))
    with c2:
        st.selectbox(
            "Positive class",
            names + ([current] if current is not None and current not in names else []),
            key=K("pos_label"),
            index=None,
            persist_state=KEEP,
            disabled=not binary,
            placeholder=f"default ('{resolve_f1(names).positive}')" if binary else "none: every class counts",
            help=help_.get("pos_label"),
        )
        error_slot(slots, "pos_label")
    if not names:
        st.caption("The positive class can be chosen once the preview has read the labels.")
        return preview
    try:
        resolve_f1(names, v["f1_average"], st.session_state.get(K("pos_label")))
    except ConfigError as exc:
        return {**(preview or {}), "ok": False, "error": exc.to_dict()}
    return preview


# --------------------------------------------------------------------------------------------------
# 4. hyperparameters
# --------------------------------------------------------------------------------------------------


def render_hyperparameters(slots: dict, help_: dict) -> None:
    st.subheader("4 · Hyperparameters")

    def field(col, name, widget, label, help_key=None, **kw):
        form_field(slots, help_, col, name, widget, label, help_key, **kw)

    c = st.columns(4)
    field(c[0], "learning_rate", number_box, "Learning rate", placeholder="e.g. 2e-5")
    field(c[1], "num_train_epochs", number_box, "Epochs")
    field(c[2], "per_device_train_batch_size", number_box, "Train batch size")
    field(c[3], "per_device_eval_batch_size", number_box, "Eval batch size")
    c = st.columns(4)
    field(c[0], "weight_decay", number_box, "Weight decay")
    field(c[1], "warmup_ratio", number_box, "Warmup ratio", "warmup_steps")
    field(c[2], "lr_scheduler_type", st.selectbox, "Scheduler", options=F.CHOICES["lr_scheduler_type"])
    field(c[3], "gradient_accumulation_steps", number_box, "Gradient accumulation")
    c = st.columns(4)
    field(c[0], "max_seq_length", number_box, "Max length (tokens)")
    field(c[1], "seed", number_box, "Seed")
    field(c[2], "fp16", st.toggle, "fp16 mixed precision")
    field(c[3], "bf16", st.toggle, "bf16 mixed precision")
    render_schedule(field)
    render_best_model(field)
    render_where(field)
    render_advanced(slots)


def render_schedule(field) -> None:
    """When to log, evaluate and save: each strategy with its step count (used only for "steps")."""
    st.markdown("**Logging, evaluation and checkpoints**")
    c = st.columns(6)
    v = values()
    for i, (strategy, steps, label) in enumerate(
        (
            ("logging_strategy", "logging_steps", "Log"),
            ("eval_strategy", "eval_steps", "Evaluate"),
            ("save_strategy", "save_steps", "Save checkpoints"),
        )
    ):
        field(c[2 * i], strategy, st.selectbox, f"{label} every", options=F.CHOICES[strategy])
        field(c[2 * i + 1], steps, number_box, f"{label}: steps", disabled=v[strategy] != "steps")


def render_best_model(field) -> None:
    st.markdown("**Best model and early stopping**")
    v = numbers()
    c = st.columns([2, 2, 2, 2])
    field(c[0], "load_best_model_at_end", st.toggle, "Load best model at end")
    field(
        c[1],
        "metric_for_best_model",
        st.selectbox,
        "Best-model metric",
        options=F.BEST_METRICS,
        disabled=not (v["load_best_model_at_end"] or v["early_stopping_patience"] is not None),
    )
    patience = "Early-stopping patience (evaluations)"
    field(c[2], "early_stopping_patience", number_box, patience, placeholder="off (leave empty)")


def render_where(field) -> None:
    """This machine (torchrun's processes) or a Ray cluster: ``new_run_where``, imported when drawn
    because it builds on this module's widgets."""
    from dashboard.views.new_run_where import render_where as draw

    draw(field)


def render_advanced(slots: dict) -> None:
    with st.expander("Advanced: any other TrainingArguments field", expanded=bool(values()["advanced_json"])):
        st.text_area(
            "Extra fields (JSON)",
            key=K("advanced_json"),
            persist_state=KEEP,
            height=120,
            placeholder='{"max_grad_norm": 0.5, "label_smoothing_factor": 0.1, "optim": "adamw_torch"}',
            help="A JSON object of config or TrainingArguments fields; it overrides the form above.",
        )
        error_slot(slots, "advanced_json")

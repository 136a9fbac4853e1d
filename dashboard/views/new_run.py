"""New run: a checkpoint, a dataset (previewed before anything starts), hyperparameters, Start.

Every widget keeps its value in session state under ``new.<name>`` (kept across page switches), and on
every rerun the whole form is turned into a flat config and validated with ``config_from_dict``: the
error lands under the widget of the field it names, and Start stays disabled until there is none.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, state
from dashboard import form as F
from dashboard.figures import label_distribution_figure
from dashboard.tables import checkpoint_summary, token_stats_text
from trainer_core.assets import BUILTIN_DATASETS, BUILTIN_MODELS
from trainer_core.config import to_yaml
from trainer_core.errors import ConfigError

K = F.key
KEEP = "session"  # persist_state: the form survives a visit to another page
MAPPING = ("text_column", "text_pair_column", "label_column")
NO_PAIR_LABEL = "— none (single text) —"


def values() -> dict:
    """The form's current values, by widget name."""
    return {name: st.session_state.get(K(name), default) for name, default in F.DEFAULTS.items()}


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
    st.session_state["new._cloned_from"] = prefill.get("source") or prefill.get("name")


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
    info = data.inspect_checkpoint(name)
    if info.get("ok"):
        st.caption(checkpoint_summary(info))
    return info


# --------------------------------------------------------------------------------------------------
# 2. dataset and preview
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
            st.text_input(
                "Train split", key=K("train_split"), persist_state=KEEP, help=help_.get("train_split")
            )
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

    c1, c2, c3 = st.columns(3)
    limits = {"min_value": 1, "step": 100, "value": None, "placeholder": "all"}
    form_field(
        slots,
        help_,
        c1,
        "validation_split_ratio",
        st.number_input,
        "Validation share",
        min_value=0.01,
        max_value=0.9,
        step=0.05,
        format="%.2f",
    )
    form_field(slots, help_, c2, "max_train_samples", st.number_input, "Max training rows", **limits)
    form_field(slots, help_, c3, "max_eval_samples", st.number_input, "Max validation rows", **limits)


def render_upload(label: str, name: str, help_text: str | None) -> None:
    """A file uploader whose file is saved under <home>/uploads; the form keeps the saved path."""
    uploaded = st.file_uploader(label, type=F.UPLOAD_TYPES, key=K(name + "_widget"), help=help_text)
    saved = st.session_state.setdefault("new._uploads", {})
    if uploaded is not None:
        if uploaded.file_id not in saved:  # hash and write each upload once, not on every rerun
            saved[uploaded.file_id] = data.save_upload(uploaded.name, uploaded.getvalue())
        st.session_state[K(name)] = saved[uploaded.file_id]
    elif st.session_state.get(K(name)):
        path = st.session_state[K(name)]
        st.caption(f"Using the earlier upload `{path.rsplit('/', 1)[-1]}`.")
        if st.button("Forget it", key=K(name + "_clear")):
            st.session_state[K(name)] = None
            st.rerun()


def render_preview(slots: dict, help_: dict, checkpoint: dict | None) -> dict | None:
    """The data as the run will see it: rows, column mapping, labels, sizes, token lengths."""
    st.subheader("3 · Preview")
    if not data.preview_available():
        st.info("The data preview needs `trainer_core.data`, which this installation lacks.")
        return None
    v = values()
    signature = F.dataset_signature(v)
    if st.session_state.get("new._mapping_for") != signature:
        # Another dataset: forget the old column choices so the new data's own columns are guessed.
        for name in MAPPING:
            st.session_state[K(name)] = None
        st.session_state["new._mapping_for"] = signature
        v = values()
    args = F.data_args(v)
    auto = st.session_state.get("new._auto_mapping")
    if auto and auto[0] == signature and all(args[m] == auto[1].get(m) for m in MAPPING):
        # The mapping is the one guessed for this data: ask with the columns left empty, which resolves
        # to the same thing and hits the cache instead of reading the data again.
        args.update(dict.fromkeys(MAPPING))
    ckpt_name = F.model_name(v) if checkpoint and checkpoint.get("ok") else None
    with st.spinner("Reading the dataset…"):
        preview = data.preview_dataset(args, ckpt_name, seed=int(v.get("seed") or 42))

    mapping = preview.get("mapping")
    if mapping and all(v.get(m) is None for m in MAPPING):
        for name in MAPPING:
            st.session_state[K(name)] = mapping.get(name)
        st.session_state["new._auto_mapping"] = (signature, dict(mapping))
    render_mapping(slots, help_, preview.get("columns") or [])
    if preview.get("n_train") is not None:
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Training rows", f"{preview['n_train']:,}")
        c2.metric("Validation rows", f"{preview['n_validation']:,}")
        c3.metric("Labels", len(preview.get("label_counts") or {}))
        c4.metric("Rows dropped (empty)", f"{preview.get('dropped') or 0:,}")
    for note in preview.get("notes") or []:
        st.caption(f":material/info: {note}")
    head = preview.get("head")
    if head is not None or preview.get("label_counts"):
        left, right = st.columns([3, 2])
        with left:
            if head is not None:
                st.caption(f"First {len(head)} rows of the training data")
                st.dataframe(head, height=260, hide_index=True, key="new.preview_rows")
        with right:
            if preview.get("label_counts"):
                render_label_counts(preview)
            if preview.get("token_stats"):
                st.caption(token_stats_text(preview["token_stats"], v.get("max_seq_length")))
            elif preview.get("ok") and not ckpt_name:
                st.caption("Token lengths appear once the checkpoint can be loaded.")
    return preview


def render_label_counts(preview: dict) -> None:
    """Rows per label of the rows the run trains on, or, where only the whole split was counted, saying so."""
    n_train = preview.get("n_train")
    counts = preview.get("label_counts_train")  # after the split and caps, where trainer_core gives it
    note = None
    if counts:
        title = f"Labels of the {n_train:,} training rows" if n_train is not None else "Labels (train)"
    else:
        counts = preview["label_counts"]
        total = sum(int(v) for v in counts.values())
        if n_train is None or total == n_train:
            title = f"Labels of the {total:,} training rows"
        else:
            # preview_dataset counts labels before the validation split and the row caps.
            title = f"Labels, all {total:,} rows"
            note = (
                f"Counted over all {total:,} rows, before the validation split and the row caps; "
                f"the run trains on {n_train:,} of them."
            )
    st.plotly_chart(
        label_distribution_figure(counts, title), key="new.label_chart", config={"displayModeBar": False}
    )
    if note:
        st.caption(note)


def render_mapping(slots: dict, help_: dict, columns: list[str]) -> None:
    if not columns:
        for name in MAPPING:
            error_slot(slots, name)
        return
    c1, c2, c3 = st.columns(3)
    labels = {
        "text_column": "Text column",
        "text_pair_column": "Second text column (pairs)",
        "label_column": "Label column",
    }
    for col, name in zip((c1, c2, c3), MAPPING, strict=True):
        current = st.session_state.get(K(name))
        # A cloned config may name a column this data lacks: keep it visible so its error makes sense.
        options = list(columns) + ([current] if current and current not in columns else [])
        if name == "text_pair_column":
            options = [None, *options]
        with col:
            st.selectbox(
                labels[name],
                options,
                key=K(name),
                index=None,
                persist_state=KEEP,
                placeholder="Choose a column",
                help=help_.get(name),
                format_func=lambda c: NO_PAIR_LABEL if c is None else c,
            )
            error_slot(slots, name)


# --------------------------------------------------------------------------------------------------
# 4. hyperparameters
# --------------------------------------------------------------------------------------------------


def render_hyperparameters(slots: dict, help_: dict) -> None:
    st.subheader("4 · Hyperparameters")

    def field(col, name, widget, label, help_key=None, **kw):
        form_field(slots, help_, col, name, widget, label, help_key, **kw)

    c = st.columns(4)
    field(c[0], "learning_rate", st.text_input, "Learning rate", placeholder="e.g. 2e-5")
    field(c[1], "num_train_epochs", st.number_input, "Epochs", min_value=0.0, step=1.0, format="%g")
    field(c[2], "per_device_train_batch_size", st.number_input, "Train batch size", min_value=1, step=1)
    field(c[3], "per_device_eval_batch_size", st.number_input, "Eval batch size", min_value=1, step=1)
    c = st.columns(4)
    field(c[0], "weight_decay", st.number_input, "Weight decay", min_value=0.0, step=0.01, format="%g")
    field(
        c[1],
        "warmup_ratio",
        st.number_input,
        "Warmup ratio",
        "warmup_steps",
        min_value=0.0,
        max_value=0.99,
        step=0.05,
        format="%g",
    )
    field(c[2], "lr_scheduler_type", st.selectbox, "Scheduler", options=F.SCHEDULERS)
    field(c[3], "gradient_accumulation_steps", st.number_input, "Gradient accumulation", min_value=1, step=1)
    c = st.columns(4)
    field(c[0], "max_seq_length", st.number_input, "Max length (tokens)", min_value=8, step=32)
    field(c[1], "seed", st.number_input, "Seed", min_value=0, step=1)
    field(c[2], "fp16", st.toggle, "fp16 mixed precision")
    field(c[3], "bf16", st.toggle, "bf16 mixed precision")

    st.markdown("**Logging, evaluation and checkpoints**")
    c = st.columns(6)
    v = values()
    for i, (strategy, steps, options, label) in enumerate(
        (
            ("logging_strategy", "logging_steps", F.LOGGING_STRATEGIES, "Log"),
            ("eval_strategy", "eval_steps", F.EVAL_STRATEGIES, "Evaluate"),
            ("save_strategy", "save_steps", F.SAVE_STRATEGIES, "Save checkpoints"),
        )
    ):
        field(c[2 * i], strategy, st.selectbox, f"{label} every", options=options)
        field(
            c[2 * i + 1],
            steps,
            st.number_input,
            f"{label}: steps",
            min_value=1,
            step=10,
            disabled=v[strategy] != "steps",
        )

    st.markdown("**Best model and early stopping**")
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
    field(
        c[2],
        "early_stopping_patience",
        st.number_input,
        "Early-stopping patience (evaluations)",
        value=None,
        min_value=1,
        step=1,
        placeholder="off",
    )

    with st.expander("Advanced: any other TrainingArguments field", expanded=bool(v["advanced_json"])):
        st.text_area(
            "Extra fields (JSON)",
            key=K("advanced_json"),
            persist_state=KEEP,
            height=120,
            placeholder='{"max_grad_norm": 0.5, "label_smoothing_factor": 0.1, "optim": "adamw_torch"}',
            help="A JSON object of config or TrainingArguments fields; it overrides the form above.",
        )
        error_slot(slots, "advanced_json")


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
    limit = (checkpoint or {}).get("max_position_embeddings")
    if limit and (config_dict.get("max_seq_length") or 0) > limit:
        add("max_seq_length", f"this checkpoint takes at most {limit} tokens; use {limit} or less")
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

"""New run, section 3: the data as the run will see it, read before anything starts.

Not a page (st.navigation runs ``new_run.py``). The preview guesses the column mapping of a dataset it
has not seen; the guessed columns fill the mapping widgets, which the user may then change.
"""

from __future__ import annotations

import streamlit as st

from dashboard import form as F
from dashboard import inputs_data
from dashboard.figures import label_distribution_figure
from dashboard.tables import imbalance_warning, token_stats_text
from dashboard.views.new_run_inputs import KEEP, K, error_slot, numbers

MAPPING = ("text_column", "text_pair_column", "label_column")
NO_PAIR_LABEL = "— none (single text) —"


def render_preview(slots: dict, help_: dict, checkpoint: dict | None) -> dict | None:
    """The data as the run will see it: rows, column mapping, labels, sizes, token lengths."""
    st.subheader("3 · Preview")
    v = numbers()  # the number boxes read as numbers: the row caps, the seed, the max length
    signature = F.dataset_signature(v)
    if st.session_state.get("new._mapping_for") != signature:
        # Another dataset: forget the old column choices so the new data's own columns are guessed.
        for name in MAPPING:
            st.session_state[K(name)] = None
        st.session_state["new._mapping_for"] = signature
        v = numbers()
    args = F.data_args(v)
    auto = st.session_state.get("new._auto_mapping")
    if auto and auto[0] == signature and all(args[m] == auto[1].get(m) for m in MAPPING):
        # The mapping is the one guessed for this data: ask with the columns left empty, which resolves
        # to the same thing and hits the cache instead of reading the data again.
        args.update(dict.fromkeys(MAPPING))
    ckpt_name = F.model_name(v) if checkpoint and checkpoint.get("ok") else None
    with st.spinner("Reading the dataset…"):
        # The run's seed decides the carved validation split: 42 (the default) only while the seed box
        # holds none (its error says why); `or 42` also turned a seed of 0 into 42.
        seed = v["seed"] if isinstance(v.get("seed"), int) else 42
        preview = inputs_data.preview_dataset(args, ckpt_name, seed=seed)

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
    if warning := imbalance_warning(preview.get("label_counts_train") or {}):
        st.warning(warning, icon=":material/balance:")
    head = preview.get("head")
    if head is not None or preview.get("label_counts_train"):
        left, right = st.columns([3, 2])
        with left:
            if head is not None:
                st.caption(f"First {len(head)} rows of the training data")
                st.dataframe(head, height=260, hide_index=True, key="new.preview_rows")
        with right:
            if preview.get("label_counts_train"):
                render_label_counts(preview)
            if preview.get("token_stats"):
                st.caption(token_stats_text(preview["token_stats"], v.get("max_seq_length")))
            elif preview.get("ok") and not ckpt_name:
                st.caption("Token lengths appear once the checkpoint can be loaded.")
    return preview


def render_label_counts(preview: dict) -> None:
    """Rows per label of the rows the run trains on (after the validation split and the row caps)."""
    n_train = preview.get("n_train")
    title = f"Labels of the {n_train:,} training rows" if n_train is not None else "Labels (train)"
    st.plotly_chart(
        label_distribution_figure(preview["label_counts_train"], title),
        key="new.label_chart",
        config={"displayModeBar": False},
    )


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

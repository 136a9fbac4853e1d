"""Run page, the outcome of a completed run: final scores, confusion matrix, predictions, a place to try
the model, and its files.

Not a page (st.navigation runs ``run.py``); nothing here refreshes, as a completed run does not change.
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, inputs_data
from dashboard.figures import confusion_matrix_figure
from dashboard.tables import ACCURACY, F1, f1_text, format_bytes, format_duration, per_class_table

CHART_CONFIG = {"displaylogo": False}
# Prediction columns the worker adds; the rest of the table is the validation data's own columns.
PREDICTION_COLUMNS = ("label", "predicted", "confidence", "correct")


def render_outcome(run: dict) -> None:
    summary = run.get("summary") or {}
    final = summary.get("final_metrics") or {}
    st.subheader("Outcome")
    c = st.columns(7)
    baseline = summary.get("baseline") or {}
    names = summary.get("label_names") or (summary.get("report") or {}).get("labels")
    f1_names = f1_text(names, run.get("config"))
    c[0].metric(
        "Accuracy",
        _fmt(final.get(ACCURACY)),
        delta=_vs_baseline(final.get(ACCURACY), baseline.get("accuracy")),
        help=_baseline_help(baseline, "accuracy"),
    )
    c[1].metric(
        "F1",
        _fmt(final.get(F1)),
        delta=_vs_baseline(final.get(F1), baseline.get("f1")),
        help=" · ".join(t for t in (f1_names, _baseline_help(baseline, "f1")) if t) or None,
    )
    c[2].metric("Eval loss", _fmt(final.get("eval_loss")))
    # Trainer's train_loss is the mean over every step; the status row's "Train loss" is the last one.
    c[3].metric("Avg train loss", _fmt(summary.get("train_loss")), help="Mean training loss over the run")
    c[4].metric("Train time", format_duration(summary.get("train_runtime")))
    c[5].metric("Samples / s", _fmt(summary.get("train_samples_per_second"), ".1f"))
    c[6].metric("Rows (train / val)", f"{summary.get('n_train', '—')} / {summary.get('n_validation', '—')}")
    if baseline:
        st.caption(
            f"Baseline: always answering '{baseline['label']}' scores accuracy {baseline['accuracy']:.4f} "
            f"and F1 {baseline['f1']:.4f} on the validation split; the deltas above are against it."
        )
    tabs = st.tabs(
        ["Confusion matrix", "Predictions", "Try the model", "Checkpoints & download"], key="run.tabs"
    )
    with tabs[0]:
        render_report(summary)
    with tabs[1]:
        render_predictions(run)
    with tabs[2]:
        render_try(run)
    with tabs[3]:
        render_files(run)


def _fmt(value, spec: str = ".4f") -> str:
    return "—" if value is None else format(value, spec)


def _vs_baseline(value: float | None, baseline: float | None) -> str | None:
    return None if value is None or baseline is None else f"{value - baseline:+.4f} vs baseline"


def _baseline_help(baseline: dict, key: str) -> str | None:
    if baseline.get(key) is None:
        return None
    return f"Always answering '{baseline['label']}' scores {baseline[key]:.4f}"


def render_report(summary: dict) -> None:
    report = summary.get("report") or {}
    if not report.get("confusion_matrix"):
        st.info("This run recorded no classification report.")
        return
    left, right = st.columns([3, 2])
    labels = report.get("labels") or summary.get("label_names") or []
    left.plotly_chart(
        confusion_matrix_figure(report["confusion_matrix"], labels),
        key="run.confusion_chart",
        config=CHART_CONFIG,
    )
    with right:
        st.markdown("**Per class**")
        st.dataframe(
            per_class_table(report),
            hide_index=True,
            key="run.per_class",
            column_config={
                k: st.column_config.NumberColumn(k, format="%.3f") for k in ("precision", "recall", "f1")
            },
        )


def render_predictions(run: dict) -> None:
    table = data.predictions(run)
    if table is None or not len(table):
        st.info("No predictions were saved for this run.")
        return
    cfg = run.get("config") or {}
    text_cols = [c for c in (cfg.get("text_column"), cfg.get("text_pair_column")) if c and c in table.columns]
    if not text_cols:  # the columns were guessed: show the data's own columns
        text_cols = [c for c in table.columns if c not in PREDICTION_COLUMNS and not str(c).startswith("p_")]
    c1, c2 = st.columns([1, 3])
    only_mistakes = c1.toggle("Only mistakes", key="run.only_mistakes")
    query = c2.text_input("Filter text", key="run.pred_search", placeholder="words in the text")
    shown = table[table["correct"] == False] if only_mistakes else table  # noqa: E712 - pandas mask
    if query:
        mask = (
            shown[text_cols]
            .astype(str)
            .apply(lambda s: s.str.contains(query, case=False, regex=False))
            .any(axis=1)
        )
        shown = shown[mask]
    # Confident mistakes first: they are the most telling rows (label noise, shortcuts).
    shown = shown.sort_values("confidence", ascending=not only_mistakes)
    st.caption(
        f"{len(shown):,} of {len(table):,} validation rows · "
        f"{int((~table['correct']).sum()):,} mistakes ({(~table['correct']).mean():.1%})"
    )
    st.dataframe(
        shown[text_cols + list(PREDICTION_COLUMNS)],
        hide_index=True,
        key="run.predictions",
        height=420,
        column_config={
            "confidence": st.column_config.ProgressColumn(
                "confidence", min_value=0.0, max_value=1.0, format="%.2f"
            ),
            "correct": st.column_config.CheckboxColumn("correct"),
        },
    )


def render_try(run: dict) -> None:
    path = data.model_dir(run)
    if path is None:
        st.info("This run saved no final model.")
        return
    cfg = run.get("config") or {}
    pairs = bool(cfg.get("text_pair_column"))
    with st.form("run.try_form", border=False):
        text = st.text_area(
            "Text (one per line)",
            key="run.try_text",
            height=110,
            placeholder="A gripping, beautifully acted film.",
        )
        pair = st.text_area("Second text (one per line)", key="run.try_pair", height=110) if pairs else ""
        submitted = st.form_submit_button("Predict", key="run.try_submit", type="primary")
    if not submitted:
        return
    texts = [t for t in text.splitlines() if t.strip()]
    if not texts:
        st.warning("Type at least one text.")
        return
    pair_list = [p for p in pair.splitlines() if p.strip()] if pairs else None
    if pair_list is not None and len(pair_list) != len(texts):
        st.warning(f"Give one second text per text ({len(texts)} texts, {len(pair_list)} second texts).")
        return
    with st.spinner("Loading the model…"):
        results = inputs_data.predict(run, texts, pair_list)
    for text_i, result in zip(texts, results, strict=True):
        with st.container(border=True):
            st.markdown(f"**{result['label']}** ({result['score']:.1%}) — {text_i}")
            probs = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])
            st.dataframe(
                {"label": [k for k, _ in probs], "probability": [v for _, v in probs]},
                hide_index=True,
                column_config={
                    "probability": st.column_config.ProgressColumn(
                        "probability", min_value=0.0, max_value=1.0, format="%.3f"
                    )
                },
            )


def render_files(run: dict) -> None:
    path = data.model_dir(run)
    if path is not None:
        st.markdown(f"Fine-tuned model and tokenizer: `{path}` (loadable with `from_pretrained`).")
        # The zip is built only when the button is pressed, on Streamlit's download thread.
        st.download_button(
            "Download model (.zip)",
            data.model_archive(run["id"]),
            file_name=f"{run['name']}-model.zip",
            mime="application/zip",
            key="run.download",
            icon=":material/download:",
            type="primary",
            on_click="ignore",
        )
    ckpts = data.checkpoints(run)
    if ckpts:
        st.markdown("**Checkpoints**")
        st.dataframe(
            [
                {
                    "name": c["name"],
                    "step": c["step"],
                    "size": format_bytes(c["size_bytes"]),
                    "resumable": "yes" if c["complete"] else f"no: {c['problem']}",
                    "path": c["path"],
                }
                for c in ckpts
            ],
            hide_index=True,
            key="run.checkpoints",
        )
    else:
        st.caption("No checkpoints were kept.")

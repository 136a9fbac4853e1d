"""The dashboard's pure helpers: smoothing, best-epoch marking, tables and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import figures as fg
from dashboard import tables as tb


def series(values, steps=None, epochs=None, start=1000.0):
    steps = list(range(1, len(values) + 1)) if steps is None else steps
    epochs = [s / 10 for s in steps] if epochs is None else epochs
    return pd.DataFrame(
        {"step": steps, "epoch": epochs, "value": values, "wall_time": [start + s for s in steps]}
    )


# -- formatting --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (-1, "—"),
        (float("nan"), "—"),
        (0, "0s"),
        (42.4, "42s"),
        (185, "3m 05s"),
        (3720, "1h 02m"),
        (2 * 86400 + 3 * 3600, "2d 03h"),
    ],
)
def test_format_duration(seconds, text):
    assert tb.format_duration(seconds) == text


def test_format_eta_only_for_active_runs():
    assert tb.format_eta(125, "running") == "~2m 05s"
    assert tb.format_eta(0.2, "running") == "finishing"
    assert tb.format_eta(None, "running") == "—"
    assert tb.format_eta(125, "completed") == "—"  # a finished run has nothing left, whatever the estimate
    assert tb.format_eta(9999, "running", estimating=True) == "estimating…"
    assert tb.format_eta(None, "completed", estimating=True) == "—"


def test_progress_follows_the_last_plotted_step():
    row = {"status": "running", "step": 11, "total_steps": 50}
    assert tb.with_plotted_step(row, 13)["step"] == 13  # the heartbeat lags the metric points
    assert tb.with_plotted_step(row, 9)["step"] == 11  # never goes back
    assert tb.with_plotted_step(row, 70)["step"] == 50  # never past the end
    assert tb.with_plotted_step(row, None) == row


def test_eta_waits_for_a_few_steps_of_the_current_attempt():
    resumed = {"status": "running", "start_step": 40, "step": 42}
    assert tb.eta_estimating(resumed)
    assert not tb.eta_estimating({**resumed, "step": 40 + tb.MIN_ETA_STEPS})
    assert tb.eta_estimating({"status": "running", "step": 2})  # a fresh run: start_step unset
    assert not tb.eta_estimating({**resumed, "status": "stopped"})


def test_config_diff_caption_singular_and_plural():
    assert tb.config_diff_caption(1).startswith("Only the one field that differs;")
    assert tb.config_diff_caption(4).startswith("Only the 4 fields that differ;")


def test_short_names_for_tables():
    assert tb.short_checkpoint("builtin:minilm-l6") == "minilm-l6"
    assert tb.short_checkpoint("bert-base-uncased") == "bert-base-uncased"
    assert tb.short_checkpoint("/home/u/runs/20240101-abc/model") == "20240101-abc/model"
    assert tb.dataset_label({"dataset_name": "glue", "dataset_config_name": "mrpc"}) == "glue/mrpc"
    assert tb.dataset_label({"train_file": "/data/x/reviews.csv", "dataset_name": None}) == "reviews.csv"
    assert tb.format_count(22_713_216) == "22.7M"


def test_token_stats_text_reports_truncation():
    stats = {"mean": 30.2, "median": 27, "p95": 140, "max": 300, "n_truncated": 12, "share_truncated": 0.012}
    text = tb.token_stats_text(stats, 128)
    assert "12 rows (1.2%)" in text and "longer than 128" in text
    assert "nothing is truncated" in tb.token_stats_text({**stats, "n_truncated": 0}, 512)


# -- series ------------------------------------------------------------------------------------------


def test_ema_matches_tensorboard_debiased_average():
    values = np.array([1.0, 0.0, 0.0, 0.0])
    smoothed = fg.ema(values, 0.5)
    # Debiased: the first point is the first value, not (1 - w) * value.
    assert smoothed[0] == pytest.approx(1.0)
    # last = 0.5*0.5 + 0.5*0 = 0.25, divided by 1 - 0.5**2
    assert smoothed[1] == pytest.approx(0.25 / 0.75)
    assert np.all(np.diff(smoothed) < 0)
    assert np.array_equal(fg.ema(values, 0.0), values)


def test_ema_passes_non_finite_values_through():
    smoothed = fg.ema([1.0, float("nan"), 1.0], 0.9)
    assert np.isnan(smoothed[1])
    assert smoothed[0] == pytest.approx(1.0) and smoothed[2] == pytest.approx(1.0)


def test_clean_series_sorts_and_drops_bad_points():
    df = series([0.5, np.nan, 0.3, np.inf], steps=[3, 1, 2, 4])
    out = fg.clean_series(pd.concat([df, df.iloc[[0]]]))  # a duplicated row, as min==max buckets give
    assert out["step"].tolist() == [2, 3]
    assert fg.clean_series(None).columns.tolist() == fg.SERIES_COLUMNS


def test_best_point_lower_is_better_for_losses_and_earliest_on_ties():
    df = series([0.7, 0.9, 0.9, 0.8], epochs=[1.0, 2.0, 3.0, 4.0])
    assert fg.best_point(df, "eval_accuracy") == {"value": 0.9, "step": 2, "epoch": 2.0}
    assert fg.best_point(df, "eval_loss")["epoch"] == 1.0
    assert fg.best_point(series([]), "eval_f1") is None


def test_relative_time_never_negative_for_resumed_runs():
    df = series([1.0, 2.0], start=1000.0)
    assert fg.relative_time(df, origin=1000.0).tolist() == [1.0, 2.0]
    # A resumed run's start is later than its first points: measure from the earliest point instead.
    assert fg.relative_time(df, origin=1001.5).min() == 0.0


# -- figures -----------------------------------------------------------------------------------------


def test_loss_figure_puts_eval_loss_on_the_step_axis():
    train = series(list(np.linspace(0.7, 0.2, 50)))
    evals = series([0.5, 0.4], steps=[25, 50], epochs=[1.0, 2.0])
    fig = fg.loss_figure(train, evals, smoothing=0.6, uirevision="r1")
    names = [t.name for t in fig.data]
    assert names == ["train loss (raw)", "train loss", "eval loss"]
    assert list(fig.data[-1].x) == [25, 50]
    assert fig.layout.uirevision == "r1"  # live refreshes keep the user's zoom
    assert fig.data[1].y[-1] != fig.data[0].y[-1]  # the smoothed trace is smoothed


def test_loss_figure_empty_says_why():
    fig = fg.loss_figure(None, None)
    assert "No loss logged yet" in fig.layout.annotations[0].text


def test_eval_figure_marks_the_best_epoch():
    acc = series([0.71, 0.85, 0.80], steps=[10, 20, 30], epochs=[1.0, 2.0, 3.0])
    f1 = series([0.70, 0.81, 0.83], steps=[10, 20, 30], epochs=[1.0, 2.0, 3.0])
    fig = fg.eval_figure({"eval_accuracy": acc, "eval_f1": f1}, best_key="eval_accuracy")
    star = [t for t in fig.data if t.name == "best accuracy (epoch 2)"]
    assert len(star) == 1 and list(star[0].x) == [2.0] and list(star[0].y) == [0.85]
    assert any(s.type == "line" and s.x0 == 2.0 for s in fig.layout.shapes)
    assert not fig.layout.annotations  # said in the legend, not written over the points and the axis
    assert fig.layout.xaxis.title.text == "Epoch"
    assert fig.layout.yaxis.autorangeoptions.maxallowed == pytest.approx(1.02)  # scores stay in [0, 1]
    # Marked by the metric asked for: F1 peaks at epoch 3.
    fig = fg.eval_figure({"eval_accuracy": acc, "eval_f1": f1}, best_key="eval_f1")
    assert [list(t.x) for t in fig.data if t.name == "best f1 (epoch 3)"] == [[3.0]]


def test_confusion_matrix_figure_rows_true_columns_predicted():
    fig = fg.confusion_matrix_figure([[8, 2], [1, 9]], ["neg", "pos"])
    heat = fig.data[0]
    assert list(heat.x) == ["neg", "pos"] and list(heat.y) == ["neg", "pos"]
    assert heat.z[0][0] == pytest.approx(0.8)  # colour is the row share (recall of "neg")
    assert heat.text[0][1].startswith("2<br>20%")
    assert fig.layout.yaxis.autorange == "reversed"  # first label on top, like a printed matrix
    assert fig.layout.xaxis.title.text == "Predicted label"


def test_compare_figure_one_line_per_run_and_relative_time():
    long = pd.concat(
        [
            series([0.5, 0.4, 0.3], start=100.0).assign(run_id="a", key="eval_loss"),
            series([0.6, 0.5], start=500.0).assign(run_id="b", key="eval_loss"),
            series([0.9], start=500.0).assign(run_id="b", key="eval_accuracy"),
        ]
    )
    fig = fg.compare_figure(
        long, "eval_loss", x="relative", labels={"a": "run A", "b": "run B"}, origins={"a": 100.0, "b": 499.0}
    )
    assert [t.name for t in fig.data] == ["run A", "run B"]
    assert list(fig.data[0].x) == [1.0, 2.0, 3.0]
    assert list(fig.data[1].x) == [2.0, 3.0]
    assert "No" not in str(fig.layout.annotations)
    assert fig.layout.yaxis.autorangeoptions.maxallowed is None  # a loss is not a score: no bounds
    empty = fg.compare_figure(long, "grad_norm")
    assert "None of the selected runs" in empty.layout.annotations[0].text


def test_compare_figure_tells_identical_runs_apart_and_bounds_scores():
    flat = series([0.5, 0.5, 0.5])
    long = pd.concat([flat.assign(run_id=r, key="eval_accuracy") for r in ("a", "b")])
    fig = fg.compare_figure(long, "eval_accuracy")
    assert fig.data[0].line.dash != fig.data[1].line.dash  # the same curve twice still shows two lines
    assert fig.data[0].marker.symbol != fig.data[1].marker.symbol
    bounds = fig.layout.yaxis.autorangeoptions
    assert (bounds.minallowed, bounds.maxallowed) == (pytest.approx(-0.02), pytest.approx(1.02))
    assert fg.is_score("eval_f1") and fg.is_score("eval_macro_recall") and not fg.is_score("eval_loss")


def test_compare_figure_smooths_long_series_downsampled_by_the_store(tmp_path):
    # The figure draws what the store returns; the store downsamples (its min/max buckets are tested in
    # test_store.py), so a long series reaches the chart with at most the points asked for.
    from trainer_core import MetricsStore

    store = MetricsStore(f"sqlite:///{tmp_path / 'metrics.db'}")
    run_id = store.create_run("a", {})
    values = np.random.default_rng(0).random(5000)
    store.log_points(
        [(run_id, "loss", i + 1, (i + 1) / 1000, float(v), 1000.0 + i) for i, v in enumerate(values)]
    )
    long = store.get_metrics([run_id], ["loss"], max_points=500)
    store.close()
    fig = fg.compare_figure(long, "loss", smoothing=0.9)
    raw, smooth = fig.data
    assert raw.showlegend is False and len(raw.x) <= 500
    assert np.std(smooth.y) < np.std(raw.y)


# -- tables ------------------------------------------------------------------------------------------


def run(run_id, name, status, **kw):
    return {
        "id": run_id,
        "name": name,
        "status": status,
        "config": kw.pop("config", {}),
        "started_at": None,
        "finished_at": None,
        **kw,
    }


def test_filter_runs_by_status_and_words():
    runs = [
        run("1", "bert-sst2", "running", config={"model_name_or_path": "bert-base-uncased"}),
        run("2", "minilm-reviews", "completed", config={"dataset_name": "builtin:rotten-tomatoes"}),
        run("3", "minilm-lr", "failed"),
    ]
    assert [r["id"] for r in tb.filter_runs(runs, ["completed", "failed"])] == ["2", "3"]
    assert [r["id"] for r in tb.filter_runs(runs, [], "minilm rotten")] == ["2"]
    assert [r["id"] for r in tb.filter_runs(runs, None, "BERT-BASE")] == ["1"]
    assert tb.filter_runs(runs, ["queued"]) == []


def test_filter_runs_matches_note_and_tags():
    runs = [
        run("1", "bert-sst2", "completed", note="Baseline before the LR sweep", tags=["Baseline", "sst2"]),
        run("2", "minilm", "completed", note=None, tags=[]),
        run("3", "old-run", "completed"),  # a run dict without the keys (an older engine) still filters
    ]
    assert [r["id"] for r in tb.filter_runs(runs, None, "baseline")] == ["1"]
    assert [r["id"] for r in tb.filter_runs(runs, None, "lr SWEEP")] == ["1"]
    assert [r["id"] for r in tb.filter_runs(runs, None, "sst2 bert")] == ["1"]
    assert [r["id"] for r in tb.filter_runs(runs, None, "")] == ["1", "2", "3"]
    assert tb.filter_runs(runs, None, "none") == []  # an empty note is not the word "None"


def test_runs_table_columns_and_values():
    runs = [
        run(
            "a",
            "first",
            "running",
            started_at=1000.0,
            config={
                "learning_rate": 2e-5,
                "num_train_epochs": 3.0,
                "model_name_or_path": "builtin:minilm-l6",
            },
        ),
        run("b", "second", "completed", started_at=1000.0, finished_at=1300.0, tags=["sweep", "v2"]),
        run("c", "third", "running", started_at=1090.0),
    ]
    table = tb.runs_table(
        runs,
        progress={"a": {"fraction": 0.25, "eta_s": 90.0}, "c": {"fraction": 0.01, "estimating": True}},
        best={"b": {"eval_accuracy": {"value": 0.9}, "eval_f1": {"value": 0.88}}},
        now=1100.0,
    )
    assert table.loc["a", "Progress"] == 0.25 and table.loc["a", "ETA"] == "~1m 30s"
    assert table.loc["a", "Duration"] == "1m 40s" and table.loc["a", "Checkpoint"] == "minilm-l6"
    assert table.loc["b", "Progress"] == 1.0 and table.loc["b", "Best F1"] == 0.88
    assert table.loc["b", "Duration"] == "5m 00s" and table.loc["b", "ETA"] == "—"
    assert table.loc["a", "Status"].endswith("running")
    assert table.loc["c", "ETA"] == "estimating…"
    assert table.loc["b", "Tags"] == "sweep, v2" and table.loc["a", "Tags"] == ""


def test_rank_runs_orders_by_metric_direction_and_puts_missing_last():
    values = {
        "a": {"value": 0.8, "epoch": 2.0, "step": 20},
        "b": {"value": 0.9, "epoch": 3.0, "step": 30},
        "c": None,
    }
    ranked = tb.rank_runs(values, "eval_accuracy", labels={"a": "A", "b": "B", "c": "C"})
    assert ranked["Run"].tolist() == ["B", "A", "C"]
    assert ranked["Rank"].tolist()[:2] == [1, 2] and pd.isna(ranked["Rank"].iloc[2])
    losses = tb.rank_runs({"a": {"value": 0.3}, "b": {"value": 0.2}}, "eval_loss")
    assert losses.index.tolist() == ["b", "a"]


def test_config_diff_table_shows_only_what_differs():
    from trainer_core.config import config_diff

    configs = {
        "a": tb.comparable_config(
            {"learning_rate": 2e-5, "seed": 42, "output_dir": "/runs/a", "fp16": False}
        ),
        "b": tb.comparable_config(
            {"learning_rate": 5e-5, "seed": 42, "output_dir": "/runs/b", "report_to": ["none"]}
        ),
    }
    table = tb.config_diff_table(config_diff(configs), labels={"a": "run A", "b": "run B"})
    assert set(table.index) == {"learning_rate", "fp16", "report_to"}  # not seed, not output_dir
    assert table.columns.tolist() == ["run A", "run B"]
    assert table.loc["learning_rate"].tolist() == ["2e-05", "5e-05"]
    assert table.loc["report_to", "run B"] == '["none"]' and table.loc["report_to", "run A"] == "—"
    assert tb.config_diff_table({}).empty


def test_run_labels_disambiguate_shared_names():
    labels = tb.run_labels(
        [
            run("20240101-aaaaaa", "same", "completed"),
            run("20240101-bbbbbb", "same", "failed"),
            run("x", "unique", "failed"),
        ]
    )
    assert labels == {"20240101-aaaaaa": "same (aaaaaa)", "20240101-bbbbbb": "same (bbbbbb)", "x": "unique"}


def test_per_class_table_adds_macro_average():
    report = {
        "per_class": [
            {"label": "a", "precision": 1.0, "recall": 0.5, "f1": 0.6, "support": 4},
            {"label": "b", "precision": 0.5, "recall": 1.0, "f1": 0.8, "support": 6},
        ]
    }
    table = tb.per_class_table(report)
    assert table["label"].tolist() == ["a", "b", "macro avg"]
    assert table.iloc[-1]["f1"] == pytest.approx(0.7) and table.iloc[-1]["support"] == 10
    assert tb.per_class_table(None).empty


def test_checkpoint_summary_says_what_was_found():
    base = {
        "architecture": "BertModel",
        "num_parameters": 22_713_216,
        "num_layers": 6,
        "hidden_size": 384,
        "max_position_embeddings": 512,
        "num_labels": None,
    }
    text = tb.checkpoint_summary(base)
    assert "**BertModel**" in text and "22.7M parameters" in text and "up to 512 tokens" in text
    assert "new classification head" in text
    assert "already classifies 3 labels" in tb.checkpoint_summary({**base, "num_labels": 3})


def test_eval_figure_legend_names_what_f1_is():
    acc = series([0.70, 0.80], steps=[10, 20], epochs=[1.0, 2.0])
    f1 = series([0.60, 0.75], steps=[10, 20], epochs=[1.0, 2.0])
    names = {"eval_f1": tb.f1_legend(["ham", "spam"])}
    fig = fg.eval_figure({"eval_accuracy": acc, "eval_f1": f1}, best_key="eval_f1", names=names)
    legend = [t.name for t in fig.data]
    assert legend[:2] == ["accuracy", "f1 (class 'spam')"]
    assert "best f1 (epoch 2)" in legend
    assert tb.f1_legend(list("abcdef")) == "f1 (macro, 6 classes)" and tb.f1_legend(None) == "f1"


def test_run_label_names_from_summary_or_data_ready_event():
    event = {"kind": "data_ready", "data": {"labels": ["neg", "pos"]}}
    assert tb.run_label_names({"summary": {"label_names": ["a", "b"]}}, [event]) == ["a", "b"]
    assert tb.run_label_names({"summary": None}, [{"kind": "launched", "data": None}, event]) == [
        "neg",
        "pos",
    ]
    assert tb.run_label_names({}, []) is None


def test_imbalance_warning_names_the_counts_past_15_percent_or_5_to_1():
    assert tb.imbalance_warning({"0": 50, "1": 50}) is None
    assert tb.imbalance_warning({"a": 40, "b": 35, "c": 25}) is None
    assert tb.imbalance_warning({}) is None and tb.imbalance_warning({"only": 10}) is None
    warning = tb.imbalance_warning({"ham": 870, "spam": 130})  # 13%: under 15%
    assert warning and "'ham': 870" in warning and "'spam': 130" in warning and "13.0%" in warning
    assert "F1" in warning and "per-class" in warning
    # The smallest class is 16.2% of the rows, but the largest is 5.2 times it.
    assert "5.2:1" in tb.imbalance_warning({"a": 830, "b": 160})
    assert "no rows in a class" in tb.imbalance_warning({"a": 10, "b": 0})


def test_resources_figure_puts_cpu_above_memory_by_time_since_the_start():
    def sampled(values, walls, steps):
        return pd.DataFrame({"step": steps, "epoch": None, "value": values, "wall_time": walls})

    frames = {
        "system/rss_mb": sampled([610.0, 590.0, 600.0], [1015.0, 1005.0, 1010.0], [3, 0, 0]),
        "system/cpu_percent": sampled([95.0, 180.0, 150.0], [1005.0, 1010.0, 1015.0], [0, 0, 3]),
        "system/gpu0_reserved_mb": sampled([2048.0, float("nan")], [1010.0, 1015.0], [0, 3]),
        "system/gpu0_peak_mb": None,
    }
    fig = fg.resources_figure(frames, origin=1000.0, uirevision="r1")
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {
        "CPU, % of one core",
        "RSS",
        "GPU 0 reserved",
    }
    cpu, gpu, rss = (traces[n] for n in sorted(traces))  # CPU, GPU, RSS
    assert cpu.yaxis == "y" and rss.yaxis == gpu.yaxis == "y2"  # percent on top, megabytes below
    # Seconds since the run started, in time order (several samples share a step while it loads).
    assert rss.x.tolist() == [5.0, 10.0, 15.0] and rss.y.tolist() == [590.0, 600.0, 610.0]
    assert rss.customdata.tolist() == [0, 0, 3] and "step" in rss.hovertemplate
    assert gpu.y.tolist() == [2048.0]  # the non-finite sample is dropped
    assert fig.layout.xaxis.title.text == fg.X_AXES["relative"] and fig.layout.yaxis2.title.text == "MB"
    assert fig.layout.yaxis.domain[0] > fig.layout.yaxis2.domain[1]
    empty = fg.resources_figure({"system/rss_mb": None})
    assert not empty.data and "No resource use sampled yet" in empty.layout.annotations[0].text

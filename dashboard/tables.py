"""Pure table and text helpers for the dashboard: formatting, filtering, ranking, config diffs.

Like :mod:`dashboard.figures`, nothing here imports Streamlit or reads the store; pages pass plain
values in and get DataFrames or strings back.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from trainer_core import (
    ACTIVE_STATUSES,
    BUILTIN_PREFIX,
    METRIC_NAMES,
    RESUMABLE_STATUSES,
    RUN_MODEL_DIR,
    ConfigError,
    RunStatus,
    f1_meaning,
    is_builtin,
    lower_is_better,
)

# Config keys that differ between any two runs by construction, so a diff showing them says nothing.
RUN_SPECIFIC_KEYS = ("output_dir", "logging_dir", "run_name")
# The first steps of an attempt include loading the model and data and warming up, so a rate measured
# over fewer steps than this overstates the time left (right after a resume, by minutes).
MIN_ETA_STEPS = 5
ESTIMATING = "estimating…"
# Plain Unicode symbols rather than emoji: they render in table cells with any system font.
STATUS_ICONS = {
    RunStatus.QUEUED: "◷",
    RunStatus.RUNNING: "▶",
    RunStatus.STOPPING: "◼",
    RunStatus.STOPPED: "■",
    RunStatus.COMPLETED: "✔",
    RunStatus.FAILED: "✖",
    RunStatus.PRUNED: "✂",
}
# What Launcher.resume accepts: a completed run is cloned to train further, not resumed.
RESUMABLE = RESUMABLE_STATUSES
# The headline scores of the tables and status panels, as Trainer names them (the Compare page offers
# every recorded key). Unpacking fails at import if the engine stops reporting either.
EVAL_KEYS = tuple(f"eval_{name}" for name in METRIC_NAMES if name in ("accuracy", "f1"))
ACCURACY, F1 = EVAL_KEYS
# Training labels this uneven make accuracy flatter a model that neglects the small classes.
MIN_CLASS_SHARE = 0.15
MAX_CLASS_RATIO = 5.0


# --------------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    """'42s', '3m 05s', '1h 02m', '2d 03h'; '—' when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    return f"{s // 86400}d {(s % 86400) // 3600:02d}h"


def format_eta(eta_s: float | None, status: str | None = None, estimating: bool = False) -> str:
    """Time left for an active run; finished runs have none ('—')."""
    if status is not None and status not in ACTIVE_STATUSES:
        return "—"
    if estimating:
        return ESTIMATING
    if eta_s is None or not math.isfinite(eta_s):
        return "—"
    if eta_s < 1:
        return "finishing"
    return "~" + format_duration(eta_s)


def with_plotted_step(run: Mapping[str, Any], plotted_step: int | None) -> dict[str, Any]:
    """The run row with its step raised to the last step a chart shows (never past the total).

    The row's step is written by a rate-limited heartbeat, the metric points as they are logged: without
    this the progress bar lags the loss chart drawn beside it.
    """
    step = int(run.get("step") or 0)
    if plotted_step is not None and plotted_step > step:
        total = int(run.get("total_steps") or 0)
        step = min(int(plotted_step), total) if total else int(plotted_step)
    return {**run, "step": step}


def eta_estimating(run: Mapping[str, Any], step: int | None = None) -> bool:
    """True while a training run has done too few steps in this attempt for a trustworthy ETA."""
    if run.get("status") not in (RunStatus.RUNNING, RunStatus.STOPPING):
        return False
    step = int(run.get("step") or 0) if step is None else step
    return step - int(run.get("start_step") or 0) < MIN_ETA_STEPS


def format_timestamp(ts: float | None) -> str:
    """A unix time as local 'YYYY-MM-DD HH:MM'."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def format_count(n: int | None) -> str:
    """12345678 -> '12.3M' (parameter counts, row counts)."""
    if n is None:
        return "—"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{suffix}"
    return str(n)


def format_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - loop always returns


def short_checkpoint(name: str | None) -> str:
    """How a checkpoint reads in a table: built-ins without the prefix, folders by their last part."""
    if not name:
        return "—"
    if is_builtin(name):
        return name.removeprefix(BUILTIN_PREFIX)
    if "/" in name and (name.startswith(("/", ".", "~")) or name.count("/") > 1):
        parts = [p for p in name.rstrip("/").split("/") if p]
        # A run's final model lives in <run>/model: name it by the run folder instead.
        return "/".join(parts[-2:]) if parts and parts[-1] == RUN_MODEL_DIR else parts[-1]
    return name


def dataset_label(config: Mapping[str, Any]) -> str:
    """The dataset a run trains on, in a few words."""
    if config.get("train_file"):
        return str(config["train_file"]).replace("\\", "/").rsplit("/", 1)[-1]
    name = config.get("dataset_name") or "—"
    name = name.removeprefix(BUILTIN_PREFIX)
    if config.get("dataset_config_name"):
        name += f"/{config['dataset_config_name']}"
    return name


def status_label(status: str) -> str:
    return f"{STATUS_ICONS.get(status, '•')} {status}"


def token_stats_text(stats: Mapping[str, Any] | None, max_seq_length: int | None) -> str:
    """One sentence summarising token lengths and what max_seq_length cuts off."""
    if not stats:
        return "Token lengths are not available."
    parts = [
        f"mean {stats.get('mean', 0):.0f}",
        f"median {stats.get('median', 0):.0f}",
        f"95th percentile {stats.get('p95', 0):.0f}",
        f"max {stats.get('max', 0):.0f} tokens",
    ]
    text = "Token lengths: " + " · ".join(parts) + "."
    n_trunc = stats.get("n_truncated")
    if n_trunc is not None and max_seq_length:
        share = stats.get("share_truncated") or 0.0
        if n_trunc:
            text += f" {n_trunc:,} rows ({share:.1%}) are longer than {max_seq_length} and will be truncated."
        else:
            text += f" No row is longer than {max_seq_length}, nothing is truncated."
    return text


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------


def run_labels(runs: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Run id -> display name, with the id's tail added where two runs share a name."""
    runs = list(runs)
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["name"]] = counts.get(r["name"], 0) + 1
    return {r["id"]: r["name"] if counts[r["name"]] == 1 else f"{r['name']} ({r['id'][-6:]})" for r in runs}


def filter_runs(
    runs: Iterable[Mapping[str, Any]],
    statuses: Iterable[str] | None = None,
    query: str = "",
    sweeps: Iterable[str] | None = None,
) -> list:
    """Runs in one of ``statuses`` (all when empty), trials of one of ``sweeps`` (any run when empty),
    whose name, id, note, tags, checkpoint or dataset match every word."""
    wanted, in_sweeps = set(statuses or []), set(sweeps or [])
    words = [w for w in (query or "").lower().split() if w]
    out = []
    for run in runs:
        if wanted and run["status"] not in wanted:
            continue
        if in_sweeps and run.get("sweep_id") not in in_sweeps:
            continue
        cfg = run.get("config") or {}
        haystack = " ".join(
            str(x)
            for x in (
                run["name"],
                run["id"],
                run["status"],
                run.get("note"),
                *(run.get("tags") or []),
                cfg.get("model_name_or_path"),
                dataset_label(cfg),
            )
            if x is not None  # a missing checkpoint or note is not the word "None"
        ).lower()
        if all(w in haystack for w in words):
            out.append(run)
    return out


def runs_table(
    runs: Iterable[Mapping[str, Any]],
    progress: Mapping[str, Mapping[str, Any]] | None = None,
    best: Mapping[str, Mapping[str, Any]] | None = None,
    now: float | None = None,
) -> pd.DataFrame:
    """The Runs page table: one row per run, indexed by run id.

    Args:
        progress: run id -> ``Launcher.progress(run)`` (fraction, eta_s, ...).
        best: run id -> ``MetricsStore.best_metrics(...)`` of ``EVAL_KEYS``.
    """
    progress, best, now = progress or {}, best or {}, now if now is not None else time.time()
    rows = []
    for run in runs:
        cfg = run.get("config") or {}
        prog = progress.get(run["id"]) or {}
        b = best.get(run["id"]) or {}
        started, finished = run.get("started_at"), run.get("finished_at")
        end = finished if finished is not None else (now if run["status"] in ACTIVE_STATUSES else None)
        fraction = prog.get("fraction")
        if fraction is None and run["status"] == RunStatus.COMPLETED:
            fraction = 1.0
        rows.append(
            {
                "id": run["id"],
                "Name": run["name"],
                "Status": status_label(run["status"]),
                "Tags": ", ".join(run.get("tags") or []),
                "Trial": f"#{run['trial_number']}" if run.get("sweep_id") else None,
                "Progress": None if fraction is None else float(min(max(fraction, 0.0), 1.0)),
                "ETA": format_eta(prog.get("eta_s"), run["status"], bool(prog.get("estimating"))),
                "Checkpoint": short_checkpoint(cfg.get("model_name_or_path")),
                "Dataset": dataset_label(cfg),
                "LR": cfg.get("learning_rate"),
                "Epochs": cfg.get("num_train_epochs"),
                "Batch": cfg.get("per_device_train_batch_size"),
                "Best acc": (b.get(ACCURACY) or {}).get("value"),
                "Best F1": (b.get(F1) or {}).get("value"),
                # Local wall-clock time, as the user reads it (a bare unix time would display as UTC).
                "Started": pd.Timestamp(datetime.fromtimestamp(started)) if started else pd.NaT,
                "Duration": format_duration(end - started) if started and end else "—",
            }
        )
    columns = [
        "id",
        "Name",
        "Status",
        "Progress",
        "ETA",
        "Best acc",
        "Best F1",
        "Checkpoint",
        "Dataset",
        "Tags",
        "Trial",
        "LR",
        "Epochs",
        "Batch",
        "Started",
        "Duration",
    ]
    table = pd.DataFrame(rows, columns=columns).set_index("id")
    # Numeric columns stay numeric with gaps as NaN (a None in an object column would display as "None").
    for col in ("Progress", "Best acc", "Best F1", "LR", "Epochs", "Batch"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def rank_runs(
    values: Mapping[str, Mapping[str, Any] | None],
    metric: str,
    labels: Mapping[str, str] | None = None,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Runs ordered best first by ``metric`` (ascending for losses); runs without it go last, unranked.

    Args:
        values: run id -> {value, step, epoch} (e.g. ``best_metrics(run)[metric]``) or None.
        extra: run id -> more columns to show (status, last value, ...).
    """
    labels, extra = labels or {}, extra or {}
    rows = []
    for run_id, point in values.items():
        point = point or {}
        rows.append(
            {
                "run_id": run_id,
                "Run": labels.get(run_id, run_id),
                metric: point.get("value"),
                "Epoch": point.get("epoch"),
                "Step": point.get("step"),
                **(extra.get(run_id) or {}),
            }
        )
    df = pd.DataFrame(rows)
    if not len(df):
        return pd.DataFrame(columns=["Rank", "Run", metric, "Epoch", "Step"])
    df = df.sort_values(metric, ascending=lower_is_better(metric), na_position="last", kind="stable")
    has = df[metric].notna()
    df.insert(0, "Rank", pd.array([i + 1 if h else None for i, h in enumerate(has)], dtype="Int64"))
    return df.set_index("run_id")


def comparable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config without the keys that are different for every run (output folder, run name)."""
    return {k: v for k, v in config.items() if k not in RUN_SPECIFIC_KEYS}


def config_diff_table(
    diff: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """``config_diff`` output as a table: one row per differing key, one column per run (text cells)."""
    labels = labels or {}
    if not diff:
        return pd.DataFrame()
    run_ids = list(next(iter(diff.values())).keys())
    rows = {key: [_cell(values.get(rid)) for rid in run_ids] for key, values in diff.items()}
    df = pd.DataFrame.from_dict(rows, orient="index", columns=[labels.get(r, r) for r in run_ids])
    df.index.name = "field"
    return df


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def config_diff_caption(n_fields: int) -> str:
    """The line above the config diff, in the right number."""
    if n_fields == 1:
        return "Only the one field that differs; everything else is the same in every selected run."
    return f"Only the {n_fields} fields that differ; everything else is the same in every selected run."


def per_class_table(report: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per-class precision / recall / F1 / support from a run summary's ``report``, then the macro
    average, and the weighted one when that is what the run's f1 is."""
    report = report or {}
    df = pd.DataFrame(
        report.get("per_class") or [], columns=["label", "precision", "recall", "f1", "support"]
    )
    if len(df):
        averages = [{"label": "macro avg", **df[["precision", "recall", "f1"]].mean().to_dict()}]
        if (report.get("average") or {}).get("average") == "weighted":
            averages.append({**report["average"], "label": "weighted avg"})
        totals = pd.DataFrame(averages).assign(support=df["support"].sum())[df.columns]
        df = pd.concat([df, totals], ignore_index=True)
    return df


def checkpoint_summary(info: Mapping[str, Any]) -> str:
    """One line about an inspected checkpoint (``inspect_checkpoint``'s dict): what it is and how big."""
    parts = [f"**{info.get('architecture') or info.get('model_type') or 'model'}**"]
    if info.get("num_parameters"):
        parts.append(f"{format_count(info['num_parameters'])} parameters")
    if info.get("num_layers"):
        parts.append(f"{info['num_layers']} layers")
    if info.get("hidden_size"):
        parts.append(f"hidden size {info['hidden_size']}")
    if info.get("max_position_embeddings"):
        parts.append(f"up to {info['max_position_embeddings']} tokens")
    text = ":material/check_circle: Found " + " · ".join(parts) + "."
    if info.get("num_labels"):
        text += f" It already classifies {info['num_labels']} labels; the head is replaced if yours differ."
    else:
        text += " A new classification head is trained on top."
    return text


def imbalance_warning(counts: Mapping[str, int]) -> str | None:
    """A warning when the smallest class is under 15% of the rows or the largest over 5x the smallest."""
    counts = {str(k): int(v) for k, v in counts.items()}
    total = sum(counts.values())
    if len(counts) < 2 or total == 0:
        return None
    smallest, largest = min(counts.values()), max(counts.values())
    share = smallest / total
    if share >= MIN_CLASS_SHARE and largest <= MAX_CLASS_RATIO * smallest:
        return None
    shown = ", ".join(f"'{k}': {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    ratio = "no rows in a class" if smallest == 0 else f"{largest / smallest:.1f}:1"
    return (
        f"The training labels are imbalanced ({shown}; smallest class {share:.1%}, {ratio}). Accuracy "
        "can look good while the small classes are ignored: watch F1 and the per-class scores."
    )


def run_label_names(run: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = ()) -> list[str] | None:
    """A run's class names: from its summary once completed, else from its ``data_ready`` event."""
    names = (run.get("summary") or {}).get("label_names")
    if names:
        return [str(n) for n in names]
    for event in events:
        if event.get("kind") == "data_ready" and (event.get("data") or {}).get("labels"):
            return [str(n) for n in event["data"]["labels"]]
    return None


def f1_text(
    label_names: list[str] | None, config: Mapping[str, Any] | None = None, short: bool = False
) -> str | None:
    """The engine's words for what a run's f1 scores (``F1 of class '1'``; short: ``class '1'``).

    None while unknown: no class names yet, or a config whose F1 choice its labels refuse (its run
    failed before it evaluated).
    """
    if not label_names:
        return None
    config = config or {}
    try:
        return f1_meaning(label_names, config.get("f1_average"), config.get("pos_label"), short=short)
    except ConfigError:
        return None


def f1_legend(
    label_names: list[str] | None, config: Mapping[str, Any] | None = None, name: str = "f1"
) -> str:
    """``name`` with what f1 scores: ``f1 (class '1')``, ``f1 (macro, 6 classes)``; plain without names."""
    short = f1_text(label_names, config, short=True)
    return f"{name} ({short})" if short else name

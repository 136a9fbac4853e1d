"""Pure Plotly figure builders, and the series helpers they use (cleaning, smoothing).

Nothing here imports Streamlit or touches the store: every function takes plain values (DataFrames of
step, epoch, value, wall_time) and returns a figure or a DataFrame, so the tests call them directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from trainer_core import METRIC_NAMES, describe_system_series, lower_is_better

# Okabe-Ito: distinguishable for the common forms of colour blindness, and still readable in print.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
TRAIN_COLOR, EVAL_COLOR, BEST_COLOR = PALETTE[0], PALETTE[3], "#B8860B"
# Per run in Compare, with the colour: two runs with the same curve would otherwise draw as one line.
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "hexagon")
# Scores live in [0, 1]; left to autorange, a flat curve stretches the axis to 0-1.5. The bounds keep
# autorange (differences of a few points stay visible) but never let it leave [0, 1] by more than a hair.
SCORE_METRICS = METRIC_NAMES
SCORE_AXIS = {"autorangeoptions": {"minallowed": -0.02, "maxallowed": 1.02}}
SERIES_COLUMNS = ["step", "epoch", "value", "wall_time"]
X_AXES = {"step": "Step", "epoch": "Epoch", "relative": "Wall time (s since start)"}
RESOURCES = "Resources"


# --------------------------------------------------------------------------------------------------
# series helpers
# --------------------------------------------------------------------------------------------------


def clean_series(df: pd.DataFrame | None) -> pd.DataFrame:
    """A series ready to plot: finite values only, ordered by step, exact duplicates dropped.

    The store's min/max downsampling can return the two extremes of a bucket at the same step, and a
    resumed run can log a step twice; both are fine to draw once the points are in step order.
    """
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    out = df[np.isfinite(pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float))]
    return out.drop_duplicates().sort_values("step", kind="stable").reset_index(drop=True)


def ema(values: Iterable[float], weight: float) -> np.ndarray:
    """TensorBoard-style smoothing: an exponential moving average with the start-up bias removed.

    pandas' ``ewm(adjust=True)`` is exactly TensorBoard's debiased average (the first smoothed point is
    the first value). Non-finite values pass through unsmoothed and do not disturb the average.
    """
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    if weight <= 0 or len(arr) == 0:
        return arr.copy()
    finite = np.isfinite(arr)
    smoothed = (
        pd.Series(np.where(finite, arr, np.nan))
        .ewm(alpha=1 - min(weight, 0.999), adjust=True, ignore_na=True)
        .mean()
        .to_numpy()
    )
    return np.where(finite, smoothed, arr)


def best_point(df: pd.DataFrame | None, key: str) -> dict[str, Any] | None:
    """The best row of a metric series (lowest loss, highest anything else); earliest on ties."""
    df = clean_series(df)
    if not len(df):
        return None
    values = df["value"].to_numpy(dtype=float)
    i = int(np.argmin(values) if lower_is_better(key) else np.argmax(values))
    row = df.iloc[i]
    epoch = row["epoch"]
    return {
        "value": float(row["value"]),
        "step": int(row["step"]),
        "epoch": None if epoch is None or pd.isna(epoch) else float(epoch),
    }


def is_score(key: str) -> bool:
    """accuracy, f1, precision or recall (eval_/test_ prefixed or not, macro_/weighted_ variants too)."""
    name = key.lower().removeprefix("eval_").removeprefix("test_")
    return any(name == m or name.endswith("_" + m) for m in SCORE_METRICS)


def relative_time(df: pd.DataFrame, origin: float | None = None) -> pd.Series:
    """Seconds since ``origin`` (the run's start), or since the first point when it is unknown."""
    if not len(df):
        return pd.Series(dtype=float)
    wall = df["wall_time"].astype(float)
    start = origin if origin is not None else float(wall.min())
    # A resumed run keeps points from before its latest start; never draw them at negative time.
    start = min(start, float(wall.min()))
    return wall - start


# --------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------


def _figure(
    traces: list[dict],
    title: str,
    x_title: str,
    y_title: str,
    uirevision: Any = None,
    height: int = 320,
    xaxis: dict | None = None,
    yaxis: dict | None = None,
    **layout: Any,
) -> go.Figure:
    """A figure built in one go from plain dicts.

    Plotly validates every property it is given; one constructor call validates once, where
    ``update_layout``/``add_vline`` calls re-validate and cost tens of milliseconds each. There is no
    template either: st.plotly_chart applies Streamlit's theme, and copying a template costs ~80 ms.
    ``uirevision`` keeps the user's zoom and hidden traces across live refreshes of the same chart.
    """
    spec = {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        "uirevision": uirevision if uirevision is not None else title,
        "xaxis": {"title": {"text": x_title}, "showgrid": True, "zeroline": False, **(xaxis or {})},
        "yaxis": {"title": {"text": y_title}, "showgrid": True, "zeroline": False, **(yaxis or {})},
        **layout,
    }
    return go.Figure(data=traces, layout=spec)


def empty_figure(message: str, title: str = "", height: int = 320) -> go.Figure:
    """A blank chart that says why it is blank (better than a missing chart that shifts the layout)."""
    note = {
        "text": message,
        "showarrow": False,
        "font": {"size": 14, "color": "#777"},
        "x": 0.5,
        "y": 0.5,
        "xref": "paper",
        "yref": "paper",
    }
    return _figure(
        [],
        title,
        "",
        "",
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[note],
    )


def _line(df: pd.DataFrame, name: str, color: str, x: str = "step", **kw) -> dict:
    trace = {
        "type": "scatter",
        "x": df[x].to_numpy(),
        "y": df["value"].to_numpy(dtype=float),
        "name": name,
        "line": {"color": color, "width": kw.pop("width", 2)},
        "hovertemplate": kw.pop(
            "hovertemplate", "%{y:.4g}<extra>" + name + " · epoch %{customdata:.2f}</extra>"
        ),
        **kw,
    }
    if "epoch" in df:
        trace["customdata"] = df["epoch"].to_numpy(dtype=float)
    if trace["hovertemplate"] is None:
        del trace["hovertemplate"]
    return trace


def loss_figure(
    train: pd.DataFrame | None,
    eval_: pd.DataFrame | None,
    smoothing: float = 0.0,
    uirevision: Any = None,
) -> go.Figure:
    """Training loss per logged step with the eval loss of each evaluation on the same step axis."""
    train, eval_ = clean_series(train), clean_series(eval_)
    if not len(train) and not len(eval_):
        return empty_figure("No loss logged yet: the first point appears after logging_steps steps.", "Loss")
    traces = []
    if len(train):
        if smoothing > 0:
            traces.append(
                _line(
                    train,
                    "train loss (raw)",
                    TRAIN_COLOR,
                    width=1,
                    opacity=0.3,
                    showlegend=False,
                    hoverinfo="skip",
                    hovertemplate=None,
                )
            )
            traces.append(
                _line(
                    train.assign(value=ema(train["value"].to_numpy(), smoothing)), "train loss", TRAIN_COLOR
                )
            )
        else:
            traces.append(_line(train, "train loss", TRAIN_COLOR))
    if len(eval_):
        traces.append(_line(eval_, "eval loss", EVAL_COLOR, mode="lines+markers", marker={"size": 8}))
    return _figure(traces, "Loss", "Step", "Loss", uirevision)


def eval_figure(
    series: Mapping[str, pd.DataFrame | None],
    best_key: str | None = None,
    uirevision: Any = None,
    names: Mapping[str, str] | None = None,
) -> go.Figure:
    """Eval metrics per epoch (accuracy, F1, ...) with the best evaluation of ``best_key`` marked.

    ``names``: legend names by key (e.g. ``eval_f1`` -> ``f1 (class '1')``); by default the key without
    its ``eval_`` prefix.
    """
    names = names or {}
    cleaned = {k: clean_series(v) for k, v in series.items()}
    cleaned = {k: v for k, v in cleaned.items() if len(v)}
    if not cleaned:
        return empty_figure("No evaluation yet: metrics appear after the first evaluation.", "Evaluation")
    x = "epoch" if all(v["epoch"].notna().all() for v in cleaned.values()) else "step"
    traces = []
    for i, (key, df) in enumerate(cleaned.items()):
        label = names.get(key) or key.removeprefix("eval_")
        traces.append(
            _line(
                df,
                label,
                PALETTE[(i + 2) % len(PALETTE)],
                x=x,
                mode="lines+markers",
                marker={"size": 7},
                hovertemplate="%{y:.4f}<extra>" + label + "</extra>",
            )
        )
    best_key = best_key if best_key in cleaned else next(iter(cleaned))
    best = best_point(cleaned[best_key], best_key)
    shapes = []
    if best is not None:
        bx = best["epoch"] if x == "epoch" and best["epoch"] is not None else best["step"]
        where = f"epoch {bx:g}" if x == "epoch" else f"step {bx}"
        label = best_key.removeprefix("eval_")
        # Where the best evaluation was is said in the legend and the hover, not in a text label on the
        # plot: there it sat on the points and the axis.
        traces.append(
            {
                "type": "scatter",
                "x": [bx],
                "y": [best["value"]],
                "mode": "markers",
                "name": f"best {label} ({where})",
                "marker": {
                    "symbol": "star",
                    "size": 16,
                    "color": BEST_COLOR,
                    "line": {"width": 1, "color": "#333"},
                },
                "hovertemplate": f"best {label} %{{y:.4f}} at {where}<extra></extra>",
            }
        )
        shapes.append(
            {
                "type": "line",
                "x0": bx,
                "x1": bx,
                "xref": "x",
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"dash": "dot", "color": BEST_COLOR, "width": 1},
            }
        )
    yaxis = SCORE_AXIS if all(is_score(k) for k in cleaned) else None
    return _figure(traces, "Evaluation", X_AXES[x], "Score", uirevision, yaxis=yaxis, shapes=shapes)


def lr_figure(df: pd.DataFrame | None, uirevision: Any = None) -> go.Figure:
    """The learning-rate schedule as the optimizer saw it."""
    df = clean_series(df)
    if not len(df):
        return empty_figure("No learning rate logged yet.", "Learning rate", height=260)
    trace = _line(df, "learning rate", PALETTE[2], hovertemplate="%{y:.3e}<extra>lr</extra>")
    return _figure(
        [trace],
        "Learning rate",
        "Step",
        "Learning rate",
        uirevision,
        height=260,
        yaxis={"exponentformat": "e"},
    )


def resources_figure(
    series: Mapping[str, pd.DataFrame | None], origin: float | None = None, uirevision: Any = None
) -> go.Figure:
    """CPU use (top panel) and memory in MB (bottom) of a run's processes, by wall time since its start.

    ``series``: ``system/...`` key -> its points; legends and units are the engine's
    (``describe_system_series``). Time, not step, is the axis: samples keep coming while the step stands
    still (loading, evaluating), and would pile up on one step.
    """
    frames = {k: clean_series(v).sort_values("wall_time", kind="stable") for k, v in sorted(series.items())}
    frames = {k: df for k, df in frames.items() if len(df)}
    if not frames:
        return empty_figure("No resource use sampled yet: the worker samples every few seconds.", RESOURCES)
    start = min([float(df["wall_time"].min()) for df in frames.values()] + [origin or float("inf")])
    traces = []
    for i, (key, df) in enumerate(frames.items()):
        label, unit = describe_system_series(key)
        trace = _line(
            df.assign(relative=relative_time(df, start)),
            label,
            PALETTE[i % len(PALETTE)],
            x="relative",
            hovertemplate=f"%{{y:,.0f}} {unit}<extra>{label} · step %{{customdata}}</extra>",
            yaxis="y" if unit == "%" else "y2",
        )
        trace["customdata"] = df["step"].to_numpy()
        traces.append(trace)
    memory_axis = {"title": {"text": "MB"}, "domain": [0, 0.44], "rangemode": "tozero", "showgrid": True}
    return _figure(
        traces,
        RESOURCES,
        X_AXES["relative"],
        "CPU %",
        uirevision,
        height=360,
        xaxis={"anchor": "y2"},
        yaxis={"domain": [0.56, 1], "rangemode": "tozero"},
        yaxis2={**memory_axis, "zeroline": False},
    )


def confusion_matrix_figure(matrix: list[list[int]] | np.ndarray, labels: list[str]) -> go.Figure:
    """Rows are true labels, columns predictions; colour is the row share (recall), text the count."""
    counts = np.asarray(matrix, dtype=float)
    if counts.size == 0:
        return empty_figure("No confusion matrix recorded.", "Confusion matrix")
    row_totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    text = [
        [f"{int(c):,}<br>{s:.0%}" for c, s in zip(crow, srow, strict=True)]
        for crow, srow in zip(counts, share, strict=True)
    ]
    names = [str(x) for x in labels]
    heat = {
        "type": "heatmap",
        "z": share,
        "x": names,
        "y": names,
        "text": text,
        "texttemplate": "%{text}",
        "colorscale": "Blues",
        "zmin": 0,
        "zmax": 1,
        "colorbar": {"title": {"text": "row share"}, "tickformat": ".0%"},
        "hovertemplate": "true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
    }
    size = max(320, min(700, 120 + 70 * len(names)))
    return _figure(
        [heat],
        "Confusion matrix",
        "Predicted label",
        "True label",
        height=size,
        hovermode="closest",
        xaxis={"type": "category", "side": "bottom", "showgrid": False},
        yaxis={"type": "category", "autorange": "reversed", "showgrid": False},
    )


def label_distribution_figure(
    counts: Mapping[str, int], title: str = "Label distribution (train)"
) -> go.Figure:
    """Rows per label, so class imbalance is visible before training."""
    if not counts:
        return empty_figure("No labels found.", "Labels", height=240)
    names = [str(k) for k in counts]
    values = [int(v) for v in counts.values()]
    total = sum(values) or 1
    bar = {
        "type": "bar",
        "x": names,
        "y": values,
        "marker": {"color": PALETTE[0]},
        "text": [f"{v:,} ({v / total:.0%})" for v in values],
        "textposition": "auto",
        "hovertemplate": "%{x}: %{y:,}<extra></extra>",
    }
    return _figure(
        [bar],
        title,
        "Label",
        "Rows",
        height=240,
        hovermode="closest",
        showlegend=False,
        xaxis={"type": "category"},
    )


def compare_figure(
    long: pd.DataFrame,
    key: str,
    x: str = "step",
    smoothing: float = 0.0,
    labels: Mapping[str, str] | None = None,
    origins: Mapping[str, float | None] | None = None,
) -> go.Figure:
    """One metric of several runs overlaid.

    Args:
        long: rows of run_id, key, step, epoch, value, wall_time (as ``MetricsStore.get_metrics`` returns,
            already downsampled there).
        x: 'step', 'epoch' or 'relative' (seconds since each run started).
        smoothing: EMA weight in [0, 1); the raw curve stays visible, faint, behind the smoothed one.
        labels: run id -> legend name. origins: run id -> start time for the 'relative' axis.
    """
    labels, origins = labels or {}, origins or {}
    rows = long[long["key"] == key] if len(long) else long
    if not len(rows):
        return empty_figure(f"None of the selected runs recorded {key!r}.", key)
    traces = []
    for i, (run_id, df) in enumerate(rows.groupby("run_id", sort=False)):
        df = clean_series(df[SERIES_COLUMNS])
        if x == "relative":
            df = df.assign(relative=relative_time(df, origins.get(run_id)))
        elif x == "epoch":
            df = df[df["epoch"].notna()]
        if not len(df):
            continue
        color, name = PALETTE[i % len(PALETTE)], labels.get(run_id, run_id)
        dash, symbol = DASHES[i % len(DASHES)], SYMBOLS[i % len(SYMBOLS)]
        few = len(df) <= 50
        if smoothing > 0 and not few:
            traces.append(
                _line(
                    df,
                    name,
                    color,
                    x=x,
                    width=1,
                    opacity=0.25,
                    showlegend=False,
                    hoverinfo="skip",
                    hovertemplate=None,
                    legendgroup=run_id,
                )
            )
            df = df.assign(value=ema(df["value"].to_numpy(), smoothing))
        line = _line(
            df,
            name,
            color,
            x=x,
            mode="lines+markers" if few else "lines",
            legendgroup=run_id,
            hovertemplate="%{y:.4g}<extra>" + name + "</extra>",
            marker={"symbol": symbol, "size": 7},
        )
        line["line"]["dash"] = dash
        traces.append(line)
    return _figure(
        traces,
        key,
        X_AXES.get(x, x),
        key,
        uirevision=f"compare-{key}-{x}",
        height=420,
        yaxis=SCORE_AXIS if is_score(key) else None,
    )

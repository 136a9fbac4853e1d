"""A sweep's figures: Optuna's own (``optuna.visualization``), dressed like the dashboard's other charts.

Optuna draws the optimisation history, the parallel coordinates and the parameter importances from the
study; here they get the project's title style, margins, Okabe-Ito colours and the Streamlit theme
(Optuna's white plot background is dropped, so a dark theme stays dark). Nothing here imports Streamlit
or reads the store: each builder takes an ``optuna.Study`` and returns a figure, or a sentence saying
why there is none yet, so the tests call them on a real study.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from dashboard.figures import BEST_COLOR, PALETTE

HEIGHT = 340
# Light to the project's blue: the parallel coordinates' colour says how good a trial was.
SCALE = [[0.0, "#DCEAF5"], [0.5, "#56B4E9"], [1.0, PALETTE[0]]]


def _complete(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _dress(fig: go.Figure, title: str, height: int = HEIGHT, **layout: Any) -> go.Figure:
    """The layout of ``figures._figure``: left-aligned title, tight margins, horizontal legend."""
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1},
        plot_bgcolor=None,
        colorway=PALETTE,
        **layout,
    )
    return fig


def history_figure(study, objective: str) -> go.Figure | str:
    """Each completed trial's objective in trial order, and the best so far as a line."""
    from optuna.visualization import plot_optimization_history

    if not _complete(study):
        return "The optimisation history appears once a trial has completed."
    fig = plot_optimization_history(study)
    for trace in fig.data:
        if trace.name == "Objective Value":
            trace.update(name="trial", marker={"color": PALETTE[0], "size": 9})
        elif trace.name == "Best Value":
            trace.update(
                name="best so far", line={"color": BEST_COLOR, "width": 2}, marker={"color": BEST_COLOR}
            )
    return _dress(fig, "Optimisation history", xaxis_title="Trial", yaxis_title=objective)


def parallel_figure(study, objective: str) -> go.Figure | str:
    """One line per completed trial through its sampled values, coloured by its objective."""
    from optuna.visualization import plot_parallel_coordinate

    if not _complete(study):
        return "The parallel coordinates appear once a trial has completed."
    fig = plot_parallel_coordinate(study)
    values = [t.value for t in _complete(study)]
    low, high = min(values), max(values)
    for trace in fig.data:
        if trace.mode == "lines" and trace.customdata is not None:
            # Optuna colours each line by its objective on the Blues scale; the same position on ours.
            value = float(trace.customdata[0][1])
            # (Optuna's text rounds the value to 3 figures: it can fall a hair outside [low, high].)
            share = 0.5 if high == low else min(max((value - low) / (high - low), 0.0), 1.0)
            trace.line.color = sample_colorscale(SCALE, share)[0]
            trace.opacity = 0.8
        elif trace.marker is not None and trace.marker.colorscale is not None:
            trace.marker.colorscale = SCALE
            trace.marker.colorbar.title.text = objective
    fig.update_xaxes(ticktext=[objective, *list(fig.layout.xaxis.ticktext)[1:]])
    return _dress(fig, "Parallel coordinates", hovermode="closest")


def importances_figure(study, objective: str) -> go.Figure | str:
    """How much each searched field explains the objective (Optuna's fANOVA), largest first."""
    from optuna.visualization import plot_param_importances

    complete = _complete(study)
    if len(complete) < 2:
        return f"Parameter importances need two completed trials ({len(complete)} so far)."
    if len({repr(t.params) for t in complete}) < 2:
        return "Parameter importances need completed trials that tried different values."
    fig = plot_param_importances(study)
    for trace in fig.data:
        trace.update(marker={"color": PALETTE[0]}, name=objective)
    return _dress(
        fig,
        "Parameter importances",
        xaxis_title="Importance (share of the objective's variance)",
        yaxis_title="",
    )

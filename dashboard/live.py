"""Live pages that cost almost nothing while nothing changes: one cheap watcher, parts redrawn on demand.

Streamlit removes whatever a fragment does not emit again when it reruns (a fragment that returns early,
or calls ``st.stop()``, blanks its charts: tried in headless Chromium). So a live page is split into
sibling fragments: a small *watcher* on a timer that asks the store one indexed question
(``MetricsStore.run_version``) and draws only the status line, and one fragment per *part* (a chart, the
log) with no timer of its own. The watcher compares what each part was drawn from with what the store
has now and reruns only the parts whose data changed; the others stay on screen untouched: not rebuilt,
not serialised, not sent.

What reruns the watcher: where ``dashboard/serve.py`` serves the version route, only a change the
browser's poller saw (``dashboard.live_poll``: a quiet page runs no script at all); elsewhere its
``run_every`` timer, every FAST_S or SLOW_S.

Measured on the Run page of a live run with no new data (headless Chromium, 2-core machine): every
1.5 s refresh rebuilt and re-sent all charts, 84 ms of server CPU and ~8 KB each; see BENCHMARKS.md for
the figures after.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from trainer_core import RunStatus

logger = logging.getLogger(__name__)

# Refresh periods of a watcher (or of its poller's questions). A status change must show within ~2 s, so
# SLOW_S is the slowest a live page ever asks; FAST_S while something is about to happen (start, stop,
# an evaluation).
FAST_S = 1.0
SLOW_S = 2.0
# How far ahead (in seconds at the current pace) an expected log or evaluation switches to FAST_S.
LOOKAHEAD_S = 2 * SLOW_S


def rerun_parts(keys: Iterable[str]) -> None:
    """Queue a rerun of the fragments with these ``key=`` names after the current run finishes.

    ``st.rerun("key")`` does exactly this, but Streamlit allows it only from a widget callback; from a
    watcher's body the same request is made here, as if each part's own timer had fired in the browser
    (a fragment rerun queued while another runs waits for it, it does not interrupt it). If this
    Streamlit lacks the internals used, the whole page reruns instead: slower, never wrong.
    """
    keys = list(dict.fromkeys(keys))
    if not keys:
        return
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

        ctx = get_script_run_ctx()
        try:
            ids = ctx.fragment_storage.resolve_target(keys)
        except StreamlitAPIException:
            # A part not drawn yet in this session: the page's own run is drawing it (a watcher must come
            # after its parts, or skip that run); rerunning the page here would only loop.
            logger.warning("no fragment %s to rerun yet", keys)
            return
        ctx.script_requests.request_rerun(
            RerunData(
                query_string=ctx.query_string,
                page_script_hash=ctx.page_script_hash,
                fragment_id_queue=list(ids),
                is_auto_rerun=True,
                cached_message_hashes=ctx.cached_message_hashes,
                context_info=ctx.context_info,
            )
        )
    except (ImportError, AttributeError, TypeError):  # Streamlit's internals changed: a full rerun
        logger.warning("targeted fragment rerun unavailable; rerunning the page", exc_info=True)
        st.rerun()


def series_mark(version: Mapping[str, Any], keys: Iterable[str]) -> tuple:
    """What a chart of ``keys`` is drawn from: the attempt, and each series' (points, last step)."""
    series = version.get("series") or {}
    return (version.get("attempt"), *(series.get(k) for k in keys))


def stale_parts(drawn: Mapping[str, Hashable], wanted: Mapping[str, Hashable]) -> list[str]:
    """The parts whose wanted mark differs from the one they were last drawn with."""
    return [part for part, mark in wanted.items() if drawn.get(part) != mark]


def record_drawn(state_key: str, part: str, mark: Hashable) -> None:
    """Remember what ``part`` was drawn from (in this session)."""
    st.session_state.setdefault(state_key, {})[part] = mark


def drawn_marks(state_key: str) -> dict[str, Hashable]:
    return st.session_state.get(state_key, {})


def eval_period(config: Mapping[str, Any], total_steps: int) -> int | None:
    """Steps between two evaluations, from the run's config (None when it does not evaluate)."""
    strategy = config.get("eval_strategy", "epoch")
    if strategy == "steps":
        steps = config.get("eval_steps") or config.get("logging_steps")
        return int(steps) if steps and steps >= 1 else None
    epochs = config.get("num_train_epochs") or 0
    if strategy == "epoch" and epochs and total_steps:
        return max(1, round(total_steps / epochs))
    return None


def refresh_interval(run: Mapping[str, Any], version: Mapping[str, Any], now: float) -> float:
    """How often a live page should ask about ``run`` now: FAST_S or SLOW_S.

    Quick while the run starts (queued, or no step trained yet), while it stops, while an evaluation is
    running (its step passed an evaluation point whose results are not in yet) and when the next one is
    expected within LOOKAHEAD_S; SLOW_S the rest of the time. Training logs do not speed it up: sparse
    ones (every 25 s) need no refresh every second, and dense ones change the charts at any period, so a
    faster one would only redraw them more often.
    """
    if run.get("status") != RunStatus.RUNNING:
        return FAST_S
    step, start = int(version.get("step") or 0), int(run.get("start_step") or 0)
    began, total = run.get("train_began_at"), int(run.get("total_steps") or 0)
    if not began or not total or step <= start:
        return FAST_S
    every = eval_period(run.get("config") or {}, total)
    if not every:
        return SLOW_S
    series = version.get("series") or {}
    evaluated = max((v[1] or 0 for k, v in series.items() if k.startswith("eval_")), default=0)
    due = step // every * every
    if start < due and evaluated < due:
        return FAST_S  # an evaluation point was passed and its results are not recorded yet
    seconds_per_step = max(now - began, 1e-9) / (step - start)
    if step < total and (every - step % every) * seconds_per_step <= LOOKAHEAD_S:
        return FAST_S
    return SLOW_S

"""Watching must not slow the training: the cheap change checks, the refresh pacing, and in a real
browser, that a refresh with no new data sends no chart and a new point redraws only its chart."""

from __future__ import annotations

import time

import pytest

from bench.watched import Frames, SyntheticRun, summarize
from dashboard.live import FAST_S, SLOW_S, refresh_interval, series_mark, stale_parts
from trainer_core import MetricsStore

# --------------------------------------------------------------------------------------------------
# the store's change checks
# --------------------------------------------------------------------------------------------------


def test_run_version_changes_with_points_events_and_row_only(tmp_path):
    store = MetricsStore(tmp_path / "m.db")
    run_id = store.create_run("r", {})
    empty = store.run_version(run_id)
    assert empty["series"] == {} and empty["last_event"] is None and empty["status"] == "queued"
    store.log_points([(run_id, "loss", s, None, 1.0 / s, 0.0) for s in range(1, 101)])
    store.log_metrics(run_id, {"eval_f1": 0.5}, step=100)
    v1 = store.run_version(run_id)
    assert v1["series"] == {"loss": (100, 100), "eval_f1": (1, 100)}
    assert store.run_version(run_id) == v1  # nothing recorded: the same answer
    store.log_metrics(run_id, {"loss": 0.1}, step=101)
    assert store.run_version(run_id)["series"]["loss"] == (101, 101)
    assert store.run_version(run_id)["series"]["eval_f1"] == (1, 100)  # the other series did not move
    store.add_event(run_id, "checkpoint", "saved")
    store.heartbeat(run_id, step=101)
    v2 = store.run_version(run_id)
    assert v2["last_event"] is not None and v2["heartbeat_at"] is not None and v2["step"] == 101
    other = store.create_run("other", {})
    store.log_metrics(other, {"loss": 9.0}, step=1)
    assert store.run_version(run_id)["series"] == v2["series"]  # another run's points are not this one's


def test_run_version_counts_a_long_series_from_its_rollups(tmp_path):
    store = MetricsStore(tmp_path / "m.db")
    run_id = store.create_run("r", {})
    store.log_points([(run_id, "loss", s, None, float(s % 7), 0.0) for s in range(70_000)])
    started = time.perf_counter()
    version = store.run_version(run_id)
    elapsed = time.perf_counter() - started
    assert version["series"]["loss"] == (70_000, 69_999)
    assert elapsed < 0.05, f"run_version took {elapsed * 1000:.1f} ms on 70k points"  # ~0.2 ms measured


def test_runs_version_changes_when_a_row_does(tmp_path):
    store = MetricsStore(tmp_path / "m.db")
    first = store.create_run("a", {"big": "x" * 10_000})
    before = store.runs_version()
    assert [row[0] for row in before] == [first] and store.runs_version() == before
    store.heartbeat(first, step=5)
    moved = store.runs_version()
    assert moved != before
    store.update_run(first, note="tried a smaller lr")
    assert store.runs_version() != moved
    with pytest.raises(Exception, match="nope"):
        store.run_version("nope")


# --------------------------------------------------------------------------------------------------
# pacing and change detection (pure)
# --------------------------------------------------------------------------------------------------

CONFIG = {"eval_strategy": "epoch", "num_train_epochs": 4, "logging_steps": 10}


def _run(status="running", step=130, began_ago=130.0, **extra):
    now = 10_000.0
    run = {
        "status": status,
        "start_step": 0,
        "train_began_at": now - began_ago,
        "total_steps": 400,
        "config": CONFIG,
    }
    return {**run, **extra}, {"step": step, "series": {"loss": (13, 130), "eval_f1": (1, 100)}}, now


def test_refresh_interval_follows_the_run():
    run, version, now = _run()  # 1 step/s, last evaluation at 100, the next at 200: 70 s away
    assert refresh_interval(run, version, now) == SLOW_S
    for status in ("queued", "stopping"):
        assert refresh_interval({**run, "status": status}, version, now) == FAST_S
    assert refresh_interval({**run, "train_began_at": None}, version, now) == FAST_S  # still starting
    assert refresh_interval(run, {**version, "step": 0}, now) == FAST_S
    # 2 steps before an evaluation at 1 step/s: quick, to show its results as soon as they land
    assert refresh_interval(run, {**version, "step": 198}, now - 68) == FAST_S
    # past the evaluation point and its results not recorded yet: it is evaluating
    assert refresh_interval(run, {**version, "step": 201}, now + 71) == FAST_S
    evaluated = {"step": 201, "series": {"eval_f1": (2, 200)}}
    assert refresh_interval(run, evaluated, now + 71) == SLOW_S
    no_eval = {**run, "config": {**CONFIG, "eval_strategy": "no"}}
    assert refresh_interval(no_eval, {**version, "step": 199}, now) == SLOW_S


def test_only_parts_whose_data_changed_are_stale():
    version = {"attempt": 0, "series": {"loss": (10, 100), "eval_f1": (1, 100)}}
    drawn = {"loss": series_mark(version, ("loss",)), "eval": series_mark(version, ("eval_f1",))}
    assert stale_parts(drawn, drawn) == []
    newer = {"attempt": 0, "series": {"loss": (11, 110), "eval_f1": (1, 100)}}
    wanted = {"loss": series_mark(newer, ("loss",)), "eval": series_mark(newer, ("eval_f1",))}
    assert stale_parts(drawn, wanted) == ["loss"]
    resumed = {**version, "attempt": 1}
    assert stale_parts(drawn, {"loss": series_mark(resumed, ("loss",))}) == ["loss"]


# --------------------------------------------------------------------------------------------------
# in a real browser
# --------------------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_a_refresh_with_no_new_data_sends_no_chart(tmp_path):
    from playwright.sync_api import sync_playwright

    from bench.watched import open_browser
    from tests.e2e_helpers import VIEWPORT, DashboardServer, chart

    home = tmp_path / "runs"
    with SyntheticRun(home) as run, sync_playwright() as pw:
        server = DashboardServer(home, tmp_path / "streamlit.log").start()
        try:
            browser = open_browser(pw)
            page = browser.new_page(viewport=VIEWPORT)
            frames = Frames(page)
            page.goto(f"{server.url}/run?run={run.run_id}")
            for key in ("run.loss_chart", "run.eval_chart", "run.lr_chart"):
                chart(page, key).wait_for(timeout=120_000)
            page.wait_for_timeout(3000)
            # Nothing new for 8 s (the heartbeat still beats): the status line refreshes, no chart is sent.
            t0 = time.monotonic()
            page.wait_for_timeout(8000)
            quiet = summarize(frames.since(t0))
            assert quiet["refreshes"] >= 3, quiet
            assert quiet["charts_sent"] == [], quiet
            assert quiet["by_kind"].get("progress", [0])[0] >= 3  # the status line did refresh
            # A loss point arrives: the loss chart is sent again within ~2 s, the others are not.
            t1 = time.monotonic()
            run.log("loss", 0.05)
            page.wait_for_timeout(4000)
            sent = summarize(frames.since(t1))["charts_sent"]
            assert len(sent) == 1 and "run.loss_chart" in sent[0], sent
            assert "Train loss" in page.get_by_test_id("stMetric").all_inner_texts()[2]
            assert "0.0500" in page.get_by_test_id("stMetric").all_inner_texts()[2]
            # An eval point redraws the evaluation chart only.
            t2 = time.monotonic()
            run.log("eval_f1", 0.9)
            page.wait_for_timeout(4000)
            sent = summarize(frames.since(t2))["charts_sent"]
            assert len(sent) == 1 and "run.eval_chart" in sent[0], sent
            # The Runs page: its table is sent when a row changes, not on every check.
            page.goto(f"{server.url}/runs")
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
            run.heartbeat_s = 3600.0  # the run's row stops changing
            # Let the last change drain first (under load a refresh can show a heartbeat seconds late).
            settle_until = time.monotonic() + 20
            while time.monotonic() < settle_until:
                t = time.monotonic()
                page.wait_for_timeout(2500)
                if "dataframe" not in summarize(frames.since(t))["by_kind"]:
                    break
            t3 = time.monotonic()
            page.wait_for_timeout(6000)
            idle = summarize(frames.since(t3))
            assert idle["refreshes"] >= 2 and "dataframe" not in idle["by_kind"], idle
            browser.close()
        finally:
            server.stop()


def test_imports_are_frozen_out_of_the_collection_after_each_run():
    import gc
    import sys
    import types

    from dashboard import memory

    memory.freeze_new_imports()
    assert not memory.freeze_new_imports()  # nothing new imported: a no-op
    frozen = gc.get_freeze_count()
    sys.modules["_trainer_core_test_module"] = types.ModuleType("_trainer_core_test_module")
    try:
        assert memory.freeze_new_imports() and gc.get_freeze_count() >= frozen
    finally:
        del sys.modules["_trainer_core_test_module"]
        gc.unfreeze()

"""The sweep pages poll the version route as Runs and Compare do: their tokens move with what they show
(a trial's status, a told trial's value), AppTest (no route) still gets their fallback timers, and in a
real browser a quiet sweep page or list runs no script and sends nothing while a change is redrawn
within a poll or two.

The sweeps are made through the engine (``Sweeps.create``, an Optuna study in the store's SQLite file)
with their trials held in the queue behind a run that waits for GPUs no machine has, so nothing trains:
each change is then made through the store's own API, as a worker would make it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import live_poll, sweep_data
from tests import test_dashboard_live_pages as live_pages
from tests.conftest import tiny_config
from trainer_core import Launcher, SweepNotFoundError, Sweeps, SweepStatus

home = live_pages.home  # TRAINER_CORE_HOME in the test's folder
sent = live_pages.sent  # every ForwardMsg AppTest's runs produce
LR = {"learning_rate": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}}


def held_sweep(home: Path) -> tuple[Launcher, str]:
    """A running sweep of two trials, both queued behind a run that can never start (99 GPUs)."""
    launcher = Launcher(home=home)
    launcher.store.create_run("holds the queue", tiny_config(), queue={"priority": 1, "num_gpus": 99})
    spec = {"base": tiny_config(), "space": dict(LR), "n_trials": 2, "parallel": 2}
    sweep_id = Sweeps(launcher).create(spec, name="held", preflight=False)
    assert [r["status"] for r in launcher.store.sweep_runs(sweep_id)] == ["queued", "queued"]
    return launcher, sweep_id


def trial_runs(launcher: Launcher, sweep_id: str) -> list[str]:
    return [r["id"] for r in launcher.store.sweep_runs(sweep_id)]


def start_elsewhere(launcher: Launcher, run_id: str) -> None:
    """The trial's run trains on another machine (so no dashboard here judges it by a process)."""
    now = time.time()
    launcher.store.update_run(
        run_id, status="running", host="another-machine", pid=1, started_at=now, heartbeat_at=now
    )


def complete(launcher: Launcher, run_id: str, f1: float) -> None:
    """The trial's run ends as a worker ends it: completed, its final metrics in its summary."""
    launcher.store.update_run(
        run_id, status="completed", finished_at=time.time(), summary={"final_metrics": {"eval_f1": f1}}
    )


# --------------------------------------------------------------------------------------------------
# the store's questions, on both stores: they read Optuna's tables too
# --------------------------------------------------------------------------------------------------


@pytest.mark.both_stores
def test_the_store_answers_from_the_sweeps_rows_its_runs_and_its_study(runs_home):
    launcher, sweep_id = held_sweep(runs_home)
    first, second = trial_runs(launcher, sweep_id)
    version = launcher.store.sweep_version(sweep_id)
    assert (version["status"], version["n_trials"], version["parallel"], version["name"]) == (
        "running", 2, 2, "held"
    )  # fmt: skip
    assert version["study"] == (2, 0)  # two trials asked, none finished
    assert [r[:4] for r in version["runs"]] == [(first, 0, "queued", 0), (second, 1, "queued", 0)]
    assert launcher.store.sweeps_version() == [(sweep_id, "held", "running", 2, 0, (("queued", 2),))]

    complete(launcher, second, 0.75)
    Sweeps(launcher).advance(sweep_id)  # tells the study
    version = launcher.store.sweep_version(sweep_id)
    assert version["study"] == (2, 1) and version["runs"][1][2] == "completed"
    assert launcher.store.sweeps_version() == [
        (sweep_id, "held", "running", 2, 1, (("completed", 1), ("queued", 1)))
    ]
    with pytest.raises(SweepNotFoundError):
        launcher.store.sweep_version("sweep-nope")


# --------------------------------------------------------------------------------------------------
# the tokens (the same functions the route answers with)
# --------------------------------------------------------------------------------------------------


def test_the_sweep_tokens_move_with_what_the_pages_show(home):
    launcher, sweep_id = held_sweep(home)
    first, second = trial_runs(launcher, sweep_id)

    def tokens() -> tuple[str | None, str]:
        return (
            live_poll.sweep_token(sweep_data.version(sweep_id)),
            live_poll.sweeps_token(sweep_data.sweeps_state()),
        )

    quiet = tokens()
    assert tokens() == quiet  # nothing changed: the same answers
    launcher.reconcile()  # what the sidebar's poll does every 10 s: nothing to start, nothing to tell
    assert tokens() == quiet

    start_elsewhere(launcher, first)
    running = tokens()
    assert running[0] != quiet[0] and running[1] != quiet[1]  # a status: the trials table and the counts
    launcher.store.heartbeat(first, step=3)
    beat = tokens()
    # The heartbeat moves the trial's duration on the sweep's page; the list shows no duration.
    assert beat[0] != running[0] and beat[1] == running[1]

    complete(launcher, second, 0.75)
    ended = tokens()
    assert ended[0] != beat[0] and ended[1] != beat[1]
    assert sweep_data.version(sweep_id).study == (2, 0)  # the study is not told yet: no value to show
    Sweeps(launcher).advance(sweep_id)  # the trial's worker tells the study after its run ended
    told = tokens()
    assert told[0] != ended[0] and told[1] != ended[1]
    assert sweep_data.version(sweep_id).study == (2, 1)
    assert sweep_data.best(sweep_id, 1)["value"] == pytest.approx(0.75)

    Sweeps(launcher).delete(sweep_id, delete_runs=False)
    assert live_poll.sweep_token(sweep_data.version(sweep_id)) is None  # the page reruns to say so
    assert sweep_data.sweeps_state() == []


def test_the_sweeps_token_of_a_store_without_sweeps_needs_no_study_tables(home):
    # Optuna's tables exist only once a sweep made a study: the list's question must not need them.
    Launcher(home=home).store.create_run("plain", tiny_config(), status="completed")
    assert sweep_data.sweeps_state() == []
    assert live_poll.sweeps_token([]) == live_poll.sweeps_token(sweep_data.sweeps_state())


# --------------------------------------------------------------------------------------------------
# AppTest: no route, so the fallback timers; with the route, pollers and no timer
# --------------------------------------------------------------------------------------------------


def open_sweep_page(messages: list, **query: str) -> AppTest:
    at = AppTest.from_file(live_pages.APP, default_timeout=60)
    at.run()  # the default page first: st.navigation maps the page files to their routes
    messages.clear()
    at.query_params.update(query)
    at.switch_page("views/sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_the_route_the_sweep_pages_keep_their_timers(home, sent):
    launcher, sweep_id = held_sweep(home)
    at = open_sweep_page(sent, sweep=sweep_id)
    # The sweep's watcher every 2 s, the sidebar every 5 s.
    assert live_pages._timers(sent) == [2.0, 5.0] and live_pages._pollers(sent) == {}
    assert at.title[0].value == "held" and "0 of 2 trials done" in at.caption[0].value
    table = at.dataframe[0].value
    assert list(table["Trial"]) == ["#0", "#1"] and all(table["Status"].str.endswith("queued"))
    assert len(at.tabs) == 3 and "once a trial has completed" in at.info[0].value

    sent.clear()
    at = open_sweep_page(sent)  # the list of sweeps
    assert live_pages._timers(sent) == [2.0, 5.0] and live_pages._pollers(sent) == {}
    assert at.dataframe[0].value.loc[sweep_id, "Trials"] == "0 / 2 · 2 active"

    Sweeps(launcher).stop(sweep_id)  # stopped, its trials out of the queue: nothing left to watch
    sent.clear()
    at = open_sweep_page(sent, sweep=sweep_id)
    assert live_pages._timers(sent) == [5.0], live_pages._timers(sent)  # the sidebar's only
    assert at.caption[0].value.startswith(f"**{SweepStatus.STOPPED}**")


def test_with_the_route_the_sweep_pages_poll_it_and_declare_no_timer(home, sent, monkeypatch):
    monkeypatch.setattr(live_poll, "_served_at", None)
    live_poll.routes()  # as dashboard/serve.py's st.App does in the server
    _, sweep_id = held_sweep(home)
    open_sweep_page(sent, sweep=sweep_id)
    pollers = live_pages._pollers(sent)
    assert live_pages._timers(sent) == [] and "sweep.poll" in pollers, pollers
    assert pollers["sweep.poll"]["url"] == f"/_tc/version?sweep={sweep_id}"
    assert pollers["sweep.poll"]["token"] == live_poll.sweep_token(sweep_data.version(sweep_id))
    sent.clear()
    open_sweep_page(sent)
    pollers = live_pages._pollers(sent)
    assert live_pages._timers(sent) == [] and pollers["sweeps.poll"]["url"] == "/_tc/version?sweeps="
    assert pollers["sweeps.poll"]["token"] == live_poll.sweeps_token(sweep_data.sweeps_state())


# --------------------------------------------------------------------------------------------------
# in a real browser, over the served app
# --------------------------------------------------------------------------------------------------


def quiet_for(page, frames, polls: list, asked: str, seconds: float = 10) -> None:
    """Nothing run and nothing sent for ``seconds``, while the page asked the route every 2 s."""
    live_pages._drain(page, frames)
    t0 = time.monotonic()
    quiet = live_pages._quiet(page, frames, seconds)
    assert quiet["refreshes"] == 0 and quiet["bytes"] == 0, quiet
    assert sum(asked in url for t, url in polls if t >= t0) >= 4, polls


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_quiet_sweep_pages_run_no_script_and_redraw_on_a_change(tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    from bench.watched import Frames, open_browser, summarize
    from tests.e2e_helpers import VIEWPORT, DashboardServer, Tables

    home = tmp_path / "runs"
    monkeypatch.setenv("TRAINER_CORE_HOME", str(home))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    launcher, sweep_id = held_sweep(home)
    first, second = trial_runs(launcher, sweep_id)
    server = DashboardServer(home, tmp_path / "streamlit.log").start()
    try:
        with sync_playwright() as pw:
            # The route answers both kinds with the tokens the pages compute (None: no such sweep).
            route = f"{server.url}/_tc/version"
            token = live_poll.sweep_token(sweep_data.version(sweep_id))
            assert live_pages._ask(f"{route}?sweep={sweep_id}") == (200, {"v": token})
            assert live_pages._ask(f"{route}?sweep=nope") == (200, {"v": None})
            answer = {"v": live_poll.sweeps_token(sweep_data.sweeps_state())}
            assert live_pages._ask(f"{route}?sweeps") == (200, answer)

            browser = open_browser(pw)
            page = browser.new_page(viewport=VIEWPORT)
            frames = Frames(page)
            tables = Tables(page)
            polls: list[tuple[float, str]] = []
            page.on("request", lambda r: "/_tc/version" in r.url and polls.append((time.monotonic(), r.url)))

            # The list: quiet for 10 s, then a trial completes, then the study is told its value.
            page.goto(f"{server.url}/sweep")
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
            quiet_for(page, frames, polls, "sweeps=")
            t0 = time.monotonic()
            complete(launcher, second, 0.75)
            delay, table = tables.first(page, t0, lambda t: t.loc[sweep_id, "Trials"] == "1 / 2 · 1 active")
            assert delay < 3.5, (delay, summarize(frames.since(t0)))  # a poll every 2 s, then two reruns
            assert pd.isna(table.loc[sweep_id, "Best"])  # the study has not been told yet
            t1 = time.monotonic()
            Sweeps(launcher).advance(sweep_id)  # as the trial's worker does once its run ended
            delay, _ = tables.first(page, t1, lambda t: t.loc[sweep_id, "Best"] == pytest.approx(0.75))
            assert delay < 3.5, (delay, summarize(frames.since(t1)))

            # The sweep's page: quiet for 10 s, then its queued trial starts on another machine.
            page.goto(f"{server.url}/sweep?sweep={sweep_id}")
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
            quiet_for(page, frames, polls, f"sweep={sweep_id}")
            t2 = time.monotonic()
            start_elsewhere(launcher, first)
            delay, table = tables.first(page, t2, lambda t: t["Status"].iloc[0].endswith("running"))
            assert delay < 3.5, (delay, summarize(frames.since(t2)))
            assert table["Status"].iloc[1].endswith("completed") and table["eval_f1"].iloc[1] == 0.75, table
            page.wait_for_timeout(1000)  # the reruns this change caused are over
            assert not summarize(frames.since(t2))["charts_sent"]  # no trial finished: the figures stay
            browser.close()
    finally:
        server.stop()

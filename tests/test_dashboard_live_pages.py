"""Runs and Compare poll the version route as the Run page does: their tokens move with what they show,
AppTest (no route) still gets their fallback timers, and in a real browser a quiet page runs no script
and sends nothing while a change redraws its part within a poll or two."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.local_script_runner import LocalScriptRunner

from bench.watched import Frames, SyntheticRun, summarize
from dashboard import live_data, live_poll
from trainer_core import Launcher, MetricsStore, default_store_url

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
CONFIG = {"model_name_or_path": "builtin:tiny-bert", "dataset_name": "builtin:rotten-tomatoes"}


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "runs"
    monkeypatch.setenv("TRAINER_CORE_HOME", str(home))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    return home


def _store(home: Path) -> MetricsStore:
    return MetricsStore(default_store_url(home))


def _live_run(store: MetricsStore, name: str = "live") -> str:
    """A run training on another machine (no dashboard here judges it by a process it cannot find)."""
    run_id = store.create_run(name, CONFIG)
    store.update_run(
        run_id,
        status="running",
        host="another-machine",
        pid=1,
        started_at=time.time(),
        step=5,
        total_steps=100,
    )
    store.log_metrics(run_id, {"loss": 0.5}, step=5)
    return run_id


# --------------------------------------------------------------------------------------------------
# the tokens (the same functions the route answers with)
# --------------------------------------------------------------------------------------------------


def test_the_runs_token_moves_with_a_row_and_with_the_queue(home):
    store = _store(home)
    first = store.create_run("first", CONFIG, status="completed")
    empty_queue = live_data.runs_state()  # the Launcher is made (and reconciles) now, before the queue
    token = live_poll.runs_token(empty_queue)
    assert live_poll.runs_token(live_data.runs_state()) == token  # nothing changed: the same answer
    a = store.create_run("a", CONFIG, queue={"priority": 0, "num_gpus": 0})
    b = store.create_run("b", CONFIG, queue={"priority": 0, "num_gpus": 0})
    queued = live_data.runs_state()
    assert [r["id"] for r in queued.queue[0]] == [a, b] and live_poll.runs_token(queued) != token
    Launcher(home).run_queue.move(b, move="up")  # a move from another tab or the CLI
    moved = live_data.runs_state()
    assert [r["id"] for r in moved.queue[0]] == [b, a]
    assert live_poll.runs_token(moved) != live_poll.runs_token(queued)
    store.update_run(first, note="the baseline")  # the table shows the note (searchable)
    assert live_poll.runs_token(live_data.runs_state()) != live_poll.runs_token(moved)


def test_the_compare_token_moves_when_a_compared_run_logs_not_with_its_heartbeat(home):
    store = _store(home)
    live, other, done = _live_run(store), _live_run(store, "other"), store.create_run("done", CONFIG)
    token = live_poll.compare_token(live_data.compare_version([live, done]))
    store.heartbeat(live, step=5)  # alive, nothing plotted changed
    store.log_metrics(other, {"loss": 0.1}, step=6)  # a run not compared
    assert live_poll.compare_token(live_data.compare_version([live, done])) == token
    store.log_metrics(live, {"loss": 0.4}, step=6)
    assert live_poll.compare_token(live_data.compare_version([live, done])) != token
    assert live_data.compare_version(["deleted"]) == (("deleted", None),)  # said by the page, not raised


# --------------------------------------------------------------------------------------------------
# AppTest: no route, so the fallback timers; with the route, pollers and no timer
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch) -> list:
    """Every ForwardMsg AppTest's script runs produce (AppTest keeps only the elements)."""
    messages: list = []
    original = LocalScriptRunner.forward_msgs

    def recorded(self):
        out = original(self)
        messages.extend(out)
        return out

    monkeypatch.setattr(LocalScriptRunner, "forward_msgs", recorded)
    return messages


def _timers(messages: list) -> list[float]:
    return sorted(m.auto_rerun.interval for m in messages if m.WhichOneof("type") == "auto_rerun")


def _pollers(messages: list) -> dict[str, dict]:
    """The live pollers mounted: component key -> the data handed to the browser."""
    out = {}
    for m in messages:
        if m.WhichOneof("type") == "delta" and m.delta.WhichOneof("type") == "new_element":
            element = m.delta.new_element
            if element.WhichOneof("type") == "bidi_component" and element.bidi_component.json:
                out[element.bidi_component.id.rsplit("-", 1)[-1]] = json.loads(element.bidi_component.json)
    return out


def _open(page: str | None = None, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page:
        at.query_params.update(query or {})
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_without_the_route_runs_and_compare_keep_their_timers(home, sent):
    store = _store(home)
    live, done = _live_run(store), store.create_run("done", CONFIG, status="completed")
    at = _open()  # Runs, the default page
    # The watcher (table and queue) every 2 s, the sidebar every 5 s: no cluster in use, so no timer of its
    # own, and the queue rides on the watcher's.
    assert _timers(sent) == [2.0, 5.0] and _pollers(sent) == {}
    assert at.dataframe[0].value.loc[live, "Status"].endswith("running")
    sent.clear()
    _open("views/compare.py", {"runs": f"{live},{done}"})
    assert _timers(sent) == [2.0, 2.0, 5.0, 5.0], _timers(sent)  # Runs first, then Compare's chart watcher


def test_with_the_route_the_pages_poll_it_and_declare_no_timer(home, sent, monkeypatch):
    monkeypatch.setattr(live_poll, "_served_at", None)
    live_poll.routes()  # as dashboard/serve.py's st.App does in the server
    store = _store(home)
    live, done = _live_run(store), store.create_run("done", CONFIG, status="completed")
    _open()
    pollers = _pollers(sent)
    assert _timers(sent) == [], _timers(sent)
    assert pollers["runs.poll"]["url"] == "/_tc/version?runs="
    assert pollers["runs.poll"]["token"] == live_poll.runs_token(live_data.runs_state())
    sent.clear()
    _open("views/compare.py", {"runs": f"{live},{done}"})
    pollers = _pollers(sent)
    assert _timers(sent) == [] and "compare.poll" in pollers, (_timers(sent), pollers)
    assert pollers["compare.poll"]["url"] == f"/_tc/version?compare={live}%2C{done}"
    assert pollers["compare.poll"]["token"] == live_poll.compare_token(
        live_data.compare_version([live, done])
    )


# --------------------------------------------------------------------------------------------------
# in a real browser, over the served app
# --------------------------------------------------------------------------------------------------


def _ask(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _quiet(page, frames: Frames, seconds: float) -> dict:
    t0 = time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    return summarize(frames.since(t0))


def _drain(page, frames: Frames) -> None:
    """Let a change already under way (a last heartbeat) be drawn before a quiet window starts."""
    for _ in range(8):
        if _quiet(page, frames, 2.5)["refreshes"] == 0:
            return


def _plotted(page) -> list[tuple[str, int, float]]:
    """Compare's chart: each trace's name, number of points and last x, as Plotly holds them."""
    return page.locator(".st-key-compare-chart .js-plotly-plot").evaluate(
        "el => el._fullData.map(t => [t.name, t.x.length, Number(t.x[t.x.length - 1])])"
    )


@pytest.mark.e2e
@pytest.mark.timeout(360)
def test_quiet_runs_and_compare_pages_run_no_script_and_redraw_on_a_change(tmp_path, monkeypatch):
    from playwright.sync_api import sync_playwright

    from bench.watched import open_browser
    from tests.e2e_helpers import VIEWPORT, DashboardServer, Tables
    from trainer_core import RunStatus

    home = tmp_path / "runs"
    monkeypatch.setenv("TRAINER_CORE_HOME", str(home))
    with SyntheticRun(home) as run, sync_playwright() as pw:
        done = run.store.create_run("finished", CONFIG, status=RunStatus.COMPLETED)
        run.heartbeat_s = 3600.0  # the rows stop changing (from the next beat, at most 2 s away)
        server = DashboardServer(home, tmp_path / "streamlit.log").start()
        try:
            time.sleep(2.5)
            # The route answers each kind with the token the pages compute, and refuses a bad question.
            route = f"{server.url}/_tc/version"
            assert _ask(f"{route}?runs") == (200, {"v": live_poll.runs_token(live_data.runs_state())})
            both = [run.run_id, done]
            answer = {"v": live_poll.compare_token(live_data.compare_version(both))}
            assert _ask(f"{route}?compare={','.join(both)}") == (200, answer)
            status, body = _ask(f"{route}?compare=" + ",".join(f"r{i}" for i in range(11)))
            assert status == 400 and "1 to 10 run ids" in body["error"], body
            status, body = _ask(f"{route}?nothing")
            assert status == 400 and "?runs" in body["error"], body

            browser = open_browser(pw)
            page = browser.new_page(viewport=VIEWPORT)
            frames, tables = Frames(page), Tables(page, id_suffix="-runs.table")
            polls: list[tuple[float, str]] = []
            page.on("request", lambda r: "/_tc/version" in r.url and polls.append((time.monotonic(), r.url)))

            # Runs: quiet for 10 s, then a run's status and step change.
            page.goto(f"{server.url}/runs")
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
            _drain(page, frames)
            t0 = time.monotonic()
            quiet = _quiet(page, frames, 10)
            assert quiet["refreshes"] == 0 and quiet["bytes"] == 0, quiet
            assert sum("runs=" in url for t, url in polls if t >= t0) >= 4, polls  # every 2 s
            t1 = time.monotonic()
            run.store.update_run(run.run_id, status=RunStatus.STOPPING, step=60_000)
            page.wait_for_timeout(4000)
            redrawn = [(t - t1, frame) for t, frame in tables.sent if t >= t1]
            assert redrawn, summarize(frames.since(t1))
            latency, table = redrawn[0]
            assert latency < 3.5, latency  # a poll every 2 s, then the watcher's and the table's reruns
            assert table.loc[run.run_id, "Status"].endswith("stopping"), table
            assert table.loc[run.run_id, "Progress"] == pytest.approx(0.6), table
            assert page.get_by_text("live: checked every 2 s, redrawn when a run changes").count() == 1

            # Compare: the live run beside a finished one; quiet for 10 s with the heartbeat beating (the
            # chart does not show it), then an evaluation point arrives.
            run.store.update_run(run.run_id, status=RunStatus.RUNNING)
            run.heartbeat_s = 2.0
            page.goto(f"{server.url}/compare?runs={run.run_id},{done}")
            page.locator(".st-key-compare-chart .js-plotly-plot").wait_for(timeout=60_000)
            _drain(page, frames)
            before = _plotted(page)
            t2 = time.monotonic()
            quiet = _quiet(page, frames, 10)
            assert quiet["refreshes"] == 0 and quiet["bytes"] == 0, quiet
            assert sum("compare=" in url for t, url in polls if t >= t2) >= 4, polls
            t3 = time.monotonic()
            run.log("eval_accuracy", 0.85)  # the metric Compare shows first
            page.wait_for_timeout(4000)
            charts = [m for m in frames.since(t3) if m[2].endswith("plotly_chart")]
            assert charts and charts[0][0] - t3 < 3.5, summarize(frames.since(t3))
            after = _plotted(page)
            assert after[0][1] == before[0][1] + 1 and after[0][2] == run.step, (before, after)
            browser.close()
        finally:
            server.stop()

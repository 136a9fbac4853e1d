"""Every page change in the dashboard survives a slow connection (issue 9 §4: a page that came up blank).

AppTest for where each hand-off leads (the Open run and Compare links, a comparison's address); headless
Chromium, with the browser's messages held back, for the blank page only a browser shows: Open run,
Compare shown runs and Start run, each with the sidebar's and the runs table's timers firing while the
browser does not yet know it has changed page.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from dashboard import stale_fragments, state
from tests.e2e_helpers import (
    REPO,
    VIEWPORT,
    DashboardServer,
    Screenshots,
    assert_no_error,
    choose,
    chromium_browser,
    fill,
    serving,
    settle,
)
from tests.test_dashboard_app import follow, open_page, populate, texts
from tests.test_dashboard_drafts import SlowLink
from tests.test_e2e import evidence
from trainer_core.tracking.status import COMPLETED, FAILED, RUNNING, STOPPED

ARTIFACTS = REPO / "test-artifacts" / "navigation"
DELAY_S = 6.0  # longer than the sidebar's 5 s timer: it is sure to fire while the browser lags behind


# --------------------------------------------------------------------------------------------------
# the guard, as plain values
# --------------------------------------------------------------------------------------------------


def test_a_fragment_run_for_a_page_left_behind_is_stale():
    assert stale_fragments.is_stale_fragment_run(["sidebar"], "runs-hash", "run-hash")
    assert not stale_fragments.is_stale_fragment_run(["sidebar"], "run-hash", "run-hash")
    assert not stale_fragments.is_stale_fragment_run([], "runs-hash", "run-hash")  # a full run changes page
    assert not stale_fragments.is_stale_fragment_run(["sidebar"], "", "run-hash")  # nothing to judge by
    assert not stale_fragments.is_stale_fragment_run(["sidebar"], "runs-hash", "")  # before any run


def test_the_app_installs_the_guard_on_this_streamlit():
    """Fails on a Streamlit whose internals moved: the guard would be silently gone, and the blank page
    back on every server-side page switch."""
    open_page()
    assert stale_fragments.installed()
    assert stale_fragments.install()  # a second call (every script run makes one) keeps the one wrapper


@pytest.mark.parametrize(
    ("text", "ids"),
    [(None, None), ("", []), ("a,b", ["a", "b"]), (" a , ,b,a ", ["a", "b"])],
)
def test_run_ids_from_the_address(text, ids):
    assert state.parse_run_ids(text) == ids


# --------------------------------------------------------------------------------------------------
# AppTest: where the links lead
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def own_runs(runs_home) -> dict[str, str]:
    """A runs folder of this test's own with one run per status."""
    return populate(runs_home)


def link(at, label: str):
    return next(e for e in at.get("page_link") if e.proto.label == label)


def test_open_run_is_a_link_to_the_selected_run(own_runs):
    at = open_page()
    at.selectbox(key="runs.selected").set_value(own_runs[STOPPED]).run()
    assert (link(at, "Open run").proto.page, link(at, "Open run").proto.query_string) == (
        "run",
        f"run={own_runs[STOPPED]}",
    )
    follow(at, "Open run")
    assert at.title[0].value == "stopped-run"
    assert at.query_params["run"] == own_runs[STOPPED]


def test_compare_shown_runs_links_the_filtered_runs_and_the_address_follows_the_choice(own_runs):
    at = open_page()
    at.multiselect(key="runs.status").set_value([COMPLETED, STOPPED, FAILED]).run()
    compare = link(at, "Compare shown runs")
    assert compare.proto.page == "compare"
    linked = parse_qs(compare.proto.query_string)["runs"][0].split(",")
    assert sorted(linked) == sorted(own_runs[s] for s in (COMPLETED, STOPPED, FAILED))

    follow(at, "Compare shown runs")
    assert at.title[0].value == "Compare runs" and not at.exception
    assert at.multiselect(key="compare.runs").value == linked
    ranking = next(d.value for d in at.dataframe if "Rank" in d.value.columns)
    assert sorted(ranking["Run"]) == ["completed-run", "failed-run", "stopped-run"]

    # A change on the page is kept (the address does not pull it back) and written to the address.
    at.multiselect(key="compare.runs").set_value([own_runs[COMPLETED], own_runs[RUNNING]]).run()
    assert at.multiselect(key="compare.runs").value == [own_runs[COMPLETED], own_runs[RUNNING]]
    assert at.query_params["runs"] == f"{own_runs[COMPLETED]},{own_runs[RUNNING]}"
    at.run()
    assert at.multiselect(key="compare.runs").value == [own_runs[COMPLETED], own_runs[RUNNING]]


def test_a_bookmarked_comparison_opens_as_it_was_and_says_which_runs_are_gone(own_runs):
    gone = "20000101-000000-gone00"
    at = open_page()
    at.query_params["runs"] = f"{own_runs[STOPPED]},{gone},{own_runs[COMPLETED]}"
    at.switch_page("views/compare.py").run()
    assert at.multiselect(key="compare.runs").value == [own_runs[STOPPED], own_runs[COMPLETED]]
    assert f"No run `{gone}`" in texts(at.warning)
    assert at.query_params["runs"] == f"{own_runs[STOPPED]},{own_runs[COMPLETED]}"
    at.run()
    assert not at.warning  # said once: the address now names what is shown


# --------------------------------------------------------------------------------------------------
# Chromium: no page comes up blank while the browser lags
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with chromium_browser(expect_timeout_ms=30_000) as instance:
        yield instance


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One dashboard for the module's browser tests (each starts its own tab, its own session)."""
    home = tmp_path_factory.mktemp("navigation") / "runs"
    ids = populate(home)
    with serving(home, ARTIFACTS / "streamlit.log") as (server, _):
        yield server, ids


def open_tab(browser, server: DashboardServer, path: str, heading: str) -> tuple[Page, SlowLink]:
    """A tab on ``path``, drawn and idle once, with its messages to the server routed through a SlowLink."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(30_000)
    slow = SlowLink(page)
    page.goto(f"{server.url}{path}")
    # The first visit imports the page's modules (transformers for New run): not inside the measured window.
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=90_000)
    settle(page, 90_000)
    return page, slow


def go_on_a_slow_link(page: Page, slow: SlowLink, click, drawn) -> None:
    """``click`` with the browser's messages held DELAY_S, until the browser has drawn the target page
    (``drawn``); then every message sent before it knew reaches the server and is answered."""
    slow.delay = DELAY_S
    click()
    slow.pump(page, 120, until=drawn)
    slow.pump(page, DELAY_S + 8)
    slow.delay = 0.0
    slow.pump(page, 7)  # the held rest goes out; the sidebar's next refresh comes and goes


def clickable(page: Page, name: str):
    """The link, or the button it was (the test runs on both: the button reproduces the blank page)."""
    main = page.locator('[data-testid="stMain"]')
    return main.get_by_role("link", name=name).or_(main.get_by_role("button", name=name))


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_open_run_on_a_slow_link_does_not_come_up_blank(browser, server):
    """When Open run was a button calling st.switch_page, the runs table's and the sidebar's timers
    reran their fragments under Runs after the switch, and the Run page came up blank."""
    server, ids = server
    page, slow = open_tab(browser, server, "/", "Runs")
    with evidence(page, Screenshots(ARTIFACTS / "open-run"), server):
        choose(page, "Selected run", re.compile(r"^stopped-run"))
        go_on_a_slow_link(
            page,
            slow,
            clickable(page, "Open run").click,
            lambda: page.get_by_role("heading", name="stopped-run").count() > 0,
        )
        expect(page.get_by_role("heading", name="stopped-run")).to_be_visible()
        expect(clickable(page, "Clone")).to_be_visible()  # the page's body, not only its title
        assert_no_error(page, "Run after Open run")
        assert parse_qs(urlsplit(page.url).query)["run"] == [ids[STOPPED]], page.url


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_compare_on_a_slow_link_does_not_come_up_blank(browser, server):
    server, ids = server
    page, slow = open_tab(browser, server, "/", "Runs")
    with evidence(page, Screenshots(ARTIFACTS / "compare"), server):
        go_on_a_slow_link(
            page,
            slow,
            clickable(page, "Compare shown runs").click,
            lambda: page.get_by_role("heading", name="Ranking").count() > 0,
        )
        expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
        expect(page.get_by_role("heading", name="Ranking")).to_be_visible()
        expect(page.get_by_role("heading", name="Config differences")).to_be_visible()
        assert_no_error(page, "Compare after Compare shown runs")
        # Bookmarkable: the address names every run shown, as the table listed them.
        assert sorted(parse_qs(urlsplit(page.url).query)["runs"][0].split(",")) == sorted(ids.values())


@pytest.mark.e2e
@pytest.mark.timeout(400)
def test_start_run_on_a_slow_link_does_not_come_up_blank(browser, server):
    """Start run launches first, then switches page on the server: the one switch no link can replace.
    The sidebar's timer fires while the browser still shows New run; before the guard in
    dashboard/stale_fragments.py, that request blanked the new run's page."""
    server, _ = server
    page, slow = open_tab(browser, server, "/new", "New run")
    with evidence(page, Screenshots(ARTIFACTS / "start-run"), server):
        choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
        fill(page, {"Epochs": "1", "Run name": "started-on-a-slow-link"})
        start = page.get_by_role("button", name=re.compile(r"Start run$"))
        expect(start).to_be_enabled()
        go_on_a_slow_link(
            page,
            slow,
            start.click,
            lambda: page.get_by_role("heading", name="started-on-a-slow-link").count() > 0,
        )
        expect(page.get_by_role("heading", name="started-on-a-slow-link")).to_be_visible()
        expect(clickable(page, "Clone")).to_be_visible()  # the page's body, not only its title
        assert_no_error(page, "Run after Start run")
        assert "run" in parse_qs(urlsplit(page.url).query), page.url

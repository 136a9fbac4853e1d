"""A sweep in a real browser: New sweep (the New run form as its base, one search-space row), Start sweep,
then the Sweep page as its two trials of the tiny BERT train and the study's figures appear; then a
search-space edit that outlives a visit to another page.
Screenshots land in test-artifacts/e2e-sweep/."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.e2e_helpers import (
    REPO,
    VIEWPORT,
    Screenshots,
    assert_no_error,
    chart,
    choose,
    chromium_browser,
    fill,
    nav,
    serving,
    settle,
    wait_until,
)
from trainer_core import Sweeps, SweepStatus
from trainer_core.tracking.status import COMPLETED

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ARTIFACTS = REPO / "test-artifacts" / "e2e-sweep"
# Two one-epoch trials on 64 rows: each a few seconds of training on a quiet CPU.
FORM = {"Max training rows": 64, "Max validation rows": 32, "Max length (tokens)": 32, "Epochs": 1}


def edit_high_bound(page, text: str) -> None:
    """Type into the High cell of the search space's first row, as a user does: select a cell of the
    row, move to the column with the arrow keys, open the cell's editor, replace its text, Enter."""
    grid = page.locator('[data-testid="stDataFrame"]').last  # the first one is the data preview
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    # Past the row-marker column and the header row, into row 1's Field cell (35 px rows). The pointer
    # moves there first: the grid picks the cell under it on hover; a bare click was ignored 3 times of 3.
    page.mouse.move(box["x"] + 80, box["y"] + 35 + 17)
    page.wait_for_timeout(200)
    page.mouse.down()
    page.mouse.up()
    for _ in range(3):  # field -> distribution -> low -> high
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # opens the cell's editor on its text
    editor = page.locator("#portal textarea")
    expect(editor).to_be_focused()
    editor.fill(text)
    page.keyboard.press("Enter")
    settle(page)


def test_new_sweep_to_the_sweep_page(tmp_path):
    shots = Screenshots(ARTIFACTS)
    began = time.monotonic()
    with (
        serving(tmp_path / "runs", ARTIFACTS / "streamlit.log") as (server, launcher),
        chromium_browser() as browser,
    ):
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(30_000)
        try:
            page.goto(server.url)
            settle(page)
            nav(page, "New sweep")
            expect(page.get_by_role("heading", name="New sweep")).to_be_visible()
            choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
            fill(page, {**FORM, "Trials": 2, "Sweep name": "browser sweep"})
            # The search space opens with a learning-rate row; the budget preview counts its steps.
            expect(
                page.get_by_text(re.compile(r"2 trials × 8 steps each \(64 training rows\)"))
            ).to_be_visible()
            assert_no_error(page, "New sweep")
            shots.take(page, "new-sweep")
            start = page.get_by_role("button", name=re.compile(r"Start sweep$"))
            expect(start).to_be_enabled()
            start.click()
            page.wait_for_url(re.compile(r"/sweep\?(?:.*&)?sweep=sweep-"), timeout=120_000)
            sweep_id = re.search(r"sweep=([^&#]+)", page.url)[1]
            expect(page.get_by_role("heading", name="browser sweep")).to_be_visible()
            print(f"[{time.monotonic() - began:5.1f} s] sweep {sweep_id} started")

            sweeps = Sweeps(launcher)
            sweep = wait_until(
                lambda: (s := sweeps.get(sweep_id))["status"] == SweepStatus.COMPLETED and s,
                240,
                "the sweep",
            )
            assert [t["status"] for t in sweep["trials"]] == [COMPLETED, COMPLETED]
            # The live page catches up by itself: both trials done, the best one named, the history drawn.
            expect(page.get_by_text(re.compile(r"2 of 2 trials done"))).to_be_visible(timeout=30_000)
            expect(page.get_by_text(f"Best trial #{sweep['best']['number']}")).to_be_visible()
            expect(chart(page, "sweep.figure.history").locator(".scatterlayer .trace").first).to_be_attached()
            expect(page.get_by_role("link", name="Fine-tune further")).to_be_visible()
            assert_no_error(page, "Sweep")
            shots.take(page, "sweep")
            print(f"[{time.monotonic() - began:5.1f} s] sweep page checked")

            # Back on New sweep, a table edit outlives a visit to another page (Streamlit drops the
            # editor's own edits): a bound the engine refuses is still there, its message with it.
            nav(page, "New sweep")
            edit_high_bound(page, "2")
            row_error = page.get_by_text(re.compile(r"Row 1 · learning_rate: .*diverge")).first
            expect(row_error).to_be_visible()
            nav(page, "Runs")
            nav(page, "New sweep")
            expect(row_error).to_be_visible()
        except BaseException:
            shots.take(page, "failure")
            print(server.log_tail())
            raise

"""New run's number boxes in a real browser: what a box shows is what runs, or its error keeps Start off.

The boxes are text boxes read by the engine (``value_from_text``). A number box (<input type="number">)
was not truthful: Chromium dropped the characters it does not take from pasted text ("0x10" ran as 10)
and sent nothing for text it could not read ("--3" stayed on screen while an optional box meant "all").
Text is pasted here (``insert_text``, as a paste puts it in) and committed with Enter, as a person does.

Needs Debian's Chromium at /usr/bin/chromium (`make browser`), like tests/test_e2e.py.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e_helpers import (
    REPO,
    VIEWPORT,
    Screenshots,
    assert_no_error,
    choose,
    chromium_browser,
    nav,
    serving,
    settle,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ARTIFACTS = REPO / "test-artifacts" / "e2e-numbers"
ROWS, EPOCHS = "Max training rows", "Epochs"
# (text pasted into Max training rows, the YAML line it runs as, or the words of its error). The texts
# of the tracker's list; the comments say what the number box made of each in Chromium.
ROW_TEXTS = [
    ("1,000", None, "write it without separators (1000)"),  # the number box ran 1000 ("1,5" ran 15)
    ("1e3", "max_train_samples: 1000", None),  # an int box sent 1
    (" 5 ", "max_train_samples: 5", None),
    ("0x10", None, "expected a whole number such as 8, got '0x10'"),  # the number box ran 10
    ("5.", "max_train_samples: 5", None),
    (".5", None, "got '.5'"),
    ("∞", None, "got '∞'"),
    ("NaN", None, "got 'NaN'"),
    ("-0", None, "must be greater than 0, got 0"),
    ("12abc", None, "got '12abc'"),  # the number box ran 12
    ("--3", None, "got '--3'"),  # the number box showed it and sent None: all rows
    ("2e308", None, "too large for a whole number"),  # the same, past float's range
]


@pytest.fixture
def dashboard(tmp_path):
    with serving(tmp_path / "runs", ARTIFACTS / "streamlit.log") as both:
        yield both


@pytest.fixture
def page():
    with chromium_browser() as browser:
        tab = browser.new_page(viewport=VIEWPORT)
        tab.set_default_timeout(30_000)
        yield tab


def paste(page: Page, label: str, text: str) -> None:
    """Replace what the box labelled ``label`` holds with ``text`` as a paste would, then press Enter."""
    box = page.get_by_label(label, exact=True)
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)
    box.press("Enter")
    settle(page)


def box_error(page: Page, label: str):
    """The error slot under the box labelled ``label`` (the innermost form column holding it)."""
    column = page.locator('[data-testid="stColumn"]').filter(has=page.get_by_label(label, exact=True)).last
    return column.locator('[data-testid="stAlert"]')


def test_every_text_a_box_shows_is_what_runs_or_an_error_under_it(dashboard, page):
    server, launcher = dashboard
    shots = Screenshots(ARTIFACTS)
    start = page.get_by_role("button", name=re.compile(r"Start run$"))
    yaml_box = page.locator('[data-testid="stCode"]', has_text="model_name_or_path")
    try:
        page.goto(server.url)
        settle(page)
        nav(page, "New run")
        choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
        expect(start).to_be_enabled()
        expect(page.get_by_label(ROWS, exact=True)).to_have_attribute("placeholder", re.compile("all rows"))

        # Garbage in an optional box: its empty meaning ("all rows") must not run while it shows text.
        paste(page, ROWS, "12abc")
        expect(page.get_by_label(ROWS, exact=True)).to_have_value("12abc")
        expect(box_error(page, ROWS)).to_contain_text("expected a whole number such as 8, got '12abc'")
        expect(start).to_be_disabled()
        expect(yaml_box).to_have_count(0)
        # And in a required one, at the same time: each box says its own problem.
        paste(page, EPOCHS, "--3")
        expect(box_error(page, EPOCHS)).to_contain_text("expected a number such as 0.1 or 2e-5, got '--3'")
        expect(box_error(page, ROWS)).to_contain_text("got '12abc'")
        expect(start).to_be_disabled()
        shots.take(page, "garbage-in-two-boxes")

        # A reload opens the draft: the boxes show the same text and the same errors, Start still off.
        page.reload()
        settle(page)
        expect(page.get_by_label(ROWS, exact=True)).to_have_value("12abc")
        expect(page.get_by_label(EPOCHS, exact=True)).to_have_value("--3")
        expect(box_error(page, EPOCHS)).to_contain_text("got '--3'")
        expect(start).to_be_disabled()

        paste(page, EPOCHS, " 1 ")
        expect(box_error(page, EPOCHS)).to_have_count(0)
        for text, line, words in ROW_TEXTS:
            paste(page, ROWS, text)
            expect(page.get_by_label(ROWS, exact=True)).to_have_value(text)  # the box keeps the text as is
            if line:
                expect(box_error(page, ROWS)).to_have_count(0)
                expect(start).to_be_enabled()
                expect(yaml_box).to_contain_text(line)
            else:
                expect(box_error(page, ROWS)).to_contain_text(words)
                expect(start).to_be_disabled()
                expect(yaml_box).to_have_count(0)
        # Emptied: all rows, as the placeholder says, and the YAML names no cap.
        paste(page, ROWS, "")
        expect(start).to_be_enabled()
        expect(yaml_box).not_to_contain_text("max_train_samples")

        # What runs is what the boxes show: "1e2" rows and " 1 " epoch, in the saved config.
        paste(page, ROWS, "1e2")
        expect(yaml_box).to_contain_text("max_train_samples: 100")
        expect(yaml_box).to_contain_text("num_train_epochs: 1")
        assert_no_error(page, "New run (numbers)")
        shots.take(page, "values-in-the-yaml")
        start.click()
        run = wait_until(lambda: launcher.store.list_runs(), 60, "the run started from the form")[0]
        saved = launcher.config_of(run["id"])
        assert (saved["max_train_samples"], saved["num_train_epochs"]) == (100, 1), saved
    except BaseException:
        shots.take(page, "failure")
        print(f"streamlit log ({server.log_path}):\n{server.log_tail()}")
        raise

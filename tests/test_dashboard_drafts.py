"""The New run form across sessions and pages: Clone links, drafts that survive a reload, uploads named as
the user named them.

AppTest for what the server decides; headless Chromium for what only a browser shows: a page that comes up
blank after Clone, and a reload (a new Streamlit session) that must not lose the form or its upload.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from playwright.sync_api import Page, expect
from streamlit.testing.v1 import AppTest

from dashboard import drafts
from dashboard import form as F
from tests.e2e_helpers import (
    REPO,
    VIEWPORT,
    Screenshots,
    assert_no_error,
    choose,
    chromium_browser,
    fill,
    serving,
    settle,
)
from tests.test_dashboard_app import APP, TIMEOUT, button, follow, populate, texts
from tests.test_e2e import evidence
from trainer_core.tracking.status import COMPLETED, RUNNING, STOPPED

ARTIFACTS = REPO / "test-artifacts" / "drafts"
REVIEWS = pd.DataFrame(
    {
        "review": [f"{'a fine' if i % 2 else 'a dull'} film, number {i}" for i in range(60)],
        "verdict": ["fresh" if i % 2 else "rotten" for i in range(60)],
    }
)


@pytest.fixture
def runs(runs_home) -> dict[str, str]:
    """A runs folder of this test's own with one run per status (as test_dashboard_app writes them)."""
    return populate(runs_home)


def session(query: dict[str, str] | None = None, page: str = "views/new_run.py") -> AppTest:
    """A new browser session (what a reload or a followed link makes) opening ``page`` at ``query``."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()  # the default page first: AppTest knows the pages once st.navigation has run
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def link_query(at: AppTest, label: str) -> dict[str, str]:
    """The query of the page link labelled ``label`` (where following it leads)."""
    link = next(e for e in at.get("page_link") if e.proto.label == label)
    assert link.proto.page == "new"
    return {k: v[0] for k, v in parse_qs(link.proto.query_string).items()}


def draft_file(home: Path, at: AppTest) -> Path:
    return drafts.folder(home) / f"{at.query_params['draft']}.json"


# --------------------------------------------------------------------------------------------------
# AppTest
# --------------------------------------------------------------------------------------------------


def test_clone_link_fills_the_form_once_then_the_draft_keeps_the_edits(runs, runs_home):
    at = session(page="")
    at.selectbox(key="runs.selected").set_value(runs[RUNNING]).run()
    assert link_query(at, "Clone") == {"clone": runs[RUNNING]}
    follow(at, "Clone")
    assert at.title[0].value == "New run"
    assert at.text_input(key="new.run_name").value == "running-run-copy"
    assert at.text_input(key="new.learning_rate").value == "3e-05"  # that run's own, not the default
    assert "Pre-filled from run **running-run**" in texts(at.info)
    # The clone was applied and left the address: what names the form now is its draft.
    assert list(at.query_params) == ["draft"] and drafts.is_id(at.query_params["draft"])
    at.text_input(key="new.learning_rate").input("7e-4").run()
    saved = json.loads(draft_file(runs_home, at).read_text())
    assert saved["form"]["learning_rate"] == "7e-4" and saved["cloned_from"] == "running-run"

    # A reload: a new session at the same address shows the form as edited, not the clone again.
    reloaded = session({"draft": at.query_params["draft"]})
    assert reloaded.text_input(key="new.learning_rate").value == "7e-4"
    assert reloaded.text_input(key="new.run_name").value == "running-run-copy"
    assert "Pre-filled from run **running-run**" in texts(reloaded.info)
    # It writes a draft of its own: a duplicated tab cannot overwrite the first tab's form.
    assert reloaded.query_params["draft"] != at.query_params["draft"]
    reloaded.text_input(key="new.learning_rate").input("1e-5").run()
    assert json.loads(draft_file(runs_home, at).read_text())["form"]["learning_rate"] == "7e-4"
    assert json.loads(draft_file(runs_home, reloaded).read_text())["form"]["learning_rate"] == "1e-5"


def test_fine_tune_link_and_a_deleted_run(runs, runs_home):
    at = session({"run": runs[COMPLETED]}, page="views/run.py")
    assert "Fine-tune further" not in [e.proto.label for e in at.get("page_link")]  # no model saved
    at = session({"finetune": runs[COMPLETED]})
    assert "has no fine-tuned model" in texts(at.warning)
    assert at.text_input(key="new.run_name").value == "completed-run-copy"
    at = session({"clone": "20000101-000000-gone00"})
    assert "There is no run `20000101-000000-gone00`" in texts(at.warning)
    assert at.text_input(key="new.run_name").value == ""  # the form as it was: empty


def test_an_untouched_form_writes_no_draft_and_a_bad_draft_is_ignored(runs_home):
    at = session()
    assert drafts.is_id(at.query_params["draft"])
    assert not drafts.folder(runs_home).exists()  # nothing typed, nothing written
    # A draft naming an option that no longer exists, and one that is not JSON: the form opens anyway.
    folder = drafts.folder(runs_home)
    drafts.save(folder, "0123456789ab", json.dumps({"form": {"model_builtin": "builtin:gone", "seed": 3}}))
    at = session({"draft": "0123456789ab"})
    assert at.selectbox(key="new.model_builtin").value == F.DEFAULTS["model_builtin"]
    assert at.text_input(key="new.seed").value == "3"  # a number in a draft from before the text boxes
    (folder / "ba9876543210.json").write_text("{not json")
    assert session({"draft": "ba9876543210"}).text_input(key="new.seed").value == F.DEFAULTS["seed"]
    assert session({"draft": "../../etc/passwd"}).text_input(key="new.seed").value == F.DEFAULTS["seed"]


def test_uploads_keep_the_users_file_name(runs_home):
    at = session()
    at.radio(key="new.data_source").set_value("Upload a file").run()
    at.file_uploader(key="new.upload_train_widget").set_value(
        ("empty.csv", b"review,verdict\n", "text/csv")
    ).run()
    # The engine's message names the file as the user knows it.
    assert "empty.csv has a header but no rows" in texts(at.error)
    assert not re.search(r"[0-9a-f]{10}-empty", texts(at.error))

    reviews = REVIEWS.to_csv(index=False).encode()
    at.file_uploader(key="new.upload_train_widget").set_value(("my reviews.csv", reviews, "text/csv")).run()
    path = Path(at.session_state["new.upload_train"])
    assert path.name == "my reviews.csv" and path.read_bytes() == reviews
    assert path.parent.parent == runs_home / "uploads"  # unique by a folder named for the content
    assert {m.label: m.value for m in at.metric}["Training rows"] == "54"  # 60 less the 10% validation
    assert not at.error

    # The same name with other content is another file; the first one stays as it was.
    other = REVIEWS.head(30).to_csv(index=False).encode()
    at.file_uploader(key="new.upload_train_widget").set_value(("my reviews.csv", other, "text/csv")).run()
    second = Path(at.session_state["new.upload_train"])
    assert second.name == path.name and second != path and path.read_bytes() == reviews

    # A reload: the uploader is empty (a browser cannot be handed a file), the form keeps the saved one.
    reloaded = session({"draft": at.query_params["draft"]})
    assert reloaded.radio(key="new.data_source").value == "Upload a file"
    assert "Using the earlier upload `my reviews.csv`" in texts(reloaded.caption)
    assert {m.label: m.value for m in reloaded.metric}["Training rows"] == "27"
    assert not button(reloaded, "new.start").disabled


def test_old_drafts_are_pruned_and_ids_cannot_leave_the_folder(tmp_path):
    folder = drafts.folder(tmp_path)
    drafts.save(folder, "aaaaaaaaaaaa", "{}")
    drafts.save(folder, "bbbbbbbbbbbb", "{}")
    month_ago = time.time() - 31 * 24 * 3600
    os.utime(folder / "aaaaaaaaaaaa.json", (month_ago, month_ago))
    assert drafts.prune(folder) == 1
    assert [p.name for p in folder.iterdir()] == ["bbbbbbbbbbbb.json"]
    with pytest.raises(ValueError):
        drafts.save(folder, "../escaped", "{}")
    assert drafts.load(folder, "../bbbbbbbbbbbb") is None and drafts.load(folder, "bbbbbbbbbbbb") == {}


def test_run_header_names_the_uploaded_file(runs_home):
    from trainer_core.tracking.store import MetricsStore

    path = runs_home / "uploads" / "0a1b2c3d4e" / "my reviews.csv"
    path.parent.mkdir(parents=True)
    REVIEWS.to_csv(path, index=False)
    store = MetricsStore(f"sqlite:///{runs_home / 'metrics.db'}")
    run_id = store.create_run(
        "from-upload",
        {"model_name_or_path": "builtin:tiny-bert", "train_file": str(path), "text_column": "review"},
        run_dir=str(runs_home / "from-upload"),
        status=STOPPED,
    )
    store.close()
    at = session({"run": run_id}, page="views/run.py")
    assert at.title[0].value == "from-upload"
    assert "dataset `my reviews.csv`" in texts(at.caption)


# --------------------------------------------------------------------------------------------------
# Chromium
# --------------------------------------------------------------------------------------------------


class SlowLink:
    """Holds every message the browser sends for ``delay`` seconds, in order (a slow network, one way).

    Playwright's sync API runs the routing callbacks on the test's thread, so the held messages go out
    from :meth:`pump`, which waits in the page meanwhile.
    """

    def __init__(self, page: Page):
        self.delay = 0.0
        self.held: list[tuple[float, object, object]] = []
        page.route_web_socket(re.compile(r"/_stcore/stream$"), self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda message: self._send(server, message))

    def _send(self, server, message) -> None:
        if self.delay or self.held:
            self.held.append((time.monotonic() + self.delay, server, message))
        else:
            server.send(message)

    def pump(self, page: Page, seconds: float, until=None) -> None:
        """Let held messages go as they fall due, for ``seconds`` or until ``until()`` is true."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            while self.held and self.held[0][0] <= time.monotonic():
                _, server, message = self.held.pop(0)
                server.send(message)
            page.wait_for_timeout(25)
        if until and not until():
            raise AssertionError(f"not true after {seconds:g} s: {until.__doc__ or until}")


@pytest.fixture
def browser():
    with chromium_browser(expect_timeout_ms=30_000) as instance:
        yield instance


@pytest.fixture
def server(tmp_path):
    home = tmp_path / "runs"
    ids = populate(home)
    with serving(home, ARTIFACTS / "streamlit.log") as (server, _):
        yield server, ids


def open_tab(browser) -> Page:
    tab = browser.new_page(viewport=VIEWPORT)
    tab.set_default_timeout(30_000)
    return tab


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_clone_on_a_slow_link_does_not_come_up_blank(browser, server):
    """Clone, with the browser's messages reaching the server 6 s late: the sidebar's 5 s timer is sure to
    fire while the browser does not yet know it has left Runs. When Clone was a button calling
    st.switch_page, that stale fragment request left New run blank (3 runs of 3)."""
    server, _ = server
    page = open_tab(browser)
    shots = Screenshots(ARTIFACTS / "clone")
    with evidence(page, shots, server):
        link = SlowLink(page)
        page.goto(f"{server.url}/new")  # once, so the slow first import is not inside the measured window
        expect(page.get_by_role("heading", name="New run")).to_be_visible(timeout=90_000)
        settle(page, 90_000)
        page.goto(server.url)
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        settle(page)
        link.delay = 6.0
        main = page.locator('[data-testid="stMain"]')
        # A link now; the button it was reproduces the blank page (role "or": the test runs on both).
        main.get_by_role("link", name="Clone").or_(main.get_by_role("button", name="Clone")).click()

        def drawn() -> bool:
            """the browser has drawn New run (from here on, it knows which page it is on)"""
            return page.get_by_text("Pre-filled from run", exact=False).count() > 0

        link.pump(page, 90, until=drawn)
        # Whatever the browser sent before it knew has now reached the server and been answered.
        link.pump(page, link.delay + 8)
        link.delay = 0.0
        link.pump(page, 7)  # the held rest goes out; the sidebar's next refresh comes and goes
        expect(page.get_by_role("heading", name="New run")).to_be_visible()
        expect(page.get_by_text("Pre-filled from run", exact=False)).to_be_visible()
        expect(page.get_by_label("Run name", exact=True)).to_have_value(re.compile(r"-copy$"))
        assert_no_error(page, "New run after Clone")
        assert "draft" in parse_qs(urlsplit(page.url).query), page.url


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_reload_keeps_the_form_and_the_upload(browser, server, tmp_path):
    server, _ = server
    upload = tmp_path / "my reviews.csv"
    REVIEWS.to_csv(upload, index=False)
    shots = Screenshots(ARTIFACTS / "reload")
    page = open_tab(browser)
    with evidence(page, shots, server):
        page.goto(f"{server.url}/new")
        expect(page.get_by_role("heading", name="New run")).to_be_visible(timeout=90_000)
        settle(page, 90_000)
        choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
        page.get_by_text("Upload a file", exact=True).click()
        settle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(upload)
        training_rows = page.locator('[data-testid="stMetric"]').filter(
            has=page.get_by_text("Training rows", exact=True)
        )
        expect(training_rows.locator('[data-testid="stMetricValue"]')).to_have_text("54", timeout=60_000)
        typed = {
            "Learning rate": "1e-3",
            "Max length (tokens)": "32",
            "Epochs": "1",
            "Run name": "kept-across-reload",
        }
        fill(page, typed)
        settle(page)
        shots.take(page, "before-reload")
        draft = parse_qs(urlsplit(page.url).query)["draft"]

        page.reload()
        expect(page.get_by_role("heading", name="New run")).to_be_visible(timeout=60_000)
        settle(page)
        shots.take(page, "after-reload")
        # The reloaded page goes on in a draft of its own, started from the one the address named.
        expect(page).to_have_url(re.compile(r"[?&]draft=[0-9a-f]{12}"))
        assert parse_qs(urlsplit(page.url).query)["draft"] != draft
        for label, value in typed.items():
            expect(page.get_by_label(label, exact=True)).to_have_value(value)
        expect(page.get_by_role("combobox", name="Built-in checkpoint")).to_have_value(
            re.compile(r"^tiny-bert")
        )
        expect(page.get_by_text("Using the earlier upload", exact=False)).to_contain_text("my reviews.csv")
        expect(training_rows.locator('[data-testid="stMetricValue"]')).to_have_text("54")
        assert_no_error(page, "New run after a reload")

        # The run started from it is headed by the file's own name.
        start = page.get_by_role("button", name=re.compile(r"Start run$"))
        expect(start).to_be_enabled()
        start.click()
        expect(page.get_by_role("heading", name="kept-across-reload")).to_be_visible(timeout=90_000)
        header = page.locator('[data-testid="stCaptionContainer"]', has_text="dataset")
        expect(header.first).to_contain_text("dataset my reviews.csv")
        assert not re.search(r"[0-9a-f]{10}-my", header.first.inner_text())
        shots.take(page, "run-header")

"""The whole product in a real browser: start a run from the form, watch it train, stop and resume a
second one, compare the two. Screenshots of every page land in test-artifacts/e2e/.

Needs Debian's Chromium at /usr/bin/chromium (`make browser`); without it this test fails rather than
skips, so CI cannot go green without ever opening the dashboard.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect

from tests.e2e_helpers import (
    REPO,
    VIEWPORT,
    DashboardServer,
    Screenshots,
    assert_no_error,
    chart,
    choose,
    chromium_browser,
    fill,
    legend,
    nav,
    serving,
    settle,
    wait_until,
)
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, RUNNING, STOPPED

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

ARTIFACTS = REPO / "test-artifacts" / "e2e"
# 200 rows / batch 8 (the form's default) = 25 steps an epoch and a loss point every step. The watched
# run trains 8 epochs (200 steps): on a quiet machine 3 epochs took only ~8 s, and the run was over
# before the page could be checked mid-training; 8 leave time to see the epoch metrics arrive while it
# still trains. The stopped-and-resumed one needs only 2. Only what differs from
# the form's defaults is typed; the learning rate is raised so the random tiny BERT moves off the majority
# class and the charts show more than flat lines.
FORM = {
    "Learning rate": "1e-3",
    "Max training rows": 200,
    "Max validation rows": 64,
    "Max length (tokens)": 32,
    "Log: steps": 1,
}
WATCHED, RESUMED = "e2e-watch", "e2e-stop-resume"
EPOCHS = {WATCHED: 8, RESUMED: 2}
STEPS_PER_EPOCH = 25
PROGRESS = re.compile(r"(\w+) · step (\d+) / (\d+)")


@pytest.fixture
def dashboard(tmp_path):
    """The dashboard on a free port over a fresh runs folder, and a Launcher on the same store."""
    with serving(tmp_path / "runs", ARTIFACTS / "streamlit.log") as both:
        yield both


@pytest.fixture
def page():
    with chromium_browser() as browser:
        tab = browser.new_page(viewport=VIEWPORT)
        tab.set_default_timeout(30_000)
        yield tab


@contextmanager
def evidence(page: Page, shots: Screenshots, server: DashboardServer):
    """On failure, leave a screenshot of the page as it was and print the server log beside the error."""
    try:
        yield
    except BaseException:
        try:
            print(f"failure screenshot: {shots.take(page, 'failure')}")
        except Exception as exc:  # noqa: BLE001 - the browser may be what failed
            print(f"no failure screenshot: {exc}")
        print(f"streamlit log ({server.log_path}):\n{server.log_tail()}")
        raise


def shown_progress(page: Page, timeout: float = 20) -> tuple[str, int, int]:
    """(status, step, total steps) as the Run page's progress bar says it (waits for the bar to show:
    Streamlit loads an element's code the first time a tab shows one)."""

    def read():
        match = PROGRESS.search(" ".join(page.locator('[data-testid="stProgress"]').all_inner_texts()))
        return (match[1], int(match[2]), int(match[3])) if match else None

    return wait_until(read, timeout, "the run's progress bar")


def start_run(page: Page, previous: set[str]) -> str:
    """Press Start run; returns the new run's id from the address the app switches to."""
    start = page.get_by_role("button", name=re.compile(r"Start run$"))
    expect(start).to_be_enabled()
    start.click()
    # The launch preflights the checkpoint and data in the server process before the page switches.
    page.wait_for_url(lambda url: run_in(url) not in (None, *previous), timeout=90_000)
    return run_in(page.url)


def run_in(url: str) -> str | None:
    """The run id a Run page address names (``/run?run=<id>``)."""
    match = re.search(r"/run\?(?:.*&)?run=([^&#]+)", url)
    return match[1] if match else None


def test_dashboard_end_to_end(dashboard, page, record_property, request):
    server, launcher = dashboard
    store = launcher.store
    shots = Screenshots(ARTIFACTS)
    began = time.monotonic()

    def say(what: str) -> None:  # a timeline in the captured output: where the time went when it is slow
        print(f"[{time.monotonic() - began:5.1f} s] {what}")

    with evidence(page, shots, server):
        say("Runs, empty")
        page.goto(server.url)
        expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
        settle(page)
        expect(page.get_by_text("No runs yet")).to_be_visible()
        assert_no_error(page, "Runs (empty)")
        shots.take(page, "runs-empty")

        say("New run: tiny BERT on a slice of the built-in reviews")
        nav(page, "New run")
        expect(page.get_by_role("heading", name="New run")).to_be_visible()
        choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
        expect(page.get_by_role("combobox", name="Built-in checkpoint")).to_have_value(
            re.compile(r"^tiny-bert")
        )
        fill(page, {**FORM, "Epochs": EPOCHS[WATCHED], "Run name": WATCHED})
        # The config the form shows is the one that will run: the typed values must be in it.
        yaml_box = page.locator('[data-testid="stCode"]', has_text="model_name_or_path")
        for line in ("model_name_or_path: builtin:tiny-bert", "max_train_samples: 200", "logging_steps: 1"):
            expect(yaml_box).to_contain_text(line)
        # The data preview counts the slice the run will train on.
        rows = page.locator('[data-testid="stMetric"]').filter(
            has=page.get_by_text("Training rows", exact=True)
        )
        expect(rows.locator('[data-testid="stMetricValue"]')).to_have_text("200")
        assert_no_error(page, "New run")
        shots.take(page, "new-run-form")
        watched = start_run(page, set())

        say("Run: watch it train")
        expect(page.get_by_role("heading", name=WATCHED)).to_be_visible()
        assert store.get_run(watched)["name"] == WATCHED
        loss = chart(page, "run.loss_chart")
        expect(loss.locator(".scatterlayer .trace").first).to_be_attached(timeout=90_000)
        say("the loss chart has points; waiting for the first evaluation")
        evals = chart(page, "run.eval_chart")
        expect(evals.locator(".legendtext", has_text="f1")).to_be_visible(timeout=90_000)
        # The F1 line says what it is (the positive class's F1 for two classes): "f1 (class 'rotten')".
        names = legend(evals)
        assert "accuracy" in names and any(n.startswith("f1 (class ") for n in names), names
        best_acc = page.locator('[data-testid="stMetric"]', has_text="Best eval accuracy")
        expect(best_acc.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^[01]\.\d{4}$"))
        shown = shown_progress(page)
        assert shown[0] == RUNNING and 0 < shown[1] < shown[2] == EPOCHS[WATCHED] * STEPS_PER_EPOCH, shown
        assert store.get_run(watched)["status"] == RUNNING, "the epoch metrics should show while it trains"
        assert_no_error(page, "Run (live)")
        shots.take(page, "run-live")

        say("a second run, to stop and resume")
        nav(page, "New run")
        # The form keeps its values across pages: only the name, the epochs and the seed change (same
        # seed, same data: both runs would draw the same curve, and Compare would show one line).
        expect(page.get_by_label("Max training rows", exact=True)).to_have_value("200")
        fill(page, {"Epochs": EPOCHS[RESUMED], "Seed": 7, "Run name": RESUMED})
        resumed = start_run(page, {watched})
        expect(page.get_by_role("heading", name=RESUMED)).to_be_visible()
        wait_until(lambda: (store.get_run(resumed)["step"] or 0) >= 5, 120, "the second run to train 5 steps")
        say("stop")
        page.locator(".st-key-run-stop").get_by_role("button", name="Stop").click()
        expect(page.locator('[data-testid="stAlert"]', has_text="Resume continues")).to_be_visible(
            timeout=60_000
        )
        run = wait_until(
            lambda: (r := store.get_run(resumed))["status"] == STOPPED and r, 30, "status stopped"
        )
        stopped_at = max(c["step"] for c in launcher.checkpoints(resumed))
        assert 5 <= stopped_at <= run["step"] < run["total_steps"], (stopped_at, run["step"])
        assert store.get_series(resumed, "loss")["step"].max() <= stopped_at
        assert shown_progress(page)[:2] == (STOPPED, run["step"])
        assert_no_error(page, "Run (stopped)")
        shots.take(page, "run-stopped")

        say(f"resume from checkpoint-{stopped_at}")
        resume = page.locator(".st-key-run-resume").get_by_role("button", name="Resume")
        expect(resume).to_be_enabled()
        resume.click()
        # The step count carries on from the checkpoint: never back to 0, and past where it stopped.
        # (A tiny run can finish between two refreshes: "completed" past the checkpoint counts too.)
        wait_until(lambda: (p := shown_progress(page)) and p[0] in (RUNNING, COMPLETED) and p[1] > stopped_at,
                   90, "the resumed run to train past its checkpoint")  # fmt: skip
        expect(page.get_by_text("attempt 2", exact=False)).to_be_visible()
        assert_no_error(page, "Run (resumed)")
        shots.take(page, "run-resumed")

        say("both runs finish (on a blank tab: a live page costs a third of a core); the store has it all")
        page.goto("about:blank")
        for run_id, name in ((watched, WATCHED), (resumed, RESUMED)):
            run = wait_until(lambda r=run_id: (x := store.get_run(r))["status"] not in ACTIVE_STATUSES and x, 180,
                             f"{name} to finish")  # fmt: skip
            assert run["status"] == COMPLETED, (run["error"], launcher.log_tail(run_id, 30))
            steps = EPOCHS[name] * STEPS_PER_EPOCH
            assert run["step"] == run["total_steps"] == steps
            # One loss point per step with no gap or repeat: the resumed run did not start over.
            assert store.get_series(run_id, "loss")["step"].tolist() == list(range(1, steps + 1))
            epochs = store.get_series(run_id, "eval_f1")["epoch"].tolist()
            assert epochs == [float(e) for e in range(1, EPOCHS[name] + 1)], epochs
        run = store.get_run(resumed)
        assert run["attempt"] == 1 and run["start_step"] == stopped_at, (run["attempt"], run["start_step"])
        assert [e["kind"] for e in store.events(resumed)].count("resumed") == 1
        assert {r["name"] for r in store.list_runs()} == {WATCHED, RESUMED}

        say("the resumed run, completed, opened by its address")
        page.goto(f"{server.url}/run?run={resumed}")
        expect(page.get_by_role("heading", name=RESUMED)).to_be_visible(timeout=60_000)
        expect(page.get_by_role("heading", name="Outcome")).to_be_visible()
        settle(page)
        assert shown_progress(page)[:2] == (COMPLETED, EPOCHS[RESUMED] * STEPS_PER_EPOCH)
        expect(page.get_by_text("attempt 2", exact=False)).to_be_visible()
        for label in ("Accuracy", "F1"):
            metric = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
            expect(metric.locator('[data-testid="stMetricValue"]')).to_have_text(re.compile(r"^[01]\.\d{4}$"))
        expect(chart(page, "run.confusion_chart")).to_be_visible()
        evals = chart(page, "run.eval_chart")
        expect(evals.locator(".legendtext", has_text="f1")).to_be_visible()
        # The F1 line says what it is (the positive class's F1 for two classes): "f1 (class 'rotten')".
        names = legend(evals)
        assert "accuracy" in names and any(n.startswith("f1 (class ") for n in names), names
        assert_no_error(page, "Run (completed)")
        shots.take(page, "run-completed")

        say("Compare both")
        nav(page, "Compare")
        expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
        picker = page.locator('[data-testid="stMultiSelect"]')
        for name in (WATCHED, RESUMED):
            expect(picker).to_contain_text(name)
        compare = chart(page, "compare.chart")
        expect(compare.locator(".scatterlayer .trace")).to_have_count(2)
        assert set(legend(compare)) == {WATCHED, RESUMED}, legend(compare)
        expect(page.get_by_text("fields that differ", exact=False)).to_be_visible()  # epochs and seed
        assert_no_error(page, "Compare")
        shots.take(page, "compare")

        say("Runs, with both")
        nav(page, "Runs")
        expect(page.get_by_text("2 of 2 runs", exact=False)).to_be_visible()
        assert_no_error(page, "Runs")
        shots.take(page, "runs")

    took = time.monotonic() - began
    listing = "\n".join(f"  {p.relative_to(REPO)}" for p in shots.paths)
    record_property("screenshots", [str(p) for p in shots.paths])
    print(f"end-to-end run took {took:.0f} s; screenshots:\n{listing}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_line(
            f"e2e: {len(shots.paths)} screenshots in {ARTIFACTS.relative_to(REPO)}/ ({took:.0f} s)"
        )


def form_column(page: Page, label: str):
    """The form column holding the box labelled ``label``: where that box's error is shown."""
    return page.locator('[data-testid="stColumn"]').filter(has=page.get_by_label(label, exact=True))


def test_form_numbers_and_guessed_columns(dashboard, page, tmp_path):
    """Out-of-range numbers reach the engine's checks (the browser clamps nothing), and a CSV whose
    column names say nothing gets its text and label columns from their values."""
    server, launcher = dashboard
    shots = Screenshots(ARTIFACTS / "form")
    start = page.get_by_role("button", name=re.compile(r"Start run$"))
    yaml_box = page.locator('[data-testid="stCode"]', has_text="model_name_or_path")
    with evidence(page, shots, server):
        page.goto(server.url)
        expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
        settle(page)
        nav(page, "New run")
        choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
        expect(start).to_be_enabled()

        # The steps: -3 epochs and a batch of 0, each committed with Enter. The boxes keep what
        # was typed, the engine's message is under the box, Start is off and no config is shown.
        fill(page, {"Epochs": -3, "Train batch size": 0})
        expect(form_column(page, "Train batch size").locator('[data-testid="stAlert"]')).to_contain_text(
            "must be greater than 0, got 0"
        )
        expect(page.get_by_text("allowed range", exact=False)).to_have_count(0)  # no browser-side clamp
        expect(start).to_be_disabled()
        expect(yaml_box).to_have_count(0)
        shots.take(page, "batch-size-out-of-range")
        # One field at a time (the engine names the first field at fault): the epochs are next.
        fill(page, {"Train batch size": 4})
        expect(form_column(page, "Epochs").locator('[data-testid="stAlert"]')).to_contain_text(
            "must be greater than 0 (or set max_steps), got -3"
        )
        expect(form_column(page, "Train batch size").locator('[data-testid="stAlert"]')).to_have_count(0)
        expect(start).to_be_disabled()
        expect(yaml_box).to_have_count(0)
        fill(page, {"Epochs": 1})
        # An emptied box is empty, not a silent fallback to some value.
        fill(page, {"Train batch size": ""})
        expect(form_column(page, "Train batch size").locator('[data-testid="stAlert"]')).to_contain_text(
            "is empty; enter a number (the default is 8)"
        )
        expect(page.get_by_label("Train batch size", exact=True)).to_have_value("")
        expect(start).to_be_disabled()
        fill(page, {"Train batch size": 4})
        expect(start).to_be_enabled()
        # The config shown is the one that will run: the values now in the boxes.
        expect(yaml_box).to_contain_text("num_train_epochs: 1")
        expect(yaml_box).to_contain_text("per_device_train_batch_size: 4")
        assert_no_error(page, "New run (numbers)")

        # A CSV whose column names give no hint: a free-text column and a few short codes.
        path = tmp_path / "asked.csv"
        moods = ("oddly", "slowly", "quickly", "warmly")
        lines = [f"{('BIO', 'CHEM', 'PHYS')[i % 3]},Why does sample {i} behave {moods[i % 4]} in trial {i * 7}?"
                 for i in range(60)]  # fmt: skip
        path.write_text("area,question\n" + "\n".join(lines) + "\n")
        page.get_by_text("File on this machine", exact=True).click()
        settle(page)
        fill(page, {"Training file path": str(path), "Run name": "e2e-guessed"})
        expect(page.get_by_role("combobox", name="Text column", exact=True)).to_have_value("question")
        expect(page.get_by_role("combobox", name="Label column", exact=True)).to_have_value("area")
        assert_no_error(page, "New run (guessed columns)")
        shots.take(page, "guessed-columns")
        run_id = start_run(page, set())
        saved = launcher.config_of(run_id)
        assert (saved["text_column"], saved["label_column"]) == ("question", "area"), saved
        assert (saved["num_train_epochs"], saved["per_device_train_batch_size"]) == (1, 4), saved

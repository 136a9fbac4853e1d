"""A Ray run in a real browser: New run offers the cluster this machine is pointed at, Start submits
the run to the real 2-node cluster of the ``ray_cluster`` fixture, and its Run page shows where it
trains and its step going up. Screenshots land in test-artifacts/e2e-ray/.

Needs Debian's Chromium, as tests/test_e2e.py does (fails without it, never skips).
"""

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
    choose,
    chromium_browser,
    fill,
    nav,
    serving,
    settle,
    wait_until,
)
from tests.test_e2e import shown_progress, start_run
from trainer_core.runs import ray_jobs
from trainer_core.tracking.status import RUNNING

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

ARTIFACTS = REPO / "test-artifacts" / "e2e-ray"
# 200 rows, batch 8 on each of 2 workers: 13 steps an epoch, 20 epochs: long enough to be watched while
# it trains (it is stopped once seen).
FORM = {
    "Learning rate": "1e-3",
    "Max training rows": 200,
    "Max validation rows": 32,
    "Max length (tokens)": 32,
    "Log: steps": 1,
    "Epochs": 20,
    "Run name": "e2e-ray",
}


def test_a_ray_run_from_new_run_trains_live_on_its_page(ray_cluster, tmp_path, monkeypatch):
    # The dashboard is pointed at the cluster as a user would point it: the address and Ray's token
    # (set by the fixture) in the server's environment.
    monkeypatch.setenv(ray_jobs.ADDRESS_ENV, ray_cluster.address)
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
            expect(page.get_by_role("heading", name="Runs")).to_be_visible(timeout=60_000)
            settle(page)
            # Before any run, the cluster panel shows the cluster this machine is pointed at.
            expect(page.get_by_text("2 nodes alive", exact=False)).to_be_visible(timeout=60_000)
            nav(page, "New run")
            choose(page, "Built-in checkpoint", re.compile(r"^tiny-bert"))
            fill(page, FORM)
            page.get_by_text(f"Ray cluster at {ray_cluster.address}", exact=True).click()
            settle(page)
            fill(page, {"Workers": 2})
            yaml_box = page.locator('[data-testid="stCode"]', has_text="model_name_or_path")
            for line in ("executor: ray", "num_workers: 2", f"ray_address: {ray_cluster.address}"):
                expect(yaml_box).to_contain_text(line)
            assert_no_error(page, "New run (Ray)")
            shots.take(page, "new-run-ray")

            run_id = start_run(page, set())
            expect(page.get_by_role("heading", name="e2e-ray")).to_be_visible()
            expect(
                page.get_by_text(f"runs on Ray cluster at {ray_cluster.address}", exact=False)
            ).to_be_visible()
            wait_until(
                lambda: launcher.store.get_run(run_id)["status"] == RUNNING, 240, "the Ray run to train"
            )
            # The live page follows the run: its step is shown, then shown higher.
            status, first, total = shown_progress(page, timeout=60)
            assert status == RUNNING and total > 0, (status, first, total)
            wait_until(lambda: shown_progress(page)[1] > first, 60, "the shown step to go up")
            assert_no_error(page, "Run (Ray, live)")
            shots.take(page, "run-ray-live")
            print(f"\nbrowser Ray run: open to live steps in {time.monotonic() - began:.1f} s")
        except BaseException:
            shots.take(page, "failure")
            print(server.log_tail())
            raise

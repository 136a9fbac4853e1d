"""Figure 5: the dashboard's resident memory while a Run page watches a live run for half an hour.

A real Streamlit server (``streamlit run dashboard/app.py``) is started on a fresh runs folder, a long
``builtin:tiny-bert`` run is launched there, and headless Chromium (driven by Playwright) opens that
run's page, whose live fragment then reruns every 1.5 s for the whole measurement. The resident set
size (RSS) of the Streamlit server process is sampled every 30 s; the growth is the last sample minus
the first one taken once the page had drawn its charts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import REPO, log

# A run that outlasts any measurement: the random tiny BERT, many epochs, a log line every 5 steps
# (so the page has new points at every refresh) and an evaluation every 200 steps.
LIVE_RUN = {
    "model_name_or_path": "builtin:tiny-bert",
    "dataset_name": "builtin:rotten-tomatoes",
    "max_train_samples": 800,
    "max_eval_samples": 64,
    "max_seq_length": 64,
    "per_device_train_batch_size": 16,
    "learning_rate": 1e-3,
    "num_train_epochs": 10_000,
    "logging_steps": 5,
    "eval_strategy": "steps",
    "eval_steps": 200,
    "save_strategy": "no",
    "run_name": "footprint-live-run",
}
GOAL_MB = 20  # issue 10: under 20 MB over a 3-hour soak


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "TRAINER_CORE_HOME": str(home)}
    env.pop("TRAINER_CORE_DB", None)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "dashboard/serve.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(log_path, "wb") as fh:
        # Its own process group, so that stopping it cannot reach this process.
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited ({proc.returncode}); see {log_path}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the dashboard did not answer within 120 s; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def _page_text(page, selector: str) -> str | None:
    try:
        return page.locator(selector).first.inner_text(timeout=5000)
    except Exception:  # noqa: BLE001 - a sample without the text is still a memory sample
        return None


def measure(quick: bool = False, minutes: float = 30.0) -> dict[str, Any]:
    import psutil
    from playwright.sync_api import sync_playwright

    # The browser as the end-to-end test drives it: one set of Chromium flags for both.
    from tests.e2e_helpers import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, malloc_arenas
    from trainer_core import Launcher

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    if quick:
        minutes = min(minutes, 1.0)
    every_s = 10.0 if quick else 30.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    home = tmp / "runs"
    launcher = Launcher(home=home)
    run_id = launcher.launch(LIVE_RUN)
    with contextlib.suppress(psutil.Error, TypeError):
        # Lower the training worker's priority: the figure is the dashboard's memory, and a full-speed
        # worker would only slow every other process on this 2-core machine.
        psutil.Process(launcher.store.get_run(run_id)["pid"]).nice(10)
    server, url = start_server(home, tmp / "streamlit.log")
    samples: list[dict[str, Any]] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/run?run={run_id}")
            # The live page is drawn once its charts are there (the run has logged by then).
            page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=180_000)
            page.wait_for_timeout(5000)
            start = time.monotonic()
            log(f"footprint: Run page open at {url}/run?run={run_id}; sampling for {minutes:g} min")
            while True:
                elapsed = time.monotonic() - start
                run = launcher.store.get_run(run_id)
                samples.append(
                    {
                        "t_s": round(elapsed, 1),
                        "server_rss_mb": _rss_mb(server.pid),
                        # glibc's arenas besides the main one (dashboard/memory.py keeps them few)
                        "malloc_arenas": malloc_arenas(server.pid),
                        "run_step": run.get("step"),
                        "run_status": run["status"],
                        "points": launcher.store.count_points(run_id),
                        "page_progress": _page_text(page, '[data-testid="stProgress"]'),
                    }
                )
                log(
                    f"  t={elapsed:6.0f} s  server RSS {samples[-1]['server_rss_mb']:.1f} MB  "
                    f"arenas 1+{samples[-1]['malloc_arenas']}  "
                    f"run step {run.get('step')}  page: {samples[-1]['page_progress']}"
                )
                if elapsed >= minutes * 60:
                    break
                page.wait_for_timeout(min(every_s, minutes * 60 - elapsed) * 1000)
            children_rss = sum(
                p.memory_info().rss for p in psutil.Process(server.pid).children(recursive=True)
            )
            browser.close()
    finally:
        stop_server(server)
        with contextlib.suppress(Exception):  # it may have ended already
            launcher.stop(run_id, force=True)
        shutil.rmtree(tmp, ignore_errors=True)
    first, last = samples[0]["server_rss_mb"], samples[-1]["server_rss_mb"]
    half = samples[len(samples) // 2 :]
    slope = None
    if len(half) >= 2 and half[-1]["t_s"] > half[0]["t_s"]:
        slope = (
            (half[-1]["server_rss_mb"] - half[0]["server_rss_mb"]) / (half[-1]["t_s"] - half[0]["t_s"]) * 3600
        )
    return {
        "quick": quick,
        "minutes": minutes,
        "sample_every_s": every_s,
        "rss_before_mb": first,
        "rss_after_mb": last,
        "rss_max_mb": max(s["server_rss_mb"] for s in samples),
        "growth_mb": last - first,
        "second_half_slope_mb_per_hour": slope,
        "goal_mb": GOAL_MB,
        "met": last - first < GOAL_MB,
        "server_children_rss_mb": children_rss / 2**20,
        "server_malloc_arenas": 1 + samples[-1]["malloc_arenas"],
        "live_run": LIVE_RUN,
        "samples": samples,
    }

"""Driving the real dashboard: a Streamlit server in a subprocess, and Playwright moves that know Streamlit.

Streamlit reruns the script after every widget change, and live parts rerun on a timer; the moves here
wait for the outcome they expect (a label, a chart legend, a status text) instead of sleeping.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
# Shared with bench/footprint.py, which watches the same dashboard in the same browser.
# Everything a headless Chromium in a container can do without: no sandbox (root, no user namespaces),
# no GPU, and no calls home (the machine has no internet; each attempt would only cost time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
MAX_SHOT_HEIGHT = 6000


# --------------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------------


def malloc_arenas(pid: int) -> int:
    """The glibc arenas a process has made besides its main one, read from ``/proc/<pid>/maps``.

    Each such arena lives in heaps that glibc reserves 64 MiB at a time, aligned to 64 MiB: a
    readable-writable part and, unless full, an inaccessible rest, with no file behind either. gdb's
    ``p narenas`` on a dashboard server agreed with this count (16 arenas, 15 of them found here).
    """
    maps = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        maps.append((lo, hi, fields[1], len(fields) > 5))
    count = 0
    for i, (lo, hi, perms, named) in enumerate(maps):
        if named or perms != "rw-p" or lo % (64 << 20):
            continue
        rest = maps[i + 1] if i + 1 < len(maps) else None
        if rest is not None and rest[0] == hi and rest[2] == "---p" and not rest[3]:
            hi = rest[1]
        count += hi - lo == 64 << 20
    return count


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DashboardServer:
    """``streamlit run dashboard/serve.py`` on a free port, in its own process group, logging to a file.

    ``entry="dashboard/app.py"`` serves the same pages without the version route live pages poll (their
    fragments then refresh on Streamlit's timers): the benchmark's "before".
    """

    def __init__(self, home: Path, log_path: Path, entry: str = "dashboard/serve.py"):
        self.home = home
        self.log_path = log_path
        self.entry = entry
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> DashboardServer:
        env = {
            **os.environ,
            "TRAINER_CORE_HOME": str(self.home),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            # The browser paths train two runs at once (watch one, stop and resume another): on a machine
            # under 8 cores the queue's default (one run per 4 cores) would hold the second back.
            "TRAINER_CORE_SLOTS": os.environ.get("TRAINER_CORE_SLOTS", "2"),
        }
        env.pop("TRAINER_CORE_DB", None)  # the store lives in the runs folder, where the test reads it
        cmd = [
            sys.executable, "-m", "streamlit", "run", self.entry,
            "--server.port", str(self.port),
            "--server.headless", "true",
            "--server.address", "127.0.0.1",
            "--server.fileWatcherType", "none",  # other engineers edit the tree while this runs
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # one killpg ends the server and anything it started in its group
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"streamlit did not answer /_stcore/health within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        kill_group(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), sig)


def require_chromium() -> str:
    """Debian's Chromium, or a failure that says how to get it (a skip would let CI pass without it)."""
    import pytest

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Run `make browser`.")
    return str(CHROMIUM)


@contextlib.contextmanager
def chromium_browser(expect_timeout_ms: int = 20_000):
    """Headless Chromium for one test or module; every expect() waits ``expect_timeout_ms`` (on 2 busy
    cores a rerun plus Plotly's first draw can pass 5 s)."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            expect.set_options(timeout=expect_timeout_ms)
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def serving(home: Path, log: Path):
    """The dashboard on a free port over ``home``, and a Launcher on its store; at the end the runs'
    workers (which live in sessions of their own, by design) are stopped and killed, then the server."""
    from trainer_core.runs.launcher import Launcher
    from trainer_core.tracking.status import ACTIVE_STATUSES, QUEUED

    server = DashboardServer(home, log).start()
    launcher = Launcher(home)
    try:
        yield server, launcher
    finally:
        for run in launcher.store.list_runs(statuses=ACTIVE_STATUSES):
            if run["pid"] or run["status"] == QUEUED:  # a populated row without a worker is left as is
                launcher.stop(run["id"], force=True)
        kill_workers(launcher)
        server.stop()


def kill_workers(launcher: Any) -> list[str]:
    """Kill every worker the runs of ``launcher``'s store still have; returns the run ids killed.

    Workers run in sessions of their own (they outlive the dashboard by design), so stopping the server
    does not end them: each one is found by the pid its run recorded and killed with its group.
    """
    import psutil

    killed = []
    for run in launcher.store.list_runs():
        pid = run.get("pid")
        try:
            proc = psutil.Process(pid) if pid else None
            ours = proc is not None and any(run["id"] in part for part in proc.cmdline())
        except psutil.Error:
            ours = False
        if ours:
            kill_group(pid, signal.SIGKILL)
            killed.append(run["id"])
    return killed


# --------------------------------------------------------------------------------------------------
# Streamlit in the browser
# --------------------------------------------------------------------------------------------------


def settle(page: Page, timeout: float = 60_000) -> None:
    """Wait until the script is not running (a widget change starts a rerun a moment after the event)."""
    page.wait_for_timeout(150)
    page.wait_for_selector(IDLE, timeout=timeout)


def nav(page: Page, title: str) -> None:
    """Go to a page through the sidebar, as a user would."""
    link = page.locator('[data-testid="stSidebarNav"] a').filter(has=page.get_by_text(title, exact=True))
    link.click()
    expect(link).to_have_attribute("aria-current", "page")
    settle(page)


def choose(page: Page, label: str, option: str | re.Pattern) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()
    settle(page)


def fill(page: Page, values: dict[str, Any]) -> None:
    """Type into text and number inputs by label, committing each with Enter, then check they all held.

    No wait between fields: each Enter asks for a rerun, and Streamlit folds a rerun requested while one
    is running into a single new run with every widget's latest value, as when a person types quickly.
    """
    for label, value in values.items():
        box = page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
    settle(page)
    for label, value in values.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(str(value))


def assert_no_error(page: Page, where: str) -> None:
    """No Python exception box (a traceback that reached the page) and no "Page not found" dialog."""
    found = page.locator('[data-testid="stException"]').all_inner_texts()
    assert not found, f"{where}: the page shows a Python exception:\n" + "\n---\n".join(found)
    assert not page.get_by_text("Page not found", exact=True).count(), (
        f"{where}: Streamlit says 'Page not found'"
    )


def chart(page: Page, key: str) -> Locator:
    """The Plotly chart created with ``key=`` (Streamlit puts the key in the element's class as st-key-*)."""
    return page.locator(f".st-key-{key.replace('.', '-')} .js-plotly-plot")


def legend(chart_: Locator) -> list[str]:
    """The names in a Plotly chart's legend (SVG text: textContent, as SVG elements have no innerText)."""
    return chart_.locator(".legendtext").evaluate_all("els => els.map(e => e.textContent)")


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.25) -> Any:
    """Poll a condition of the store (not of the page: the page has Playwright's own waits)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)


class Screenshots:
    """Full-length screenshots into one folder, listed in order for the test report."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        self.paths: list[Path] = []

    def take(self, page: Page, name: str) -> Path:
        """The whole page, not only the window: Streamlit scrolls inside <main>, so grow the window to fit."""
        height = page.evaluate(
            "() => Math.max(document.querySelector('[data-testid=stMain]')?.scrollHeight || 0, innerHeight)"
        )
        path = self.folder / f"{len(self.paths) + 1:02d}-{name}.png"
        page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(height), MAX_SHOT_HEIGHT)})
        try:
            page.wait_for_timeout(300)  # Plotly redraws on resize
            page.screenshot(path=path)
        finally:
            page.set_viewport_size(VIEWPORT)
        self.paths.append(path)
        return path


class Tables:
    """The rows of every dataframe the server sends (decoded from its Arrow bytes), as they arrive.

    ``id_suffix`` keeps only the dataframes whose element id ends with it (a keyed table, e.g. the runs
    table's ``-runs.table``); a dataframe without selection carries no id, so a page with one such table
    passes none.
    """

    def __init__(self, page: Page, id_suffix: str | None = None):
        self.sent: list[tuple[float, object]] = []
        self.id_suffix = id_suffix
        page.on("websocket", lambda ws: ws.on("framereceived", self._received))

    def _received(self, payload) -> None:
        import pyarrow as pa
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_element":
            return
        element = msg.delta.new_element
        if element.WhichOneof("type") != "dataframe":
            return
        if self.id_suffix is None or element.dataframe.id.endswith(self.id_suffix):
            frame = pa.ipc.open_stream(element.dataframe.arrow_data.data).read_pandas()
            self.sent.append((time.monotonic(), frame))

    def first(self, page: Page, t0: float, shows, within_s: float = 4.0) -> tuple[float, object]:
        """The first table sent since ``t0`` that ``shows`` what a change made, and its delay after ``t0``."""
        while True:
            found = [(t - t0, frame) for t, frame in self.sent if t >= t0 and shows(frame)]
            if found or time.monotonic() - t0 > within_s:
                assert found, f"no table showed the change within {within_s} s: {self.sent[-1:]}"
                return found[0]
            page.wait_for_timeout(100)

"""Figure 6: what watching a run costs the training, and what a live page sends and spends per refresh.

Three measurements, each on a real Streamlit server (``dashboard/serve.py``, or ``--entry
dashboard/app.py``: the same pages without the version route, refreshing on Streamlit's timers, the
"before") driven by headless Chromium:

1. Per refresh, on a synthetic live run (a store row kept alive by a heartbeat thread, as a worker's
   callback keeps it): the bytes the server sends over the websocket and answers to the page's version
   polls, split by element type, and the server's CPU time, over a window with no new data and over one
   where a loss point arrives every few seconds; Chromium's CPU beside it. A refresh is a script run or a
   poll, whichever the page does.
2. Alternating pairs of the overhead benchmark's run (MiniLM, 800 rows, 64 tokens, batch 16, 1 epoch)
   launched alone and launched with its Run page open: train samples/s watched / alone.
3. The same with five pages open at once (the Run page three times, Runs, Compare).

``python -m bench.watched --help`` runs any of them on its own (printing JSON, BENCHMARKS.md untouched);
``python -m bench.run --only watched`` runs all three into the report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import log, median
from bench.overhead import DATA, TRAINING, _wait_reaped

GOALS = {"ratio": 0.97, "cpu_ms_per_refresh": 5.0, "cpu_s_per_minute": 0.5}
ENTRY = "dashboard/serve.py"  # the dashboard as `make run` serves it
WINDOW_S = 60.0  # of each per-refresh measurement


# --------------------------------------------------------------------------------------------------
# a live run without a worker, and what the server sends for it
# --------------------------------------------------------------------------------------------------


class SyntheticRun:
    """A running run in a store, kept alive by a heartbeat thread as a worker's callback keeps it.

    Its host is not this machine's, so no dashboard judges it by a process it cannot find; ``log``
    records a point as the callback would (same store call, the run's step moved with it).
    """

    def __init__(self, home: Path, loss_points: int = 500, heartbeat_s: float = 2.0):
        from trainer_core import MetricsStore, default_store_url

        self.store = MetricsStore(default_store_url(home))
        run_dir = home / "synthetic"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train.log").write_text("training\n" * 50, encoding="utf-8")
        config = {"model_name_or_path": "builtin:minilm-l6", "num_train_epochs": 3, "logging_steps": 10}
        self.run_id = self.store.create_run("synthetic-live", config, run_dir=str(run_dir))
        now = time.time()
        self.step = loss_points * 10
        self.store.update_run(
            self.run_id, status="running", host="another-machine", pid=1, started_at=now - 60,
            train_began_at=now - 55, total_steps=self.step * 20, step=self.step, epoch=0.1,
        )  # fmt: skip
        rows = [
            (self.run_id, "loss", s, s / 1e4, 1 / (1 + s / 1e3), now - 50)
            for s in range(10, self.step + 1, 10)
        ]
        rows += [
            (self.run_id, "learning_rate", s, s / 1e4, 5e-5, now - 50) for s in range(10, self.step + 1, 10)
        ]
        rows += [(self.run_id, k, self.step, 0.1, v, now - 40) for k, v in (("eval_loss", 0.5), ("eval_accuracy", 0.8), ("eval_f1", 0.79))]  # fmt: skip
        self.store.log_points(rows)
        self.heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> SyntheticRun:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self.store.heartbeat(self.run_id, step=self.step)

    def log(self, key: str = "loss", value: float = 0.2) -> None:
        self.step += 10
        self.store.log_metrics(
            self.run_id, {key: value}, step=self.step, epoch=self.step / 1e4, touch_run=True
        )


class Frames:
    """Every websocket message the browser receives, decoded as Streamlit's ForwardMsg, and every answer
    to its version polls (``dashboard.live_poll``) as a message of kind "poll".

    Cached elements come back as a reference to an earlier message's hash; they are resolved to the
    element they stand for, so a chart sent again by reference still counts as a chart sent.
    """

    def __init__(self, page):
        self.messages: list[tuple[float, int, str, str]] = []  # (time, bytes, kind, element id)
        self._by_hash: dict[str, tuple[str, str]] = {}
        page.on("websocket", lambda ws: ws.on("framereceived", self._received))
        page.on("requestfinished", self._polled)

    def _polled(self, request) -> None:
        from dashboard.live_poll import ROUTE

        if ROUTE in request.url:
            sizes = request.sizes()
            self.messages.append(
                (
                    time.monotonic(),
                    sizes["responseHeadersSize"] + sizes["responseBodySize"],
                    "poll",
                    request.url,
                )
            )

    def _received(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        msg = ForwardMsg()
        msg.ParseFromString(payload)
        kind, ident = msg.WhichOneof("type") or "", ""
        if kind == "ref_hash":
            kind, ident = self._by_hash.get(msg.ref_hash, ("ref_hash", ""))
            kind = "ref:" + kind
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            kind = msg.delta.new_element.WhichOneof("type")
            ident = getattr(getattr(msg.delta.new_element, kind), "id", "")
            if msg.hash:
                self._by_hash[msg.hash] = (kind, ident)
        self.messages.append((time.monotonic(), len(payload), kind, ident))

    def since(self, t0: float) -> list[tuple[float, int, str, str]]:
        return [m for m in self.messages if m[0] >= t0]


def summarize(messages: list[tuple[float, int, str, str]]) -> dict[str, Any]:
    """Websocket bytes and messages by kind, refreshes (script runs finished), version polls and chart
    elements sent; ``bytes_per_check`` counts both channels over both kinds of refresh."""
    kinds: dict[str, list[int]] = {}
    for _, size, kind, _ in messages:
        kinds.setdefault(kind, [0, 0])
        kinds[kind][0] += 1
        kinds[kind][1] += size
    refreshes = kinds.get("script_finished", [0])[0]
    polls, polled = kinds.pop("poll", [0, 0])
    total = sum(size for _, size, kind, _ in messages if kind != "poll")
    checks = refreshes + polls
    return {
        "refreshes": refreshes,
        "polls": polls,
        "checks": checks,
        "bytes": total,
        "poll_bytes": polled,
        "bytes_per_refresh": total / refreshes if refreshes else None,
        "bytes_per_check": (total + polled) / checks if checks else None,
        "charts_sent": [ident for _, _, kind, ident in messages if kind.endswith("plotly_chart")],
        "by_kind": kinds,
    }


def _cpu_s(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def browser_processes() -> list:
    """Chromium's processes (children of this one, through Playwright's driver)."""
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if "chrom" in (p.name() or "").lower()]


def _tree_cpu_s(processes: list) -> float:
    total = 0.0
    for proc in processes:
        with contextlib.suppress(Exception):
            total += _cpu_s(proc)
    return total


def open_browser(pw):
    from tests.e2e_helpers import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


# The live pages the refresh measurement can watch: the address of the synthetic run's page, and the
# element that says it is drawn.
PAGES = {
    "run": ("/run?run={id}", '[data-testid="stPlotlyChart"]'),
    "runs": ("/runs", '[data-testid="stDataFrame"]'),
    "compare": ("/compare?runs={id}", '[data-testid="stPlotlyChart"]'),
}


def refresh_costs(quick: bool, entry: str = ENTRY, page_name: str = "run") -> dict[str, Any]:
    """Bytes and server CPU per refresh of a live page (Run, Runs or Compare on the synthetic run), with
    no new data and with a point every 5 s.

    On Runs "no new data" also stops the run's heartbeat: the table shows each run's duration, so a row
    whose heartbeat moves is redrawn (as a worker's step moves it while it trains); Run and Compare do not
    show the heartbeat, so theirs keeps beating.
    """
    import psutil
    from playwright.sync_api import sync_playwright

    from tests.e2e_helpers import VIEWPORT, DashboardServer

    window = 20.0 if quick else WINDOW_S
    tmp = Path(tempfile.mkdtemp(prefix="bench-watched-refresh-"))
    out: dict[str, Any] = {"window_s": window, "entry": entry, "page": page_name}
    address, drawn = PAGES[page_name]
    try:
        with SyntheticRun(tmp / "runs") as run, sync_playwright() as pw:
            server = DashboardServer(tmp / "runs", tmp / "streamlit.log", entry=entry).start()
            try:
                browser = open_browser(pw)
                page = browser.new_page(viewport=VIEWPORT)
                frames = Frames(page)
                page.goto(server.url + address.format(id=run.run_id), timeout=180_000)
                page.locator(drawn).first.wait_for(timeout=120_000)
                if page_name == "runs":
                    run.heartbeat_s = 3600.0  # from the next beat on (at most 2 s away)
                    page.wait_for_timeout(2500)
                page.wait_for_timeout(3000)
                server_proc, chromium = psutil.Process(server.proc.pid), browser_processes()
                for name, every_s in (("no_new_data", None), ("new_point_every_5s", 5.0)):
                    t0, cpu0, br0 = time.monotonic(), _cpu_s(server_proc), _tree_cpu_s(chromium)
                    next_log = t0 + (every_s or window + 1)
                    while time.monotonic() - t0 < window:
                        if time.monotonic() >= next_log:
                            run.log()
                            next_log += every_s or 0
                        page.wait_for_timeout(250)
                    elapsed = time.monotonic() - t0
                    got = summarize(frames.since(t0))
                    cpu = _cpu_s(server_proc) - cpu0
                    got.update(
                        load_average=os.getloadavg(),
                        server_cpu_s=cpu,
                        server_cpu_ms_per_refresh=cpu * 1000 / got["checks"] if got["checks"] else None,
                        server_cpu_s_per_minute=cpu * 60 / elapsed,
                        chromium_cpu_s_per_minute=(_tree_cpu_s(chromium) - br0) * 60 / elapsed,
                        charts_sent=len(got["charts_sent"]),
                    )
                    out[name] = got
                    log(
                        f"watched/{page_name}/{name} ({entry}): {got['refreshes']} script runs and {got['polls']} polls "
                        f"in {elapsed:.0f} s, {got['bytes_per_check'] or 0:.0f} B and "
                        f"{got['server_cpu_ms_per_refresh'] or 0:.1f} ms server CPU per refresh, "
                        f"{got['server_cpu_s_per_minute']:.2f} server CPU-s/min, {got['charts_sent']} charts "
                        f"sent; Chromium {got['chromium_cpu_s_per_minute']:.2f} CPU-s/min; "
                        f"load {got['load_average'][0]:.1f}"
                    )
                browser.close()
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def route_times(runs: int = 200, requests: int = 300) -> dict[str, Any]:
    """How long the version route takes to answer each kind of question, over HTTP from this process
    (a new connection per request, as urllib makes them; ``/_stcore/health`` beside them is the floor),
    on a store of ``runs`` finished runs of 200 loss points each beside the synthetic live run."""
    import urllib.request

    from tests.e2e_helpers import DashboardServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-watched-route-"))
    out: dict[str, Any] = {"store_runs": runs + 1, "requests": requests}
    try:
        with SyntheticRun(tmp / "runs") as run:
            store = run.store
            done = [store.create_run(f"done-{i}", {}, status="completed") for i in range(runs)]
            store.log_points([(r, "loss", s, None, 1.0 / s, 0.0) for r in done for s in range(1, 201)])
            server = DashboardServer(tmp / "runs", tmp / "streamlit.log").start()
            try:
                questions = {
                    "health (floor)": "/_stcore/health",
                    "run": f"/_tc/version?run={run.run_id}",
                    "engine": "/_tc/version?engine",
                    "runs": "/_tc/version?runs",
                    "compare (3 runs)": "/_tc/version?compare=" + ",".join([run.run_id, *done[:2]]),
                    "compare (10 runs)": "/_tc/version?compare=" + ",".join([run.run_id, *done[:9]]),
                }
                for name, path in questions.items():
                    times = []
                    for i in range(requests + 10):  # the first 10 warm the caches and the thread pool
                        t0 = time.perf_counter()
                        with urllib.request.urlopen(server.url + path, timeout=30) as response:
                            response.read()
                        if i >= 10:
                            times.append((time.perf_counter() - t0) * 1000)
                    times.sort()
                    out[name] = {
                        "median_ms": round(median(times), 2),
                        "p95_ms": round(times[int(0.95 * len(times))], 2),
                        "max_ms": round(times[-1], 2),
                    }
                    log(f"route {name}: median {out[name]['median_ms']} ms, p95 {out[name]['p95_ms']} ms")
                out["load_average"] = os.getloadavg()
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------------
# training alone, and with pages open
# --------------------------------------------------------------------------------------------------


def train_once(tmp: Path, data: dict[str, Any], pages: tuple[str, ...], entry: str = ENTRY) -> dict[str, Any]:
    """Launch the overhead run; with ``pages`` ("run", "runs", "compare"), open them in Chromium first."""
    import psutil
    from playwright.sync_api import sync_playwright

    from tests.e2e_helpers import VIEWPORT, DashboardServer
    from trainer_core import Launcher

    home = tmp / "runs"
    launcher = Launcher(home=home)
    config = {
        "model_name_or_path": "builtin:minilm-l6",
        "dataset_name": "builtin:rotten-tomatoes",
        **data,
        **TRAINING,
    }
    if not pages:
        run = launcher.wait(launcher.launch(config), poll_s=0.5)
        return {
            "train_samples_per_second": run["summary"]["train_samples_per_second"],
            "status": run["status"],
            "load_average": os.getloadavg(),
        }
    server = DashboardServer(home, tmp / "streamlit.log", entry=entry).start()
    try:
        with sync_playwright() as pw:
            browser = open_browser(pw)
            run_id = launcher.launch(config)
            opened = []
            for name in pages:
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(
                    f"{server.url}/{name}" + (f"?run={run_id}" if name == "run" else ""), timeout=180_000
                )
                opened.append(page)
            server_proc, chromium = psutil.Process(server.proc.pid), browser_processes()
            cpu0, br0, t0 = _cpu_s(server_proc), _tree_cpu_s(chromium), time.monotonic()
            run = launcher.wait(run_id, poll_s=0.5)
            _wait_reaped(run["pid"])
            minutes = (time.monotonic() - t0) / 60
            out = {
                "train_samples_per_second": run["summary"]["train_samples_per_second"],
                "status": run["status"],
                "server_cpu_s_per_minute": (_cpu_s(server_proc) - cpu0) / minutes,
                "chromium_cpu_s_per_minute": (_tree_cpu_s(chromium) - br0) / minutes,
                "load_average": os.getloadavg(),
            }
            browser.close()
    finally:
        server.stop()
    return out


def pairs_of(
    data: dict[str, Any], pairs: int, pages: tuple[str, ...], label: str, entry: str = ENTRY
) -> dict[str, Any]:
    alone, watched = [], []
    for i in range(pairs):
        for side, opened, runs in (("alone", (), alone), (label, pages, watched)):
            tmp = Path(tempfile.mkdtemp(prefix=f"bench-watched-{side}-"))
            try:
                runs.append(train_once(tmp, data, opened, entry))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log(f"pair {i + 1}/{pairs} {side}: {runs[-1]}")
    ratios = [
        b["train_samples_per_second"] / a["train_samples_per_second"]
        for a, b in zip(alone, watched, strict=True)
    ]
    return {
        "entry": entry,
        "pages": list(pages),
        "alone": alone,
        "watched": watched,
        "ratios": ratios,
        "ratio_median": median(ratios),
        "server_cpu_s_per_minute_median": median([w.get("server_cpu_s_per_minute") for w in watched]),
        "chromium_cpu_s_per_minute_median": median([w.get("chromium_cpu_s_per_minute") for w in watched]),
    }


PARTS = ("refresh", "one_run_page", "five_pages")  # what `bench.run` measures; "route" on demand
EXTRA_PARTS = ("route",)
FIVE_PAGES = ("run", "run", "run", "runs", "compare")


def measure(
    quick: bool = False,
    pairs: int = 3,
    entry: str = ENTRY,
    parts: tuple[str, ...] = PARTS,
    page: str = "run",
) -> dict[str, Any]:
    data = dict(DATA)
    if quick:
        data.update(max_train_samples=160, max_eval_samples=48)
        pairs = min(pairs, 1)
    result: dict[str, Any] = {"quick": quick, "data": data, "training": TRAINING, "goals": GOALS}
    if "refresh" in parts:
        result["refresh"] = refresh_costs(quick, entry, page)
    if "one_run_page" in parts:
        result["one_run_page"] = pairs_of(data, pairs, ("run",), "watched", entry)
    if "five_pages" in parts:
        result["five_pages"] = pairs_of(data, pairs, FIVE_PAGES, "five-pages", entry)
    if "route" in parts:
        result["route"] = route_times()
    return result


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.watched", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 s windows, one pair, a smaller run")
    parser.add_argument("--pairs", type=int, default=3, help="alternating alone / watched pairs")
    parser.add_argument("--entry", default=ENTRY, help=f"the file `streamlit run` serves (default {ENTRY})")
    known = PARTS + EXTRA_PARTS
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated among {', '.join(known)}")
    parser.add_argument(
        "--page", choices=sorted(PAGES), default="run", help="the live page the refresh part watches"
    )
    args = parser.parse_args(argv)
    parts = tuple(p.strip() for p in args.only.split(",") if p.strip())
    if unknown := set(parts) - set(known):
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; choose among {', '.join(known)}")
    print(json.dumps(measure(args.quick, args.pairs, args.entry, parts, args.page), indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

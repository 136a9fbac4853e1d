"""Figure 4: the metrics path, from the Trainer's on_log to a drawn chart.

* the StoreCallback's cost per ``on_log`` (Trainer-shaped logs dicts, a real SQLite file on disk);
* store write throughput, one point per call and in batches;
* the Compare page with 20 runs of 100,000 points each: the store reads, the downsampling and
  ``dashboard.figures.compare_figure``;
* one refresh of the Run page for a run with 1,000,000 loss points: the same store reads and figure
  builds that ``dashboard/pages/run.py``'s live fragment makes, called directly (Streamlit's caches
  live 1 s and the fragment reruns every 1.5 s, so a live refresh finds them expired).

Store files live in a temporary folder (the same disk as the repository on this machine).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import log

COMPARE_RUNS, COMPARE_POINTS = 20, 100_000
RUN_PAGE_POINTS = 1_000_000
# What the dashboard asks the store for per plotted line (dashboard/data.py MAX_POINTS).
MAX_POINTS = 1000
RUN_PAGE_KEYS = ("loss", "eval_loss", "eval_accuracy", "eval_f1", "learning_rate")
EVAL_KEYS = ("eval_accuracy", "eval_f1")


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[dict[str, Any], Any]:
    """Wall and CPU milliseconds of ``repeat`` calls (after one warm-up call), and the last result.

    The CPU time (this process only: SQLite, pandas, plotly all run on the calling thread) is what a
    call costs on an idle machine; on this shared box the wall time also holds the time spent waiting
    for a core, which was several times longer whenever other jobs ran.
    """
    out = fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return {
        **_summary_ms(wall),
        "cpu_median_ms": float(np.median(cpu)),
        "raw_ms": wall,
        "raw_cpu_ms": cpu,
    }, out


def _summary_ms(times: list[float]) -> dict[str, float]:
    arr = np.asarray(times)
    return {
        "median_ms": float(np.median(arr)),
        "p95_ms": float(np.percentile(arr, 95)),
        "max_ms": float(arr.max()),
        "n": len(arr),
    }


# --------------------------------------------------------------------------------------------------
# the callback
# --------------------------------------------------------------------------------------------------


def train_log(step: int) -> dict[str, float]:
    """A logs dict as Trainer passes it every logging_steps: rounded floats and the epoch."""
    return {
        "loss": round(0.7 * math.exp(-step / 5000) + 0.05, 4),
        "grad_norm": round(1.0 + 0.1 * math.sin(step), 4),
        "learning_rate": 5e-5 * (1 - step / 100_000),
        "epoch": round(step / 1000, 4),
    }


def eval_log(step: int) -> dict[str, float]:
    """The logs dict of an evaluation: compute_metrics' keys plus the runtime figures Trainer adds."""
    return {
        "eval_loss": 0.4 + 1e-6 * step,
        "eval_accuracy": 0.85,
        "eval_f1": 0.89,
        "eval_precision": 0.88,
        "eval_recall": 0.9,
        "eval_runtime": 12.3,
        "eval_samples_per_second": 33.2,
        "eval_steps_per_second": 4.1,
        "epoch": round(step / 1000, 4),
    }


def callback_cost(folder: Path, calls: int, url: str) -> dict[str, Any]:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from trainer_core.runs.callback import StoreCallback
    from trainer_core.tracking.store import MetricsStore

    store = MetricsStore(url)
    run_id = store.create_run("bench-callback", {}, run_dir=str(folder))
    callback = StoreCallback(store, run_id)
    args = TrainingArguments(output_dir=str(folder / "out"), report_to="none")
    state, control = TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    train_times, eval_times, cpu_times = [], [], []
    for i in range(calls):
        state.global_step = (i + 1) * 10
        state.epoch = state.global_step / 1000
        # Every 20th call is an evaluation, as with eval_steps = 20 * logging_steps.
        is_eval = i % 20 == 19
        logs = eval_log(state.global_step) if is_eval else train_log(state.global_step)
        start, start_cpu = time.perf_counter(), time.process_time()
        callback.on_log(args, state, control, logs=logs)
        (eval_times if is_eval else train_times).append((time.perf_counter() - start) * 1000)
        cpu_times.append((time.process_time() - start_cpu) * 1000)
    store.close()
    every = train_times + eval_times
    return {
        "train_log": _summary_ms(train_times),
        "eval_log": _summary_ms(eval_times),
        "all": {**_summary_ms(every), "cpu_median_ms": float(np.median(cpu_times))},
    }


# --------------------------------------------------------------------------------------------------
# write throughput
# --------------------------------------------------------------------------------------------------


def write_throughput(url: str, per_call_points: int, batched_points: int, batch: int) -> dict[str, Any]:
    from trainer_core.tracking.store import MetricsStore

    store = MetricsStore(url)
    run_id = store.create_run("bench-writes", {})
    start = time.perf_counter()
    for step in range(per_call_points):
        store.log_metrics(run_id, {"loss": 1.0 / (step + 1)}, step=step, epoch=step / 1000)
    per_call_s = time.perf_counter() - start

    now = time.time()
    start = time.perf_counter()
    for first in range(0, batched_points, batch):
        store.log_points(
            [(run_id, "batched", s, s / 1000, 1.0 / (s + 1), now + s) for s in range(first, first + batch)]
        )
    batched_s = time.perf_counter() - start
    store.close()
    return {
        "per_call": {
            "points": per_call_points,
            "seconds": per_call_s,
            "points_per_s": per_call_points / per_call_s,
        },
        "batched": {
            "points": batched_points,
            "batch": batch,
            "seconds": batched_s,
            "points_per_s": batched_points / batched_s,
        },
    }


# --------------------------------------------------------------------------------------------------
# synthetic runs for the read paths
# --------------------------------------------------------------------------------------------------


def _loss_curve(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n + 1)
    return 0.65 * np.exp(-steps / (n / 4)) + 0.05 + rng.normal(0, 0.02, n)


def fill_run(store, run_id: str, key: str, n: int, seed: int, every: int = 1, chunk: int = 100_000) -> None:
    """Write ``n`` points of ``key`` at steps every, 2*every, ... in chunks, as a long run would."""
    values = _loss_curve(n, seed)
    t0 = time.time() - n
    for first in range(0, n, chunk):
        rows = [
            (run_id, key, (i + 1) * every, (i + 1) * every / 1000, float(values[i]), t0 + i)
            for i in range(first, min(n, first + chunk))
        ]
        store.log_points(rows)


def compare_refresh(store, run_ids: list[str], labels: dict[str, str]):
    """What the Compare page does for one metric: runs, their keys, downsampled series, the figure."""
    import pandas as pd

    from dashboard.figures import compare_figure

    runs = [store.get_run(r) for r in run_ids]
    for run in runs:
        store.metric_keys(run["id"])
    frames = [
        store.get_series(run["id"], "loss", max_points=MAX_POINTS).assign(run_id=run["id"], key="loss")
        for run in runs
    ]
    long = pd.concat(frames, ignore_index=True)
    origins = {r["id"]: r.get("started_at") for r in runs}
    return compare_figure(long, "loss", x="step", labels=labels, origins=origins)


def run_page_refresh(launcher, run_id: str):
    """The reads and figures of one live refresh of the Run page (pages/run.py render_panel)."""
    from dashboard.figures import eval_figure, loss_figure, lr_figure

    store = launcher.store
    run = store.get_run(run_id)
    launcher.progress(run)
    store.best_metrics(run_id, keys=list(EVAL_KEYS))
    store.last_metrics(run_id)
    keys = set(store.metric_keys(run_id))
    got = {k: store.get_series(run_id, k, max_points=MAX_POINTS) for k in RUN_PAGE_KEYS if k in keys}
    figures = [
        loss_figure(got.get("loss"), got.get("eval_loss"), 0.0, uirevision=run_id),
        eval_figure({k: got.get(k) for k in EVAL_KEYS}, "eval_accuracy", uirevision=run_id),
        lr_figure(got.get("learning_rate"), uirevision=run_id),
    ]
    store.events(run_id, limit=100)
    return figures


def _to_json(figures) -> int:
    # st.plotly_chart sends each figure to the browser as JSON; this is that serialisation.
    return sum(len(fig.to_json()) for fig in figures)


# --------------------------------------------------------------------------------------------------


def measure(quick: bool = False) -> dict[str, Any]:
    """Every figure on a SQLite file, then again on a PostgreSQL server (top level and ``postgresql``)."""
    from tests.pg import postgres_server

    out: dict[str, Any] = {"quick": quick}
    folder = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        out.update(measure_backend(folder / "sqlite", quick, urls=None))
        log("metrics path: the same on PostgreSQL (a local server with fsync on)")
        with postgres_server(durable=True) as server:
            out["postgresql"] = measure_backend(folder / "postgresql", quick, urls=server.new_database)
            out["postgresql"]["server"] = server.url("").rsplit("@", 1)[1]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def measure_backend(folder: Path, quick: bool, urls: Callable[[], str] | None) -> dict[str, Any]:
    """The figures on one backend: SQLite files in ``folder``, or a new database from ``urls()`` each."""
    from trainer_core import Launcher
    from trainer_core.runs.folder import LOG_FILE

    folder.mkdir(parents=True)

    def url(name: str) -> str:
        return urls() if urls else f"sqlite:///{folder / name}"

    repeat = 5 if quick else 15
    compare_runs, compare_points = (4, 20_000) if quick else (COMPARE_RUNS, COMPARE_POINTS)
    run_points = 100_000 if quick else RUN_PAGE_POINTS
    out: dict[str, Any] = {}
    log("metrics path: StoreCallback.on_log")
    out["callback"] = callback_cost(folder, calls=300 if quick else 3000, url=url("callback.db"))
    log(f"  on_log median {out['callback']['all']['median_ms']:.3f} ms")

    log("metrics path: write throughput")
    out["writes"] = write_throughput(
        url("writes.db"),
        per_call_points=500 if quick else 3000,
        batched_points=50_000 if quick else 500_000,
        batch=10_000,
    )
    log(
        f"  per call {out['writes']['per_call']['points_per_s']:.0f} points/s, "
        f"batched {out['writes']['batched']['points_per_s']:.0f} points/s"
    )

    log(f"metrics path: Compare page, {compare_runs} runs x {compare_points} points")
    launcher = Launcher(home=folder / "runs", store_url=url("runs/metrics.db"))
    store = launcher.store
    start = time.perf_counter()
    run_ids = []
    for i in range(compare_runs):
        run_id = store.create_run(f"compare-{i:02d}", {"learning_rate": 1e-5 * (i + 1)}, status="completed")
        store.update_run(run_id, started_at=time.time() - compare_points)
        fill_run(store, run_id, "loss", compare_points, seed=i)
        run_ids.append(run_id)
    fill_s = time.perf_counter() - start
    labels = {r: f"run {i}" for i, r in enumerate(run_ids)}
    refresh, fig = _timed(lambda: compare_refresh(store, run_ids, labels), repeat)
    reads, _ = _timed(lambda: [store.get_series(r, "loss", max_points=MAX_POINTS) for r in run_ids], repeat)
    to_json, _ = _timed(lambda: fig.to_json(), repeat)
    out["compare"] = {
        "runs": compare_runs,
        "points_per_run": compare_points,
        "fill_s": fill_s,
        "fill_points_per_s": compare_runs * compare_points / fill_s,
        "refresh": refresh,
        "series_reads": reads,
        "figure_json": to_json,
        "plotted_points": int(sum(len(t.x) for t in fig.data)),
        "figure_builder": "dashboard.figures.compare_figure",
    }
    log(
        f"  load+downsample+figure median {refresh['median_ms']:.1f} ms wall, {refresh['cpu_median_ms']:.1f} ms "
        f"CPU (+ {to_json['median_ms']:.1f} ms to JSON)"
    )

    log(f"metrics path: Run page, one run with {run_points} loss points")
    run_id = store.create_run(
        "long-run", {"num_train_epochs": 1000}, status="running", run_dir=str(folder / "long")
    )
    store.update_run(run_id, started_at=time.time() - run_points, total_steps=run_points, step=run_points)
    start = time.perf_counter()
    fill_run(store, run_id, "loss", run_points, seed=99)
    fill_run(store, run_id, "learning_rate", run_points // 10, seed=98, every=10)
    for key in ("eval_loss", "eval_accuracy", "eval_f1"):
        fill_run(store, run_id, key, 100, seed=97, every=run_points // 100)
    run_fill_s = time.perf_counter() - start
    # The Trainer prints every log line into the worker's log, which the page tails: make it as long
    # as a run with this many logged steps would have.
    log_dir = folder / "long"
    log_dir.mkdir(exist_ok=True)
    line = "{'loss': '0.1234', 'grad_norm': '1.234', 'learning_rate': '4.99e-05', 'epoch': '12.34'}\n"
    with open(log_dir / LOG_FILE, "w", encoding="utf-8") as fh:
        for _ in range(run_points // 10_000):
            fh.write(line * 10_000)
    refresh, figures = _timed(lambda: run_page_refresh(launcher, run_id), repeat)
    reads, _ = _timed(
        lambda: [store.get_series(run_id, k, max_points=MAX_POINTS) for k in RUN_PAGE_KEYS], repeat
    )
    tail, _ = _timed(lambda: launcher.log_tail(run_id, lines=200), repeat)
    to_json, _ = _timed(lambda: _to_json(figures), repeat)
    out["run_page"] = {
        "loss_points": run_points,
        "learning_rate_points": run_points // 10,
        "eval_points_per_key": 100,
        "total_points": store.count_points(run_id),
        "fill_s": run_fill_s,
        "refresh": refresh,
        "series_reads": reads,
        "log_tail": {**tail, "log_mb": (log_dir / LOG_FILE).stat().st_size / 2**20},
        "figures_json": to_json,
        "refresh_with_log_tail_median_ms": refresh["median_ms"] + tail["median_ms"],
    }
    log(
        f"  reads+figures median {refresh['median_ms']:.1f} ms wall, {refresh['cpu_median_ms']:.1f} ms CPU; "
        f"log tail {tail['median_ms']:.1f} ms ({out['run_page']['log_tail']['log_mb']:.0f} MB log)"
    )
    out["db_mb"] = store_mb(store)
    return out


def store_mb(store) -> float:
    """The store's size on disk: the SQLite file, or the PostgreSQL database."""
    if store.dialect == "postgresql":
        with store.transaction() as conn:
            return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20
    return Path(store.path).stat().st_size / 2**20

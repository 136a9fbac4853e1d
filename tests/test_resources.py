"""Resource use of a run's processes: the sampler on real processes, a real worker's samples in the
store, and their absence from everything that lists metrics (store reads, Compare) and their presence
on the Run page."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import tiny_config
from tests.test_launcher import wait_for
from trainer_core import REPORTED_METRICS, describe_system_series, is_system_series
from trainer_core.runs.launcher import Launcher
from trainer_core.runs.resources import (
    CPU_PERCENT,
    RSS_MB,
    ResourceSampler,
    gpu_key,
    gpu_memory_mb,
)
from trainer_core.runs.worker import HEARTBEAT_EVERY_S
from trainer_core.tracking.status import STOPPED

# A child that holds 120 MB and keeps one core busy, with a grandchild that holds 120 MB more.
_HOLD = "import time; block = bytearray(120 * 2**20); block[::4096] = b'x' * len(block[::4096]); "
_CHILD = (
    "import subprocess, sys\n"
    f"subprocess.Popen([sys.executable, '-c', {_HOLD + 'time.sleep(60)'!r}])\n"
    f"exec({_HOLD + 'end = time.time() + 60'!r})\n"
    "while time.time() < end: pass\n"
)


def test_sampler_sums_cpu_and_memory_over_the_whole_process_tree():
    import psutil

    # The tree is rooted at a child of the test's own: pytest's process also parents the session's
    # servers (PostgreSQL, the Ray cluster), which this test must neither count nor kill.
    child = subprocess.Popen([sys.executable, "-c", _CHILD])
    root = psutil.Process(child.pid)
    try:
        wait_for(lambda: len(root.children()) == 1, timeout=30, what="the grandchild")
        (grandchild,) = root.children()
        sampler = ResourceSampler(child.pid)
        time.sleep(2.0)  # both have touched their memory; the child has spun for a while
        sampler.sample()  # the grandchild's first sample only starts its CPU clock
        time.sleep(1.0)
        both = sampler.sample()
        # 2 x 120 MB held (one interpreter alone is ~10 MB, so the grandchild must be in the sum).
        assert both[RSS_MB] > 2 * 120, both
        # The busy child alone is worth most of a core; this loaded 2-core box still gives it > 15 %.
        assert both[CPU_PERCENT] > 15, both
        grandchild.kill()
        # Not this process's child, so no wait(): dead (a zombie until the child reaps it) is enough.
        wait_for(
            lambda: not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE,
            timeout=10,
            what="the grandchild to die",
        )
        gone = sampler.sample()  # the grandchild exited between samples: simply no longer counted
        assert gone[RSS_MB] < both[RSS_MB] - 100, (gone, both)
    finally:
        for proc in root.children(recursive=True):
            proc.kill()
        child.kill()
        child.wait()


def test_gpu_memory_is_sampled_only_where_this_process_uses_cuda():
    import torch

    if not torch.cuda.is_available():
        # No GPU: nothing is sampled, CUDA is not initialised, and the keys never appear.
        assert gpu_memory_mb() == {} and not torch.cuda.is_initialized()
        assert set(ResourceSampler().sample()) == {CPU_PERCENT, RSS_MB}
        return
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda:0")
    sampled = gpu_memory_mb()
    assert sampled[gpu_key(0, "allocated")] >= 64 and sampled[gpu_key(0, "reserved")] >= 64
    assert sampled[gpu_key(0, "peak")] >= sampled[gpu_key(0, "allocated")]
    del block


def test_system_series_names_and_meanings():
    assert is_system_series(CPU_PERCENT) and is_system_series(gpu_key(1, "peak"))
    assert not any(is_system_series(k) for k in ("loss", "eval_f1", "train_runtime", *REPORTED_METRICS))
    assert describe_system_series(CPU_PERCENT) == ("CPU, % of one core", "%")
    assert describe_system_series(RSS_MB)[1] == "MB"
    assert describe_system_series(gpu_key(1, "reserved")) == ("GPU 1 reserved", "MB")
    assert describe_system_series("system/disk_mb") == ("disk_mb", "MB")  # unknown: named by its key


def test_resource_captions_name_each_series_with_its_unit():
    from dashboard.views.run_resources import latest_values, resource_captions

    frames = {
        RSS_MB: _frame([900.0, 812.4], walls=[20.0, 10.0]),  # out of order: the latest is by wall time
        CPU_PERCENT: _frame([143.2]),
        gpu_key(0, "reserved"): _frame([]),
    }
    latest = latest_values(frames)
    assert latest == {RSS_MB: 900.0, CPU_PERCENT: 143.2}
    assert resource_captions(latest) == [
        "CPU, % of one core: **143 %**",
        "RSS: **900 MB**",
    ]


def _frame(values, walls=None):
    import pandas as pd

    walls = walls if walls is not None else [float(i) for i in range(len(values))]
    return pd.DataFrame({"step": range(len(values)), "epoch": None, "value": values, "wall_time": walls})


# -- a real worker ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sampled_run(tmp_path_factory):
    """A real tiny run that trains until its worker has sampled three times, then stops; (home, id)."""
    home = tmp_path_factory.mktemp("resources") / "runs"
    launcher = Launcher(home=home)
    # Stopped once sampled, whatever the machine's speed: no fixed length of training is long enough.
    config = tiny_config(num_train_epochs=200, eval_strategy="no", save_strategy="no")
    run_id = launcher.launch(config, name="sampled")
    wait_for(
        lambda: launcher.store.count_points(run_id, RSS_MB) >= 3 and launcher.store.get_run(run_id)["step"],
        timeout=300,
        poll=0.5,
        what="three resource samples during training",
    )
    launcher.stop(run_id)
    assert launcher.wait(run_id, timeout=240)["status"] == STOPPED, launcher.log_tail(run_id)
    launcher.store.close()
    return home, run_id


def test_a_real_worker_samples_its_processes_at_the_heartbeat(sampled_run):
    home, run_id = sampled_run
    store = Launcher(home=home).store
    run = store.get_run(run_id)
    keys = store.metric_keys(run_id, system=True)
    import torch

    assert set(keys) == {CPU_PERCENT, RSS_MB} or torch.cuda.is_available(), keys
    rss, cpu = store.get_series(run_id, RSS_MB), store.get_series(run_id, CPU_PERCENT)
    assert len(rss) == len(cpu) >= 3
    # The worker has torch and a model loaded: far above an idle Python's ~10 MB.
    assert (rss["value"] > 50).all() and (cpu["value"] >= 0).all() and cpu["value"].max() > 0
    # One sample per beat, at the step the run had reached then.
    gaps = np.diff(np.sort(rss["wall_time"].to_numpy()))
    assert (gaps > 0.9 * HEARTBEAT_EVERY_S).all() and np.median(gaps) < 2 * HEARTBEAT_EVERY_S, gaps
    by_time = rss.sort_values("wall_time")
    assert by_time["step"].is_monotonic_increasing and by_time["step"].max() <= run["step"]


def test_system_series_are_no_metrics(sampled_run):
    home, run_id = sampled_run
    store = Launcher(home=home).store
    assert store.count_points(run_id, RSS_MB) >= 3  # there, and yet:
    listed = {
        "metric_keys": store.metric_keys(run_id),
        "last_metrics": store.last_metrics(run_id),
        "best_metrics": store.best_metrics(run_id),
        "get_metrics": set(store.get_metrics([run_id])["key"]),
        "summary": store.get_run(run_id)["summary"] or {},
    }
    assert "loss" in listed["metric_keys"] and "loss" in listed["best_metrics"]
    for where, keys in listed.items():
        assert not any(is_system_series(k) for k in keys), where
    assert set(store.last_metrics(run_id, system=True)) == set(store.metric_keys(run_id, system=True))


def test_compare_offers_no_system_series_and_the_run_page_charts_them(sampled_run, monkeypatch):
    from tests.test_dashboard_app import open_page

    home, run_id = sampled_run
    monkeypatch.setenv("TRAINER_CORE_HOME", str(home))
    monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    at = open_page("views/compare.py")
    at.multiselect(key="compare.runs").set_value([run_id]).run()
    assert not at.exception, [e.value for e in at.exception]
    options = at.selectbox(key="compare.metric").options
    assert "loss" in options and not any(is_system_series(o) for o in options), options

    at = open_page("views/run.py", run=run_id)
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum("CPU, % of one core" in s and '"RSS"' in s for s in specs) == 1, specs
    captions = "\n".join(c.value for c in at.caption)
    assert "RSS: **" in captions and " MB**" in captions

"""The dashboard's side of Ray runs: New run's where-to-run part, the cluster panel, where each run
trains, and a queued Ray run's reason, in AppTest against the real 2-node cluster of the ``ray_cluster``
fixture (tests/ray_cluster.py). The Chromium path is in tests/test_e2e_ray.py.

Ray's start of a job's driver and its workers is most of the time (~30-60 s a run on two busy cores),
so each run makes several checks.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import form as F
from tests.conftest import tiny_config
from tests.test_launcher import wait_for
from trainer_core import config_from_dict
from trainer_core.runs import ray_jobs
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, QUEUED, RUNNING, STOPPED

pytestmark = pytest.mark.timeout(600)

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
# tiny-bert on 64 rows, batch 8 on each of 2 workers: 4 steps an epoch, 3 epochs.
SMALL = {
    "max_train_samples": "64",
    "max_eval_samples": "32",
    "max_seq_length": "32",
    "num_train_epochs": "3",
    "learning_rate": "1e-3",
    "logging_steps": "1",
}


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def errors_near(at: AppTest, key: str) -> str:
    """The errors in the form column holding the widget ``key`` (its own error slot)."""
    column = next(c for c in at.columns if any(w.key == key for w in c.text_input))
    return texts(column.error)


def progress_texts(at: AppTest) -> str:
    return "\n".join(e.proto.text for e in at.get("progress"))


def open_page(page: str, run: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    if run:
        at.query_params["run"] = run
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def ray_form() -> AppTest:
    """New run with tiny-bert on a slice of the built-in reviews, on the Ray cluster."""
    at = open_page("views/new_run.py")
    at.selectbox(key="new.model_builtin").set_value("builtin:tiny-bert").run()
    for name, value in SMALL.items():
        at.text_input(key=F.key(name)).set_value(value).run()
    at.radio(key=F.key("executor")).set_value("ray").run()
    assert not at.exception, at.exception
    return at


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the form's model, without a cluster ----------------------------------------------------------------


def test_where_to_run_goes_into_the_config_and_back():
    values = {
        **F.DEFAULTS,
        "executor": "ray",
        "ray_address": " http://head:8265 ",
        "num_workers": "4",
        "use_gpu": True,
        "resources_per_worker": '{"CPU": 2, "GPU": 1}',
        "storage_path": "/mnt/shared/runs",
        "num_processes": "2",  # the Processes box is hidden under Ray: not read
    }
    config, errors, _ = F.form_to_config(values)
    assert errors == {}
    minimal = config_from_dict(config).to_dict(minimal=True)
    assert {k: minimal.get(k) for k in ("executor", "ray_address", "num_workers", "use_gpu")} == {
        "executor": "ray",
        "ray_address": "http://head:8265",
        "num_workers": 4,
        "use_gpu": True,
    }
    assert minimal["resources_per_worker"] == {"CPU": 2, "GPU": 1} and "num_processes" not in minimal
    back = F.config_to_form(minimal)  # a clone of the Ray run: the same cluster and workers
    assert {k: back[k] for k in F.WHERE_DEFAULTS} == {
        **{k: values[k] for k in F.WHERE_DEFAULTS},
        "ray_address": "http://head:8265",
    }
    assert back["advanced_json"] == ""  # every field has its widget

    # On this machine the Ray boxes are hidden and not read, whatever they hold.
    config, errors, _ = F.form_to_config({**values, "executor": "local", "num_workers": "x"})
    assert errors == {} and config["executor"] == "local" and "num_workers" not in config
    assert config_from_dict(config).run.num_processes == 2


def test_an_unreachable_cluster_is_said_not_raised(runs_home, monkeypatch):
    address = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv(ray_jobs.ADDRESS_ENV, address)
    at = open_page("views/runs.py")
    assert f"Ray cluster** at `{address}`" in texts(at.markdown)
    assert "Cannot read this Ray cluster" in texts(at.warning) and address in texts(at.warning)

    at = ray_form()  # the address this machine is pointed at is offered, and filled in
    assert at.text_input(key=F.key("ray_address")).value == address
    assert f"ray_address: {address}" in texts(at.code)
    button(at, "new.start").click().run()
    assert not at.exception
    assert "Not started: ray_address: cannot reach the Ray cluster" in texts(at.error)


# -- on the cluster -----------------------------------------------------------------------------------


def test_new_run_on_the_cluster_runs_live_and_shows_where(ray_cluster, runs_home, monkeypatch):
    from trainer_core.runs.launcher import Launcher

    monkeypatch.setenv(ray_jobs.ADDRESS_ENV, ray_cluster.address)
    at = ray_form()
    assert f"Ray cluster at {ray_cluster.address}" in at.radio(key=F.key("executor")).options
    # The engine's rules, under the field's own box, with Start disabled.
    for name, bad, words in (
        ("num_workers", "0", "must be greater than 0"),
        ("num_workers", "two", "expected a whole number"),
        ("resources_per_worker", '{"GPU": 1}', "turn use_gpu on"),
        ("storage_path", "shared/runs", "absolute path"),
    ):
        at.text_input(key=F.key(name)).set_value(bad).run()
        assert words in errors_near(at, F.key(name)), (name, bad, texts(at.error))
        assert button(at, "new.start").disabled, (name, bad)
        at.text_input(key=F.key(name)).set_value(F.DEFAULTS[name]).run()
    at.text_input(key=F.key("num_workers")).set_value("2").run()
    assert not at.error and not button(at, "new.start").disabled, texts(at.error)
    shown = texts(at.code)
    assert "executor: ray" in shown and "num_workers: 2" in shown
    assert f"ray_address: {ray_cluster.address}" in shown
    assert "Goes to the Ray cluster" in texts(at.caption)  # not this machine's queue forecast

    began = time.monotonic()
    button(at, "new.start").click().run()
    assert not at.exception, at.exception
    launcher = Launcher(home=runs_home)
    (run,) = launcher.store.list_runs()
    try:
        assert at.query_params["run"] == run["id"] and run["config"]["num_workers"] == 2
        where = f"Ray cluster at {ray_cluster.address} · job trainer-core-{run['id']}-0"
        assert where in texts(at.caption)
        wait_for(
            lambda: (r := launcher.store.get_run(run["id"]))["status"] == RUNNING and (r["step"] or 0) >= 1,
            timeout=240,
            what="the Ray run to train",
        )
        first_step_s = time.monotonic() - began
        at = open_page("views/run.py", run=run["id"])  # the Run page of a training run: its live step
        assert re.search(r"running · step [1-9]\d* / 12", progress_texts(at)), progress_texts(at)
        assert where in texts(at.caption)

        at.switch_page("views/runs.py")
        at.run()
        table = next(d for d in at.dataframe if "Where" in d.value.columns).value
        assert table.loc[run["id"], "Where"] == where
        assert f"Ray cluster** at `{ray_cluster.address}` · 2 nodes alive" in texts(at.markdown)
        nodes = next(d for d in at.dataframe if "Role" in d.value.columns).value
        assert sorted(nodes["Role"]) == ["head", "worker"] and set(nodes["State"]) == {"alive"}

        done = launcher.wait(run["id"], timeout=240)
        assert done["status"] == COMPLETED, (done["error"], launcher.log_tail(run["id"]))
        print(f"\ndashboard Ray run: Start to first step {first_step_s:.1f} s")
    finally:
        if launcher.store.get_run(run["id"])["status"] in ACTIVE_STATUSES:
            launcher.stop(run["id"], force=True)


def test_a_ray_run_waiting_for_resources_shows_rays_reason(ray_cluster, launcher):
    # Three one-CPU workers on a cluster of two CPUs: Ray keeps the run waiting for resources.
    run_id = launcher.launch(
        {**tiny_config(), "executor": "ray", "ray_address": ray_cluster.address, "num_workers": 3},
        preflight=False,
    )
    try:
        reason = wait_for(
            lambda: (r := launcher.ray_wait_reason(launcher.store.get_run(run_id))) and "place" in r and r,
            timeout=180,
            poll=1,
            what="Ray to start the driver and wait for the workers' resources",
        )
        assert "waiting for Ray to place 3 worker(s) of 1 CPU each" in reason, reason
        assert launcher.store.get_run(run_id)["status"] == QUEUED

        at = open_page("views/run.py", run=run_id)
        assert "Queued on the Ray cluster: waiting for Ray to place 3 worker(s)" in texts(at.info)

        at.switch_page("views/runs.py")
        at.run()
        # The queue panel lists it as waiting on the cluster; its cancel stops the Ray job.
        assert "on the Ray cluster at" in texts(at.caption)
        button(at, f"queue.cancel.{run_id}").click().run()
        assert not at.exception
        assert launcher.store.get_run(run_id)["status"] == STOPPED
        wait_for(
            lambda: (
                ray_jobs.job_state(ray_cluster.address, f"trainer-core-{run_id}-0")[0]
                in (ray_jobs.JOB_STOPPED, ray_jobs.JOB_FAILED)
            ),
            timeout=60,
            what="Ray to stop the job",
        )
    finally:
        if launcher.store.get_run(run_id)["status"] in ACTIVE_STATUSES:
            launcher.stop(run_id, force=True)

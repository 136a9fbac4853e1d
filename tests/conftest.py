"""Shared fixtures: a fresh runs folder and store per test, the shared MRPC data, small run configs.

The store is SQLite unless a test is marked ``both_stores``: then it runs twice, on a SQLite file and
on a fresh database of a real PostgreSQL server that the session starts on first need (tests/pg.py) and
stops at its end. A missing server fails those tests (with the command that installs it), never skips.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MRPC = REPO.parent / "shared" / "data" / "mrpc"

# Nothing here may reach the network: the built-ins and local files are all a test needs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def mrpc_dir() -> Path:
    if not (SHARED_MRPC / "train.tsv").is_file():
        pytest.fail(f"the shared MRPC data is missing at {SHARED_MRPC} (CI puts ../shared beside the clone)")
    return SHARED_MRPC


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config):
    config.addinivalue_line("markers", "both_stores: run the test on a SQLite store and a PostgreSQL one")


def pytest_generate_tests(metafunc):
    if "store_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_stores"):
        metafunc.parametrize("store_backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server for the whole session, stopped (and its data removed) at its end."""
    from tests.pg import postgres_server

    try:
        context = postgres_server()
        server = context.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        context.__exit__(None, None, None)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real Ray cluster (a head and a worker node on 127.0.0.1) for the whole session, stopped at its
    end; its token is in this process's environment meanwhile, as a user exports it (tests/ray_cluster.py)."""
    from tests.ray_cluster import ray_cluster as start_cluster

    context = start_cluster()
    try:
        cluster = context.__enter__()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    saved = {key: os.environ.get(key) for key in cluster.env}
    os.environ.update(cluster.env)
    _reload_ray_auth()
    try:
        yield cluster
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_ray_auth()
        context.__exit__(None, None, None)


def _reload_ray_auth() -> None:
    # Ray reads RAY_AUTH_MODE and the token once per process and caches both; a user exports them before
    # starting the dashboard or CLI, but this process may have imported Ray before the cluster existed.
    import sys

    if "ray" not in sys.modules:
        return
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@pytest.fixture
def store_backend(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def store_url(store_backend, tmp_path, request) -> str:
    """A fresh store's URL: a SQLite file in the test's folder, or a new PostgreSQL database."""
    if store_backend == "postgresql":
        return request.getfixturevalue("pg_server").new_database()
    return f"sqlite:///{tmp_path / 'metrics.db'}"


@pytest.fixture
def runs_home(tmp_path, monkeypatch, store_backend, request) -> Path:
    """The runs folder; its store is ``<home>/metrics.db``, or a fresh PostgreSQL database (via
    ``TRAINER_CORE_DB``, which launchers, workers and the CLI all read) for ``both_stores`` tests."""
    home = tmp_path / "runs"
    monkeypatch.setenv("TRAINER_CORE_HOME", str(home))
    if store_backend == "postgresql":
        monkeypatch.setenv("TRAINER_CORE_DB", request.getfixturevalue("store_url"))
    else:
        monkeypatch.delenv("TRAINER_CORE_DB", raising=False)
    return home


@pytest.fixture
def launcher(runs_home):
    from trainer_core.runs.launcher import Launcher

    return Launcher(home=runs_home)


def tiny_config(**overrides) -> dict:
    """A run of the random tiny BERT on a slice of the built-in reviews: seconds on a CPU."""
    config = {
        "model_name_or_path": "builtin:tiny-bert",
        "dataset_name": "builtin:rotten-tomatoes",
        "max_train_samples": 96,
        "max_eval_samples": 48,
        "max_seq_length": 32,
        "num_train_epochs": 2,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 48,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "seed": 7,
    }
    config.update(overrides)
    return config


@pytest.fixture
def tiny_run_config():
    return tiny_config


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A real tmpfs mounted at ``path`` (a small disk to fill, or a read-only one that stops root too).

    Tests run as root here and in CI; a machine where mounting fails fails the test instead of skipping
    it, as a missing server would.
    """
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.fail(f"mounting a tmpfs at {path} failed (tests need root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)

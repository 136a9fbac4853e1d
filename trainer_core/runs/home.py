"""The runs folder and the store beside it: where they are, that they are usable, that they agree.

Read from the environment (``TRAINER_CORE_HOME``, ``TRAINER_CORE_DB``) or given by the caller; a
problem with either is a ``ConfigError`` naming the variable, so the CLI and the dashboard show one line
saying what to change instead of a traceback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trainer_core.errors import ConfigError, StoreDamagedError, os_error_reason
from trainer_core.runs.folder import CONFIG_FILE, LOG_FILE
from trainer_core.runs.pointers import followed
from trainer_core.tracking.postgres import display_url, is_postgres_url
from trainer_core.tracking.schema import sqlite_path
from trainer_core.tracking.store import MetricsStore

STORE_FILE = "metrics.db"


def default_home() -> Path:
    return Path(os.environ.get("TRAINER_CORE_HOME", "runs")).expanduser().resolve()


def usable_home(home: str | os.PathLike | None = None) -> Path:
    """The runs folder (default ``$TRAINER_CORE_HOME`` or ``./runs``), created and checked writable.

    Raises:
        ConfigError: (field ``TRAINER_CORE_HOME``) it cannot be created or written.
    """
    path = Path(home).expanduser().resolve() if home else default_home()
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A real write: os.access says yes to root on a folder that is not writable for other reasons.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(
            "TRAINER_CORE_HOME",
            f"cannot use {path} as the runs folder ({os_error_reason(exc)}): point TRAINER_CORE_HOME "
            "(or --home) at a folder you can write to",
        ) from exc
    return path


def default_store_url(home: str | os.PathLike, store_url: str | None = None) -> str:
    """The store URL: the one given, else ``$TRAINER_CORE_DB``, else ``sqlite:///<home>/metrics.db``."""
    return store_url or os.environ.get("TRAINER_CORE_DB") or f"sqlite:///{Path(home) / STORE_FILE}"


def run_folders(home: Path) -> list[Path]:
    """The folders of runs that were launched (those holding a config and a log), oldest first; a
    pointer to a folder kept elsewhere (a Ray run's ``storage_path``) gives that folder."""
    # launch() writes the config, records the run, then starts the worker, whose log appears last: a
    # folder with both files had its row in the store, while one with only a config may be mid-launch.
    found = [p for p in home.iterdir() if (p / CONFIG_FILE).is_file() and (p / LOG_FILE).is_file()]
    return sorted((followed(p) for p in found), key=lambda p: p.name)


def open_store(home: Path, store_url: str, **options) -> MetricsStore:
    """Open the store of a runs folder, refusing one that has lost runs whose folders are on disk.

    A missing, empty (0-byte) or run-less store beside launched run folders means the history was lost
    (the file was deleted, emptied or replaced); opening it as it is would show "no runs yet" and
    write new runs over that history, so this raises instead.

    Raises:
        StoreDamagedError: the file is damaged, or empty beside existing run folders.
        ConfigError: the URL is unsupported, the file cannot be opened or the server reached.
    """
    if is_postgres_url(store_url):
        # A server's database has no file to be missing or emptied: only "no runs" can show a loss. With
        # several machines on one store, any machine's runs make it not lost.
        path, fresh = display_url(store_url), False
    else:
        path = sqlite_path(store_url)
        fresh = path == ":memory:" or not os.path.exists(path) or os.path.getsize(path) == 0
    if fresh and path != ":memory:" and (folders := run_folders(home)):
        # Checked before opening: opening would write the schema, and the next open would see an
        # ordinary store with no runs.
        raise StoreDamagedError(path, _lost(path, folders))
    store = MetricsStore(store_url, **options)
    # A run-less store is normal (a new home, or every run deleted with its folder); one beside
    # launched run folders lost them. Deleting the last run removes its row before its folder, so an
    # open during that rmtree could raise here once; it clears when the folder is gone.
    if not fresh and not store.has_any_run() and (folders := run_folders(home)):
        store.close()
        raise StoreDamagedError(path, _lost(path, folders))
    return store


def _lost(path: str, folders: list[Path]) -> str:
    if is_postgres_url(path):
        state = "has no runs"
    elif not os.path.exists(path):
        state = "is missing"
    elif os.path.getsize(path) == 0:
        state = "is empty (0 bytes)"
    else:
        state = "has no runs"
    return f"{state}, but {len(folders)} run folder(s) are on disk (e.g. {folders[-1].name})"

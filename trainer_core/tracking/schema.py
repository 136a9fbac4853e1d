"""The store's schema and how a SQLite file is opened: its DDL, numbered migrations, damage checks.

The DDL and the migrations serve PostgreSQL too (``postgres.py`` runs them in its own types, and keeps
the version in a table); the rest of this module is the SQLite file's. A SQLite database records its schema version in ``PRAGMA user_version``. Opening one applies every migration it
has not had yet, in order, each in its own ``BEGIN IMMEDIATE`` transaction that also bumps the version,
so two processes opening one file at once (two workers starting together) apply each step exactly once:
the second waits for the write lock, re-reads the version and finds the step done. To change the schema,
append one function to ``MIGRATIONS``; never edit a released one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from trainer_core.errors import ConfigError, StoreDamagedError, os_error_reason

# The schema as the first release wrote it, with no version stamp (user_version 0). Every statement is
# IF NOT EXISTS, so stamping a database that already has it is a no-op apart from the version.
BASELINE = (
    """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    pid INTEGER,
    host TEXT,
    heartbeat_at REAL,
    step INTEGER,
    epoch REAL,
    total_steps INTEGER,
    error TEXT,
    traceback TEXT,
    summary TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    run_dir TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    start_step INTEGER NOT NULL DEFAULT 0,
    train_began_at REAL
)""",
    """CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    step INTEGER NOT NULL,
    epoch REAL,
    value REAL NOT NULL,
    wall_time REAL NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS metrics_by_series ON metrics (run_id, key, step)",
    """CREATE TABLE IF NOT EXISTS metric_rollups (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    width INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    min_step INTEGER NOT NULL,
    min_epoch REAL,
    min_value REAL NOT NULL,
    min_wall REAL NOT NULL,
    max_step INTEGER NOT NULL,
    max_epoch REAL,
    max_value REAL NOT NULL,
    max_wall REAL NOT NULL,
    PRIMARY KEY (run_id, key, width, bucket)
)""",
    """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT
)""",
    "CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id)",
)


def _v1_baseline(conn: sqlite3.Connection) -> None:
    """Version 1: the first release's tables (a new file gets them; a version-0 file is only stamped)."""
    for statement in BASELINE:
        conn.execute(statement)


def _v2_run_notes(conn: sqlite3.Connection) -> None:
    """Version 2: a run's free-text ``note`` and its ``tags`` (a JSON list of strings)."""
    conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN tags TEXT")


def _v3_run_queue(conn: sqlite3.Connection) -> None:
    """Version 3: the run queue (see ``runs/queue.py``).

    ``queue_seq`` orders launches (set when a run enters the queue; NULL for runs made outside it),
    ``priority`` goes first (higher starts sooner), ``num_gpus`` is what the run asks for, ``devices`` (a
    JSON list) what it holds while active: NULL while it waits, so a queued run with devices is starting.
    ``resume_from`` is the checkpoint a queued resume starts from.
    """
    for column in (
        "priority INTEGER NOT NULL DEFAULT 0",
        "queue_seq INTEGER",
        "num_gpus INTEGER",
        "devices TEXT",
        "resume_from TEXT",
    ):
        conn.execute(f"ALTER TABLE runs ADD COLUMN {column}")
    # Runs active before the queue existed hold no slot: they are left to finish as they were started.
    conn.execute("UPDATE runs SET devices = '[]' WHERE status IN ('queued', 'running', 'stopping')")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, host)")


def _v4_sweeps(conn: sqlite3.Connection) -> None:
    """Version 4: sweeps (see ``sweeps/``) and which trial of which sweep a run is.

    A sweep's Optuna study lives in Optuna's own tables in the same database (``studies``, ``trials``,
    ``trial_params``, ... and ``version_info``/``alembic_version``: none of them is a name used here);
    this row holds what Optuna does not keep: the spec (base config, space, budget), the sweep's status,
    and a lease (``lock_token``, ``lock_until``) that makes one process at a time tell the study and
    ask it for trials. ``runs.sweep_id`` and ``runs.trial_number`` link a trial's run to its sweep.
    """
    conn.execute(
        """CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    study_name TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    parallel INTEGER NOT NULL,
    n_trials INTEGER NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    host TEXT,
    lock_token TEXT,
    lock_until REAL
)"""
    )
    conn.execute("ALTER TABLE runs ADD COLUMN sweep_id TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN trial_number INTEGER")
    conn.execute("CREATE INDEX IF NOT EXISTS runs_by_sweep ON runs (sweep_id, trial_number)")


def _v5_ray_jobs(conn: sqlite3.Connection) -> None:
    """Version 5: where a run on a Ray cluster runs (see ``runs/ray_executor.py``): the cluster's Jobs
    address and the Ray job of its current attempt. NULL for runs on this machine."""
    conn.execute("ALTER TABLE runs ADD COLUMN ray_address TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN ray_job_id TEXT")


# MIGRATIONS[i] takes a database from version i to i + 1. Each runs inside a transaction that the caller
# commits: use conn.execute (executescript would commit on its own half way), and only DDL that both
# dialects accept once postgres.ddl has swapped the types (ADD COLUMN, CREATE TABLE/INDEX IF NOT EXISTS).
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _v1_baseline,
    _v2_run_notes,
    _v3_run_queue,
    _v4_sweeps,
    _v5_ray_jobs,
)

# PRAGMA quick_check reads every page: 298 ms for a 115 MB store of 1M points (measured, warm cache),
# against 0.3 ms for the rest of the open; too slow for every open by every worker, CLI command and
# dashboard. Files up to this size are checked at open (26 MB, 250k points: 58 ms); bigger ones get
# SQLite's own header and size checks (junk headers and truncation are caught by them at any size),
# damage found later by a query is reported the same way (see ``damage_error``), and ``rebuild-store``
# always runs the full check.
QUICK_CHECK_MAX_BYTES = 32 << 20

# Each connection's page cache (SQLite's default: 2 MiB). In WAL mode a reader's cache is emptied at the
# start of every read after another connection committed, so while a run trains, a watching dashboard's
# connections re-read the pages they need at every refresh however big the cache is; what a bigger cache
# changes is how many of those pages are separate allocations (SQLite keeps the first ~20 in one block and
# mallocs each page past them). Measured on a 90k-point run with a writer committing every 20 ms, one
# refresh's questions made 1,545 allocations with 2 MiB and 1,094 with 256 KiB (-30 %), and the store's
# figures (Compare 20 x 100k, the 1M-point Run page, on_log) did not move beyond their run-to-run spread.
PAGE_CACHE_KIB = 256

_ENV_HINT = "point TRAINER_CORE_DB (or --db) at a file in a writable folder"


def sqlite_path(url: str) -> str:
    """The file named by a SQLite store URL (``sqlite:///path``, or a plain path). Raises ConfigError."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :] or ":memory:"
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            "TRAINER_CORE_DB",
            f"unsupported metrics store URL scheme {scheme!r} in {url!r}: use sqlite:////absolute/path/metrics.db "
            "or postgresql://user@host:port/database (or unset TRAINER_CORE_DB to use <home>/metrics.db)",
        )
    return url


def connect(path: str, busy_timeout_s: float, auto_checkpoint: bool = True) -> sqlite3.Connection:
    """A connection with the store's settings (autocommit: transactions are begun explicitly)."""
    # check_same_thread=False: a connection passes to another thread once its own has ended (never two
    # at once; see tracking/connections.py).
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        execute_when_unlocked(conn, "PRAGMA journal_mode=WAL", busy_timeout_s)
        # NORMAL is durable across process crashes in WAL mode; only an OS crash can drop the last
        # commits, and a metrics store can afford that for 2-3x faster commits.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
        if not auto_checkpoint:
            conn.execute("PRAGMA wal_autocheckpoint=0")
    except BaseException:
        conn.close()
        raise
    return conn


def execute_when_unlocked(conn: sqlite3.Connection, sql: str, timeout_s: float) -> None:
    """Run ``sql``, retrying while another process holds the lock it needs (up to ``timeout_s``).

    ``BEGIN IMMEDIATE`` and the switch of a new file to WAL can answer "database is locked" at once,
    without SQLite's busy handler: six processes creating one file together failed 1 time in a few
    runs under load before the WAL switch was retried too.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def open_database(
    path: str,
    busy_timeout_s: float,
    auto_checkpoint: bool = True,
    quick_check_max_bytes: int = QUICK_CHECK_MAX_BYTES,
    migrations: Sequence[Callable[[sqlite3.Connection], None]] = MIGRATIONS,
) -> sqlite3.Connection:
    """Open (or create) a store file: check it is a sound SQLite database and bring its schema up to date.

    Raises:
        StoreDamagedError: not a SQLite file, truncated, or failing ``PRAGMA quick_check``.
        ConfigError: the file or its folder cannot be created or written.
    """
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                "TRAINER_CORE_DB",
                f"cannot create the folder of the metrics store {path} ({os_error_reason(exc)}): {_ENV_HINT}",
            ) from exc
    try:
        conn = connect(path, busy_timeout_s, auto_checkpoint)
        try:
            # The first read makes SQLite check the header, and the page count it records against the
            # file's size: junk in the header and a truncated file both fail here, cheaply.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            if path != ":memory:" and _size(path) <= quick_check_max_bytes:
                verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
                if verdict != "ok":
                    raise StoreDamagedError(path, f"fails SQLite's quick_check ({verdict.splitlines()[-1]})")
            migrate(conn, migrations, busy_timeout_s)
        except BaseException:
            conn.close()
            raise
    except sqlite3.DatabaseError as exc:
        error = damage_error(path, exc) or _unusable(path, exc)
        if error is None:
            raise
        raise error from exc
    return conn


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Callable[[sqlite3.Connection], None]] = MIGRATIONS,
    busy_timeout_s: float = 30.0,
) -> int:
    """Apply the migrations a database lacks, one transaction each; returns its version afterwards."""
    latest = len(migrations)
    version = user_version(conn)  # the common case, an up-to-date file, takes no write lock
    if version > latest:
        raise ConfigError(
            None,
            f"the metrics store has schema version {version}, newer than this trainer_core knows "
            f"({latest}): upgrade trainer_core, or point TRAINER_CORE_DB at another file",
        )
    while version < latest:
        with write_transaction(conn, busy_timeout_s):
            # Another process may have applied this step while we waited for the lock.
            version = user_version(conn)
            if version < latest:
                migrations[version](conn)
                version += 1
                conn.execute(f"PRAGMA user_version = {version}")
    return version


def user_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection, busy_timeout_s: float):
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error), retrying while another writer holds the lock."""
    # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
    # deadlocking on a read-to-write upgrade.
    execute_when_unlocked(conn, "BEGIN IMMEDIATE", busy_timeout_s * 2)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def damage_error(path: str, exc: sqlite3.DatabaseError) -> StoreDamagedError | None:
    """The project error for SQLite's "not a database" and "malformed" errors (None for any other)."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF  # primary code of an extended one
    if code == sqlite3.SQLITE_NOTADB:
        return StoreDamagedError(path, "is not a SQLite database (its header is damaged)")
    if code == sqlite3.SQLITE_CORRUPT:
        return StoreDamagedError(path, f"is damaged or truncated (SQLite: {exc})")
    return None


def _unusable(path: str, exc: sqlite3.DatabaseError) -> ConfigError | None:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_PERM):
        return ConfigError("TRAINER_CORE_DB", f"cannot open the metrics store {path} ({exc}): {_ENV_HINT}")
    return None


def _size(path: str) -> int:
    # The write-ahead log counts too: quick_check reads the pages it holds.
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))

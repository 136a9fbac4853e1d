"""The store's two dialects behind one small interface: SQLite (a file) and PostgreSQL (a server).

``MetricsStore`` writes its SQL once, with ``?`` placeholders, and asks its backend only for what
differs: how to connect, how a write transaction begins, rows by column name, the table's columns, the
one query SQLite answers with a bare column beside MIN/MAX, and the errors its driver raises. What only a
file has (WAL checkpoints, quick_check, the damage checks, moving a damaged file aside) stays on the
SQLite side.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

from trainer_core.tracking import postgres, schema


class SQLiteBackend:
    """A store file: WAL, one writer at a time (``BEGIN IMMEDIATE``), damage reported by file name."""

    kind = "sqlite"
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    # BEGIN IMMEDIATE already holds the only write lock: a claim's SELECT needs no row locks.
    lock_rows = ""

    def __init__(self, url: str, busy_timeout_s: float, auto_checkpoint: bool, quick_check_max_bytes: int):
        self.path = schema.sqlite_path(url)
        self.where = self.path
        self.busy_timeout_s = busy_timeout_s
        self.auto_checkpoint = auto_checkpoint
        self.quick_check_max_bytes = quick_check_max_bytes

    def open(self) -> sqlite3.Connection:
        return schema.open_database(
            self.path, self.busy_timeout_s, self.auto_checkpoint, self.quick_check_max_bytes
        )

    def connect(self) -> sqlite3.Connection:
        with self.reported():
            return schema.connect(self.path, self.busy_timeout_s, self.auto_checkpoint)

    def usable(self, conn: sqlite3.Connection) -> bool:
        return True

    def reusable(self, conn: sqlite3.Connection) -> bool:
        # Handed to another thread only between transactions (a thread never ends inside one: the
        # store's transactions are ``with`` blocks).
        return not conn.in_transaction

    @contextlib.contextmanager
    def reported(self) -> Iterator[None]:
        # Damage that the checks at open could not see (a big file is not quick_checked, a file damaged
        # while open) surfaces in whichever query meets it: report it as the project error there too.
        try:
            yield
        except sqlite3.DatabaseError as exc:
            error = schema.damage_error(self.path, exc)
            if error is None:
                raise
            raise error from exc

    def transaction(self, conn: sqlite3.Connection, serialize: str | None = None):
        # Every SQLite write transaction is serialised by the file lock, named or not.
        return schema.write_transaction(conn, self.busy_timeout_s)

    def pipeline(self, conn: sqlite3.Connection):
        return contextlib.nullcontext()

    def rows(self, conn: sqlite3.Connection, sql: str, params: tuple) -> list[Any]:
        cursor = conn.execute(sql, params)
        cursor.row_factory = sqlite3.Row
        return cursor.fetchall()

    def columns(self, conn: sqlite3.Connection, table: str) -> list[str]:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def extremes_sql(self, where: str, lo: int, width: float) -> str:
        """Each step bucket's minimum and maximum point (columns step, epoch, value, wall_time)."""
        # SQLite-specific: a bare column next to MIN()/MAX() comes from the row holding that extreme.
        bucket = f"CAST((step - {int(lo)}) / {width!r} AS INTEGER)"
        return (
            f"SELECT step, epoch, MIN(value), wall_time FROM metrics WHERE {where} GROUP BY {bucket} "
            f"UNION ALL "
            f"SELECT step, epoch, MAX(value), wall_time FROM metrics WHERE {where} GROUP BY {bucket}"
        )


class PostgresBackend:
    """A database on a PostgreSQL server, shared by the workers and launchers of several machines."""

    kind = "postgresql"
    # SELECT ... FOR UPDATE SKIP LOCKED: two claimers never take one row, and neither waits for the other.
    lock_rows = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, **_sqlite_options: Any):
        import psycopg

        self.url = url
        self.where = postgres.display_url(url)
        self.errors = (psycopg.Error,)

    def open(self) -> postgres.PgConnection:
        return postgres.open_database(self.url, schema.MIGRATIONS)

    def connect(self) -> postgres.PgConnection:
        return postgres.connect(self.url)

    def usable(self, conn: postgres.PgConnection) -> bool:
        # A connection the server dropped (a restart, an idle timeout) is replaced at the next query.
        return not conn.broken

    def reusable(self, conn: postgres.PgConnection) -> bool:
        return not conn.broken and conn.idle

    @contextlib.contextmanager
    def reported(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def transaction(self, conn: postgres.PgConnection, serialize: str | None = None):
        with conn.raw.transaction():
            if serialize is not None:
                # Claimers of one name queue here, as SQLite's writers queue on the file lock; the lock
                # ends with the transaction.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (serialize,))
            yield conn

    def pipeline(self, conn: postgres.PgConnection):
        """Send the statements of the block without waiting for each answer (psycopg's pipeline mode)."""
        return conn.raw.pipeline()

    def rows(self, conn: postgres.PgConnection, sql: str, params: tuple) -> list[Any]:
        from psycopg.rows import dict_row

        return conn.raw.cursor(row_factory=dict_row).execute(postgres.pyformat(sql), params).fetchall()

    def columns(self, conn: postgres.PgConnection, table: str) -> list[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [row[0] for row in rows]

    def checkpoint(self, conn: postgres.PgConnection) -> None:
        """Nothing to do: the server checkpoints its own log."""

    def extremes_sql(self, where: str, lo: int, width: float) -> str:
        """Each step bucket's minimum and maximum point (columns step, epoch, value, wall_time)."""
        bucket = f"FLOOR((step - {int(lo)}) / {width!r})"
        pick = f"SELECT DISTINCT ON ({bucket}) step, epoch, value, wall_time FROM metrics WHERE {where}"
        return (
            f"({pick} ORDER BY {bucket}, value, step) UNION ALL ({pick} ORDER BY {bucket}, value DESC, step)"
        )


def backend_for(
    url: str, busy_timeout_s: float, auto_checkpoint: bool, quick_check_max_bytes: int
) -> SQLiteBackend | PostgresBackend:
    """The backend of a store URL. Raises ConfigError for a scheme that is neither."""
    if postgres.is_postgres_url(url):
        return PostgresBackend(url)
    return SQLiteBackend(url, busy_timeout_s, auto_checkpoint, quick_check_max_bytes)


def placeholders(values: Iterable[Any]) -> str:
    """``?, ?, ?`` for an IN list of these values."""
    return ", ".join("?" for _ in values)

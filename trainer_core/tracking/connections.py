"""The store's connections: one per thread at a time, kept for the next thread when a thread ends.

A connection serves one thread (a sqlite3 connection must not be used by two at once, and two threads'
statements on one PostgreSQL socket would interleave). Where threads are short-lived, opening a fresh
connection for each one is what costs: Streamlit runs every page refresh in a new thread, so a live page
opened a connection per refresh (on PostgreSQL a TCP connection and a login), and on SQLite the ended
threads' connections stayed open until the garbage collector found them. Here a thread's connection
goes back to an idle list when the thread ends, and the next thread takes it, its schema already read.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

# Idle connections kept for later threads: a dashboard has a few threads asking at once (a page run,
# the version route's pool); more would only hold file handles or server connections nobody uses.
MAX_IDLE = 4


class _Lease:
    """The calling thread's hold on one connection; it dies with the thread (or when replaced)."""

    __slots__ = ("conn", "pid", "__weakref__")

    def __init__(self, conn: Any, pid: int):
        self.conn = conn
        self.pid = pid


class _Idle:
    """Connections no thread holds; shared by a store's leases without referring to the store itself,
    so that a store nobody uses any more is still collected (and its connections closed)."""

    def __init__(self, reusable: Callable[[Any], bool], max_idle: int):
        self.reusable = reusable
        self.max_idle = max_idle
        self.conns: list[Any] = []
        self.lock = threading.Lock()
        self.closed = False

    def take(self) -> Any | None:
        while True:
            with self.lock:
                if not self.conns:
                    return None
                conn = self.conns.pop()
            if self.reusable(conn):
                return conn
            _close(conn)

    def give_back(self, conn: Any, pid: int) -> None:
        if pid != os.getpid():
            return  # inherited over fork(): the parent still uses it
        with self.lock:
            if not self.closed and len(self.conns) < self.max_idle:
                self.conns.append(conn)
                return
        _close(conn)

    def close_all(self) -> None:
        with self.lock:
            self.closed, conns, self.conns = True, self.conns, []
        for conn in conns:
            _close(conn)


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # one that cannot close cleanly is dropped all the same
        conn.close()


class ThreadConnections:
    """Hands each thread a connection of its own, re-using those of threads that ended.

    Args:
        connect: opens a new connection.
        usable: whether the calling thread's connection can still serve (a dropped PostgreSQL one cannot).
        reusable: whether an idle connection can be handed to another thread (not in a transaction).
        first: a connection already open for the constructing thread (the one that migrated the schema).
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        usable: Callable[[Any], bool],
        reusable: Callable[[Any], bool],
        first: Any | None = None,
        max_idle: int = MAX_IDLE,
    ):
        self._connect = connect
        self._usable = usable
        self._idle = _Idle(reusable, max_idle)
        self._local = threading.local()
        if first is not None:
            self._lease(first)

    def _lease(self, conn: Any) -> Any:
        lease = _Lease(conn, os.getpid())
        # Runs when the thread ends (its thread-local values are dropped) or the lease is replaced.
        weakref.finalize(lease, self._idle.give_back, conn, lease.pid).atexit = False
        self._local.lease = lease
        return conn

    def get(self) -> Any:
        """The calling thread's connection, taken from the idle ones or opened."""
        lease = getattr(self._local, "lease", None)
        if lease is not None and lease.pid == os.getpid() and self._usable(lease.conn):
            return lease.conn
        # None yet, or one to replace: an unusable one (its finalizer hands it back, and ``reusable``
        # turns it away there) or a parent process's after fork() (never used or closed here).
        return self._lease(self._idle.take() or self._connect())

    def close(self) -> None:
        """Close the calling thread's connection and the idle ones; other threads' stay theirs."""
        lease = getattr(self._local, "lease", None)
        self._local.lease = None
        if lease is not None and lease.pid == os.getpid():
            conn, lease.conn = lease.conn, None
            _close(conn)
        self._idle.close_all()

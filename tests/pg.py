"""A real PostgreSQL server for the tests (and the benchmarks): started once, one database per use.

Debian's ``postgresql`` package keeps ``initdb`` and ``pg_ctl`` in the server's versioned folder, off
the PATH. As root the server must run as the ``postgres`` user (it refuses to run as root), so the data
folder is made in /tmp (pytest's own temporary folders are private to root) and handed to that user.
Only TCP on 127.0.0.1, a free port, no fsync: a throwaway server for tests starts in ~2 s and stops (an
immediate shutdown: nothing in it is worth keeping) in well under one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PG_VERSIONS = ("15", "16", "17")
MISSING = (
    "PostgreSQL's server programs (initdb, pg_ctl) are missing: run `make pg` (it installs Debian's "
    "`postgresql` package), or set PG_BIN to the folder that holds them"
)


def server_bin() -> Path:
    """The folder holding initdb and pg_ctl ($PG_BIN, else Debian's /usr/lib/postgresql/<version>/bin)."""
    candidates = [Path(os.environ["PG_BIN"])] if os.environ.get("PG_BIN") else []
    candidates += [Path(f"/usr/lib/postgresql/{v}/bin") for v in PG_VERSIONS]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise RuntimeError(MISSING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server: ``url(name)`` for a database on it, ``new_database()`` for a fresh one."""

    def __init__(self, root: Path, port: int, bin_dir: Path, user: str | None, durable: bool = False):
        self.root, self.port, self.bin_dir, self.user = root, port, bin_dir, user
        self.durable = durable
        self.data = root / "data"
        self._names = itertools.count()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """Create an empty database and return its URL (each test gets its own)."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")

    def start(self) -> None:
        done = self._run(
            self.bin_dir / "initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--locale=C.UTF-8",
            "--encoding=UTF8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.data} "
            "-c max_connections=200"
        )
        if not self.durable:  # a benchmark keeps the server's defaults; tests need no crash safety
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        done = self._run(
            self.bin_dir / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "server.log",
            "-o",
            options,
            "-w",
            "start",
        )
        if done.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {done.stdout.strip()}\n{log}")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(durable: bool = False) -> Iterator[PostgresServer]:
    """Start a throwaway server and stop exactly it afterwards, even when the block fails.

    Args:
        durable: keep fsync and full-page writes on (for benchmarks); tests run without them.
    """
    bin_dir = server_bin()
    root = Path(tempfile.mkdtemp(prefix="trainer-core-pg-"))
    user = None
    if os.geteuid() == 0:  # postgres refuses to run as root: hand the folder to its own user
        user = "postgres"
        account = pwd.getpwnam(user)
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PostgresServer(root, free_port(), bin_dir, user, durable)
    began = time.monotonic()
    try:
        server.start()
        server.started_in_s = time.monotonic() - began
        yield server
    finally:
        server.stop()

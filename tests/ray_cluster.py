"""A real Ray cluster for the tests (and the benchmarks): a head and a second node, both on loopback.

Each node is one ``ray start --block`` process in a session of its own, so this module owns exactly the
processes it started: stopping kills each node's whole process tree (raylet, GCS, dashboard, the job
drivers and training workers under them) and nothing else. ``ray stop`` would end every Ray process on
the machine, another test session's included. Everything binds to 127.0.0.1 on ports chosen free (Ray
otherwise advertises the machine's external interface), token authentication is on as Ray 2.60 has it
by default (the token lives in the environment, never in ``~/.ray``), and the session folder is a
throwaway ``--temp-dir``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

from tests.pg import free_port

RAY = str(Path(sys.executable).with_name("ray"))
# The ports every node opens besides the GCS and the dashboard (the head's own); each gets a free one.
_NODE_PORTS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


class RayCluster:
    """A running cluster: ``address`` (the Jobs API, what ``ray_address`` takes) and ``env`` (what a
    client needs: the token)."""

    def __init__(self, root: Path):
        self.root = root
        self.token = secrets.token_hex(16)
        self.env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.nodes: list[subprocess.Popen] = []

    def _start_node(self, head: bool, num_cpus: int, log_name: str) -> subprocess.Popen:
        cmd = [RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}"]
        # A session folder per node, as on separate machines: sharing one, both nodes' log monitors
        # tailed the same worker logs and every line reached the job's driver (and train.log) twice.
        temp = self.root / ("ray" if head else f"ray-{len(self.nodes)}")
        cmd += ["--num-gpus=0", "--disable-usage-stats", f"--temp-dir={temp}"]
        if head:
            cmd += ["--head", f"--port={self.gcs_port}", "--dashboard-host=127.0.0.1"]
            cmd += [f"--dashboard-port={self.dashboard_port}", f"--ray-client-server-port={free_port()}"]
        else:
            cmd += [f"--address=127.0.0.1:{self.gcs_port}"]
        for option in _NODE_PORTS:
            cmd.append(f"{option}={free_port()}")
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.root / log_name, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.root
            )
        self.nodes.append(proc)
        return proc

    def _api(self, path: str):
        request = urllib.request.Request(
            self.address + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def alive_nodes(self) -> int:
        summary = self._api("/nodes?view=summary")["data"]["summary"]
        return sum(1 for node in summary if node["raylet"]["state"] == "ALIVE")

    def _wait_for_nodes(self, count: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            for proc in self.nodes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Ray node exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                if self.alive_nodes() >= count:
                    return
            except OSError as exc:  # the dashboard is not up yet
                last = exc
            time.sleep(0.5)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout_s} s ({last})")

    def start(self, head_cpus: int = 1, worker_cpus: int = 1) -> None:
        began = time.monotonic()
        self._start_node(head=True, num_cpus=head_cpus, log_name="head.log")
        self._wait_for_nodes(1)
        self.head_started_in_s = time.monotonic() - began
        self._start_node(head=False, num_cpus=worker_cpus, log_name="worker.log")
        self._wait_for_nodes(2)
        self.started_in_s = time.monotonic() - began

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(
            p.read_text(errors="replace")[-chars:] for p in sorted(self.root.glob("*.log")) if p.is_file()
        )

    def stop(self) -> None:
        """Kill every process of the nodes this cluster started (their whole trees), then its folder."""
        processes = []
        for node in self.nodes:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(node.pid)
                processes += [root, *root.children(recursive=True)]
        # Nothing in a test cluster is worth a graceful shutdown: Ray's own took over 15 s here, with
        # processes lingering after it.
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(processes, timeout=15)
        for node in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def ray_cluster(head_cpus: int = 1, worker_cpus: int = 1) -> Iterator[RayCluster]:
    """Start a head and one worker node on 127.0.0.1, and stop exactly them afterwards."""
    # A short path: Ray's socket files live under the temp dir and Unix socket paths are limited to
    # 107 bytes.
    cluster = RayCluster(Path(tempfile.mkdtemp(prefix="tc-ray-", dir="/tmp")))
    try:
        cluster.start(head_cpus, worker_cpus)
        yield cluster
    finally:
        cluster.stop()

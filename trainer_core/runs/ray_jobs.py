"""This machine's side of a Ray cluster: its address, its nodes and free resources, and the Ray jobs that
train runs (submitted, watched, stopped through Ray's Jobs API).

Ray is imported here on first use only: a run on this machine never loads it (~1.5 s and ~150 MB).
Token authentication (on by default since Ray 2.60) is Ray's own: the client reads ``RAY_AUTH_MODE=token``
and the token (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) from the environment,
as ``ray job submit`` does.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import shlex
import sys
from typing import Any

from trainer_core.errors import ConfigError

ADDRESS_ENV = "TRAINER_CORE_RAY_ADDRESS"
# The Python that runs the job's driver on the cluster: a bare `python` there may have no Ray and no
# trainer_core. Default: this one, so every node needs this environment at this path.
PYTHON_ENV = "TRAINER_CORE_RAY_PYTHON"
DRIVER_MODULE = "trainer_core.runs.ray_driver"
# Passed to the job (its driver and its workers): a node's own environment comes from its `ray start`.
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE")
# Ray's job states, as its JobStatus enum spells them.
JOB_PENDING, JOB_RUNNING, JOB_STOPPED, JOB_SUCCEEDED, JOB_FAILED = (
    "PENDING",
    "RUNNING",
    "STOPPED",
    "SUCCEEDED",
    "FAILED",
)
JOB_GONE = "GONE"  # not a Ray state: the cluster does not know the job (deleted, or a new cluster)
_AUTH_HINT = (
    "check the address (the head's Jobs address, e.g. http://head-node:8265) and that the cluster is up; "
    "with Ray's token authentication, export RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN)"
)


def resolve_address(address: str | None) -> str:
    """The cluster's Jobs address: the config's ``ray_address``, else ``$TRAINER_CORE_RAY_ADDRESS``.

    Raises:
        ConfigError: (field ``ray_address``) neither is set.
    """
    address = (address or os.environ.get(ADDRESS_ENV) or "").strip()
    if not address:
        raise ConfigError(
            "ray_address",
            f"a run on a Ray cluster needs the cluster's address: set ray_address (e.g. "
            f"http://head-node:8265) or export {ADDRESS_ENV}",
        )
    if "://" not in address:
        address = "http://" + address  # what `ray job submit --address head:8265` assumes too
    return address.rstrip("/")


def job_id_for(run_id: str, attempt: int) -> str:
    """The Ray job (submission id) of a run's attempt: one per attempt, named for the run."""
    return f"trainer-core-{run_id}-{attempt}"


@functools.lru_cache(maxsize=8)
def _client(address: str):
    # Creating a client asks the cluster for its version (one HTTP round trip): made once per address.
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address)


def job_client(address: str):
    """A Ray ``JobSubmissionClient`` for the cluster. Raises ConfigError when Ray is missing or the
    cluster cannot be reached (field ``ray_address``)."""
    try:
        import ray  # noqa: F401 - only to say clearly that it is missing
    except ImportError as exc:
        raise ConfigError(
            "executor", "runs on a Ray cluster need Ray on this machine: pip install 'ray[default,train]'"
        ) from exc
    try:
        return _client(address)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, AuthenticationError, RuntimeError ...
        raise ConfigError(
            "ray_address", f"cannot reach the Ray cluster at {address} ({_first_line(exc)}): {_AUTH_HINT}"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_TOTALS = ("cpus", "gpus", "free_cpus", "free_gpus", "memory", "free_memory")


def configured_address() -> str | None:
    """The cluster address this machine is pointed at (``$TRAINER_CORE_RAY_ADDRESS``, in the form
    :func:`resolve_address` gives it), or None when none is."""
    try:
        return resolve_address(None)
    except ConfigError:
        return None


# -- the cluster -------------------------------------------------------------------------------------


def cluster_status(address: str) -> dict[str, Any]:
    """The cluster's nodes and what is free on them.

    Args:
        address: the Jobs address (see :func:`resolve_address`).
    Returns:
        ``{"address", "nodes": [{"node_id", "ip", "is_head", "alive", "cpus", "gpus", "free_cpus",
        "free_gpus", "memory", "free_memory"}], "cpus", "gpus", "free_cpus", "free_gpus", "memory",
        "free_memory", "this_machine"}``, the totals over the alive nodes; ``memory`` is Ray's
        schedulable memory in bytes. ``this_machine`` is True when every node is on this machine (then
        the runs folder and a SQLite store are shared).
    Raises:
        ConfigError: (field ``ray_address``) the cluster cannot be reached.
    """
    from ray.util.state import list_nodes

    client = job_client(address)
    try:
        nodes = list_nodes(address=address, detail=True, raise_on_missing_output=False)
        # Free resources per node: the autoscaler's report, what Ray's own dashboard shows. The public
        # alternative (ray.available_resources) would join the cluster as a driver first.
        usage = client._do_request("GET", "/api/cluster_status").json()["data"]["clusterStatus"]
    except Exception as exc:  # noqa: BLE001 - an HTTP error, a cluster going away meanwhile
        raise ConfigError(
            "ray_address", f"cannot read the Ray cluster at {address} ({_first_line(exc)}): {_AUTH_HINT}"
        ) from exc
    by_node = (usage.get("loadMetricsReport") or {}).get("usageByNode") or {}
    out = []
    for node in nodes:
        used = by_node.get(node.node_id, {})
        cpus = float(node.resources_total.get("CPU", 0))
        gpus = float(node.resources_total.get("GPU", 0))
        # Ray's "memory" resource: what its scheduler may hand out (bytes; ~70% of the node's free RAM at
        # its start by default), not the node's RAM.
        memory = float(node.resources_total.get("memory", 0))
        alive = node.state == "ALIVE"
        out.append(
            {
                "node_id": node.node_id,
                "ip": node.node_ip,
                "is_head": bool(node.is_head_node),
                "alive": alive,
                "cpus": cpus,
                "gpus": gpus,
                "free_cpus": (cpus - used.get("CPU", [0, 0])[0]) if alive else 0.0,
                "free_gpus": (gpus - used.get("GPU", [0, 0])[0]) if alive else 0.0,
                "memory": memory,
                "free_memory": (memory - used.get("memory", [0, 0])[0]) if alive else 0.0,
            }
        )
    alive = [n for n in out if n["alive"]]
    return {
        "address": address,
        "nodes": out,
        **{key: sum(n[key] for n in alive) for key in _TOTALS},
        "this_machine": bool(alive) and all(is_this_machine(n["ip"]) for n in alive),
    }


def is_this_machine(ip: str) -> bool:
    """True for a loopback address or one of this machine's own interfaces."""
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return True
    except ValueError:
        return False
    import psutil

    return any(a.address == ip for addresses in psutil.net_if_addrs().values() for a in addresses)


# -- jobs --------------------------------------------------------------------------------------------


def submit_run(
    address: str, run_id: str, run_dir: str, store_url: str, attempt: int, resume_from: str | None
) -> str:
    """Submit an attempt of a run as a Ray job whose driver trains it; returns the job's id.

    The driver runs in the cluster, so the run outlives this process (a dashboard closed, a CLI ended).
    """
    python = os.environ.get(PYTHON_ENV) or sys.executable
    argv = [python, "-m", DRIVER_MODULE, "--run-id", run_id, "--run-dir", run_dir, "--store", store_url]
    argv += ["--attempt", str(attempt)] + (["--resume-from", resume_from] if resume_from else [])
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    env.update(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    return job_client(address).submit_job(
        entrypoint=shlex.join(argv),
        submission_id=job_id_for(run_id, attempt),
        runtime_env={"env_vars": env},
        metadata={"trainer_core_run": run_id, "attempt": str(attempt)},
    )


def job_state(address: str, job_id: str) -> tuple[str, str]:
    """A job's state (``PENDING`` ... ``FAILED``, or ``GONE`` when the cluster does not know it) and
    Ray's message about it."""
    client = job_client(address)
    try:
        info = client.get_job_info(job_id)
    except RuntimeError as exc:
        if "does not exist" in str(exc):
            return JOB_GONE, f"the Ray cluster at {address} has no job {job_id}"
        raise
    return str(getattr(info.status, "value", info.status)), short_message(info.message or "")


def short_message(message: str) -> str:
    """Ray's message about a job, in one line: a failed job's quotes its driver's last 20,000
    characters of log, of which the last line is the one that says why."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    first = lines[0].split(", last available logs")[0]
    return f"{first}; the driver's last words: {lines[-1]}"


def stop_job(address: str, job_id: str) -> bool:
    """Stop a job now (Ray sends its driver SIGTERM, then SIGKILL; its workers go with it)."""
    try:
        return bool(job_client(address).stop_job(job_id))
    except RuntimeError as exc:
        if "does not exist" in str(exc):
            return False
        raise

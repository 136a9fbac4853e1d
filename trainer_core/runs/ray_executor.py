"""Runs on a Ray cluster (``executor: ray``): the launcher's side, mixed into ``Launcher``.

A Ray run skips this machine's queue: it holds no local slot (its ``devices`` are ``[]``, so the queue
never claims it) and goes straight to the cluster as a Ray job (``ray_jobs.submit_run``), whose driver
(``ray_driver.py``) outlives the dashboard or CLI that submitted it. The run's row records the cluster
(``ray_address``) and the job of its current attempt (``ray_job_id``). It stays queued until its rank 0
starts training (Ray may wait for resources), and its folder is on storage every node reaches.

Stop is the store's flag, read by rank 0 and agreed by every rank (as under torchrun); a forced stop
stops the Ray job. Resume submits a new attempt from the last complete checkpoint. Reconcile asks Ray
about the job of each active Ray run: a job that ended (failed, stopped, lost) without the run's outcome
fails the run with Ray's message.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from pathlib import Path
from typing import Any

from trainer_core.config import RunConfig
from trainer_core.errors import ConfigError
from trainer_core.runs import ray_jobs
from trainer_core.tracking.status import FAILED, QUEUED, STOPPED

logger = logging.getLogger(__name__)


def is_ray_run(run: dict[str, Any]) -> bool:
    """True for a run that trains on a Ray cluster (its row names the cluster)."""
    return bool(run.get("ray_address"))


def where_it_runs(run: dict[str, Any]) -> str:
    """Where a run trains, in words: ``Ray cluster at <address> · job <id>``, ``this machine``, or the
    name of the machine whose worker trains it (a shared PostgreSQL store holds other machines' runs)."""
    if is_ray_run(run):
        job = run.get("ray_job_id")
        return f"Ray cluster at {run['ray_address']}" + (f" · job {job}" if job else "")
    host = run.get("host")
    return "this machine" if not host or host == socket.gethostname() else host


def check_cluster_reach(status: dict[str, Any], store_url: str, store_path: str, config: RunConfig) -> None:
    """A cluster with nodes on other machines must reach the run's store and folder from every node:
    a PostgreSQL store, and a ``storage_path`` (a shared mount). A cluster on this machine reaches both.

    Raises:
        ConfigError: (``TRAINER_CORE_DB``) a SQLite store, (``storage_path``) none given.
    """
    if status["this_machine"]:
        return
    address = status["address"]
    elsewhere = sorted(
        {n["ip"] for n in status["nodes"] if n["alive"] and not ray_jobs.is_this_machine(n["ip"])}
    )
    if not store_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "TRAINER_CORE_DB",
            f"the Ray cluster at {address} has nodes on other machines ({', '.join(elsewhere)}), and "
            f"their workers cannot write to this machine's SQLite store {store_path}: point "
            "TRAINER_CORE_DB (or --db) at a PostgreSQL database every node reaches",
        )
    if config.run.storage_path is None:
        raise ConfigError(
            "storage_path",
            f"the Ray cluster at {address} has nodes on other machines ({', '.join(elsewhere)}): give a "
            "folder mounted at the same path on every node and on this machine, for the run's "
            "checkpoints, model and predictions",
        )


class RayExecution:
    """The launcher's Ray side (uses its ``store``, ``home``, ``store_url``, ``stale_after_s``, ``_finish``)."""

    def prepare_ray_config(self, config: RunConfig) -> tuple[RunConfig, Path]:
        """Check a Ray run against its cluster before anything is recorded; returns the config with its
        address resolved (saved with the run, so a replay goes to the same cluster) and the folder its
        run folders go in.

        Raises:
            ConfigError: no address, the cluster cannot be reached, a SQLite store or the runs folder
                with a cluster of other machines (``TRAINER_CORE_DB``, ``storage_path``).
        """
        address = ray_jobs.resolve_address(config.run.ray_address)
        check_cluster_reach(ray_jobs.cluster_status(address), self.store_url, self.store.path, config)
        storage = Path(config.run.storage_path).expanduser() if config.run.storage_path else self.home
        try:
            storage.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError("storage_path", f"cannot create {storage} ({exc.strerror or exc})") from exc
        run = dataclasses.replace(config.run, ray_address=address)
        return dataclasses.replace(config, run=run), storage

    def _submit_to_ray(self, run_id: str, attempt: int, checkpoint: Path | None = None) -> None:
        """Submit an attempt as a Ray job and record its id; a refused submission fails the attempt."""
        run = self.store.get_run(run_id)
        try:
            job_id = ray_jobs.submit_run(
                run["ray_address"],
                run_id,
                str(self.run_dir(run_id)),
                self.store_url,
                attempt,
                str(checkpoint) if checkpoint else None,
            )
        except Exception as exc:  # noqa: BLE001 - ConfigError, an HTTP error: the run records why
            error = f"could not submit the run to the Ray cluster at {run['ray_address']}: {exc}"
            self.store.finish_attempt(run_id, attempt, FAILED, FAILED, f"run failed: {error}", error=error)
            return
        self.store.update_run(run_id, ray_job_id=job_id)
        self.store.add_event(
            run_id,
            "ray_job",
            f"submitted as Ray job {job_id} to {run['ray_address']} (attempt {attempt})",
            {"job_id": job_id, "address": run["ray_address"]},
        )

    def _stop_ray_job(self, run: dict[str, Any]) -> None:
        job_id = run.get("ray_job_id") or ray_jobs.job_id_for(run["id"], run["attempt"])
        try:
            ray_jobs.stop_job(run["ray_address"], job_id)
        except Exception:  # noqa: BLE001 - the cluster is gone: nothing is left to stop there
            logger.warning("could not stop Ray job %s", job_id, exc_info=True)

    def _reconcile_ray_run(self, run: dict[str, Any]) -> bool:
        """Record the end of a Ray run whose job ended without its outcome; True when it was failed."""
        job_id = run.get("ray_job_id")
        if job_id is None:
            # Being submitted (a resume between its claim and its submission), unless for too long.
            if time.time() - (run["heartbeat_at"] or run["created_at"]) <= self.stale_after_s:
                return False
            state, message = ray_jobs.JOB_GONE, "the run was never submitted to the Ray cluster"
        else:
            try:
                state, message = ray_jobs.job_state(run["ray_address"], job_id)
            except Exception:  # noqa: BLE001 - the cluster cannot be reached from here now: ask again later
                logger.warning("could not ask the Ray cluster about run %s", run["id"], exc_info=True)
                return False
        if state in (ray_jobs.JOB_PENDING, ray_jobs.JOB_RUNNING):
            return False
        status, error = self._worker_outcome(run, exit_code=0)
        if status == FAILED:
            if run["stop_requested"] and state == ray_jobs.JOB_STOPPED:
                status, error = STOPPED, None
            else:
                error = f"Ray job {job_id} {state.lower()}: {message or 'no message from Ray'}"
        try:
            return self._finish(run, status, error) and status == FAILED
        except self.store.errors:  # the store refuses writes: try again on the next reconcile
            logger.warning("could not record the end of run %s", run["id"], exc_info=True)
            return False

    def ray_wait_reason(self, run: dict[str, Any]) -> str | None:
        """Why a queued Ray run has not started training, in Ray's words; None when it is not waiting.

        Raises:
            ConfigError: (``ray_address``) the cluster cannot be reached now.
        """
        return wait_reason(run)


def wait_reason(run: dict[str, Any]) -> str | None:
    """Why a queued Ray run has not started training, in Ray's words; None when it is not waiting."""
    if not is_ray_run(run) or run["status"] != QUEUED:
        return None
    job_id = run.get("ray_job_id")
    if job_id is None:
        return "being submitted to the Ray cluster"
    state, message = ray_jobs.job_state(run["ray_address"], job_id)
    if state == ray_jobs.JOB_PENDING:
        return f"Ray job {job_id} is pending: {message or 'waiting for the cluster to start its driver'}"
    config = run.get("config") or {}
    workers = int(config.get("num_workers") or 1)
    each = config.get("resources_per_worker") or {"CPU": 1, **({"GPU": 1} if config.get("use_gpu") else {})}
    free = ray_jobs.cluster_status(run["ray_address"])
    asked = ", ".join(f"{v:g} {k}" for k, v in each.items())
    return (
        f"waiting for Ray to place {workers} worker(s) of {asked} each "
        f"({free['free_cpus']:g} CPU, {free['free_gpus']:g} GPU free in the cluster)"
    )


def queue_entries(store) -> list[dict[str, Any]]:
    """The queued Ray runs (of every machine: the cluster is shared), as entries of the run queue: no
    place in this machine's order (``position`` None, ``on_ray`` True) and Ray's reason for the wait.

    Asking Ray costs one or two HTTP round trips per run; a cluster that does not answer is said in the
    reason, never raised, so a queue listing never fails for it.
    """
    entries = []
    for run in reversed(store.list_runs(statuses=[QUEUED])):  # oldest first, as the queue lists
        if not is_ray_run(run):
            continue
        try:
            reason = wait_reason(run) or "starting"
        except Exception as exc:  # noqa: BLE001 - ConfigError (unreachable), an HTTP error meanwhile
            reason = f"cannot ask the cluster now ({getattr(exc, 'message', None) or exc})"
        entries.append(
            {
                **run,
                "position": None,
                "ahead": None,
                "on_ray": True,
                "reason": f"on the Ray cluster at {run['ray_address']}: {reason}",
            }
        )
    return entries

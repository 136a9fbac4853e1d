"""Starting, supervising, stopping, resuming and deleting runs, each in its own worker process."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from trainer_core.config import RunConfig, config_from_dict, save_config
from trainer_core.errors import ConfigError, RunNotFoundError, RunStateError
from trainer_core.runs.annotations import normalize_tags, save_annotations
from trainer_core.runs.devices import DeviceInventory, visible_devices
from trainer_core.runs.distributed import worker_command
from trainer_core.runs.exits import exit_error, kill_worker, worker_alive
from trainer_core.runs.folder import RunFolder
from trainer_core.runs.home import default_store_url, open_store, usable_home
from trainer_core.runs.pointers import leave_pointer, remove_run_folder
from trainer_core.runs.queue import QueueScheduling
from trainer_core.runs.ray_executor import RayExecution, is_ray_run
from trainer_core.runs.resuming import Resuming
from trainer_core.runs.run_files import RunFiles
from trainer_core.tracking.queue_rows import is_waiting
from trainer_core.tracking.status import (
    ACTIVE_STATUSES,
    FAILED,
    QUEUED,
    STOPPED,
    run_progress,
)
from trainer_core.tracking.store import new_run_id

# A worker beats every few seconds even while loading data or evaluating; a minute of silence means
# the process is gone (SIGKILL, OOM killer, power loss) even if its pid was reused.
DEFAULT_STALE_AFTER_S = 60.0
# How long, at most, a supervisor thread waits between tries to record an outcome the store refused.
SUPERVISOR_RETRY_MAX_S = 5.0

logger = logging.getLogger(__name__)


class Launcher(QueueScheduling, RayExecution, Resuming, RunFiles):
    """Runs fine-tuning jobs in detached worker processes and records them in a metrics store.

    Args:
        home: folder holding one sub-folder per run (default ``$TRAINER_CORE_HOME`` or ``./runs``).
        store_url: metrics store URL (default ``$TRAINER_CORE_DB`` or ``sqlite:///<home>/metrics.db``).
        stale_after_s: heartbeat age after which an active run whose worker cannot be seen is failed.
        inventory: the devices runs are scheduled on (default: this machine's, see ``runs/devices.py``).
    Raises:
        ConfigError: the runs folder or the store URL is unusable (field ``TRAINER_CORE_HOME`` or
            ``TRAINER_CORE_DB``); ``StoreDamagedError`` when the store must be rebuilt.
    """

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        store_url: str | None = None,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
        inventory: DeviceInventory | None = None,
    ):
        self.home = usable_home(home)
        self.store_url = default_store_url(self.home, store_url)
        self.store = open_store(self.home, self.store_url)
        self.stale_after_s = stale_after_s
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self._inventory = inventory

    # -- starting ------------------------------------------------------------------------------------

    def launch(
        self,
        config: RunConfig | dict[str, Any],
        name: str | None = None,
        preflight: bool = True,
        priority: int = 0,
        num_gpus: int | None = None,
        queue: bool = True,
        trial: tuple[str, int] | None = None,
    ) -> str:
        """Validate a config, record the run and queue it; returns at once with the run id.

        The run starts now if a slot is free, else by itself when one frees (see ``runs/queue.py``).

        Args:
            config: a RunConfig or a flat mapping for :func:`config_from_dict`.
            name: display name (default: ``run_name`` from the config, else one made of model and data).
            preflight: check that the checkpoint and dataset load and the columns exist before starting.
            priority: place in the queue (higher starts sooner; equal ones in launch order).
            num_gpus: GPUs the run asks for (default: 1 on a GPU machine, 0 on a CPU-only one).
            queue: False starts the run at once even if its devices are busy (all at once, as before
                the queue).
            trial: (sweep id, trial number) when the run is a sweep's trial (see ``sweeps/``).
        Raises:
            ConfigError: the config, checkpoint, data or ``num_gpus`` is unusable; nothing was started
                or recorded.
        """
        if not isinstance(config, RunConfig):
            config = config_from_dict(dict(config))
        on_ray = config.run.executor == "ray"
        runs_dir = self.home
        if on_ray:  # the cluster's devices, not this machine's: no local slot (see ray_executor.py)
            config, runs_dir = self.prepare_ray_config(config)
        elif num_gpus is None and self.run_queue.inventory.gpus and not config.training.use_cpu:
            num_gpus = config.run.num_processes  # one process per GPU
        if not on_ray:
            num_gpus = self.run_queue.inventory.check_request(num_gpus)
        if preflight:
            config = self.preflighted(config)
        run_id = new_run_id()
        run_dir = runs_dir / run_id
        run_dir.mkdir(parents=True)
        try:  # a folder under a storage_path is found from home through this (see runs/pointers.py)
            leave_pointer(self.home, run_dir)
        except ConfigError:
            run_dir.rmdir()
            raise
        save_config(config, RunFolder(run_dir).config_file)
        name = name or config.training.run_name or default_run_name(config, run_id)
        self.store.create_run(
            name,
            config.to_dict(),
            run_dir=str(run_dir),
            run_id=run_id,
            queue=None if on_ray else {"priority": priority, "num_gpus": num_gpus},
            trial=trial,
        )
        if on_ray:
            self.store.update_run(run_id, devices=[], ray_address=config.run.ray_address)
        save_annotations(self.store, run_id, RunFolder(run_dir))
        self.store.add_event(run_id, "launched", f"run {name!r} launched")
        if on_ray:
            self._submit_to_ray(run_id, attempt=0)
        elif queue:
            self.start_queued()
        else:
            self.run_queue.start_now(run_id, self._spawn_claimed)
        return run_id

    def preflighted(self, config: RunConfig) -> RunConfig:
        """``config`` once its checkpoint and data load and its columns exist, with the columns it left
        empty filled in. Raises ConfigError."""
        from trainer_core.runs.preflight import preflight as check

        mapping = check(config)["data"].get("mapping") or {}
        # Columns left empty are saved as the data preparation resolved them, so the saved config
        # (and Compare's diff of it) says which columns the run used, and a replay uses the same.
        used = {f: mapping[f] for f in ("text_column", "text_pair_column", "label_column") if f in mapping}
        return dataclasses.replace(config, data=dataclasses.replace(config.data, **used))

    def worker_command(
        self,
        run_id: str,
        attempt: int,
        checkpoint: Path | None = None,
        devices: Sequence[int] | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """The command line (and environment additions) that trains ``attempt`` of a run: one worker, or
        torchrun's agent with the config's ``num_processes`` ranks; ``devices``: the only GPU ids its
        processes see. Raises ConfigError (``num_processes``) for more processes than ``devices``."""
        args = ["--run-id", run_id, "--run-dir", str(self.run_dir(run_id)), "--store", self.store_url]
        args += ["--attempt", str(attempt)] + (["--resume-from", str(checkpoint)] if checkpoint else [])
        return worker_command(args, self.config_of(run_id), devices)

    def _spawn(
        self, run_id: str, attempt: int, checkpoint: Path | None = None, devices: list[str] | None = None
    ) -> None:
        run_dir = self.run_dir(run_id)
        gpus = [int(d.split(":", 1)[1]) for d in devices or () if d.startswith("cuda:")]
        cmd, extra_env = self.worker_command(run_id, attempt, checkpoint, gpus or None)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", **extra_env}
        if devices is not None:
            # The machine's inventory travels along, so the worker starts its successors on all of it.
            env.update(self.run_queue.inventory.to_env(), CUDA_VISIBLE_DEVICES=visible_devices(devices))
        with open(RunFolder(run_dir).log_file, "ab") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} worker {'resume' if checkpoint else 'start'}"
                f" (attempt {attempt}) ===\n".encode()
            )
            log.flush()
            # A new session: the worker survives the dashboard or terminal that started it, and a Ctrl-C
            # there does not reach it.
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
                cwd=os.getcwd(),
            )
        with self._lock:
            self._procs[run_id] = proc
        # Recorded for this attempt only: if the run was stopped or resumed elsewhere meanwhile, the
        # row keeps the newer owner's pid.
        self.store.record_worker(run_id, attempt, proc.pid, socket.gethostname())
        threading.Thread(
            target=self._supervise,
            args=(run_id, proc, attempt, run_dir),
            daemon=True,
            name=f"supervise-{run_id}",
        ).start()

    def _supervise(self, run_id: str, proc: subprocess.Popen, attempt: int, run_dir: Path) -> None:
        code = proc.wait()
        with self._lock:
            if self._procs.get(run_id) is proc:
                del self._procs[run_id]
        # Never give up on recording the outcome: a store that refuses writes (disk full, a long lock)
        # usually takes them again later, and a run left "running" is worse than a late status.
        delay = 0.2
        while True:
            try:
                self._record_exit(run_id, attempt, code)
                break
            except Exception:  # noqa: BLE001 - sqlite3.OperationalError (disk full) and anything else
                if not run_dir.is_dir():  # (the path known at spawn: the store may be what failed)
                    # Its folder is gone (the run was deleted, or its whole runs folder): nothing is left
                    # to record to, and a store inside that folder can never open again.
                    logger.warning("run %s ended after its folder was removed; not recorded", run_id)
                    return
                logger.warning("recording how run %s ended failed; retrying", run_id, exc_info=True)
                time.sleep(delay)
                delay = min(delay * 2, SUPERVISOR_RETRY_MAX_S)
        self._start_queued_quietly()  # its slot is free (the worker usually started the next already)
        self.advance_sweeps()  # and a sweep's trial that died unseen asks for its successor

    def _record_exit(self, run_id: str, attempt: int, code: int) -> None:
        if not self.store.has_run(run_id):
            return  # deleted while running
        run = self.store.get_run(run_id)
        if run["attempt"] != attempt or run["status"] not in ACTIVE_STATUSES:
            return  # the worker recorded its outcome, or the run was stopped or resumed meanwhile
        status, error = self._worker_outcome(run, exit_code=code)
        self._finish(run, status, error)

    def _worker_outcome(self, run: dict[str, Any], exit_code: int | None) -> tuple[str, str | None]:
        """How an attempt whose worker is gone ended: its outcome file, a stop it was asked for, its exit code."""
        outcome = self.folder(run["id"]).read_outcome(run["attempt"])
        if outcome is not None:
            return outcome["status"], outcome.get("error")
        if run["stop_requested"] and (exit_code is None or exit_code < 0):
            return STOPPED, None  # killed on request (stop --force), maybe by another launcher
        if exit_code is None:
            return FAILED, None
        return FAILED, exit_error(exit_code)

    def _finish(self, run: dict[str, Any], status: str, error: str | None) -> bool:
        if status == FAILED:
            message = f"run failed: {error}"
            extra = {"error": error, "traceback": self.log_tail(run["id"], lines=60)}
        else:
            message = f"run {status}" + (" (worker killed on request)" if status == STOPPED else "")
            extra = {"error": error} if error else {}
        return self.store.finish_attempt(run["id"], run["attempt"], status, status, message, **extra)

    # -- watching ------------------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Record the end of active runs whose worker is gone, then start the queued runs that fit;
        returns the ids of those failed.

        Called when a dashboard or CLI starts and on refreshes: a worker killed without a word (SIGKILL,
        a crash of the machine) leaves its run "running" in the store until someone notices, and holds
        its slot until then. Only the run's current attempt is judged, from one read of its row, and
        every write is conditional on that attempt, so a resume or stop made meanwhile by another
        launcher is never overwritten.
        """
        failed = []
        now = time.time()
        host = socket.gethostname()
        for run in self.store.list_runs(statuses=ACTIVE_STATUSES):
            if is_ray_run(run):
                if self._reconcile_ray_run(run):
                    failed.append(run["id"])
                continue
            if is_waiting(run):
                continue  # no worker yet, by design
            with self._lock:
                if run["id"] in self._procs:
                    continue  # our own child: its supervisor thread will report
            beat = run["heartbeat_at"] or run["created_at"]
            stale = now - beat > self.stale_after_s
            # A queued attempt whose pid is not recorded yet is starting: claim_attempt() set its
            # heartbeat, so it has stale_after_s to record one before it is judged.
            gone = (
                run["host"] == host
                and run["pid"] is not None
                and not worker_alive(run["pid"], starting=run["status"] == QUEUED)
            )
            if not (stale or gone):
                continue
            status, error = self._worker_outcome(run, exit_code=None)
            if status == FAILED and error is None:
                why = "its worker process is gone" if gone else f"no heartbeat for {now - beat:.0f} s"
                error = f"worker stopped responding: {why} (killed, out of memory, or the machine restarted)"
            try:
                recorded = self._finish(run, status, error)
            except self.store.errors:  # the store refuses writes (disk full): try again on the next refresh
                logger.warning("could not record the end of run %s", run["id"], exc_info=True)
                continue
            if recorded and status == FAILED:
                failed.append(run["id"])
        self._start_queued_quietly()
        self.advance_sweeps()
        return failed

    def advance_sweeps(self, sweep_id: str | None = None, wait_s: float = 0.0) -> None:
        """Tell the study of ``sweep_id`` (default: every running sweep that needs it) how its ended trials
        went and launch its next ones; a failure is logged, never raised (the next reconcile retries)."""
        # A sweep asks for its next trial when one ends (sweeps/driver.py): whoever sees a trial end does
        # it, so that no daemon has to. Imported here: the sweeps layer sits on top of this one.
        from trainer_core.sweeps.driver import advance_sweeps

        try:
            advance_sweeps(self, sweep_id, wait_s=wait_s)
        except Exception:  # noqa: BLE001 - the next reconcile tries again; the run's outcome is recorded
            logger.warning("could not advance the sweeps", exc_info=True)

    def wait(self, run_id: str, timeout: float | None = None, poll_s: float = 0.5) -> dict[str, Any]:
        """Block until the run reaches a final status (or ``timeout``); returns the run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.store.get_run(run_id)
            if run["status"] not in ACTIVE_STATUSES:
                return run
            if deadline is not None and time.monotonic() > deadline:
                return run
            self.reconcile()
            time.sleep(poll_s)

    def progress(self, run: dict[str, Any]) -> dict[str, Any]:
        """Step, fraction done, elapsed time and ETA of a run (from its row in the store)."""
        return run_progress(run)

    # -- controlling ---------------------------------------------------------------------------------

    def stop(self, run_id: str, force: bool = False) -> None:
        """Ask a run to checkpoint and stop at its next step (``force``: kill it now; it is recorded as
        stopped and resumes from its last complete checkpoint)."""
        run = self.store.get_run(run_id)
        if run["status"] not in ACTIVE_STATUSES:
            raise RunStateError(f"run {run_id} is {run['status']}; only a running run can be stopped")
        if is_waiting(run) and self.store.leave_queue(
            run_id, STOPPED, "removed from the queue before it started"
        ):
            return  # it never started: out of the queue, resumable later like any stopped run
        # The flag is set before the kill, so whoever sees the worker gone (our supervisor thread,
        # another launcher's reconcile) records "stopped", not "killed by SIGKILL".
        self.store.request_stop(run_id)
        self.store.add_event(run_id, "stop_requested", "stop requested: checkpointing at the next step")
        if force:
            run = self.store.get_run(run_id)
            self._kill(run)
            # stop_requested stays set: a worker that had not yet recorded its pid stops at its first step.
            self._finish(run, STOPPED, None)
            self.start_queued()

    def _kill(self, run: dict[str, Any]) -> None:
        if is_ray_run(run):
            self._stop_ray_job(run)
            return
        with self._lock:
            proc = self._procs.get(run["id"])
        pid = proc.pid if proc is not None else run.get("pid")
        if not pid:
            return
        if proc is None and (run.get("host") != socket.gethostname() or not worker_alive(pid, starting=True)):
            return
        kill_worker(pid)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def delete(self, run_id: str) -> None:
        """Remove a run: its worker (killed if still running), its folder and its records."""
        run = self.store.get_run(run_id)
        if run["status"] in ACTIVE_STATUSES:
            self._kill(run)
        run_dir = self.run_dir(run_id)  # before its row goes: under a storage_path it is not in home
        self.store.delete_run(run_id)
        remove_run_folder(self.home, run_id, run_dir)
        if run["status"] in ACTIVE_STATUSES:
            self.start_queued()

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            from trainer_core.errors import ConfigError

            raise ConfigError("run_name", "a run name cannot be empty")
        self.store.rename_run(run_id, name)
        save_annotations(self.store, run_id, self.folder(run_id))

    def annotate(self, run_id: str, note: str | None = None, tags: Iterable[str] | None = None) -> None:
        """Set a run's free-text note and its tags; ``None`` leaves one as it is, ``""`` or ``[]`` clears it.

        Raises:
            ConfigError: (field ``tags``) a tag is too long or holds a comma.
            RunNotFoundError: no such run.
        """
        fields: dict[str, Any] = {}
        if tags is not None:
            fields["tags"] = normalize_tags(tags)
        if note is not None:
            fields["note"] = note.strip() or None
        if fields:
            self.store.update_run(run_id, **fields)
            save_annotations(self.store, run_id, self.folder(run_id))
        elif not self.store.has_run(run_id):
            raise RunNotFoundError(run_id)


def default_run_name(config: RunConfig, run_id: str) -> str:
    model = Path(config.model.model_name_or_path.replace("builtin:", "")).name
    data = config.data.dataset_name or Path(config.data.train_file or "data").stem
    return f"{model}-{Path(data.replace('builtin:', '')).name}-{run_id[-6:]}"

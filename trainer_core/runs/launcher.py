"""Starting, supervising, stopping, resuming and deleting runs, each in its own worker process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from trainer_core.config import RunConfig, config_from_dict, save_config
from trainer_core.errors import RunNotFoundError, RunStateError
from trainer_core.runs.folder import CHECKPOINTS, CONFIG_FILE, LOG_FILE, MODEL, PREDICTIONS, latest_checkpoint
from trainer_core.runs.home import default_store_url, open_store, usable_home
from trainer_core.tracking.status import ACTIVE_STATUSES, COMPLETED, FAILED, QUEUED, STOPPED, run_progress
from trainer_core.tracking.store import new_run_id

# A worker beats every few seconds even while loading data or evaluating; a minute of silence means
# the process is gone (SIGKILL, OOM killer, power loss) even if its pid was reused.
DEFAULT_STALE_AFTER_S = 60.0


class Launcher:
    """Runs fine-tuning jobs in detached worker processes and records them in a metrics store.

    Args:
        home: folder holding one sub-folder per run (default ``$TRAINER_CORE_HOME`` or ``./runs``).
        store_url: metrics store URL (default ``$TRAINER_CORE_DB`` or ``sqlite:///<home>/metrics.db``).
        stale_after_s: heartbeat age after which an active run whose worker cannot be seen is failed.
    Raises:
        ConfigError: the runs folder or the store URL is unusable (field ``TRAINER_CORE_HOME`` or
            ``TRAINER_CORE_DB``); ``StoreDamagedError`` when the store must be rebuilt.
    """

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        store_url: str | None = None,
        stale_after_s: float = DEFAULT_STALE_AFTER_S,
    ):
        self.home = usable_home(home)
        self.store_url = default_store_url(self.home, store_url)
        self.store = open_store(self.home, self.store_url)
        self.stale_after_s = stale_after_s
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- starting ------------------------------------------------------------------------------------

    def launch(
        self, config: RunConfig | dict[str, Any], name: str | None = None, preflight: bool = True
    ) -> str:
        """Validate a config, record the run and start its worker; returns at once with the run id.

        Args:
            config: a RunConfig or a flat mapping for :func:`config_from_dict`.
            name: display name (default: ``run_name`` from the config, else one made of model and data).
            preflight: check that the checkpoint and dataset load and the columns exist before starting.
        Raises:
            ConfigError: the config, checkpoint or data is unusable; nothing was started or recorded.
        """
        if not isinstance(config, RunConfig):
            config = config_from_dict(dict(config))
        if preflight:
            from trainer_core.runs.preflight import preflight as check

            check(config)
        run_id = new_run_id()
        run_dir = self.home / run_id
        run_dir.mkdir(parents=True)
        save_config(config, run_dir / CONFIG_FILE)
        name = name or config.training.run_name or default_run_name(config, run_id)
        self.store.create_run(name, config.to_dict(), run_dir=str(run_dir), run_id=run_id)
        self.store.add_event(run_id, "launched", f"run {name!r} launched")
        self._spawn(run_id, resume=False)
        return run_id

    def _spawn(self, run_id: str, resume: bool) -> None:
        run_dir = self.run_dir(run_id)
        cmd = [
            sys.executable,
            "-m",
            "trainer_core.runs.worker",
            "--run-id",
            run_id,
            "--run-dir",
            str(run_dir),
            "--store",
            self.store_url,
        ]
        if resume:
            cmd.append("--resume")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
        with open(run_dir / LOG_FILE, "ab") as log:
            log.write(
                f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} worker {'resume' if resume else 'start'} ===\n".encode()
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
        self.store.update_run(run_id, pid=proc.pid, host=socket.gethostname(), heartbeat_at=time.time())
        attempt = int(self.store.get_run(run_id).get("attempt") or 0)
        with self._lock:
            self._procs[run_id] = proc
        threading.Thread(
            target=self._supervise, args=(run_id, proc, attempt), daemon=True, name=f"supervise-{run_id}"
        ).start()

    def _supervise(self, run_id: str, proc: subprocess.Popen, attempt: int) -> None:
        code = proc.wait()
        with self._lock:
            if self._procs.get(run_id) is proc:
                del self._procs[run_id]
        if not self.store.has_run(run_id):
            return  # deleted while running
        if code < 0:
            name = (
                signal.Signals(-code).name
                if -code in signal.Signals._value2member_map_
                else f"signal {-code}"
            )
            hint = " (the out-of-memory killer sends SIGKILL)" if code == -signal.SIGKILL else ""
            error = f"worker process was killed by {name}{hint}"
        elif code == 0:
            error = "worker process exited without recording an outcome"
        else:
            error = f"worker process exited with code {code}"
        tail = self.log_tail(run_id, lines=60)
        # Only this attempt's outcome: after a stop the run may already have been resumed by a new worker.
        if self.store.finish_run_if_active(
            run_id, FAILED, expected_attempt=attempt, error=error, traceback=tail, stop_requested=0
        ):
            self.store.add_event(run_id, FAILED, f"run failed: {error}")

    # -- watching ------------------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """Mark active runs whose worker is gone as failed; returns their ids.

        Called when a dashboard or CLI starts and on refreshes: a worker killed without a word (SIGKILL,
        a crash of the machine) leaves its run "running" in the store until someone notices.
        """
        failed = []
        now = time.time()
        host = socket.gethostname()
        for run in self.store.list_runs(statuses=ACTIVE_STATUSES):
            with self._lock:
                if run["id"] in self._procs:
                    continue  # our own child: its supervisor thread will report
            beat = run["heartbeat_at"] or run["created_at"]
            stale = now - beat > self.stale_after_s
            gone = run["host"] == host and run["pid"] is not None and not _worker_alive(run["pid"])
            if not (stale or gone):
                continue
            why = "its worker process is gone" if gone else f"no heartbeat for {now - beat:.0f} s"
            error = f"worker stopped responding: {why} (killed, out of memory, or the machine restarted)"
            if self.store.finish_run_if_active(
                run["id"], FAILED, error=error, traceback=self.log_tail(run["id"], 60)
            ):
                self.store.add_event(run["id"], FAILED, f"run failed: {error}")
                failed.append(run["id"])
        return failed

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
        """Ask a run to checkpoint and stop at its next step (``force``: kill it now)."""
        run = self.store.get_run(run_id)
        if run["status"] not in ACTIVE_STATUSES:
            raise RunStateError(f"run {run_id} is {run['status']}; only a running run can be stopped")
        self.store.request_stop(run_id)
        self.store.add_event(run_id, "stop_requested", "stop requested: checkpointing at the next step")
        if force:
            self._kill(run)
            self.store.finish_run_if_active(run_id, STOPPED, stop_requested=0)

    def _kill(self, run: dict[str, Any]) -> None:
        pid = run.get("pid")
        if not pid or run.get("host") != socket.gethostname() or not _worker_alive(pid):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        proc = self._procs.get(run["id"])
        if proc is not None:
            proc.wait(timeout=10)

    def resume(self, run_id: str) -> str:
        """Continue a stopped or failed run from its latest checkpoint; steps and series carry on.

        Without a checkpoint (a run stopped or failed before its first save) the run starts again from
        step 0, and its earlier points are cleared.
        """
        run = self.store.get_run(run_id)
        if run["status"] in ACTIVE_STATUSES:
            raise RunStateError(f"run {run_id} is {run['status']}; stop it before resuming")
        if run["status"] == COMPLETED:
            raise RunStateError(f"run {run_id} already completed; clone it to train further")
        checkpoint = latest_checkpoint(self.run_dir(run_id))
        step = int(checkpoint.name.split("-")[-1]) if checkpoint else 0
        # Points logged after the checkpoint belong to a timeline the resumed run replays.
        self.store.delete_points_after(run_id, step)
        self.store.update_run(
            run_id,
            status=QUEUED,
            stop_requested=0,
            error=None,
            traceback=None,
            finished_at=None,
            summary=None,
            step=step,
            attempt=int(run.get("attempt") or 0) + 1,
        )
        where = f"checkpoint-{step}" if checkpoint else "the beginning (no checkpoint was saved)"
        self.store.add_event(run_id, "resumed", f"resuming from {where}")
        self._spawn(run_id, resume=checkpoint is not None)
        return run_id

    def delete(self, run_id: str) -> None:
        """Remove a run: its worker (killed if still running), its folder and its records."""
        run = self.store.get_run(run_id)
        if run["status"] in ACTIVE_STATUSES:
            self._kill(run)
        self.store.delete_run(run_id)
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            from trainer_core.errors import ConfigError

            raise ConfigError("run_name", "a run name cannot be empty")
        self.store.rename_run(run_id, name)

    # -- run folders ---------------------------------------------------------------------------------

    def run_dir(self, run_id: str) -> Path:
        try:
            stored = self.store.get_run(run_id).get("run_dir")
        except RunNotFoundError:
            stored = None
        return Path(stored) if stored else self.home / run_id

    def config_of(self, run_id: str) -> dict[str, Any]:
        """The run's saved flat config (full and resolved; feed it to launch() to replay the run)."""
        path = self.run_dir(run_id) / CONFIG_FILE
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return dict(self.store.get_run(run_id)["config"])

    def log_tail(self, run_id: str, lines: int = 200) -> str:
        path = self.run_dir(run_id) / LOG_FILE
        if not path.is_file():
            return ""
        # Read only the end of the file: the Run page asks for the tail every second or two, and a long
        # run's log grows to many megabytes.
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            chunk = min(size, max(4096, lines * 400))
            while True:
                fh.seek(size - chunk)
                data = fh.read(chunk)
                if data.count(b"\n") > lines or chunk == size:
                    break
                chunk = min(size, chunk * 4)
        text = data.decode("utf-8", errors="replace")
        return "".join(deque(text.splitlines(keepends=True), maxlen=lines))

    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        """The run's checkpoints, oldest first: name, step, path, size_bytes."""
        folder = self.run_dir(run_id) / CHECKPOINTS
        out = []
        for path in folder.glob("checkpoint-*"):
            suffix = path.name.split("-")[-1]
            if path.is_dir() and suffix.isdigit():
                size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                out.append({"name": path.name, "step": int(suffix), "path": str(path), "size_bytes": size})
        return sorted(out, key=lambda c: c["step"])

    def model_dir(self, run_id: str) -> Path | None:
        """The fine-tuned model and tokenizer (``from_pretrained``-loadable), once the run completed."""
        path = self.run_dir(run_id) / MODEL
        return path if (path / "config.json").is_file() else None

    def predictions(self, run_id: str):
        """The final model's predictions on the validation split as a DataFrame, or None."""
        import pandas as pd

        path = self.run_dir(run_id) / PREDICTIONS
        return pd.read_parquet(path) if path.is_file() else None

    def export_model_archive(self, run_id: str) -> Path:
        """A zip of the fine-tuned model folder (made once, reused)."""
        model = self.model_dir(run_id)
        if model is None:
            raise RunStateError(f"run {run_id} has no final model yet")
        archive = self.run_dir(run_id) / "model.zip"
        if not archive.is_file() or archive.stat().st_mtime < model.stat().st_mtime:
            tmp = shutil.make_archive(str(archive.with_suffix("")) + ".partial", "zip", root_dir=model)
            os.replace(tmp, archive)
        return archive


def default_run_name(config: RunConfig, run_id: str) -> str:
    model = Path(config.model.model_name_or_path.replace("builtin:", "")).name
    data = config.data.dataset_name or Path(config.data.train_file or "data").stem
    return f"{model}-{Path(data.replace('builtin:', '')).name}-{run_id[-6:]}"


def _worker_alive(pid: int) -> bool:
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A reused pid belongs to some other program: only a trainer_core worker counts.
        return any("trainer_core.runs.worker" in part for part in proc.cmdline())
    except Exception:  # noqa: BLE001 - NoSuchProcess, AccessDenied: treat as not ours / not alive
        return False



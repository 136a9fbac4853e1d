"""A run's folder: the one owner of its file names, shared by the worker that writes it and the launcher
that reads it (config, log, checkpoints, final model, predictions, model archive, outcome file, and the
copy of the run's name, note and tags)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from trainer_core.weights import weights_problem

CONFIG_FILE = "config.yaml"
LOG_FILE = "train.log"
CHECKPOINTS = "checkpoints"
MODEL = "model"
PREDICTIONS = "predictions.parquet"
MODEL_ARCHIVE = "model.zip"
OUTCOME_FILE = "outcome.json"
# The run's display name, note and tags, copied here from the store each time they change: the store is
# where they are read, this copy is what rebuild-store restores them from when the store is lost.
ANNOTATIONS_FILE = "annotations.json"

# The event the worker records each time a checkpoint is written: a resume that finds none left knows
# from it that the run's checkpoints were deleted, not never saved.
CHECKPOINT_EVENT = "checkpoint_saved"

# The outcome file is reserved at this size when a worker starts and later overwritten in place with one
# write: a disk that filled up meanwhile still takes it (no new block is needed), where a fresh file, or
# the temporary file of an atomic rename, would fail with ENOSPC exactly when the outcome matters most.
OUTCOME_RESERVED_BYTES = 4096

_CHECKPOINT_PREFIX = "checkpoint-"


class RunFolder:
    """The files of one run.

    Args:
        path: the run's folder (``<home>/<run id>`` unless the store says otherwise).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def checkpoints_dir(self) -> Path:
        """Where the Trainer writes ``checkpoint-<step>`` folders (its ``output_dir``)."""
        return self.path / CHECKPOINTS

    @property
    def final_model_dir(self) -> Path:
        """Where the worker saves the fine-tuned model (whether or not it is there yet)."""
        return self.path / MODEL

    @property
    def predictions_file(self) -> Path:
        return self.path / PREDICTIONS

    # -- reading -------------------------------------------------------------------------------------

    def config(self) -> dict[str, Any] | None:
        """The saved flat config, or None when the file is missing."""
        if not self.config_file.is_file():
            return None
        return yaml.safe_load(self.config_file.read_text(encoding="utf-8")) or {}

    def log_tail(self, lines: int = 200) -> str:
        """The last ``lines`` lines of the worker's log."""
        if not self.log_file.is_file():
            return ""
        # Read only the end of the file: the Run page asks for the tail every second or two, and a long
        # run's log grows to many megabytes.
        with open(self.log_file, "rb") as fh:
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

    def checkpoints(self, include_incomplete: bool = False) -> list[dict[str, Any]]:
        """The run's checkpoints, oldest first: name, step, path, size_bytes, complete, problem.

        Args:
            include_incomplete: also list checkpoints a resume cannot use (cut off mid-write), with
                ``complete=False`` and the ``problem`` found.
        """
        out = []
        for step, path in self._checkpoint_folders():
            problem = checkpoint_problem(path, need_optimizer=self._saves_optimizer())
            if problem and not include_incomplete:
                continue
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            out.append(
                {
                    "name": path.name,
                    "step": step,
                    "path": str(path),
                    "size_bytes": size,
                    "complete": problem is None,
                    "problem": problem,
                }
            )
        return out

    def latest_checkpoint(self) -> tuple[Path | None, list[tuple[Path, str]]]:
        """The newest complete checkpoint, and the newer incomplete ones skipped (path, why), newest first."""
        skipped = []
        for _step, path in reversed(self._checkpoint_folders()):
            problem = checkpoint_problem(path, need_optimizer=self._saves_optimizer())
            if problem is None:
                return path, skipped
            skipped.append((path, problem))
        return None, skipped

    def has_checkpoint_folders(self) -> bool:
        """True when any ``checkpoint-<step>`` folder exists, complete or not."""
        return bool(self._checkpoint_folders())

    def model_dir(self) -> Path | None:
        """The fine-tuned model and tokenizer (``from_pretrained``-loadable), once the run completed."""
        path = self.final_model_dir
        return path if (path / "config.json").is_file() else None

    def predictions(self):
        """The final model's predictions on the validation split as a DataFrame, or None."""
        import pandas as pd

        return pd.read_parquet(self.predictions_file) if self.predictions_file.is_file() else None

    def export_model_archive(self) -> Path | None:
        """A zip of the fine-tuned model folder (made once, reused), or None before there is a model."""
        model = self.model_dir()
        if model is None:
            return None
        archive = self.path / MODEL_ARCHIVE
        if not archive.is_file() or archive.stat().st_mtime < model.stat().st_mtime:
            tmp = shutil.make_archive(str(archive.with_suffix("")) + ".partial", "zip", root_dir=model)
            os.replace(tmp, archive)
        return archive

    # -- the run's name, note and tags ---------------------------------------------------------------

    def annotations(self) -> dict[str, Any]:
        """The saved ``name`` (str), ``note`` (str or None) and ``tags`` (list of str); those missing,
        of the wrong type or in an unreadable file are left out."""
        try:
            saved = json.loads((self.path / ANNOTATIONS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(saved, dict):
            return {}
        out: dict[str, Any] = {}
        if isinstance(saved.get("name"), str) and saved["name"].strip():
            out["name"] = saved["name"]
        if saved.get("note") is None or isinstance(saved["note"], str):
            out["note"] = saved.get("note")
        if isinstance(saved.get("tags"), list) and all(isinstance(t, str) for t in saved["tags"]):
            out["tags"] = saved["tags"]
        return out

    def write_annotations(self, name: str, note: str | None, tags: list[str]) -> None:
        """Replace the saved name, note and tags at once: a reader sees the old file or the new, whole."""
        data = json.dumps({"name": name, "note": note, "tags": list(tags)}, ensure_ascii=False, indent=1)
        # A temporary file of its own per writer (two dashboards may save at once), renamed over the old.
        fd, tmp = tempfile.mkstemp(prefix=ANNOTATIONS_FILE + ".", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                # On disk before the rename: this copy matters exactly when the machine lost the store.
                os.fsync(fh.fileno())
            os.replace(tmp, self.path / ANNOTATIONS_FILE)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    # -- the worker's outcome file -------------------------------------------------------------------

    def reserve_outcome(self, attempt: int) -> None:
        """Create the outcome file at its full size for this attempt (a worker does this as it starts)."""
        self._write_outcome_bytes({"attempt": attempt, "status": None}, reserve=True)

    def write_outcome(self, attempt: int, status: str, error: str | None = None) -> bool:
        """Record how an attempt ended, for when the store cannot take it; returns False if that failed too."""
        try:
            self._write_outcome_bytes({"attempt": attempt, "status": status, "error": error}, reserve=False)
            return True
        except OSError:
            return False

    def read_outcome(self, attempt: int) -> dict[str, Any] | None:
        """``{"status", "error"}`` the worker of ``attempt`` left, or None (none, another attempt, unreadable)."""
        try:
            outcome = json.loads(
                (self.path / OUTCOME_FILE).read_bytes().decode("utf-8", errors="replace").strip()
            )
        except (OSError, ValueError):
            return None
        if not isinstance(outcome, dict) or outcome.get("attempt") != attempt or not outcome.get("status"):
            return None
        return outcome

    def _write_outcome_bytes(self, outcome: dict[str, Any], reserve: bool) -> None:
        data = json.dumps(outcome).encode()
        if len(data) > OUTCOME_RESERVED_BYTES:  # a long error: keep its start, the file stays one block
            outcome["error"] = str(outcome.get("error") or "")[: OUTCOME_RESERVED_BYTES // 2] + " ..."
            data = json.dumps(outcome).encode()
        # JSON ignores trailing whitespace, so the padding keeps the size (and the block) the same.
        data = data.ljust(OUTCOME_RESERVED_BYTES, b" ")
        path = self.path / OUTCOME_FILE
        if reserve:
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT)
        try:
            # One write of one block at offset 0 into space the file already owns.
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- helpers -------------------------------------------------------------------------------------

    def _checkpoint_folders(self) -> list[tuple[int, Path]]:
        # transformers' get_last_checkpoint() judges by folder name only; a folder cut off mid-write has a
        # perfectly good name, so the completeness check below is ours.
        found = []
        for path in self.checkpoints_dir.glob(_CHECKPOINT_PREFIX + "*"):
            suffix = path.name[len(_CHECKPOINT_PREFIX) :]
            if suffix.isdigit() and path.is_dir():
                found.append((int(suffix), path))
        return sorted(found)

    def _saves_optimizer(self) -> bool:
        try:
            return not (self.config() or {}).get("save_only_model")
        except (OSError, yaml.YAMLError):
            return True


# The files transformers' Trainer writes into a checkpoint (``transformers.trainer``'s TRAINER_STATE_NAME,
# OPTIMIZER_NAME and SCHEDULER_NAME), spelled here: importing ``transformers.trainer`` for three names loads
# torch and the whole training stack (~340 MB and seconds) into the dashboard, which only lists a run's
# checkpoints. tests/test_faults.py checks they still match transformers'.
TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.pt"
SCHEDULER_NAME = "scheduler.pt"


def checkpoint_problem(path: str | os.PathLike, need_optimizer: bool = True) -> str | None:
    """Why a ``checkpoint-<step>`` folder cannot be resumed from (cut off mid-write), or None if it can.

    Complete means: ``trainer_state.json`` parses, the weights file is present with a valid safetensors
    header and the size that header declares (or a non-empty ``.bin``), and, unless the run saves only the
    model, the optimizer and scheduler states are present.
    """
    path = Path(path)
    try:
        state = json.loads((path / TRAINER_STATE_NAME).read_text(encoding="utf-8"))
        if not isinstance(state, dict) or "global_step" not in state:
            return f"{TRAINER_STATE_NAME} has no global_step"
    except FileNotFoundError:
        return f"{TRAINER_STATE_NAME} is missing"
    except (OSError, ValueError) as exc:
        return f"{TRAINER_STATE_NAME} is unreadable ({type(exc).__name__})"
    problem = weights_problem(path)
    if problem:
        return problem
    if need_optimizer:
        for name in (OPTIMIZER_NAME, SCHEDULER_NAME):
            file = path / name
            if not file.is_file() or file.stat().st_size == 0:
                return f"{name} is missing or empty"
    return None

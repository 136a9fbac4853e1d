"""Rebuilding the metrics store from the run folders, after the store was damaged, emptied or lost.

Everything a run folder holds comes back: the run (id = folder name, config from ``config.yaml``), its
display name, note and tags (from the copy the launcher keeps in ``annotations.json``), an honest status
(completed only with the final model and its predictions on disk), the summary that the final model and
its predictions still give, and the metric curves of the newest ``trainer_state.json`` (every dict the
Trainer logged, with its step and epoch: the same keys the store's callback writes). What only the store
knew is gone and is not made up: its events, the exact wall time of each point (spread evenly between the
run's start and its last state file instead), the resource-use samples (``system/...``), the final
evaluation of a run that ended early. A folder written before ``annotations.json`` existed gets its name
from the config, as at launch, and no note or tags.

A Ray run's folder under its ``storage_path`` is found through its pointer in the runs folder
(``runs/pointers.py``); one whose pointer was lost too is found with ``also`` (the storage path), and
gets its pointer back. A Ray run comes back as a Ray run (its cluster from its config), so a resume goes
to the cluster again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from trainer_core.errors import ConfigError, RunStateError, StoreDamagedError
from trainer_core.runs.annotations import normalize_tags
from trainer_core.runs.folder import (
    ANNOTATIONS_FILE,
    CHECKPOINTS,
    CONFIG_FILE,
    LOG_FILE,
    MODEL,
    PREDICTIONS,
    RunFolder,
)
from trainer_core.runs.home import default_store_url, open_store, run_folders, usable_home
from trainer_core.runs.pointers import followed, leave_pointer
from trainer_core.tracking.postgres import display_url, is_postgres_url
from trainer_core.tracking.schema import sqlite_path
from trainer_core.tracking.status import COMPLETED, FAILED, STOPPED
from trainer_core.tracking.store import MetricsStore, is_metric_value

STATE_FILE = "trainer_state.json"  # transformers' TRAINER_STATE_NAME, without importing transformers
# The last line of a Python traceback: "ValueError: ...", "torch.OutOfMemoryError: ...".
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*$")


@dataclasses.dataclass
class RebuildReport:
    """What ``rebuild_store`` did: the file it moved aside, the runs it recovered and why it skipped any,
    and the pointers it left in the runs folder for run folders found only through ``also``."""

    store_path: str
    moved_aside: list[str]
    recovered: list[dict[str, Any]]
    kept: list[str]
    skipped: list[dict[str, str]]
    seconds: float
    pointers: list[str] = dataclasses.field(default_factory=list)


def rebuild_store(
    home: str | os.PathLike | None = None,
    store_url: str | None = None,
    also: Iterable[str | os.PathLike] = (),
) -> RebuildReport:
    """Recover the runs of a runs folder into its metrics store.

    A damaged, empty or missing store is moved aside (``metrics.db.damaged-<time>``, never deleted) and a
    fresh one is filled from the run folders. A sound store keeps its rows and only gets the runs it lacks
    (a PostgreSQL store always: a server has no file to move aside).

    Args:
        home: the runs folder (default ``$TRAINER_CORE_HOME`` or ``./runs``).
        store_url: the store (default ``$TRAINER_CORE_DB`` or ``sqlite:///<home>/metrics.db``).
        also: more folders holding run folders (a Ray run's ``storage_path``) or run folders themselves,
            for runs whose pointers in ``home`` were lost too; each gets its pointer back.
    Returns:
        A RebuildReport.
    Raises:
        RunStateError: a run's worker is still running (it would keep writing to the old file).
        ConfigError: the runs folder, the store URL or a folder of ``also`` (field ``--also``) is unusable.
    """
    began = time.monotonic()
    home = usable_home(home)
    url = default_store_url(home, store_url)
    on_server = is_postgres_url(url)
    path = display_url(url) if on_server else sqlite_path(url)
    folders = run_folders(home)
    extra, skipped = _also_folders(also, folders)
    folders += extra
    _refuse_live_workers(folders)
    moved: list[str] = []
    try:
        # The full quick_check, whatever the file's size: this is the one place that can afford it.
        store = open_store(home, url, quick_check_max_bytes=1 << 62)
    except StoreDamagedError:
        # A PostgreSQL database is refused only for having no runs: it is filled where it is (this is
        # also how a runs folder moves from its SQLite file to a shared server).
        moved = [] if on_server else move_aside(path)
        store = MetricsStore(url)
    recovered, kept, relink = [], [], []
    for folder in folders:
        if store.has_run(folder.name):
            kept.append(folder.name)
            # A shared store may hold runs another runs folder launched into the same storage path: only
            # a row that names this very folder gets a pointer here.
            row_dir = store.get_run(folder.name)["run_dir"]
            if folder in extra and row_dir and _same_folder(Path(row_dir), folder):
                relink.append(folder)
            continue
        try:
            recovered.append(recover_run(store, folder))
            relink += [folder] if folder in extra else []
        except (OSError, ValueError, yaml.YAMLError) as exc:  # one unreadable folder must not stop the rest
            skipped.append({"run_id": folder.name, "why": f"{type(exc).__name__}: {exc}"})
    store.close()
    pointers = []
    for folder in relink:  # after the store has their runs: a pointer makes a folder a run of this home
        try:
            if pointer := leave_pointer(home, folder):
                pointers.append(str(pointer))
        except ConfigError as exc:  # the run is recovered all the same; say why the next rebuild needs --also
            skipped.append({"run_id": folder.name, "why": f"recovered, but no pointer: {exc.message}"})
    return RebuildReport(path, moved, recovered, kept, skipped, time.monotonic() - began, pointers)


def _also_folders(
    also: Iterable[str | os.PathLike], known: list[Path]
) -> tuple[list[Path], list[dict[str, str]]]:
    """The run folders under the ``also`` folders (or those folders themselves) that ``known`` lacks,
    and those skipped: a second folder of a run id already found (a copy) is not chosen between."""
    found: dict[str, Path] = {folder.name: folder for folder in known}
    extra, skipped = [], []
    for given in also:
        path = Path(given).expanduser()
        if not path.is_dir():
            raise ConfigError("--also", f"{path} is not a folder: give a storage_path that holds run folders")
        path = Path(os.path.abspath(path))
        candidates = [path] if (path / CONFIG_FILE).is_file() else run_folders(path)
        for folder in candidates:
            first = found.get(folder.name)
            if first is None:
                found[folder.name] = folder
                extra.append(folder)
            elif first != folder and not _same_folder(first, folder):
                why = f"{folder} is a second folder of this run (kept {first})"
                skipped.append({"run_id": folder.name, "why": why})
    return extra, skipped


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(followed(a), followed(b))
    except OSError:
        return False


def move_aside(path: str) -> list[str]:
    """Rename a store file and its write-ahead log files to ``<file>.damaged-<time>``; returns the new names."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = f"{path}.damaged-{stamp}", 1
    while os.path.exists(target):  # two rebuilds in one second keep both files
        n += 1
        target = f"{path}.damaged-{stamp}-{n}"
    moved = []
    # The main file last: until it moves, a reader still finds the store where it was.
    for suffix in ("-wal", "-shm", ""):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, target + suffix)
            moved.append(target + suffix)
    return moved


def recover_run(store: MetricsStore, folder: Path) -> dict[str, Any]:
    """Write one run folder's run, summary and curves into ``store``; returns what was recovered."""
    run_id = folder.name
    config = yaml.safe_load((folder / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    started = _launch_time(folder)
    state_file = newest_state_file(folder)
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file else {}
    status, error = infer_status(folder, state_file)
    ended = max(p.stat().st_mtime for p in (folder / LOG_FILE, state_file or folder / LOG_FILE))
    saved = RunFolder(folder).annotations()
    # A Ray run's row names its cluster (what makes it a Ray run); launch saved the address resolved.
    ray_address = config.get("ray_address") if config.get("executor") == "ray" else None
    store.create_run(
        saved.get("name") or _run_name(config, run_id),
        config,
        run_dir=str(folder),
        run_id=run_id,
        created_at=started,
    )
    store.update_run(
        run_id,
        **_note_and_tags(saved),
        **({"ray_address": ray_address, "devices": []} if ray_address else {}),
        status=status,
        error=error,
        started_at=started,
        finished_at=ended,
        step=state.get("global_step"),
        epoch=state.get("epoch"),
        total_steps=state.get("max_steps"),
        summary=recovered_summary(folder, state, config) if status == COMPLETED else None,
    )
    points = curve_points(run_id, state.get("log_history") or [], started, ended)
    store.log_points(points)
    source = str(state_file.relative_to(folder)) if state_file else None
    message = f"recovered from folder by rebuild-store: status {status}"
    message += f", curves from {source}" if source else ", no trainer_state.json (no curves)"
    message += f", name, note and tags from {ANNOTATIONS_FILE}" if saved else ""
    store.add_event(run_id, "recovered", message, {"state_file": source, "points": len(points)})
    return {"run_id": run_id, "status": status, "points": len(points), "state_file": source}


def newest_state_file(folder: Path) -> Path | None:
    """The completed run's ``trainer_state.json``, else the newest checkpoint's that reads as JSON."""
    final = folder / CHECKPOINTS / STATE_FILE
    candidates = [final] if final.is_file() else []
    checkpoints = [p for p in (folder / CHECKPOINTS).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    candidates += [p / STATE_FILE for p in sorted(checkpoints, key=lambda p: -int(p.name.split("-")[-1]))]
    for candidate in candidates:
        try:
            json.loads(candidate.read_text(encoding="utf-8"))
            return candidate
        except (OSError, ValueError):  # missing, or cut short by a kill during the save: try an older one
            continue
    return None


def infer_status(folder: Path, state_file: Path | None) -> tuple[str, str | None]:
    """(status, error) as far as the folder tells.

    Completed: the final model and its predictions are there (the worker writes the predictions last,
    on success only). Failed: the log's last attempt ends on an error. Stopped: the newest checkpoint
    was saved by a stop request (its saved ``TrainerControl`` says ``should_training_stop`` before
    ``max_steps``). Failed again for anything else: a worker killed by the OOM killer leaves no trace.
    """
    final_files = (folder / MODEL / "config.json").is_file() and (folder / PREDICTIONS).is_file()
    if final_files and state_file is not None and state_file.parent.name == CHECKPOINTS:
        return COMPLETED, None
    error = _last_error(folder / LOG_FILE)
    if error:
        return FAILED, f"{error} (recovered from folder)"
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file else {}
    control = (state.get("stateful_callbacks") or {}).get("TrainerControl") or {}
    asked_to_stop = (control.get("args") or {}).get("should_training_stop")
    if asked_to_stop and state.get("global_step", 0) < state.get("max_steps", 0):
        return STOPPED, None
    return FAILED, "the worker ended without recording an outcome (killed?); recovered from folder"


def curve_points(
    run_id: str, log_history: list[dict[str, Any]], started: float, ended: float
) -> list[tuple[str, str, int, float | None, float, float]]:
    """Store rows of every number in ``log_history`` except its ``step`` and ``epoch`` bookkeeping.

    The Trainer does not record wall times; they are spread evenly by step between ``started`` and
    ``ended`` so time axes keep their order and scale.
    """
    last = max((int(entry.get("step", 0)) for entry in log_history), default=0) or 1
    rows = []
    for entry in log_history:
        step = int(entry.get("step", 0))
        wall = started + (ended - started) * step / last
        for key, value in entry.items():
            if key not in ("step", "epoch") and is_metric_value(value):
                rows.append((run_id, key, step, entry.get("epoch"), float(value), wall))
    return rows


def recovered_summary(
    folder: Path, state: dict[str, Any], config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The parts of a completed run's summary that its folder still holds (marked as recovered).

    ``config`` (the folder's ``config.yaml``) gives the report the run's F1 choice.
    """
    import pandas as pd

    from trainer_core.metrics import classification_report

    summary: dict[str, Any] = {"recovered_from_folder": True, "model_dir": str(folder / MODEL)}
    for entry in state.get("log_history") or []:
        if "train_runtime" in entry:  # the Trainer's closing log holds train_result.metrics
            summary.update({k: v for k, v in entry.items() if k.startswith("train_") or k == "epoch"})
    summary.update({k: state.get(k) for k in ("global_step", "best_model_checkpoint", "best_metric")})
    table = pd.read_parquet(folder / PREDICTIONS)
    # The worker writes one probability column per label, in class-id order.
    names = [c[len("p_") :] for c in table.columns if c.startswith("p_")]
    if names and {"label", "predicted"} <= set(table.columns):
        ids = {name: i for i, name in enumerate(names)}
        truth = table["label"].astype(str).map(ids).to_numpy()
        predicted = table["predicted"].astype(str).map(ids).to_numpy()
        f1 = {k: (config or {}).get(k) for k in ("f1_average", "pos_label")}
        summary["report"] = classification_report(predicted, truth, names, **f1)
        summary.update(label_names=names, n_validation=len(table), prediction_rows=len(table))
    return summary


def _note_and_tags(saved: dict[str, Any]) -> dict[str, Any]:
    try:
        tags = normalize_tags(saved.get("tags") or [])
    except ConfigError:  # edited by hand into tags the launcher refuses: the run matters more than they do
        tags = []
    return {"note": saved.get("note"), "tags": tags}


def _launch_time(folder: Path) -> float:
    # A run id starts with its launch time (new_run_id); a copied folder's mtimes are the copy's.
    try:
        return time.mktime(time.strptime(folder.name[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        return (folder / CONFIG_FILE).stat().st_mtime


def _run_name(config: dict[str, Any], run_id: str) -> str:
    if config.get("run_name"):
        return str(config["run_name"])
    from trainer_core.runs.launcher import default_run_name

    # default_run_name reads three fields; config_from_dict would build TrainingArguments for them,
    # importing transformers (~7 s, measured) in a command that otherwise needs none of it.
    fields = SimpleNamespace(
        model=SimpleNamespace(model_name_or_path=config.get("model_name_or_path")),
        data=SimpleNamespace(dataset_name=config.get("dataset_name"), train_file=config.get("train_file")),
    )
    try:
        return default_run_name(fields, run_id)  # type: ignore[arg-type]
    except (AttributeError, TypeError):  # an older or hand-edited config: the id still names it
        return run_id


def _last_error(log: Path) -> str | None:
    """The line a failed worker's log ends on: ``error: ...`` or a traceback's exception line."""
    with open(log, "rb") as fh:
        fh.seek(max(0, log.stat().st_size - 64_000))
        lines = [line.strip() for line in fh.read().decode("utf-8", errors="replace").splitlines()]
    # Only the last attempt counts: an earlier attempt may have failed before a resume.
    starts = [i for i, line in enumerate(lines) if line.startswith("=== ") and " worker " in line]
    tail = lines[starts[-1] + 1 :] if starts else lines
    found = None
    for i, line in enumerate(tail):
        if line.startswith("error: "):
            found = line
        elif line.startswith("Traceback (most recent call last)"):
            after = [x for x in tail[i + 1 :] if _EXCEPTION_LINE.match(x)]
            found = after[0] if after else found
    return found


# The processes that write a run's store rows, with its folder on their command line: a local worker,
# and a Ray job's driver (seen when the cluster is this machine).
_WRITERS = ("trainer_core.runs.worker", "trainer_core.runs.ray_driver")


def _refuse_live_workers(folders: list[Path]) -> None:
    import psutil

    wanted = {os.path.realpath(folder) for folder in folders}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if not any(module in cmdline for module in _WRITERS) or "--run-dir" not in cmdline:
            continue
        run_dir = cmdline[cmdline.index("--run-dir") + 1 : cmdline.index("--run-dir") + 2]
        if run_dir and os.path.realpath(run_dir[0]) in wanted:
            kind = "Ray job driver" if _WRITERS[1] in cmdline else "worker"
            raise RunStateError(
                f"run {Path(run_dir[0]).name} is still training ({kind} pid {proc.info['pid']}): wait for it "
                "to end or kill it, then run rebuild-store again"
            )

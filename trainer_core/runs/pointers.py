"""Run folders kept outside the runs folder, and the pointer to each that the runs folder keeps.

A Ray run's folder is ``<storage_path>/<run id>`` (a folder every node mounts), not ``<home>/<run id>``.
So that the runs folder still knows every run it launched (``rebuild-store`` after the store is lost,
the check that a store lost its runs, ``ls runs``), the launcher leaves a symlink ``<home>/<run id>``
pointing at it before the run is recorded or submitted.

A symlink rather than a file naming the path: everything that opens ``<home>/<run id>/...`` (a replay of
``runs/<id>/config.yaml``, ``run_folders``, the launcher's fallback for a run the store does not know)
follows it with no code of its own. Only deleting needs care: ``shutil.rmtree`` refuses a symlink, so
the folder it points at is removed, then the pointer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from trainer_core.errors import ConfigError, os_error_reason


def followed(entry: Path) -> Path:
    """A runs-folder entry as the run folder it stands for: a pointer's target, else the entry itself.

    A pointer whose target has another name (edited by hand) is not followed: the run id is the name,
    and the entry is still read through the link.
    """
    if not entry.is_symlink():
        return entry
    target = Path(os.path.abspath(entry.parent / os.readlink(entry)))
    return target if target.name == entry.name else entry


def leave_pointer(home: Path, run_dir: Path) -> Path | None:
    """Point ``<home>/<run id>`` at a run folder kept elsewhere; returns the pointer, or None when the
    folder is in ``home`` already.

    A pointer of the same name to another place (its storage moved) is replaced; a real folder never is.

    Raises:
        ConfigError: (field ``storage_path``) the runs folder refuses the symlink, or holds a folder of
            that name.
    """
    run_dir = Path(os.path.abspath(run_dir))
    if run_dir.parent == home or (run_dir.parent.exists() and os.path.samefile(run_dir.parent, home)):
        return None
    link = home / run_dir.name
    if link.is_symlink() and followed(link) == run_dir:
        return link
    if link.exists() and not link.is_symlink():
        raise ConfigError("storage_path", f"cannot point {link} at {run_dir}: {link} is a folder of its own")
    tmp = home / f".{run_dir.name}.pointer"
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(run_dir, tmp, target_is_directory=True)
        os.replace(tmp, link)  # one rename: a reader sees the old pointer or the new one
        _sync_folder(home)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ConfigError(
            "storage_path",
            f"cannot leave a pointer to {run_dir} in the runs folder {home} ({os_error_reason(exc)}): "
            "without it, rebuild-store would not find the run; use a runs folder on a file system "
            "that takes symlinks",
        ) from exc
    return link


def remove_run_folder(home: Path, run_id: str, run_dir: Path | None) -> None:
    """Delete a run's folder wherever it is (``run_dir``, the store's; or where ``<home>/<run id>``
    points) and the pointer to it. Missing parts are skipped."""
    link = home / run_id
    folders = [followed(link)] if link.is_symlink() else []
    if run_dir is not None:
        folders.append(Path(run_dir))
    for folder in folders:
        if folder.is_dir() and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
    # The pointer last: were the removal cut short, it still leads to what is left.
    if link.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            link.unlink()


def _sync_folder(path: Path) -> None:
    # The new name on disk before the run is recorded: the pointer matters exactly when the machine
    # lost the store (a power cut right after a launch).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""The layout of a run's folder, shared by the worker that writes it and the launcher that reads it."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_FILE = "config.yaml"
LOG_FILE = "train.log"
CHECKPOINTS = "checkpoints"
MODEL = "model"
PREDICTIONS = "predictions.parquet"


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest ``checkpoint-<step>`` folder of a run, or None."""
    folder = Path(run_dir) / CHECKPOINTS
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)

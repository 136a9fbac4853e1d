"""The New run page's reads of checkpoints and data files, and the Run page's inference, behind caches.

Beside ``dashboard.data`` (the runs' reads and actions): these never depend on what a run recorded, only
on a checkpoint name, a data file (keyed by its modification time) or a finished run's saved model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import streamlit as st

import trainer_core
from dashboard.data import get_launcher, model_dir, version
from trainer_core import ConfigError

UPLOADS = "uploads"  # the dashboard's own folder in the runs folder, beside the runs


@st.cache_data(ttl=300, show_spinner=False, max_entries=64)
def inspect_checkpoint(name: str) -> dict[str, Any]:
    """What a checkpoint is (architecture, size) or why it cannot be used; never raises."""
    return trainer_core.inspect_checkpoint(name)


def _file_stamp(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _preview(data_args_json: str, checkpoint: str | None, seed: int, stamps: tuple) -> dict[str, Any]:
    try:
        # The same coercion and checks a launch applies (a missing file, a bad ratio, a seed numpy
        # refuses ...), on the field.
        args = trainer_core.config_from_dict({**json.loads(data_args_json), "seed": seed}).data
    except ConfigError as exc:
        return {"ok": False, "error": exc.to_dict()}
    return trainer_core.preview_dataset(args, checkpoint=checkpoint, n_rows=20, seed=seed)


def preview_dataset(data_args: dict[str, Any], checkpoint: str | None, seed: int = 42) -> dict[str, Any]:
    """First rows, resolved columns, label counts, split sizes and token statistics of a dataset.

    Args:
        data_args: the DataArguments keys of a flat config.
        checkpoint: when given, token lengths are measured with its tokenizer.
    Returns:
        ``trainer_core.preview_dataset``'s dict; ``ok`` False with ``error`` {field, message} when
        the arguments or the data are unusable. Cached by the arguments and the data files'
        modification times, so a file edited on disk is read again.
    """
    stamps = (_file_stamp(data_args.get("train_file")), _file_stamp(data_args.get("validation_file")))
    return _preview(json.dumps(data_args, sort_keys=True, default=str), checkpoint, int(seed), stamps)


@st.cache_resource(show_spinner=False, max_entries=2)
def _predictor(path: str, version: tuple):
    return trainer_core.Predictor.from_dir(path)


def predict(run: dict[str, Any], texts: list[str], pairs: list[str] | None = None) -> list[dict[str, Any]]:
    """Label typed text with a completed run's fine-tuned model (loaded once and kept)."""
    predictor = _predictor(str(model_dir(run)), version(run))
    return predictor.predict(texts, text_pairs=pairs)


def validate(form: dict[str, Any]) -> trainer_core.RunConfig:
    """The RunConfig a form's values make. Raises ConfigError naming the first field at fault."""
    return trainer_core.config_from_dict(form)


@st.cache_data(show_spinner=False)
def field_help() -> dict[str, str]:
    """Each config field's own help text (from the argument dataclasses)."""
    return trainer_core.field_help()


def save_upload(name: str, content: bytes) -> str:
    """Keep an uploaded data file under ``<home>/uploads/<content hash>/<its own name>``; returns its path.

    The folder is named by a hash of the content: the same upload is written once however often the page
    reruns, and two different files with the same name do not overwrite each other. The file keeps the
    user's name, so every message (the engine names files by ``path.name``) and the run header say
    "reviews.csv", not "e3b0c44298-reviews.csv".
    """
    digest = hashlib.sha256(content).hexdigest()[:10]
    # Only what cannot be part of one file name goes: control characters and path separators.
    safe = "".join("_" if c in "/\\" or ord(c) < 32 else c for c in Path(name).name).strip(" .") or "data.csv"
    folder = get_launcher().home / UPLOADS / digest
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    if not path.is_file():
        tmp = path.with_name(path.name + ".partial")
        tmp.write_bytes(content)
        tmp.replace(path)
    return str(path)

"""Where a run's rows come from: the built-in dataset, a Hugging Face Hub dataset, or local files.

Each source gives the untouched training and (optional) validation rows as DataFrames, with what the
source knows about them (ClassLabel names, its own column mapping); :mod:`trainer_core.data.prepare`
turns them into tokenised splits. Every failure a user can fix is a :class:`ConfigError` on the field
at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from trainer_core import assets as builtins
from trainer_core.assets import BUILTIN_DATASETS
from trainer_core.config import DataArguments
from trainer_core.data.files import load_table
from trainer_core.errors import ConfigError, caused_by


@dataclass
class RawData:
    """The untouched rows of a dataset's training and (optional) validation split."""

    train: pd.DataFrame
    validation: pd.DataFrame | None
    # Columns that already hold class ids with names (ClassLabel columns of Hub datasets).
    class_names: dict[str, list[str]] = field(default_factory=dict)
    # The config field to blame for problems with the validation rows.
    validation_field: str = "validation_file"
    # Column mapping a built-in dataset comes with (used where the config leaves a column empty).
    default_columns: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_raw_data(data_args: DataArguments) -> RawData:
    """Load the training and validation rows named by the config, without changing them.

    Args:
        data_args: dataset_name (+ dataset_config_name, train_split, validation_split) or train_file
            (+ validation_file).
    Returns:
        A :class:`RawData`; ``validation`` is None when a split has to be carved out of train.
    Raises:
        ConfigError: on the field at fault.
    """
    if data_args.train_file:
        notes: list[str] = []
        train = load_table(data_args.train_file, "train_file", notes)
        validation = (
            load_table(data_args.validation_file, "validation_file", notes)
            if data_args.validation_file
            else None
        )
        return RawData(train, validation, validation_field="validation_file", notes=notes)
    name = (data_args.dataset_name or "").strip()
    if not name:
        raise ConfigError(
            "dataset_name", "choose a dataset: a built-in, a Hub dataset id, or a local train_file"
        )
    if builtins.is_builtin(name):
        return _load_builtin(name, data_args)
    return _load_hub(name, data_args)


def _load_builtin(name: str, data_args: DataArguments) -> RawData:
    builtins.check_builtin(name, "dataset", "dataset_name")
    if data_args.train_split not in (None, "", "train"):
        raise ConfigError("train_split", f"{name} has only a 'train' split; set train_split to 'train'")
    notes = []
    if data_args.validation_split:
        notes.append(
            f"{name} has no {data_args.validation_split!r} split; validation rows are carved out of train"
        )
    return RawData(
        builtins.load_rotten_tomatoes(),
        None,
        validation_field="validation_split_ratio",
        default_columns=dict(builtins.ROTTEN_TOMATOES_COLUMNS),
        notes=notes,
    )


def _load_hub(name: str, data_args: DataArguments) -> RawData:
    import datasets

    try:
        loaded = datasets.load_dataset(name, data_args.dataset_config_name or None)
    except Exception as exc:  # noqa: BLE001 - datasets raises many types; all mean "cannot load this"
        raise _dataset_error(name, exc) from exc
    if not isinstance(loaded, datasets.DatasetDict):
        raise ConfigError("dataset_name", f"{name!r} did not load as a dataset with named splits")
    splits = ", ".join(loaded)
    if data_args.train_split not in loaded:
        raise ConfigError(
            "train_split", f"{name!r} has no split {data_args.train_split!r}; its splits are: {splits}"
        )
    train_set = loaded[data_args.train_split]
    class_names = {
        col: list(feature.names)
        for col, feature in train_set.features.items()
        if isinstance(feature, datasets.ClassLabel)
    }
    validation, notes = None, []
    if data_args.validation_split and data_args.validation_split in loaded:
        validation = loaded[data_args.validation_split].to_pandas()
    elif data_args.validation_split:
        notes.append(
            f"{name!r} has no split {data_args.validation_split!r} (its splits are: {splits}); "
            "validation rows are carved out of train"
        )
    return RawData(train_set.to_pandas(), validation, class_names, "validation_split", notes=notes)


def _dataset_error(name: str, exc: Exception) -> ConfigError:
    """Translate a ``datasets.load_dataset`` failure into a message a user can act on.

    Typed errors first. datasets raises ``DatasetNotFoundError`` for missing, private and gated
    repositories alike (re-raised ``from None``, so the Hub's ``GatedRepoError`` is gone by then): only
    its text tells gated apart. A missing configuration is a plain ``ValueError``: text only.
    """
    from datasets.exceptions import DataFilesNotFoundError, DatasetNotFoundError
    from huggingface_hub import errors as hub

    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    if caused_by(exc, DataFilesNotFoundError):
        return ConfigError(
            "dataset_name",
            f"{name!r} holds no data files datasets can read (.csv, .json, .jsonl, .parquet...); "
            "check the folder or the Hub id, or use a local train_file",
        )
    if caused_by(exc, DatasetNotFoundError) and "gated" in text.lower():
        return ConfigError(
            "dataset_name",
            f"dataset {name!r} is gated on the Hugging Face Hub; ask for access on "
            f"https://huggingface.co/datasets/{name} and log in (hf auth login), or use a local train_file",
        )
    if caused_by(exc, DatasetNotFoundError, hub.RepositoryNotFoundError):
        return ConfigError(
            "dataset_name",
            f"no dataset {name!r} on the Hugging Face Hub; check the id (e.g. 'glue' with config 'mrpc'), "
            "log in (hf auth login) if it is private, or use a local train_file",
        )
    if caused_by(exc, ConnectionError, hub.LocalEntryNotFoundError):  # OfflineModeIsEnabled included
        return ConfigError("dataset_name", _not_cached(name))
    if caused_by(exc, FileNotFoundError):
        return ConfigError(
            "dataset_name",
            f"no dataset {name!r}: not a local folder with data files, nor a Hub dataset id; check the id "
            "or the path, or use a local train_file",
        )
    lowered = text.lower()
    if "config name is missing" in lowered or "builderconfig" in lowered:
        return ConfigError("dataset_config_name", f"{name!r} needs a configuration: {first_line}")
    if "offline" in lowered or "couldn't reach" in lowered or "connection" in lowered:
        return ConfigError("dataset_name", _not_cached(name))
    return ConfigError("dataset_name", f"could not load dataset {name!r}: {first_line}")


def _not_cached(name: str) -> str:
    return (
        f"dataset {name!r} is not in the local cache and the Hub cannot be reached; use "
        f"{', '.join(BUILTIN_DATASETS)} or a local train_file"
    )

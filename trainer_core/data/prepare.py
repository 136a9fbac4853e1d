"""Datasets: from raw rows to tokenised train/validation splits, and the form's data preview.

The steps follow ``run_glue.py``: load (Hub, local files or the built-in), pick the text column(s) and
the label column, turn labels into class ids, hold out a validation split if the data has none, cap the
row counts, then tokenise with truncation and no padding (``DataCollatorWithPadding`` pads per batch).
Loading lives in :mod:`trainer_core.data.sources` (and file reading in :mod:`trainer_core.data.files`),
column mapping and label casting in :mod:`trainer_core.data.columns`; the names a caller needs are
re-exported here.

Row order is kept wherever the data provides its own validation split, so a run on GLUE MRPC's TSV
files sees exactly the rows, in the same order, that the Hugging Face course recipe does on the Hub copy.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trainer_core.config import DataArguments, ModelArguments
from trainer_core.data.columns import (
    COLUMN_FIELDS,
    LABEL,
    TEXT,
    TEXT_PAIR,
    LabelEncoding,
    cast_labels,
    guess_columns,
    label_counts,
    missing_column_error,
    resolve_columns,
    select_rows,
)
from trainer_core.data.files import load_table
from trainer_core.data.sources import RawData, load_raw_data
from trainer_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import datasets
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "LabelEncoding",
    "PreparedData",
    "RawData",
    "cast_labels",
    "guess_columns",
    "label_counts",
    "load_raw_data",
    "load_table",
    "prepare_datasets",
    "preview_dataset",
    "resolve_columns",
    "select_rows",
    "split_train_validation",
    "token_length_stats",
    "tokenize_dataset",
]

# --------------------------------------------------------------------------------------------------
# datasets: split, caps, tokenisation
# --------------------------------------------------------------------------------------------------


@dataclass
class PreparedData:
    """Everything a run needs from its data.

    Attributes:
        train: tokenised training set (input_ids, attention_mask, ... and ``label``).
        validation: tokenised validation set, same columns.
        raw_validation: the validation rows before tokenising (``text``, ``text_pair`` for pairs,
            ``label`` as class id), row-aligned with ``validation``, for the predictions table.
        label_names: class names by class id.
        columns: the resolved column mapping (text_column, text_pair_column, label_column).
        stats: row counts: rows before/after dropping, dropped, per-class counts, validation source.
    """

    train: datasets.Dataset
    validation: datasets.Dataset
    raw_validation: datasets.Dataset
    label_names: list[str]
    columns: dict[str, str | None]
    stats: dict[str, Any]


def _to_dataset(rows: dict[str, list], label_ids: list[int], names: list[str]) -> datasets.Dataset:
    import datasets

    features = {TEXT: datasets.Value("string")}
    if TEXT_PAIR in rows:
        features[TEXT_PAIR] = datasets.Value("string")
    features[LABEL] = datasets.ClassLabel(names=names)
    data = {TEXT: rows[TEXT], **({TEXT_PAIR: rows[TEXT_PAIR]} if TEXT_PAIR in rows else {}), LABEL: label_ids}
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def split_train_validation(
    dataset: datasets.Dataset, ratio: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Hold out a seeded, label-stratified share of ``dataset`` for validation.

    The rows are exactly those of ``dataset.train_test_split(test_size=ratio, seed=seed,
    stratify_by_column="label")``, so a plain script can reproduce the split.

    Args:
        dataset: rows with a ClassLabel ``label`` column.
        ratio: share of rows for validation, between 0 and 1.
        seed: the run's seed (same seed, same split).
    Returns:
        (train, validation); both shuffled by the split.
    Raises:
        ConfigError: on ``validation_split_ratio`` when a stratified split is impossible (a class with a
            single row, or fewer validation or training rows than classes).
    """
    labels = np.asarray(_values(dataset, LABEL))
    counts = Counter(labels.tolist())
    n_validation = math.ceil(ratio * len(labels))
    n_train = len(labels) - n_validation
    names = dataset.features[LABEL].names
    singles = [names[i] for i, count in sorted(counts.items()) if count < 2]
    problem = None
    if singles:
        problem = f"class {', '.join(map(repr, singles[:5]))} has a single row, which cannot be on both sides"
    elif min(n_train, n_validation) < len(counts):
        problem = f"{n_validation} validation and {n_train} training rows cannot each hold all {len(counts)} classes"
    if problem:
        raise ConfigError(
            "validation_split_ratio",
            f"cannot hold out a stratified {ratio:.0%} of {len(labels)} rows for validation: {problem}; add rows, "
            "change validation_split_ratio, or give a validation_file",
        )
    try:
        # The function datasets' own train_test_split calls, given the label column directly: datasets 5
        # builds that column row by row (about a second per 5,000 rows, minutes for a large Hub set).
        from datasets.utils.stratify import stratified_shuffle_split_generate_indices
    except ImportError:  # a datasets release that moved it: same result, only slower
        parts = dataset.train_test_split(test_size=ratio, seed=seed, stratify_by_column=LABEL)
        return parts["train"], parts["test"]
    train_idx, val_idx = next(
        stratified_shuffle_split_generate_indices(
            labels, n_train, n_validation, rng=np.random.default_rng(seed)
        )
    )
    return dataset.select(train_idx), dataset.select(val_idx)


def _values(dataset: datasets.Dataset, column: str) -> list:
    # Through pandas: iterating a datasets 5 Column formats one row at a time (~50x slower).
    return dataset.select_columns([column]).to_pandas()[column].tolist()


def _cap(dataset: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    # The first rows, not a sample: with a given validation split this keeps the file order.
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.select(range(limit))


def tokenize_dataset(
    dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, max_seq_length: int
) -> datasets.Dataset:
    """Tokenise ``text`` (and ``text_pair``) with truncation and no padding, keeping ``label``.

    Args:
        dataset: normalised rows (``text``, optional ``text_pair``, ``label``).
        tokenizer: the run's tokenizer.
        max_seq_length: longest input in tokens; longer ones are truncated (longest text first).
    Returns:
        A dataset with the tokenizer's outputs and ``label``; DataCollatorWithPadding pads per batch
        and renames ``label`` to ``labels``.
    """
    has_pair = TEXT_PAIR in dataset.column_names

    def encode(batch: dict[str, list]) -> dict[str, list]:
        pair = batch[TEXT_PAIR] if has_pair else None
        return tokenizer(batch[TEXT], pair, truncation=True, max_length=max_seq_length)

    return dataset.map(
        encode,
        batched=True,
        remove_columns=[c for c in dataset.column_names if c != LABEL],
        # The data is in memory, so nothing is cached on disk; a given fingerprint spares datasets
        # from hashing the tokenizer (slow, and it warns for tokenizers it cannot pickle).
        new_fingerprint=uuid.uuid4().hex,
        desc="Tokenising",
    )


@dataclass
class _Normalised:
    """Rows after column mapping, dropping and label casting, before any split."""

    train: datasets.Dataset
    validation: datasets.Dataset | None
    names: list[str]
    columns: dict[str, str | None]
    stats: dict[str, Any]


def _normalise(
    raw: RawData, data_args: DataArguments, columns: dict[str, str | None] | None = None
) -> _Normalised:
    columns = columns or resolve_columns(raw.train.columns, data_args, raw.default_columns, raw.train)
    if raw.validation is not None:
        for field_name in COLUMN_FIELDS:
            column = columns[field_name]
            if column and column not in raw.validation.columns:
                where = (
                    "the validation file"
                    if raw.validation_field == "validation_file"
                    else "the validation split"
                )
                raise missing_column_error(
                    raw.validation_field, column, [str(c) for c in raw.validation.columns], where
                )
    label_col = columns["label_column"]
    class_names = raw.class_names.get(label_col)
    train_rows, train_dropped = select_rows(raw.train, columns, raw.class_names)
    if not train_rows[TEXT]:
        raise ConfigError(
            "train_file" if data_args.train_file else "dataset_name",
            f"every training row has an empty text or label (columns {columns['text_column']!r}, {label_col!r})",
        )
    val_rows, val_dropped = (None, 0)
    if raw.validation is not None:
        val_rows, val_dropped = select_rows(raw.validation, columns, raw.class_names)
        if not val_rows[TEXT]:
            raise ConfigError(raw.validation_field, "every validation row has an empty text or label")
    encoding = cast_labels(
        train_rows[LABEL],
        None if val_rows is None else val_rows[LABEL],
        class_names,
        raw.validation_field,
    )
    stats = {
        "rows_train_source": len(raw.train),
        "rows_validation_source": None if raw.validation is None else len(raw.validation),
        "dropped_train": train_dropped,
        "dropped_validation": val_dropped,
        "validation_source": "carved" if raw.validation is None else raw.validation_field,
        "notes": list(raw.notes) + encoding.notes,
    }
    if train_dropped or val_dropped:
        dropped = train_dropped + val_dropped
        stats["notes"].append(
            f"dropped {dropped} row{'s' if dropped != 1 else ''} with an empty text or label"
        )
    train = _to_dataset(train_rows, encoding.train_ids, encoding.names)
    validation = None if val_rows is None else _to_dataset(val_rows, encoding.validation_ids, encoding.names)
    return _Normalised(train, validation, encoding.names, columns, stats)


def _split_and_cap(
    normalised: _Normalised, data_args: DataArguments, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset]:
    train, validation = normalised.train, normalised.validation
    if validation is None:
        train, validation = split_train_validation(train, data_args.validation_split_ratio, seed)
    return _cap(train, data_args.max_train_samples), _cap(validation, data_args.max_eval_samples)


def prepare_datasets(data_args: DataArguments, tokenizer: PreTrainedTokenizerBase, seed: int) -> PreparedData:
    """Load, map, cast, split, cap and tokenise the run's data.

    Args:
        data_args: the run's data arguments.
        tokenizer: the run's tokenizer (see ``models.load_tokenizer``).
        seed: the run's seed, for carving out a validation split.
    Returns:
        A :class:`PreparedData` ready for ``Trainer`` with ``DataCollatorWithPadding``.
    Raises:
        ConfigError: any problem with the data or the data arguments, on the field at fault.
    """
    normalised = _normalise(load_raw_data(data_args), data_args)
    train_rows, validation_rows = _split_and_cap(normalised, data_args, seed)
    stats = dict(normalised.stats)
    stats.update(
        n_train=len(train_rows),
        n_validation=len(validation_rows),
        label_counts_train=label_counts(_values(train_rows, LABEL), normalised.names),
        label_counts_validation=label_counts(_values(validation_rows, LABEL), normalised.names),
    )
    return PreparedData(
        train=tokenize_dataset(train_rows, tokenizer, data_args.max_seq_length),
        validation=tokenize_dataset(validation_rows, tokenizer, data_args.max_seq_length),
        raw_validation=validation_rows,
        label_names=normalised.names,
        columns=normalised.columns,
        stats=stats,
    )


# --------------------------------------------------------------------------------------------------
# preview (dashboard, before a run starts)
# --------------------------------------------------------------------------------------------------


def token_length_stats(
    texts: Sequence[str],
    pairs: Sequence[str] | None,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
) -> dict[str, Any]:
    """Token counts of the inputs before truncation (special tokens included).

    Args:
        texts: first texts.
        pairs: second texts for pair tasks, else None.
        tokenizer: the tokenizer the run will use.
        max_seq_length: the run's truncation length.
    Returns:
        mean, median, p95, max, n_truncated (inputs longer than max_seq_length), share_truncated,
        max_seq_length.
    """
    if not texts:
        return {
            "mean": None,
            "median": None,
            "p95": None,
            "max": None,
            "n_truncated": 0,
            "share_truncated": 0.0,
        }
    encoded = tokenizer(list(texts), None if pairs is None else list(pairs), truncation=False, verbose=False)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    n_truncated = int((lengths > max_seq_length).sum())
    return {
        "mean": float(lengths.mean()),
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "n_truncated": n_truncated,
        "share_truncated": n_truncated / len(lengths),
        "max_seq_length": max_seq_length,
    }


def preview_dataset(
    data_args: DataArguments, checkpoint: str | None = None, n_rows: int = 20, seed: int = 42
) -> dict[str, Any]:
    """What the run would train on, for the dashboard's data preview. Never raises for user mistakes.

    Args:
        data_args: the data arguments as filled in so far.
        checkpoint: a checkpoint (or tokenizer) name; when given, token-length statistics of the
            training rows with its tokenizer are included.
        n_rows: rows of raw data to show.
        seed: the seed the run will use (it decides the carved-out validation split).
    Returns:
        A dict with ok, error (``{"field", "message"}`` when not ok), head (DataFrame of the first raw
        training rows), columns, guessed, mapping, label_counts (class name -> training rows, before the
        split), n_train and n_validation (after the split and caps), label_counts_train (class name ->
        rows the run trains on: after the split and caps), dropped, notes and token_stats.
        Everything computed before a problem was found is filled in; the rest is None.
    """
    result: dict[str, Any] = dict.fromkeys(
        (
            "error",
            "head",
            "columns",
            "guessed",
            "mapping",
            "label_counts",
            "n_train",
            "n_validation",
            "label_counts_train",
            "token_stats",
        )
    )
    result.update(ok=True, dropped=None, notes=[])
    try:
        raw = load_raw_data(data_args)
        result["head"] = raw.train.head(n_rows).reset_index(drop=True)
        result["columns"] = [str(c) for c in raw.train.columns]
        result["guessed"] = guess_columns(result["columns"], raw.train)
        # The mapping is known before the rows are checked: a single-class file still shows its columns.
        result["mapping"] = resolve_columns(raw.train.columns, data_args, raw.default_columns, raw.train)
        normalised = _normalise(raw, data_args, result["mapping"])
        result["notes"] = normalised.stats["notes"]
        result["dropped"] = normalised.stats["dropped_train"] + normalised.stats["dropped_validation"]
        result["label_counts"] = label_counts(_values(normalised.train, LABEL), normalised.names)
        train_rows, validation_rows = _split_and_cap(normalised, data_args, seed)
        result["n_train"], result["n_validation"] = len(train_rows), len(validation_rows)
        # The rows the run will train on, after the validation split and the caps.
        result["label_counts_train"] = label_counts(_values(train_rows, LABEL), normalised.names)
        if checkpoint:
            # models imports nothing heavy at module level, but keeps data importable without it.
            from trainer_core.models import load_tokenizer

            tokenizer = load_tokenizer(ModelArguments(model_name_or_path=checkpoint))
            pairs = _values(train_rows, TEXT_PAIR) if TEXT_PAIR in train_rows.column_names else None
            result["token_stats"] = token_length_stats(
                _values(train_rows, TEXT), pairs, tokenizer, data_args.max_seq_length
            )
    except ConfigError as exc:
        result.update(ok=False, error=exc.to_dict())
    return result

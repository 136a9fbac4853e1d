"""Column mapping and label casting: pure functions from raw rows to (text, text pair, class id).

Kept apart from loading so they can be tested on plain lists and DataFrames, without files or datasets.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trainer_core.config import DataArguments
from trainer_core.config.checks import COLUMN_FIELDS, check_column_choice
from trainer_core.errors import ConfigError

# Column names of the normalised datasets, whatever the source called them.
TEXT, TEXT_PAIR, LABEL = "text", "text_pair", "label"


# Most specific first. Pairs are checked before single text columns: GLUE pair tasks also have
# a column called "sentence" or "question" that is only half of the input.
_PAIR_NAMES = (
    ("sentence1", "sentence2"),
    ("#1 string", "#2 string"),
    ("question", "sentence"),
    ("question1", "question2"),
    ("premise", "hypothesis"),
    ("text1", "text2"),
    ("text_a", "text_b"),
    ("sentence_a", "sentence_b"),
)
_TEXT_NAMES = (
    "text",
    "sentence",
    "review",
    "content",
    "document",
    "comment",
    "tweet",
    "utterance",
    "message",
    "body",
    "abstract",
    "title",
)
_LABEL_NAMES = (
    "label",
    "labels",
    "category",
    "class",
    "quality",
    "sentiment",
    "target",
    "polarity",
    "intent",
    "emotion",
    "topic",
    "y",
)


def _find(column_names: Sequence[str], candidates: Sequence[str], taken: set[str]) -> str | None:
    """First column equal to a candidate (case-insensitive), else one with a candidate as a word in it."""
    lowered = {c: c.strip().lower() for c in column_names if c not in taken}
    for candidate in candidates:
        for column, low in lowered.items():
            if low == candidate:
                return column
    for candidate in candidates:
        for column, low in lowered.items():
            if candidate in re.split(r"[^a-z0-9#]+", low):
                return column  # e.g. "review_text", "sentiment_label"
    return None


# Guessing from values, for names that say nothing ("question", "topic" alone, "foo"): a sample is enough.
_SAMPLE_ROWS = 2000
_MAX_CLASSES = 50  # more distinct values than this is not a class column
_CLASS_SHARE = 0.2  # ... nor one where most rows have a value of their own
_SHORT = 30  # mean characters of a class name; sentences are longer
_TEXT_CHARS = 15  # mean characters of free text (or most values hold a space)


def _kind(column: pd.Series) -> tuple[str | None, float]:
    """What a column's values look like: "text" (long, varied strings), "label" (few short values) or
    None; and their mean length in characters."""
    present = column[~_missing(column)]
    values = present.tolist()
    if present.empty or any(isinstance(v, (list, tuple, dict, set, np.ndarray)) for v in values):
        return None, 0.0
    as_text = present.map(str)
    distinct, mean_length = as_text.nunique(), float(as_text.str.len().mean())
    numbers = [v for v in values if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)]
    whole = all(float(v).is_integer() for v in numbers if not pd.isna(v))
    few = distinct <= _MAX_CLASSES and distinct <= max(2, _CLASS_SHARE * len(values))
    if few and mean_length <= _SHORT and whole:
        return "label", mean_length
    strings = all(isinstance(v, str) for v in values)
    spaced = float(as_text.str.contains(r"\s", regex=True).mean())
    if strings and (mean_length >= _TEXT_CHARS or spaced >= 0.5):
        return "text", mean_length
    return None, mean_length


def _kinds(
    rows: pd.DataFrame | Sequence[dict] | None, names: Sequence[str]
) -> dict[str, tuple[str | None, float]] | None:
    """``_kind`` of every named column of a sample of ``rows``; None without rows."""
    if rows is None:
        return None
    frame = (rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))).head(_SAMPLE_ROWS)
    by_name = {str(c): c for c in frame.columns}
    return {n: _kind(frame[by_name[n]]) if n in by_name else (None, 0.0) for n in names}


def guess_columns(
    column_names: Sequence[str], rows: pd.DataFrame | Sequence[dict] | None = None
) -> dict[str, str | None]:
    """Guess the text, pair text and label columns from column names, then from values where names do not decide.

    Names come first (``sentence1``/``sentence2``, ``review``, ``label``...). With ``rows``, a pair guessed
    from names must be two columns of free text, and a text or label column that no name gives is taken
    from the values: the longest column of long, varied strings is the text; the first column of few
    (at most 50, and at most a fifth of the rows) short values is the label. A column of one value is
    still a label column: too few classes is for the data check to say.

    Args:
        column_names: the dataset's columns.
        rows: the data (or a sample of its rows); None guesses from names alone.
    Returns:
        ``{"text_column": ..., "text_pair_column": ..., "label_column": ...}``; a value is None when
        nothing fits (``text_pair_column`` is None for single-text data).
    """
    names = [str(c) for c in column_names]
    kinds = _kinds(rows, names)
    lowered = {c.strip().lower(): c for c in names}
    label = _find(names, _LABEL_NAMES, set())
    if label is None and kinds is not None:
        label = next((c for c in names if kinds[c][0] == "label"), None)
    taken = {label} if label else set()
    for first, second in _PAIR_NAMES:
        if first in lowered and second in lowered and not {lowered[first], lowered[second]} & taken:
            pair = (lowered[first], lowered[second])
            if kinds is None or all(kinds[c][0] == "text" for c in pair):
                return {"text_column": pair[0], "text_pair_column": pair[1], "label_column": label}
    text = _find(names, _TEXT_NAMES, taken)
    if text is None and kinds is not None:
        texts = [c for c in names if c not in taken and kinds[c][0] == "text"]
        text = max(texts, key=lambda c: kinds[c][1], default=None)  # the longest: free text, not ids
    return {"text_column": text, "text_pair_column": None, "label_column": label}


def missing_column_error(field_name: str, column: str, columns: Sequence[str], where: str) -> ConfigError:
    """The error for a column name that is not in the data: lists the columns, suggests a close one."""
    available = ", ".join(repr(c) for c in columns)
    close = difflib.get_close_matches(column, list(columns), n=1, cutoff=0.6)
    close = close or [c for c in columns if c.lower() == column.lower()]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(
        field_name, f"column {column!r} is not in {where}; available columns: {available}.{hint}"
    )


def resolve_columns(
    column_names: Sequence[str],
    data_args: DataArguments,
    defaults: dict[str, str | None] | None = None,
    rows: pd.DataFrame | None = None,
) -> dict[str, str | None]:
    """The column mapping of a run: the config's columns, guessed (or defaulted) where left empty.

    Args:
        column_names: the training data's columns.
        data_args: text_column, text_pair_column and label_column (each may be None).
        defaults: a built-in dataset's own mapping, preferred over guessing.
        rows: the training data (or a sample), so the guess can look at values when names do not decide.
    Returns:
        ``{"text_column": ..., "text_pair_column": ..., "label_column": ...}``.
    Raises:
        ConfigError: a named column does not exist, or a column cannot be guessed.
    """
    columns = [str(c) for c in column_names]
    # Names are used as written (a column may really be called "#1 String"); only blank means "not set".
    given = {
        f: getattr(data_args, f) if (getattr(data_args, f) or "").strip() else None for f in COLUMN_FIELDS
    }
    for field_name, column in given.items():
        if column and column not in columns:
            raise missing_column_error(field_name, column, columns, "the training data")
    check_column_choice(*given.values())
    fallback = defaults or guess_columns(columns, rows)
    if given["text_column"]:
        text, pair = given["text_column"], given["text_pair_column"]
    else:
        text, pair = fallback["text_column"], fallback["text_pair_column"]
    label = given["label_column"] or fallback["label_column"]
    available = ", ".join(repr(c) for c in columns)
    if not text:
        raise ConfigError(
            "text_column",
            f"could not tell which column holds the text; set text_column to one of {available}",
        )
    if not label:
        raise ConfigError(
            "label_column",
            f"could not tell which column holds the label; set label_column to one of {available}",
        )
    check_column_choice(text, pair, label)
    return {"text_column": text, "text_pair_column": pair, "label_column": label}


# --------------------------------------------------------------------------------------------------
# rows and labels (pure)
# --------------------------------------------------------------------------------------------------


def _missing(column: pd.Series) -> np.ndarray:
    """Per row: empty (None, NaN, NA, or text that is blank)? Lists and other containers are values."""
    missing = column.isna().to_numpy(dtype=bool)
    if column.dtype == object or pd.api.types.is_string_dtype(column):
        try:
            blank = column.str.strip().eq("")
        except AttributeError:  # an object column without a single string (ints, lists...)
            return missing
        missing = missing | blank.to_numpy(dtype=bool, na_value=False)
    return missing


def select_rows(
    frame: pd.DataFrame, columns: dict[str, str | None], class_names: dict[str, list[str]] | None = None
) -> tuple[dict[str, list], int]:
    """Take the mapped columns and drop rows whose text, pair text or label is empty.

    Args:
        frame: raw rows.
        columns: the resolved column mapping.
        class_names: ClassLabel columns of the source; their id -1 means "no label" and is dropped.
    Returns:
        ``({"text": [...], "text_pair": [...] (pairs only), "label": [...]}, number of rows dropped)``,
        in the original row order, texts as ``str``.
    """
    check_column_content(frame, columns)
    text_col, pair_col, label_col = (columns[f] for f in COLUMN_FIELDS)
    keep = np.ones(len(frame), dtype=bool)
    for column in (text_col, pair_col, label_col):
        if column:
            keep &= ~_missing(frame[column])
    if label_col in (class_names or {}):
        keep &= frame[label_col].ne(-1).to_numpy(dtype=bool, na_value=True)
    if not keep.any():
        raise ConfigError(
            "text_column",
            f"no row has both a text in {text_col!r} and a label in {label_col!r}; fill them in, or set "
            "text_column and label_column to the columns that hold them",
        )
    out = {TEXT: _as_text(frame[text_col][keep]), LABEL: frame[label_col][keep].tolist()}
    if pair_col:
        out[TEXT_PAIR] = _as_text(frame[pair_col][keep])
    return out, int(len(frame) - keep.sum())


def _as_text(column: pd.Series) -> list[str]:
    # str() of every value that is not text already (numbers, dates), as the tokenizer takes text.
    return column.tolist() if pd.api.types.is_string_dtype(column) else column.map(str).tolist()


def check_column_content(frame: pd.DataFrame, columns: dict[str, str | None]) -> None:
    """The mapped columns hold something: not empty in every row, and text columns not only numbers.

    A column of ids or scores chosen (or guessed) as the text would train a model on digits.
    """
    available = ", ".join(repr(str(c)) for c in frame.columns)
    for field_name in COLUMN_FIELDS:
        column = columns.get(field_name)
        if not column:
            continue
        present = frame[column][~_missing(frame[column])].tolist()
        what = "class labels" if field_name == "label_column" else "text"
        if not present:
            raise ConfigError(
                field_name,
                f"column {column!r} is empty in every row; set {field_name} to the column that holds the "
                f"{what} (columns: {available})",
            )
        numbers = all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present)
        if field_name != "label_column" and numbers:
            raise ConfigError(
                field_name,
                f"column {column!r} holds only numbers, not text; set {field_name} to the column with "
                f"the sentences (columns: {available})",
            )


@dataclass(frozen=True)
class LabelEncoding:
    """Class names and the class id of every training and validation row."""

    names: list[str]
    train_ids: list[int]
    validation_ids: list[int] | None = None
    notes: list[str] = field(default_factory=list)


# "3", "+3", "3.0" and "3.00" are the class 3: a column read as text (a JSON file, a CSV column with one
# stray word) must not make "1" and "1.0" two classes.
_WHOLE_NUMBER = re.compile(r"[+-]?\d+(?:\.0*)?")


def _normalise_label(value: Any, field_name: str) -> int | str:
    """A label as an int (whole numbers, also "3", "3.0" or 3.0) or a stripped string."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        return int(text.partition(".")[0]) if _WHOLE_NUMBER.fullmatch(text) else text
    if isinstance(value, (float, np.floating)):
        if float(value).is_integer():
            return int(value)
        raise ConfigError(
            field_name,
            f"label {value!r} is not a whole number; this project trains classifiers, so the label column "
            "must hold class names or class ids",
        )
    return str(value)


def cast_labels(
    train_labels: Sequence[Any],
    validation_labels: Sequence[Any] | None = None,
    class_names: Sequence[str] | None = None,
    validation_field: str = "label_column",
) -> LabelEncoding:
    """Turn raw labels into class ids and names.

    Integer labels keep their order and, when they are 0..K-1, their value as class id (MRPC's 1 stays
    the positive class); their names are their string form. Other whole numbers are numbered in
    ascending order (labels 1..5 become ids 0..4 named '1'..'5'). String labels are sorted. A source that
    already names its classes (a ClassLabel column) keeps its ids and names.

    Args:
        train_labels: training labels, none missing.
        validation_labels: validation labels, none missing; each must occur in the training labels.
        class_names: the source's class names when the labels are already ClassLabel ids.
        validation_field: the config field to blame for a validation label that training lacks.
    Returns:
        A :class:`LabelEncoding`; its ``notes`` warn of a column that mixes numbers and text (accepted:
        the preview and the run's data stats show the note).
    Raises:
        ConfigError: fewer than 2 classes, a non-integer number, or an unknown validation label.
    """
    notes: list[str] = []
    if class_names is not None:
        names = [str(n) for n in class_names]
        ids = [int(v) for v in train_labels]
        val_ids = None if validation_labels is None else [int(v) for v in validation_labels]
        bad = sorted({i for i in ids + (val_ids or []) if not 0 <= i < len(names)})
        if bad:
            raise ConfigError(
                "label_column", f"class ids {bad[:5]} are outside the dataset's {len(names)} classes"
            )
    else:
        train_values = [_normalise_label(v, "label_column") for v in train_labels]
        if not all(isinstance(v, int) for v in train_values):
            notes.extend(_mixed_label_note(train_values))
            train_values = [str(v) for v in train_values]
        # ints sort numerically, strings alphabetically: both give a stable, documented class order
        classes = sorted(set(train_values))
        names = [str(c) for c in classes]
        index = {c: i for i, c in enumerate(classes)}
        ids = [index[v] for v in train_values]
        val_ids = None
        if validation_labels is not None:
            as_int = isinstance(classes[0], int) if classes else False
            val_values = [_normalise_label(v, validation_field) for v in validation_labels]
            val_values = [v if as_int or isinstance(v, str) else str(v) for v in val_values]
            unknown = sorted({str(v) for v in val_values if v not in index})
            if unknown:
                raise ConfigError(
                    validation_field,
                    f"validation labels {', '.join(map(repr, unknown[:5]))} do not occur in the training data "
                    f"(training labels: {', '.join(map(repr, names[:20]))}); fix the validation data or "
                    "check label_column",
                )
            val_ids = [index[v] for v in val_values]
    present = sorted(set(ids))
    if len(present) < 2:
        only = repr(names[present[0]]) if present else "none"
        raise ConfigError(
            "label_column",
            f"the training data has {len(present)} class ({only}); a classifier needs at least 2 — check "
            "label_column or add rows of the other classes",
        )
    return LabelEncoding(names, ids, val_ids, notes)


def _mixed_label_note(values: Sequence[int | str]) -> list[str]:
    """A warning when a label column holds both numbers and words: accepted, but likely a data error."""
    numbers = sorted({v for v in values if isinstance(v, int)})
    words = sorted({v for v in values if isinstance(v, str)})
    if not numbers or not words:
        return []
    shown = [str(n) for n in numbers[:5]] + [repr(w) for w in words[:5]]
    more = len(numbers) + len(words) - len(shown)
    return [
        f"the label column mixes numbers and text ({', '.join(shown)}{f', … {more} more' if more else ''}); "
        "each distinct value is its own class, named by its text — check label_column if that is not meant"
    ]


def label_counts(ids: Sequence[int], names: Sequence[str]) -> dict[str, int]:
    """Rows per class name, in class-id order."""
    counts = Counter(ids)
    return {name: counts.get(i, 0) for i, name in enumerate(names)}

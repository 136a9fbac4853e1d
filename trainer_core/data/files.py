"""Reading local data files (CSV, TSV, JSON, JSON Lines, Parquet) into DataFrames.

Used for a run's ``train_file``/``validation_file`` and for previews of uploaded files. Every problem
with a file becomes a :class:`ConfigError` on the field that named it, saying what is wrong with it.
Text files are read as UTF-8; only a file that is not valid UTF-8 pays for encoding detection.
"""

from __future__ import annotations

import codecs
import csv
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from charset_normalizer import from_bytes

from trainer_core.errors import ConfigError


def load_table(path: str | Path, field: str = "train_file", notes: list[str] | None = None) -> pd.DataFrame:
    """Read a local CSV, TSV, JSON, JSON Lines or Parquet file into a DataFrame.

    TSV (and GLUE-style ``.txt``) is read with quoting off, because GLUE files such as MRPC contain
    unbalanced double quotes inside fields that a quote-aware reader would use to merge rows. Text
    files may start with a UTF-8 byte-order mark; one that is not UTF-8 (Excel's cp1252, latin-1,
    UTF-16 with a byte-order mark) is read in the encoding charset-normalizer detects, and a note says
    which. Only empty fields count as missing: a review that says "NA" or "null" stays text.

    Args:
        path: the file; its extension picks the format (.csv, .tsv, .txt, .json, .jsonl, .parquet).
        field: the config field to blame in errors (``train_file`` or ``validation_file``).
        notes: when given, gets a line for the user when the file was read in an encoding other than
            UTF-8.
    Returns:
        The rows, with the file's column names.
    Raises:
        ConfigError: missing, empty, malformed, binary or row-less file, or an unsupported extension.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(field, f"file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ConfigError(field, f"{path.name} is empty; choose a file with a header row and data rows")
    suffix = path.suffix.lower()
    try:
        try:
            frame = _read(path, suffix, "utf-8-sig")
        except UnicodeDecodeError as exc:
            encoding = _detect_encoding(path, exc)
            frame = _read(path, suffix, encoding)
            if notes is not None:
                notes.append(f"{path.name} was read as {encoding} (not UTF-8)")
    except UnicodeDecodeError as exc:
        raise ConfigError(field, f"{path.name} is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    except ValueError as exc:
        raise ConfigError(field, str(exc)) from exc
    if frame.shape[1] == 0:
        raise ConfigError(field, f"{path.name} has no columns; the first line must name the columns")
    if len(frame) == 0:
        raise ConfigError(field, f"{path.name} has a header but no rows; add data rows below the header")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _read(path: Path, suffix: str, encoding: str) -> pd.DataFrame:
    if suffix in (".csv", ".tsv", ".txt"):
        return _read_delimited(path, "," if suffix == ".csv" else "\t", encoding)
    if suffix == ".json":
        return _read_json(path, encoding)
    if suffix == ".jsonl":
        return _records_frame(_read_json_lines(path.read_text(encoding=encoding)), path)
    if suffix == ".parquet":
        return _read_parquet(path)
    raise ValueError(f"{path.name} has an unsupported extension; use .csv, .tsv, .json, .jsonl or .parquet")


def _detect_encoding(path: Path, error: UnicodeDecodeError) -> str:
    """The encoding of a text file that is not UTF-8; ValueError when it does not look like text."""
    data = path.read_bytes()
    # Text in a one-byte code page never holds NUL; binary files (images, zips, Excel) almost always do,
    # and charset-normalizer can still find some code page that "decodes" them. UTF-16/32 text holds NULs
    # too, but then starts with a byte-order mark (Excel's "Unicode Text" export does).
    if b"\x00" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(f"{path.name} holds binary data (NUL bytes), not text; save the rows as UTF-8 text")
    matches = from_bytes(data)
    if not matches:
        raise ValueError(
            f"{path.name} is not UTF-8 text ({error.reason}) and not text in any other encoding either; "
            "save it as UTF-8"
        )
    # On a few short rows charset-normalizer ranks lookalike code pages (cp775, cp1250) above cp1252
    # with a near-equal score (measured: a cp1252 "café, naïve, €" file came back as cp775, which
    # reads it as "cafķ, na’ve, Ć"). A non-UTF-8 CSV is almost always Excel's cp1252 (a superset of
    # latin-1's printable characters), so cp1252 wins whenever it is among the matches that pass the
    # mess threshold.
    if any("cp1252" in match.could_be_from_charset for match in matches):
        return "cp1252"
    return matches.best().encoding


def _read_delimited(path: Path, sep: str, encoding: str) -> pd.DataFrame:
    options: dict[str, Any] = {
        "sep": sep,
        "encoding": encoding,
        "keep_default_na": False,
        "na_values": [""],
        # Never take the first column as an index when a row has one field more than the header.
        "index_col": False,
    }
    if sep == "\t":
        options["quoting"] = csv.QUOTE_NONE
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops fields) when rows are longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"{path.name} has no header row; the first line must name the columns") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        kind = "CSV" if sep == "," else "tab-separated"
        hint = (
            "quote fields that contain commas"
            if sep == ","
            else "every row needs the same number of tab-separated fields"
        )
        raise ValueError(f"{path.name} is not a well-formed {kind} file ({detail}); {hint}") from exc
    _check_header(path, sep, [str(c) for c in frame.columns], encoding)
    return frame


def _check_header(path: Path, sep: str, columns: list[str], encoding: str) -> None:
    # pandas renames a repeated column ("label" -> "label.1") and reads a file with another delimiter
    # as one column; both would train on the wrong column instead of failing.
    with open(path, encoding=encoding, newline="") as f:
        quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
        header = next(csv.reader(f, delimiter=sep, quoting=quoting), [])
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ValueError(
            f"{path.name} names the column(s) {', '.join(map(repr, repeated))} more than once; "
            "give every column a different name"
        )
    others = [d for d in (",", "\t", ";", "|") if d != sep and len(columns) == 1 and d in columns[0]]
    if others:
        expected = "comma" if sep == "," else "tab"
        rename = {",": " or rename it to .csv", "\t": " or rename it to .tsv"}.get(others[0], "")
        raise ValueError(
            f"{path.name} looks {others[0]!r}-separated but a {path.suffix} file must be {expected}-separated; "
            f"save it with {expected}s between fields{rename}"
        )


def _read_json(path: Path, encoding: str) -> pd.DataFrame:
    text = path.read_text(encoding=encoding)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            # Several top-level values: JSON Lines saved with a .json extension (datasets accepts it too).
            return _records_frame(_read_json_lines(text), path)
        raise ValueError(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}; fix it "
            "there, or save the rows as CSV"
        ) from exc
    if isinstance(data, dict):
        lists = {k: v for k, v in data.items() if isinstance(v, list)}
        if len(lists) == 1 and all(isinstance(r, dict) for r in next(iter(lists.values()))):
            data = next(iter(lists.values()))  # {"data": [{...}, ...]}
        elif lists and len(lists) == len(data) and len({len(v) for v in lists.values()}) == 1:
            return pd.DataFrame(data)  # {"column": [values], ...}
        else:
            raise ValueError(
                f"{path.name} holds a JSON object; expected a list of rows like "
                '[{"text": ..., "label": ...}, ...] or columns of equal length'
            )
    if not isinstance(data, list):
        raise ValueError(f"{path.name} must hold a list of rows (JSON objects), not a single value")
    return _records_frame(data, path)


def _read_json_lines(text: str) -> list[Any]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"line {number} is not valid JSON ({exc.msg}); JSON Lines needs one object per line"
            ) from exc
    return rows


def _records_frame(rows: list[Any], path: Path) -> pd.DataFrame:
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ValueError(
                f"{path.name}: row {number} is {type(row).__name__}, not an object with named fields; write "
                'each row as {"text": ..., "label": ...}'
            )
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types for a bad file
        raise ValueError(
            f"{path.name} is not a readable Parquet file ({type(exc).__name__}: {exc}); save it again with "
            "DataFrame.to_parquet, or as CSV"
        ) from exc

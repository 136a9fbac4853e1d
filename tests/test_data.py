"""Data: every file format, the MRPC quirks, column mapping, label casting, splits, caps, tokenising."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainer_core.config import DataArguments, ModelArguments
from trainer_core.data.prepare import (
    cast_labels,
    guess_columns,
    load_raw_data,
    load_table,
    prepare_datasets,
    preview_dataset,
    select_rows,
    split_train_validation,
)
from trainer_core.errors import ConfigError

MRPC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mrpc"
ROWS = [
    {"text": "a fine film", "label": "pos"},
    {"text": "dull, slow and long", "label": "neg"},
    {"text": 'he said "great', "label": "pos"},
    {"text": "NA", "label": "neg"},
]


@pytest.fixture(scope="module")
def tokenizer():
    from trainer_core.models import load_tokenizer

    return load_tokenizer(ModelArguments(model_name_or_path="builtin:minilm-l6"))


def file_args(train: Path, validation: Path | None = None, **overrides) -> DataArguments:
    return DataArguments(
        dataset_name=None,
        train_file=str(train),
        validation_file=str(validation) if validation else None,
        **overrides,
    )


def mrpc_args(**overrides) -> DataArguments:
    columns = {"text_column": "#1 String", "text_pair_column": "#2 String", "label_column": "Quality"}
    return file_args(MRPC / "train.tsv", MRPC / "dev.tsv", **{**columns, **overrides})


# --------------------------------------------------------------------------------------------------
# file formats
# --------------------------------------------------------------------------------------------------


def _write(tmp_path: Path, fmt: str) -> Path:
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"rows.{fmt.split('-')[0]}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "tsv":
        # Written by hand: the unbalanced quote must reach the file unescaped, as in GLUE files.
        lines = ["text\tlabel"] + [f"{r['text']}\t{r['label']}" for r in ROWS]
        path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "json-columns":
        path.write_text(json.dumps({"text": [r["text"] for r in ROWS], "label": [r["label"] for r in ROWS]}))
    elif fmt == "json-lines":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n")
    elif fmt == "parquet":
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "json-columns", "json-lines", "jsonl", "parquet"])
def test_every_format_loads_the_same_rows(tmp_path, fmt):
    frame = load_table(_write(tmp_path, fmt))
    assert list(frame.columns) == ["text", "label"]
    assert frame["text"].tolist() == [r["text"] for r in ROWS]  # "NA" stays text, the quote stays
    assert frame["label"].tolist() == [r["label"] for r in ROWS]


def test_mrpc_files_survive_bom_and_unbalanced_quotes():
    train, dev = load_table(MRPC / "train.tsv"), load_table(MRPC / "dev.tsv")
    assert list(train.columns)[0] == "Quality"  # the byte-order mark is not part of the name
    assert (len(train), len(dev)) == (3668, 408)
    assert train["Quality"].value_counts().to_dict() == {1: 2474, 0: 1194}
    assert dev["Quality"].value_counts().to_dict() == {1: 279, 0: 129}
    odd_quotes = train[train["#1 String"].str.count('"') % 2 == 1]
    assert len(odd_quotes) > 0
    assert not odd_quotes["#1 String"].str.contains("\n").any()  # no row swallowed the next one


def test_mrpc_matches_the_course_recipe_row_for_row(tokenizer):
    """Same rows, order, input_ids and labels as tokenizer(s1, s2, truncation=True) on GLUE MRPC."""
    prepared = prepare_datasets(mrpc_args(), tokenizer, seed=42)
    assert prepared.label_names == ["0", "1"]  # id 1 stays "paraphrase", the positive class
    for split, name in ((prepared.train, "train.tsv"), (prepared.validation, "dev.tsv")):
        with open(MRPC / name, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        expected = tokenizer([r["#1 String"] for r in rows], [r["#2 String"] for r in rows], truncation=True)
        assert split["label"] == [int(r["Quality"]) for r in rows]
        assert split["input_ids"] == expected["input_ids"]
        assert split["token_type_ids"] == expected["token_type_ids"]
    assert prepared.raw_validation.column_names == ["text", "text_pair", "label"]
    assert prepared.stats["label_counts_validation"] == {"0": 129, "1": 279}


MALFORMED = [
    ("bad.json", '[{"text": "a", "label": 1},', "not valid JSON"),
    ("scalar.json", "42", "list of rows"),
    ("ragged.csv", "text,label\na,1\nb,2,extra\n", "well-formed CSV"),
    ("wide_first_row.csv", "text,label\na,1,extra\nb,2,more\n", "well-formed CSV"),
    ("ragged.tsv", "text\tlabel\na\t1\nb\t2\textra\n", "tab-separated"),
    ("empty.csv", "", "empty"),
    ("blank.csv", "\n\n", "no header row"),
    ("header_only.csv", "text,label\n", "no rows"),
    ("bad_line.jsonl", '{"text": "a", "label": 1}\n{"text": "b", \n', "line 2"),
    ("not_objects.jsonl", "[1, 2]\n", "not an object"),
    ("broken.parquet", "this is not parquet", "Parquet"),
    ("rows.xlsx", "whatever", "unsupported extension"),
]


@pytest.mark.parametrize(("name", "content", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_say_what_is_wrong(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_table(path, "validation_file")
    assert info.value.field == "validation_file"
    assert expected in info.value.message


# Excel on Western Windows saves "CSV" as cp1252: curly quotes, the euro sign and accents outside latin-1.
LEGACY_TEXTS = ["caf\u00e9 au lait", "na\u00efve \u201cquoted\u201d plot", "\u20ac5 and it\u2019s worth it"]


def test_cp1252_csv_is_read_and_the_encoding_named(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        ("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(LEGACY_TEXTS))).encode("cp1252")
    )
    notes: list[str] = []
    frame = load_table(path, notes=notes)
    assert frame["text"].tolist() == LEGACY_TEXTS
    assert notes == ["excel.csv was read as cp1252 (not UTF-8)"]


def test_latin1_tsv_is_read_and_the_encoding_named(tmp_path):
    texts = ["caf\u00e9 au lait", "na\u00efve plot", "d\u00e9j\u00e0 vu, \u00bd good"]
    path = tmp_path / "old.tsv"
    path.write_bytes(
        ("text\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(texts))).encode("latin-1")
    )
    notes: list[str] = []
    frame = load_table(path, "validation_file", notes)
    assert frame["text"].tolist() == texts
    # cp1252 reads every printable latin-1 character the same; the note names what was used.
    assert notes == ["old.tsv was read as cp1252 (not UTF-8)"]


def test_utf16_tsv_with_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "unicode.txt"  # Excel's "Unicode Text" export
    path.write_text("text\tlabel\n" + "".join(f"{t}\t1\n" for t in LEGACY_TEXTS), encoding="utf-16")
    notes: list[str] = []
    assert load_table(path, notes=notes)["text"].tolist() == LEGACY_TEXTS
    assert len(notes) == 1 and "utf_16" in notes[0]


def test_utf8_file_gets_no_encoding_note(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("text,label\n" + "".join(f"{t},1\n" for t in LEGACY_TEXTS), encoding="utf-8-sig")
    notes: list[str] = []
    assert load_table(path, notes=notes)["text"].tolist() == LEGACY_TEXTS
    assert notes == []


def test_binary_file_named_csv_is_still_rejected(tmp_path):
    path = tmp_path / "picture.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x81" * 50)
    notes: list[str] = []
    with pytest.raises(ConfigError, match="binary data.*UTF-8") as info:
        load_table(path, notes=notes)
    assert info.value.field == "train_file"
    assert notes == []


def test_encoding_note_reaches_the_preview(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(
        ("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(LEGACY_TEXTS * 10))).encode("cp1252")
    )
    preview = preview_dataset(DataArguments(train_file=str(path)))
    assert preview["ok"], preview["error"]
    assert "excel.csv was read as cp1252 (not UTF-8)" in preview["notes"]
    assert preview["head"]["text"].tolist()[:3] == LEGACY_TEXTS


# --------------------------------------------------------------------------------------------------
# columns
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["text", "label"], ("text", None, "label")),
        (["idx", "sentence1", "sentence2", "label"], ("sentence1", "sentence2", "label")),
        (["question", "sentence", "label", "idx"], ("question", "sentence", "label")),
        (["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], ("#1 String", "#2 String", "Quality")),
        (["Review", "Sentiment"], ("Review", None, "Sentiment")),
        (["content", "class"], ("content", None, "class")),
        (["category", "filename", "text", "movie_name"], ("text", None, "category")),
        (["review_text", "star_label"], ("review_text", None, "star_label")),
        (["a", "b"], (None, None, None)),
    ],
)
def test_guess_columns(columns, expected):
    guessed = guess_columns(columns)
    assert (guessed["text_column"], guessed["text_pair_column"], guessed["label_column"]) == expected


QUESTIONS = [f"what is the answer to question number {i}?" for i in range(60)]
TOPICS = ["geo", "hist", "sci", "art", "math", "bio"] * 10


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        # "question" is half of a pair by name; alone, its free text makes it the text column.
        ({"question": QUESTIONS, "topic": TOPICS}, ("question", None, "topic")),
        # No name says anything: long varied strings are the text, few short values the label.
        ({"code": TOPICS, "id": list(range(60)), "x": QUESTIONS}, ("x", None, "code")),
        ({"foo": QUESTIONS, "bar": ["a"] * 60}, ("foo", None, "bar")),  # one class: still named
        # A name-only pair needs two columns of text; a column of short codes is not the second half.
        ({"question": QUESTIONS, "sentence": TOPICS}, ("question", None, "sentence")),
        (
            {"question": QUESTIONS, "sentence": QUESTIONS[::-1], "label": [0, 1] * 30},
            ("question", "sentence", "label"),
        ),
        ({"a": list(range(60)), "b": [f"id{i}" for i in range(60)]}, (None, None, None)),
    ],
)
def test_guess_columns_from_values(frame, expected):
    frame = pd.DataFrame(frame)
    guessed = guess_columns(list(frame.columns), frame)
    assert (guessed["text_column"], guessed["text_pair_column"], guessed["label_column"]) == expected


def test_preview_resolves_unnamed_columns_and_keeps_the_mapping_of_a_single_class_file(tmp_path):
    path = tmp_path / "q.csv"
    pd.DataFrame({"question": QUESTIONS, "topic": TOPICS}).to_csv(path, index=False)
    preview = preview_dataset(DataArguments(train_file=str(path)))
    assert preview["ok"], preview["error"]
    assert preview["mapping"] == {
        "text_column": "question",
        "text_pair_column": None,
        "label_column": "topic",
    }
    pd.DataFrame({"question": QUESTIONS, "topic": ["geo"] * 60}).to_csv(path, index=False)
    preview = preview_dataset(DataArguments(train_file=str(path)))
    assert not preview["ok"] and preview["error"]["field"] == "label_column"
    assert preview["mapping"]["label_column"] == "topic"


def test_wrong_column_name_lists_the_available_columns(tokenizer):
    with pytest.raises(ConfigError) as info:
        prepare_datasets(mrpc_args(label_column="quality"), tokenizer, seed=1)
    assert info.value.field == "label_column"
    assert "'#1 String', '#2 String'" in info.value.message and "Did you mean 'Quality'" in info.value.message


def test_validation_file_without_the_columns_is_blamed(tmp_path, tokenizer):
    train = tmp_path / "train.csv"
    pd.DataFrame(ROWS).to_csv(train, index=False)
    validation = tmp_path / "validation.csv"
    pd.DataFrame({"review": ["x"], "label": ["pos"]}).to_csv(validation, index=False)
    with pytest.raises(ConfigError) as info:
        prepare_datasets(file_args(train, validation), tokenizer, seed=1)
    assert info.value.field == "validation_file" and "'review'" in info.value.message


def test_rows_with_empty_text_or_label_are_dropped_and_counted():
    frame = pd.DataFrame(
        {
            "t": ["ok", "  ", None, "fine", "good"],
            "p": ["x", "y", "z", None, "w"],
            "y": [1, 0, 1, 0, float("nan")],
        }
    )
    rows, dropped = select_rows(frame, {"text_column": "t", "text_pair_column": "p", "label_column": "y"})
    assert rows["text"] == ["ok"] and rows["text_pair"] == ["x"] and dropped == 4


# --------------------------------------------------------------------------------------------------
# labels
# --------------------------------------------------------------------------------------------------


def test_string_labels_are_sorted():
    encoding = cast_labels(["pos", "neg", "neutral", "neg"], ["neutral", " pos "])
    assert encoding.names == ["neg", "neutral", "pos"]
    assert encoding.train_ids == [2, 0, 1, 0] and encoding.validation_ids == [1, 2]


def test_integer_labels_keep_their_value_as_class_id():
    encoding = cast_labels([1, 0, 1, 1], [0, 1])
    assert encoding.names == ["0", "1"] and encoding.train_ids == [1, 0, 1, 1]
    # Whole numbers from a float column (NaN elsewhere) or from text are integers too.
    assert cast_labels([1.0, 0.0, 2.0], ["2"]).validation_ids == [2]


def test_one_number_written_differently_is_one_class():
    encoding = cast_labels(
        [1, 1.0, "1", " 1.0 ", np.int64(0), np.float64(0.0), "0.00"], [np.float32(1.0), "0"]
    )
    assert encoding.names == ["0", "1"] and encoding.train_ids == [1, 1, 1, 1, 0, 0, 0]
    assert encoding.validation_ids == [1, 0] and encoding.notes == []
    # A number that is not whole, written as text, is not rounded into a neighbouring class.
    assert cast_labels(["1", "0.5", "1.0"]).names == ["0.5", "1"]


def test_numbers_mixed_with_words_are_accepted_with_a_note():
    encoding = cast_labels([1, "1.0", 0, "yes"])
    assert encoding.names == ["0", "1", "yes"] and encoding.train_ids == [1, 1, 0, 2]
    assert len(encoding.notes) == 1 and "0, 1, 'yes'" in encoding.notes[0]


def test_float_and_integer_label_files_give_the_same_classes(tmp_path):
    # pandas reads the first file's labels as floats (1.0, 0.0, 1.0), the second's as ints.
    floats, ints = tmp_path / "train.csv", tmp_path / "dev.csv"
    floats.write_text("text,label\na,1.0\nb,0.0\nc,1.0\nd,\n")
    ints.write_text("text,label\ne,1\nf,0\n")
    assert load_table(floats)["label"].dtype == "float64"
    preview = preview_dataset(file_args(floats, ints))
    assert preview["ok"] and preview["label_counts"] == {"0": 1, "1": 2} and preview["n_validation"] == 2
    assert not any("mixes" in n for n in preview["notes"])
    swapped = preview_dataset(file_args(ints, floats))
    assert swapped["ok"] and swapped["label_counts"] == {"0": 1, "1": 1}


def test_a_label_file_mixing_numbers_and_words_shows_a_note_in_the_preview(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("text,label\na,1\nb,1.0\nc,0\nd,yes\ne,yes\nf,0\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ng,1\nh,yes\n")
    preview = preview_dataset(file_args(path, dev))
    assert preview["ok"] and preview["label_counts"] == {"0": 2, "1": 2, "yes": 2}
    assert any("mixes numbers and text" in n and "'yes'" in n for n in preview["notes"])


def test_integer_labels_that_skip_values_are_numbered_in_order():
    encoding = cast_labels([5, 1, 3, 10])
    assert encoding.names == ["1", "3", "5", "10"] and encoding.train_ids == [2, 0, 1, 3]


def test_unknown_validation_label_is_an_error():
    with pytest.raises(ConfigError) as info:
        cast_labels(["pos", "neg"], ["pos", "mixed"], validation_field="validation_file")
    assert info.value.field == "validation_file" and "'mixed'" in info.value.message


def test_a_single_class_is_an_error():
    with pytest.raises(ConfigError, match="at least 2") as info:
        cast_labels(["pos", "pos"])
    assert info.value.field == "label_column"


def test_fractional_labels_are_an_error():
    with pytest.raises(ConfigError, match="whole number"):
        cast_labels([0.5, 1.0])


def test_named_class_ids_are_kept():
    encoding = cast_labels([1, 0, 1], [0], class_names=["not_equivalent", "equivalent"])
    assert encoding.names == ["not_equivalent", "equivalent"] and encoding.train_ids == [1, 0, 1]


# --------------------------------------------------------------------------------------------------
# splits, caps, tokenising
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin_rows():
    from trainer_core.data.prepare import _normalise

    raw = load_raw_data(DataArguments())
    return raw, _normalise(raw, DataArguments())


def test_builtin_dataset_is_fresh_and_rotten_reviews(builtin_rows):
    raw, normalised = builtin_rows
    assert len(raw.train) == 4866 and raw.validation is None
    assert normalised.names == ["fresh", "rotten"]
    assert Counter(normalised.train["label"]) == {0: 2455, 1: 2411}


def test_carved_split_is_seeded_and_stratified(builtin_rows):
    dataset = builtin_rows[1].train
    train_a, val_a = split_train_validation(dataset, 0.2, seed=3)
    train_b, val_b = split_train_validation(dataset, 0.2, seed=3)
    _, val_c = split_train_validation(dataset, 0.2, seed=4)
    assert val_a["text"] == val_b["text"] and train_a["text"] == train_b["text"]
    assert val_a["text"] != val_c["text"]
    assert len(val_a) == 974 and len(train_a) + len(val_a) == len(dataset)
    share = Counter(val_a["label"])[0] / len(val_a)
    assert abs(share - 2455 / 4866) < 0.002
    # The same rows a plain script gets from datasets' own stratified train_test_split.
    small = dataset.select(range(600))
    reference = small.train_test_split(test_size=0.25, seed=11, stratify_by_column="label")
    train_d, val_d = split_train_validation(small, 0.25, seed=11)
    assert val_d["text"] == reference["test"]["text"] and train_d["text"] == reference["train"]["text"]


def test_a_class_too_small_to_stratify_is_an_error(tmp_path, tokenizer):
    path = tmp_path / "tiny.csv"
    pd.DataFrame({"text": list("abcdef"), "label": ["x", "x", "x", "x", "y", "z"]}).to_csv(path, index=False)
    with pytest.raises(ConfigError) as info:
        prepare_datasets(file_args(path, validation_split_ratio=0.5), tokenizer, seed=0)
    assert info.value.field == "validation_split_ratio"


def test_caps_take_the_first_rows_in_file_order(tokenizer):
    prepared = prepare_datasets(mrpc_args(max_train_samples=10, max_eval_samples=5), tokenizer, seed=0)
    full = load_table(MRPC / "dev.tsv")
    assert (len(prepared.train), len(prepared.validation)) == (10, 5)
    assert prepared.raw_validation["text"] == full["#1 String"].tolist()[:5]
    assert prepared.stats["n_train"] == 10


def test_tokenising_truncates_without_padding(tokenizer):
    prepared = prepare_datasets(DataArguments(max_train_samples=200, max_seq_length=16), tokenizer, seed=0)
    lengths = [len(ids) for ids in prepared.train["input_ids"]]
    assert max(lengths) == 16 and min(lengths) < 16  # truncated to 16, not padded to it
    assert set(prepared.train.column_names) == {"input_ids", "token_type_ids", "attention_mask", "label"}
    assert prepared.raw_validation.column_names == ["text", "label"]
    assert len(prepared.raw_validation) == len(prepared.validation) == 487


def test_prepared_rows_collate_for_trainer(tokenizer):
    from transformers import DataCollatorWithPadding

    prepared = prepare_datasets(DataArguments(max_train_samples=8, max_seq_length=32), tokenizer, seed=0)
    batch = DataCollatorWithPadding(tokenizer)([prepared.train[i] for i in range(8)])
    assert batch["input_ids"].shape[0] == 8 and batch["labels"].tolist() == prepared.train["label"]
    assert (batch["attention_mask"].sum(dim=1) <= 32).all()


def test_local_dataset_folder_with_named_classes(tmp_path, tokenizer, monkeypatch):
    """The datasets.load_dataset path (used for Hub ids), exercised offline on a local folder."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    folder = tmp_path / "dataset"
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_dict(
        {"sentence": list("abcd"), "label": [0, 1, 1, 0]}, features=features
    ).to_parquet(str(folder / "data" / "train.parquet"))
    datasets.Dataset.from_dict({"sentence": ["e", "f"], "label": [1, -1]}, features=features).to_parquet(
        str(folder / "data" / "validation.parquet")
    )
    args = DataArguments(dataset_name=str(folder), validation_split="validation")
    prepared = prepare_datasets(args, tokenizer, seed=0)
    assert prepared.label_names == ["neg", "pos"]
    assert prepared.raw_validation["text"] == ["e"]  # the unlabelled (-1) row is dropped
    assert prepared.stats["dropped_validation"] == 1
    with pytest.raises(ConfigError) as info:
        load_raw_data(DataArguments(dataset_name=str(folder), train_split="training"))
    assert info.value.field == "train_split" and "train, validation" in info.value.message


def test_uncached_hub_dataset_offline(monkeypatch, tmp_path):
    import datasets
    from huggingface_hub import constants

    # Offline for sure, so no request is made whatever the environment says.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    with pytest.raises(ConfigError) as info:
        load_raw_data(DataArguments(dataset_name="someone/not-a-cached-dataset"))
    assert info.value.field == "dataset_name" and "not in the local cache" in info.value.message


@pytest.mark.parametrize(
    ("error", "field", "expected"),
    [
        ("gated", "dataset_name", "ask for access on https://huggingface.co/datasets/org/x"),
        ("missing", "dataset_name", "no dataset 'org/x' on the Hugging Face Hub"),
        ("no files", "dataset_name", "holds no data files"),
        ("config", "dataset_config_name", "needs a configuration"),
    ],
)
def test_dataset_errors_say_what_to_do(error, field, expected):
    from datasets.exceptions import DataFilesNotFoundError, DatasetNotFoundError

    from trainer_core.data.sources import _dataset_error

    raised = {
        "gated": DatasetNotFoundError("Dataset 'org/x' is a gated dataset on the Hub."),
        "missing": DatasetNotFoundError("Dataset 'org/x' doesn't exist on the Hub or cannot be accessed."),
        "no files": DataFilesNotFoundError("No (supported) data files found in org/x"),
        "config": ValueError("Config name is missing.\nPlease pick one among the available configs"),
    }[error]
    translated = _dataset_error("org/x", raised)
    assert translated.field == field and expected in translated.message


# --------------------------------------------------------------------------------------------------
# preview
# --------------------------------------------------------------------------------------------------


def test_preview_of_the_builtin_dataset_with_token_lengths():
    preview = preview_dataset(DataArguments(max_seq_length=32), checkpoint="builtin:tiny-bert", n_rows=5)
    assert preview["ok"] and preview["error"] is None
    assert preview["head"].shape == (5, 3) and preview["columns"] == ["text", "category", "movie_name"]
    assert preview["mapping"] == {"text_column": "text", "text_pair_column": None, "label_column": "category"}
    assert preview["label_counts"] == {"fresh": 2455, "rotten": 2411}
    assert (preview["n_train"], preview["n_validation"]) == (4379, 487)
    # The training rows after the stratified split keep the label balance.
    assert sum(preview["label_counts_train"].values()) == 4379
    assert abs(preview["label_counts_train"]["fresh"] / 4379 - 2455 / 4866) < 0.002
    stats = preview["token_stats"]
    assert stats["max"] > 32 and 0 < stats["n_truncated"] < preview["n_train"]
    assert stats["share_truncated"] == pytest.approx(stats["n_truncated"] / preview["n_train"])


def test_preview_reports_problems_instead_of_raising(tmp_path):
    missing = preview_dataset(file_args(tmp_path / "nope.csv"))
    assert not missing["ok"] and missing["error"]["field"] == "train_file"

    wrong_column = preview_dataset(mrpc_args(text_column="sentence"))
    assert not wrong_column["ok"] and wrong_column["error"]["field"] == "text_column"
    assert wrong_column["columns"][0] == "Quality" and len(wrong_column["head"]) == 20  # what loaded is kept

    bad_checkpoint = preview_dataset(mrpc_args(), checkpoint=str(tmp_path / "no-model"))
    assert not bad_checkpoint["ok"] and bad_checkpoint["error"]["field"] == "model_name_or_path"
    assert bad_checkpoint["label_counts"] == {"0": 1194, "1": 2474} and bad_checkpoint["n_validation"] == 408

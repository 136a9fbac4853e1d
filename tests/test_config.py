"""Run config: parsing from files and dicts, type coercion, every error path, round trips."""

from __future__ import annotations

import json

import pytest

from trainer_core import value_from_text
from trainer_core.config import config_diff, config_from_dict, field_help, load_config, to_yaml
from trainer_core.errors import ConfigError


def test_defaults_are_the_offline_builtins_and_per_epoch_evaluation():
    config = config_from_dict({})
    assert config.model.model_name_or_path == "builtin:minilm-l6"
    assert config.data.dataset_name == "builtin:rotten-tomatoes"
    assert config.training.eval_strategy.value == "epoch"
    assert config.training.report_to == []


def test_strings_from_yaml_and_forms_are_coerced():
    config = config_from_dict(
        {
            "learning_rate": "2e-5",
            "num_train_epochs": "3",
            "per_device_train_batch_size": "16",
            "fp16": "false",
        }
    )
    assert config.training.learning_rate == 2e-5
    assert config.training.num_train_epochs == 3.0
    assert config.training.per_device_train_batch_size == 16
    assert config.training.fp16 is False


def test_full_dict_round_trips_and_yaml_file_replays(tmp_path):
    config = config_from_dict(
        {
            "learning_rate": 3e-5,
            "max_seq_length": 64,
            "early_stopping_patience": 2,
            "load_best_model_at_end": True,
            "metric_for_best_model": "f1",
        }
    )
    full = config.to_dict()
    assert "hub_token" not in full
    assert config_from_dict(full).to_dict() == full
    path = tmp_path / "run.yaml"
    path.write_text(to_yaml(config, minimal=False))
    assert load_config(path).to_dict() == full
    path_json = tmp_path / "run.json"
    path_json.write_text(json.dumps(config.to_dict(minimal=True)))
    assert load_config(path_json).to_dict() == full


def test_minimal_dict_keeps_only_changes():
    minimal = config_from_dict({"learning_rate": 1e-4, "seed": 3}).to_dict(minimal=True)
    assert minimal == {"learning_rate": 1e-4, "seed": 3}


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("text,label\na,0\nb,1\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train_file: data/train.csv\n")
    assert load_config(cfg).data.train_file == str((data / "train.csv").resolve())
    assert load_config(cfg).data.dataset_name is None


def test_every_field_has_help_text():
    helps = field_help()
    for key in (
        "model_name_or_path",
        "text_column",
        "max_seq_length",
        "early_stopping_patience",
        "learning_rate",
    ):
        assert helps[key].strip(), key


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"learning_rate": "fast"}, "learning_rate", "expected a number"),
        ({"learning_rate": 0}, "learning_rate", "greater than 0"),
        ({"learning_rate": 3}, "learning_rate", "diverge"),
        ({"learnig_rate": 1e-5}, "learnig_rate", "Did you mean 'learning_rate'"),
        ({"num_train_epochs": 0}, "num_train_epochs", "greater than 0"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size", "greater than 0"),
        ({"per_device_train_batch_size": 2.5}, "per_device_train_batch_size", "whole number"),
        ({"gradient_accumulation_steps": -1}, "gradient_accumulation_steps", "greater than 0"),
        ({"weight_decay": -0.1}, "weight_decay", "zero or more"),
        ({"max_seq_length": 0}, "max_seq_length", "greater than 0"),
        ({"max_seq_length": 100000}, "max_seq_length", "512 or less"),
        ({"max_train_samples": -5}, "max_train_samples", "greater than 0"),
        ({"validation_split_ratio": 1.5}, "validation_split_ratio", "between 0 and 1"),
        ({"seed": -1}, "seed", "zero or more"),
        ({"logging_steps": 0}, "logging_steps", "greater than 0"),
        ({"fp16": True, "bf16": True}, "fp16", "not both"),
        ({"fp16": "maybe"}, "fp16", "true or false"),
        ({"lr_scheduler_type": "bogus"}, "lr_scheduler_type", "bogus"),
        ({"eval_strategy": "sometimes"}, "eval_strategy", "sometimes"),
        ({"model_name_or_path": ""}, "model_name_or_path", "choose a checkpoint"),
        ({"model_name_or_path": "builtin:gpt9"}, "model_name_or_path", "unknown built-in"),
        ({"dataset_name": "builtin:imdb"}, "dataset_name", "unknown built-in"),
        ({"dataset_name": None}, "dataset_name", "choose a dataset"),
        ({"train_file": "/no/such/file.csv"}, "train_file", "does not exist"),
        ({"train_file": "/tmp/data.xlsx"}, "train_file", "unsupported extension"),
        ({"validation_file": "/tmp/dev.csv"}, "validation_file", "needs a train_file"),
        ({"text_column": "text", "label_column": "text"}, "label_column", "different columns"),
        ({"text_pair_column": "b"}, "text_column", "needs a text_column"),
        ({"metric_for_best_model": "bleu"}, "metric_for_best_model", "not a reported metric"),
        ({"load_best_model_at_end": True, "eval_strategy": "no"}, "load_best_model_at_end", "eval_strategy"),
        ({"load_best_model_at_end": True, "save_strategy": "steps"}, "load_best_model_at_end", "match"),
        ({"early_stopping_patience": 2}, "early_stopping_patience", "load_best_model_at_end"),
        ({"early_stopping_patience": 0}, "early_stopping_patience", "greater than 0"),
        ({"early_stopping_patience": 2, "eval_strategy": "no"}, "early_stopping_patience", "eval_strategy"),
        ({"lr_scheduler_kwargs": "{not json"}, "lr_scheduler_kwargs", "JSON"),
    ],
)
def test_config_errors_name_the_field_and_the_fix(values, field, words):
    with pytest.raises(ConfigError) as info:
        config_from_dict(values)
    assert info.value.field == field
    assert words in info.value.message


def test_both_dataset_and_file_is_an_error(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nx,1\n")
    with pytest.raises(ConfigError) as info:
        config_from_dict({"dataset_name": "glue", "train_file": str(path)})
    assert info.value.field == "train_file"


def test_fp16_needs_a_gpu():
    import torch

    if torch.cuda.is_available():
        assert config_from_dict({"fp16": True}).training.fp16 is True  # with a GPU, fp16 is valid
        return
    with pytest.raises(ConfigError) as info:
        config_from_dict({"fp16": True})
    assert info.value.field == "fp16" and "GPU" in info.value.message


def test_broken_config_files(tmp_path):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("learning_rate: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad_yaml)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(not_mapping)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_config_diff_shows_only_differences():
    a = {"learning_rate": 1e-5, "seed": 1, "model_name_or_path": "m"}
    b = {"learning_rate": 2e-5, "seed": 1, "model_name_or_path": "m", "fp16": True}
    assert config_diff({"a": a, "b": b}) == {
        "learning_rate": {"a": 1e-5, "b": 2e-5},
        "fp16": {"a": None, "b": True},
    }


# --------------------------------------------------------------------------------------------------
# the F1 choice (f1_average, pos_label)
# --------------------------------------------------------------------------------------------------


def test_f1_choice_is_saved_with_the_run_and_absent_from_configs_that_never_chose(tmp_path):
    assert (config_from_dict({}).data.f1_average, config_from_dict({}).data.pos_label) == (None, None)
    assert "f1_average" not in config_from_dict({}).to_dict(minimal=True)  # old configs mean what they did
    assert "macro" in field_help()["f1_average"] and "positive class" in field_help()["pos_label"]
    # YAML's 1 is a label as it appears in the data ('1', MRPC's paraphrase); averages read in any case.
    path = tmp_path / "run.yaml"
    path.write_text("pos_label: 1\nf1_average: ' Binary'\n")
    config = load_config(path)
    assert (config.data.f1_average, config.data.pos_label) == ("binary", "1")
    assert load_config(_saved(tmp_path, to_yaml(config))).to_dict() == config.to_dict()


def _saved(folder, text):
    path = folder / "again.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"f1_average": "micro"}, "f1_average", "equals accuracy"),
        ({"f1_average": "samples"}, "f1_average", "use one of binary, macro, weighted"),
        ({"f1_average": "weighted", "pos_label": "spam"}, "pos_label", "leave pos_label empty"),
    ],
)
def test_f1_choices_refused_whatever_the_labels(values, field, words):
    with pytest.raises(ConfigError) as info:
        config_from_dict(values)
    assert info.value.field == field and words in info.value.message


def _six_classes(folder) -> str:
    path = folder / "six.csv"
    lines = ["text,label"] + [f"review number {i},{'abcdef'[i % 6]}" for i in range(120)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("choice", "field", "words"),
    [
        (
            {"pos_label": "maybe"},
            "pos_label",
            "'maybe' is not a label of this data; choose one of 'fresh', 'rotten'",
        ),
        ({"f1_average": "binary", "train_file": "six"}, "f1_average", "this data has 6 classes ('a', 'b'"),
        ({"pos_label": "a", "train_file": "six"}, "pos_label", "applies to two classes; this data has 6"),
    ],
)
def test_an_f1_choice_the_labels_refuse_stops_the_launch_before_a_worker(
    launcher, tmp_path, choice, field, words
):
    from tests.conftest import tiny_config

    if choice.get("train_file") == "six":
        choice = {**choice, "train_file": _six_classes(tmp_path), "dataset_name": None}
    with pytest.raises(ConfigError) as info:
        launcher.launch(tiny_config(**choice))
    assert info.value.field == field and words in info.value.message, info.value.message
    assert launcher.store.list_runs() == [] and not list(launcher.home.glob("*/config.yaml"))


# Every number the New run form asks for, with a value its rule refuses and the words that say why.
@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"num_train_epochs": -3}, "num_train_epochs", "greater than 0 (or set max_steps), got -3;"),
        ({"per_device_eval_batch_size": 0}, "per_device_eval_batch_size", "greater than 0, got 0"),
        ({"warmup_steps": -0.5}, "warmup_steps", "zero or more, got -0.5"),
        ({"max_eval_samples": 0}, "max_eval_samples", "greater than 0"),
        ({"validation_split_ratio": 0}, "validation_split_ratio", "between 0 and 1"),
        ({"validation_split_ratio": 1}, "validation_split_ratio", "between 0 and 1"),
        ({"max_seq_length": 7}, "max_seq_length", "at least 8 tokens"),
        ({"seed": 2**32}, "seed", "largest seed"),
        ({"eval_steps": 0}, "eval_steps", "greater than 0"),
        ({"save_steps": -1}, "save_steps", "greater than 0"),
        ({"num_train_epochs": -3, "max_steps": 5}, "num_train_epochs", "zero or more, got -3"),
        ({"early_stopping_patience": -3}, "early_stopping_patience", "greater than 0, got -3"),
        ({"early_stopping_threshold": -0.1}, "early_stopping_threshold", "zero or more"),
        # Past a 64-bit integer a count breaks the DataLoader and the store; said before the start.
        ({"per_device_train_batch_size": 2**63}, "per_device_train_batch_size", "too large"),
        ({"num_train_epochs": 1e300}, "num_train_epochs", "too large"),
        # An emptied box or a bare "seed:" line is None: refused where the field has no "not set".
        ({"num_train_epochs": None}, "num_train_epochs", "is empty; enter a number (the default is 3)"),
        ({"per_device_train_batch_size": None}, "per_device_train_batch_size", "the default is 8"),
        ({"seed": None}, "seed", "is empty"),
        ({"validation_split_ratio": None}, "validation_split_ratio", "is empty"),
        ({"max_seq_length": None}, "max_seq_length", "is empty"),
        ({"logging_steps": None}, "logging_steps", "is empty"),
        ({"train_split": None}, "train_split", "is empty; enter a value (the default is 'train')"),
    ],
)
def test_number_ranges_name_the_field_the_value_and_the_way_out(values, field, words):
    with pytest.raises(ConfigError) as info:
        config_from_dict(values)
    assert info.value.field == field
    assert words in info.value.message


def test_numbers_at_the_edges_of_their_ranges_are_accepted():
    config = config_from_dict(
        {
            "num_train_epochs": 0,  # zero epochs: max_steps alone decides
            "max_steps": 5,
            "max_seq_length": 8,
            "validation_split_ratio": 0.99,
            "warmup_steps": 0.99,
            "seed": 0,
            "early_stopping_patience": 1,
            "load_best_model_at_end": True,
            "max_train_samples": None,  # None where it means "all rows" / "off" stays allowed
            "max_eval_samples": 1,
        }
    )
    assert config.training.max_steps == 5 and config.data.max_seq_length == 8
    assert config.run.early_stopping_patience == 1 and config.data.max_train_samples is None


# --------------------------------------------------------------------------------------------------
# text from a form box or a YAML string: one rule (coercion), exact where the text is exact
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("max_train_samples", "1e3", 1000),
        ("max_train_samples", " 5 ", 5),
        ("max_train_samples", "5.", 5),
        ("max_train_samples", "1_000", 1000),
        ("max_train_samples", "-0", 0),
        ("seed", "9007199254740993", 9007199254740993),  # past 2**53: float() would give ...992
        ("seed", "", None),
        ("early_stopping_patience", "   ", None),
        ("num_train_epochs", ".5", 0.5),
        ("num_train_epochs", "1e3", 1000.0),
        ("learning_rate", " 2e-5 ", 2e-05),
        ("warmup_steps", "0.06", 0.06),
    ],
)
def test_box_text_reads_as_the_fields_value(field, text, value):
    read = value_from_text(field, text)
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize(
    ("field", "text", "words"),
    [
        ("max_train_samples", "1,000", "got '1,000'; write it without separators (1000)"),
        ("max_train_samples", "0x10", "expected a whole number such as 8, got '0x10'"),
        ("max_train_samples", ".5", "expected a whole number such as 8, got '.5'"),
        ("max_train_samples", "none", "got 'none'"),  # in a box, "not set" is the empty box
        ("max_train_samples", "NaN", "got 'NaN'"),
        ("seed", "1e21", "'1e21' is too large for a whole number"),
        ("seed", "1e999999999", "too large"),  # refused before a billion-digit integer is built
        ("num_train_epochs", "∞", "expected a number such as 0.1 or 2e-5, got '∞'"),
        ("num_train_epochs", "2e308", "'2e308' is too large for a number"),
        ("num_train_epochs", "inf", "must be a finite number"),
        ("num_train_epochs", "9007199254740993", "it would run as 9007199254740992"),
        ("num_train_epochs", "--3", "got '--3'"),
        ("learning_rate", "2,5e-5", "with a point for decimals (0.5)"),
    ],
)
def test_box_text_that_is_no_value_names_the_field(field, text, words):
    with pytest.raises(ConfigError) as info:
        value_from_text(field, text)
    assert info.value.field == field and words in info.value.message, info.value.message


def test_a_yaml_file_follows_the_same_rule_as_a_box(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        'max_train_samples: "1e3"\nmax_eval_samples: "9007199254740993"\nnum_train_epochs: " 2 "\n'
    )
    config = load_config(cfg)
    assert config.data.max_train_samples == 1000 and config.data.max_eval_samples == 9007199254740993
    assert config.training.num_train_epochs == 2.0
    assert "max_eval_samples: 9007199254740993" in to_yaml(config)
    cfg.write_text('max_eval_samples: "1,000"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.field == "max_eval_samples" and "without separators" in info.value.message

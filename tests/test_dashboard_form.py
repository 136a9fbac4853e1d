"""The New run form's model: widget values <-> flat config, and where each error is shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import form as F
from trainer_core import ConfigError, check_max_length, config_from_dict


def test_untouched_form_is_a_valid_minimal_config():
    config, errors, advanced = F.form_to_config(F.DEFAULTS)
    assert errors == {} and advanced == set()
    assert config["model_name_or_path"] == "builtin:minilm-l6"
    assert config["dataset_name"] == "builtin:rotten-tomatoes"
    assert "logging_steps" in config and "eval_steps" not in config  # steps only where the strategy uses them
    minimal = config_from_dict(config).to_dict(minimal=True)
    # The form's defaults are the config's defaults: nothing the user did not choose ends up in the YAML.
    assert minimal == {}


def test_form_values_map_to_config_fields():
    values = {
        **F.DEFAULTS,
        "model_source": "Hugging Face Hub",
        "model_hub": " bert-base-uncased ",
        "data_source": "File on this machine",
        "train_file": "/data/train.csv",
        "learning_rate": "2e-5",
        "warmup_ratio": "0.1",
        "eval_strategy": "steps",
        "eval_steps": " 50 ",
        "load_best_model_at_end": True,
        "metric_for_best_model": "f1",
        "advanced_json": '{"max_grad_norm": 0.5}',
    }
    config, errors, advanced = F.form_to_config(values)
    assert errors == {}
    assert config["model_name_or_path"] == "bert-base-uncased"
    assert config["dataset_name"] is None and config["train_file"] == "/data/train.csv"
    assert config["warmup_steps"] == 0.1  # a float below 1 is a warmup ratio in transformers 5
    assert config["eval_steps"] == 50 and config["metric_for_best_model"] == "f1"
    assert config["learning_rate"] == 2e-5 and config["max_grad_norm"] == 0.5
    assert advanced == {"max_grad_norm"}


def test_the_advanced_box_cannot_set_what_a_box_above_shows():
    # It would run with its own value while the box above shows another: refused, naming the keys.
    for text in (
        '{"learning_rate": 3e-5}',
        '{"num_train_epochs": 5, "max_grad_norm": 1}',
        '{"train_file": "x.csv"}',
    ):
        _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": text})
        assert "own box on this form" in errors["advanced_json"], text
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": '{"learning_rate": 3e-5, "seed": 1}'})
    assert errors["advanced_json"].startswith("learning_rate, seed: have their own box")
    # A value its box cannot show (a scheduler missing from the select's options) may go there.
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": '{"lr_scheduler_type": "not-offered"}'})
    assert "own box" not in errors.get("advanced_json", "")


def test_bad_advanced_json_is_an_error_of_that_box():
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": "{not json"})
    assert "not valid JSON" in errors["advanced_json"]
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": "[1, 2]"})
    assert "JSON object" in errors["advanced_json"]
    # JSON keeps the last of two equal keys: the box would show a value that does not run.
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": '{"seed": 1, "max_steps": 5, "seed": 2}'})
    assert errors["advanced_json"] == "seed is given twice; keep one of its values"


def test_errors_land_next_to_the_field_or_its_box():
    slots = {"learning_rate", "warmup_ratio", "model_name_or_path", "advanced_json"}
    assert F.slot_for("learning_rate", slots, set()) == "learning_rate"
    assert F.slot_for("learning_rate", slots, {"learning_rate"}) == "advanced_json"
    assert F.slot_for("warmup_steps", slots, set()) == "warmup_ratio"
    assert F.slot_for("tokenizer_name", slots, set()) == "model_name_or_path"
    assert F.slot_for("optim", slots, set()) == "general"
    assert F.slot_for(None, slots, set()) == "general"


def test_clone_round_trip_through_a_saved_config():
    original, _, _ = F.form_to_config(
        {
            **F.DEFAULTS,
            "model_builtin": "builtin:tiny-bert",
            "learning_rate": "1.2345678e-5",  # more digits than %g keeps
            "num_train_epochs": "2",
            "warmup_ratio": "0.06",
            "eval_strategy": "steps",
            "eval_steps": "2e2",
            "save_strategy": "steps",
            "save_steps": "200",
            "early_stopping_patience": "2",
            "load_best_model_at_end": True,
            "metric_for_best_model": "f1",
            "advanced_json": '{"label_smoothing_factor": 0.1}',
        }
    )
    saved = config_from_dict(original).to_dict(minimal=True)
    values = F.config_to_form(saved)
    assert values["model_source"] == "Built-in" and values["model_builtin"] == "builtin:tiny-bert"
    assert values["learning_rate"] == "1.2345678e-05" and values["num_train_epochs"] == "2"
    assert (
        values["warmup_ratio"] == "0.06" and values["eval_steps"] == "200" and values["save_steps"] == "200"
    )
    assert values["metric_for_best_model"] == "f1" and values["early_stopping_patience"] == "2"
    assert json.loads(values["advanced_json"]) == {"label_smoothing_factor": 0.1}
    again, _, _ = F.form_to_config(values)
    assert config_from_dict(again).to_dict(minimal=True) == saved


def test_clone_keeps_what_the_widgets_cannot_show_in_the_advanced_box():
    values = F.config_to_form(
        {
            "model_name_or_path": "/models/run-7/model",
            "train_file": "/data/train.csv",
            "warmup_steps": 100,  # a step count, not a ratio
            "lr_scheduler_type": "reduce_lr_on_plateau",
            "logging_steps": 0.05,  # a ratio of the total steps: its box shows it as it is
            "output_dir": "/runs/x",
        },
        finished_models=[{"id": "r7", "name": "run 7", "path": "/models/run-7/model"}],
    )
    assert values["model_source"] == "Finished run" and values["model_run"] == "/models/run-7/model"
    assert values["data_source"] == "File on this machine" and values["train_file"] == "/data/train.csv"
    assert values["warmup_ratio"] == "0" and values["lr_scheduler_type"] == "linear"
    assert values["logging_steps"] == "0.05"
    assert json.loads(values["advanced_json"]) == {
        "warmup_steps": 100,
        "lr_scheduler_type": "reduce_lr_on_plateau",
    }
    assert F.model_name(values) == "/models/run-7/model"


def test_the_checkpoint_length_rule_is_the_engines():
    # The New run page shows this check's message under max_seq_length, as a launch's preflight does.
    check_max_length(512, {"max_position_embeddings": 512})
    check_max_length(4096, {"ok": True})  # a checkpoint that does not say its limit
    with pytest.raises(ConfigError) as err:
        check_max_length(600, {"max_position_embeddings": 512})
    assert err.value.field == "max_seq_length" and "use 512 or less" in err.value.message


def test_warmup_box_is_a_ratio_and_an_empty_box_stays_empty():
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "warmup_ratio": "5"})
    # transformers would read 5 as five warmup steps while the box says a ratio: refused, not reread.
    assert "from 0 to below 1" in errors["warmup_ratio"] and "got 5;" in errors["warmup_ratio"]
    config, errors, _ = F.form_to_config(
        {**F.DEFAULTS, "warmup_ratio": "", "advanced_json": '{"warmup_steps": 5}'}
    )
    assert errors == {} and config["warmup_steps"] == 5  # a step count goes in the advanced box
    _, errors, _ = F.form_to_config(
        {**F.DEFAULTS, "warmup_ratio": "0.1", "advanced_json": '{"warmup_steps": 5}'}
    )
    assert "empty the Warmup ratio box" in errors["advanced_json"]  # both set: the screen would disagree
    config, errors, _ = F.form_to_config({**F.DEFAULTS, "warmup_ratio": " "})
    assert errors == {} and config["warmup_steps"] is None  # not silently 0: the engine asks for a number
    with pytest.raises(ConfigError) as err:
        config_from_dict(config)
    assert err.value.field == "warmup_steps" and "is empty" in err.value.message
    assert F.slot_for("warmup_steps", {"warmup_ratio"}, set()) == "warmup_ratio"


def test_number_boxes_are_read_by_the_engines_rule():
    # The boxes hold text; the config gets what the engine reads from it, as from a YAML string.
    values, errors = F.read_numbers(
        {
            **F.DEFAULTS,
            "max_train_samples": "1e3",
            "seed": " 7 ",
            "num_train_epochs": "2.",
            "weight_decay": ".5",
            "max_eval_samples": "9007199254740993",  # past 2**53: a float would have made it ...992
            "early_stopping_patience": "  ",
        }
    )
    assert errors == {}
    assert values["max_train_samples"] == 1000 and type(values["max_train_samples"]) is int
    assert values["seed"] == 7 and values["num_train_epochs"] == 2.0 and values["weight_decay"] == 0.5
    assert values["max_eval_samples"] == 9007199254740993
    assert values["early_stopping_patience"] is None  # an empty box: off, as its placeholder says
    config, errors, _ = F.form_to_config({**F.DEFAULTS, "max_train_samples": "1e3", "seed": " 7 "})
    assert errors == {} and config["max_train_samples"] == 1000 and config["seed"] == 7


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("max_train_samples", "--3", "expected a whole number such as 8, got '--3'"),
        ("max_train_samples", "none", "got 'none'"),  # YAML's word for not set; in a box, empty says it
        ("early_stopping_patience", "12abc", "got '12abc'"),
        ("max_eval_samples", "1,000", "without separators (1000)"),
        ("seed", "0x10", "got '0x10'"),
        ("seed", ".5", "got '.5'"),
        ("seed", "1e999999999", "too large for a whole number"),
        ("num_train_epochs", "∞", "expected a number such as 0.1 or 2e-5, got '∞'"),
        ("num_train_epochs", "NaN", "must be a finite number"),
        ("num_train_epochs", "2e308", "'2e308' is too large for a number"),
        ("warmup_ratio", "abc", "got 'abc'"),
        ("learning_rate", "fast", "expected a number such as 0.1 or 2e-5, got 'fast'"),
    ],
)
def test_text_that_is_no_number_is_an_error_of_its_box_not_a_default(name, text, words):
    values, errors = F.read_numbers({**F.DEFAULTS, name: text})
    field = F.NUMBER_FIELDS[name]
    assert list(errors) == [field] and words in errors[field], errors
    assert F.slot_for(field, set(F.NUMBER_FIELDS), set()) == name
    _, pre_errors, _ = F.form_to_config({**F.DEFAULTS, name: text})
    assert pre_errors == errors  # the page shows it under the box and does not validate the rest


def test_a_disabled_step_box_is_not_read():
    # Under "epoch" the Evaluate-steps box is disabled: what it holds is not used, so it is no error.
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "eval_strategy": "epoch", "eval_steps": "abc"})
    assert errors == {}
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "eval_strategy": "steps", "eval_steps": "abc"})
    assert "got 'abc'" in errors["eval_steps"]


def test_number_text_reads_back_as_the_same_value():
    for value in (3, 3.0, 0.06, 1.2345678e-05, 5e-05, 2**53 + 1, 1e300, -0.0, 0.1 + 0.2):
        text = F.number_text(value)
        read = F.read_numbers({**F.DEFAULTS, "weight_decay": text, "max_train_samples": "1"})[0]
        if isinstance(value, int):
            assert int(text) == value
        else:
            assert read["weight_decay"] == value, (value, text)
    assert F.number_text(3.0) == "3" and F.number_text(None) == "" and F.number_text(2.5e-05) == "2.5e-05"


def test_old_drafts_with_numbers_open_as_text():
    # Drafts written while the boxes were number boxes hold numbers (and None for empty optional ones).
    kept = F.form_from_draft({"form": {"seed": 3, "num_train_epochs": 2.0, "max_train_samples": None}})
    assert kept == {"seed": "3", "num_train_epochs": "2", "max_train_samples": ""}
    kept = F.form_from_draft({"form": {"seed": "12abc", "max_eval_samples": {"a": 1}, "fp16": "yes"}})
    assert kept == {"seed": "12abc"}  # text as typed (its box shows the error); a mapping no box holds


def test_every_number_box_has_an_engine_rule_for_negative_numbers():
    # The boxes have no min/max of their own (the browser would refuse out of sight): the engine's
    # checks are the only range rules, so each box's field must have one, shown under that box.
    steps = {"logging_strategy": "steps", "eval_strategy": "steps", "save_strategy": "steps"}
    for name in F.NUMBER_FIELDS:
        config, errors, _ = F.form_to_config({**F.DEFAULTS, **steps, name: "-1"})
        with pytest.raises(ConfigError) as err:
            config_from_dict(config)
        assert F.slot_for(err.value.field, set(F.NUMBER_FIELDS), set()) == name, (name, err.value)
        assert "got -1" in err.value.message, (name, err.value.message)


# --------------------------------------------------------------------------------------------------
# the form in AppTest: every number box's bad value is shown under that box and Start is off
# --------------------------------------------------------------------------------------------------

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")

# (widget, bad text, words of the engine's message shown under it, the text that clears it)
BAD_NUMBERS = [
    ("num_train_epochs", "-3", "must be greater than 0", "1"),
    ("num_train_epochs", "", "is empty; enter a number (the default is 3)", "1"),
    ("num_train_epochs", "--3", "expected a number such as 0.1 or 2e-5, got '--3'", "1"),
    ("per_device_train_batch_size", "0", "must be greater than 0, got 0", "8"),
    ("per_device_eval_batch_size", "-1", "must be greater than 0", "8"),
    ("per_device_eval_batch_size", "2.5", "expected a whole number such as 8, got '2.5'", "8"),
    ("weight_decay", "-0.1", "must be zero or more", "0"),
    ("warmup_ratio", "5", "a share of the training steps", "0"),
    ("warmup_ratio", "-0.5", "must be zero or more, got -0.5", "0"),
    ("gradient_accumulation_steps", "0", "must be greater than 0", "1"),
    ("max_seq_length", "4", "at least 8 tokens", "64"),
    ("max_seq_length", "100000", "512 or less", "64"),
    ("seed", "-1", "must be zero or more", "42"),
    ("seed", str(2**32), "beyond numpy's largest seed", "42"),
    ("seed", "0x10", "got '0x10'", "42"),
    ("validation_split_ratio", "1.5", "between 0 and 1", "0.1"),
    ("validation_split_ratio", "0", "between 0 and 1", "0.1"),
    ("max_train_samples", "0", "must be greater than 0", ""),
    ("max_train_samples", "12abc", "got '12abc'", ""),  # not "all rows" while the box shows 12abc
    ("max_eval_samples", "-5", "must be greater than 0", ""),
    ("max_eval_samples", "1e20", "is too large", ""),
    ("max_eval_samples", "1,000", "without separators", ""),
    ("logging_steps", "0", "must be greater than 0", "10"),
    ("early_stopping_patience", "0", "must be greater than 0", ""),
    ("early_stopping_patience", "2e308", "too large for a whole number", ""),
    ("num_processes", "0", "must be greater than 0", "1"),
    ("learning_rate", "NaN", "must be a finite number", "5e-05"),
]


def column_errors(at: AppTest, key: str) -> str:
    """The error texts in the form column that holds the widget ``key`` (its own error slot)."""
    column = next(c for c in at.columns if any(w.key == key for w in c.text_input))
    return "\n".join(str(e.value) for e in column.error)


def start_disabled(at: AppTest) -> bool:
    return next(b for b in at.button if b.key == "new.start").disabled


@pytest.fixture
def new_run_form(runs_home) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/new_run.py")
    at.run()
    at.selectbox(key="new.model_builtin").set_value("builtin:tiny-bert").run()
    assert not at.exception and not at.error and not start_disabled(at)
    return at


def test_every_number_box_shows_its_own_error_and_disables_start(new_run_form):
    at = new_run_form
    for name, bad, words, good in BAD_NUMBERS:
        case = f"{name}={bad!r}"
        at.text_input(key=F.key(name)).set_value(bad).run()
        assert not at.exception, case
        assert words in column_errors(at, F.key(name)), (case, [e.value for e in at.error])
        assert start_disabled(at), case
        # No config file is shown for a form that cannot run: the preview never claims another value.
        assert "model_name_or_path" not in "\n".join(c.value for c in at.code), case
        at.text_input(key=F.key(name)).set_value(good).run()
        assert not at.error and not start_disabled(at), (case, [e.value for e in at.error])


def test_step_boxes_and_the_advanced_box_go_through_the_same_checks(new_run_form):
    at = new_run_form
    for strategy, steps in (("eval_strategy", "eval_steps"), ("save_strategy", "save_steps")):
        at.selectbox(key=F.key(strategy)).set_value("steps").run()
        at.text_input(key=F.key(steps)).set_value("-10").run()
        assert "must be greater than 0, got -10" in column_errors(at, F.key(steps)), steps
        assert start_disabled(at)
        at.text_input(key=F.key(steps)).set_value("50").run()
        at.selectbox(key=F.key(strategy)).set_value("epoch").run()
    assert not at.error and not start_disabled(at)

    box = at.text_area(key=F.key("advanced_json"))
    for text, words in (
        ('{"num_train_epochs": 5}', "num_train_epochs: has its own box on this form"),
        ('{"max_steps": 2.5}', "max_steps: expected a whole number"),
        ('{"max_grad_norm": NaN}', "max_grad_norm: must be a finite number"),
        ('{"eval_accumulation_steps": 1e400}', "eval_accumulation_steps: expected a whole number"),
        ('{"save_total_limit": 100000000000000000000}', "is too large"),
    ):
        box.input(text).run()
        advanced = next(e.value for e in at.error if str(e.value).startswith(text.split('"')[1]))
        assert words in advanced, (text, advanced)
        assert start_disabled(at), text
    box.input('{"max_grad_norm": 0.5, "save_total_limit": null}').run()  # null: the field's "not set"
    assert not at.error and not start_disabled(at)
    assert "max_grad_norm: 0.5" in "\n".join(c.value for c in at.code)

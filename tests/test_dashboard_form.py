"""The New run form's model: widget values <-> flat config, and where each error is shown."""

from __future__ import annotations

import json

import pytest

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
        "warmup_ratio": 0.1,
        "eval_strategy": "steps",
        "eval_steps": 50,
        "load_best_model_at_end": True,
        "metric_for_best_model": "f1",
        "advanced_json": '{"max_grad_norm": 0.5, "learning_rate": 3e-5}',
    }
    config, errors, advanced = F.form_to_config(values)
    assert errors == {}
    assert config["model_name_or_path"] == "bert-base-uncased"
    assert config["dataset_name"] is None and config["train_file"] == "/data/train.csv"
    assert config["warmup_steps"] == 0.1  # a float below 1 is a warmup ratio in transformers 5
    assert config["eval_steps"] == 50 and config["metric_for_best_model"] == "f1"
    assert config["learning_rate"] == 3e-5  # the advanced box overrides the form
    assert advanced == {"max_grad_norm", "learning_rate"}


def test_bad_advanced_json_is_an_error_of_that_box():
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": "{not json"})
    assert "not valid JSON" in errors["advanced_json"]
    _, errors, _ = F.form_to_config({**F.DEFAULTS, "advanced_json": "[1, 2]"})
    assert "JSON object" in errors["advanced_json"]


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
            "learning_rate": "3e-5",
            "num_train_epochs": 2.0,
            "warmup_ratio": 0.06,
            "eval_strategy": "steps",
            "eval_steps": 200,
            "save_strategy": "steps",
            "save_steps": 200,
            "early_stopping_patience": 2,
            "load_best_model_at_end": True,
            "metric_for_best_model": "f1",
            "advanced_json": '{"label_smoothing_factor": 0.1}',
        }
    )
    saved = config_from_dict(original).to_dict(minimal=True)
    values = F.config_to_form(saved)
    assert values["model_source"] == "Built-in" and values["model_builtin"] == "builtin:tiny-bert"
    assert values["learning_rate"] == "3e-05" and values["num_train_epochs"] == 2.0
    assert values["warmup_ratio"] == 0.06 and values["save_steps"] == 200
    assert values["metric_for_best_model"] == "f1" and values["early_stopping_patience"] == 2
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
            "logging_steps": 0.05,  # a ratio of the total steps
            "output_dir": "/runs/x",
        },
        finished_models=[{"id": "r7", "name": "run 7", "path": "/models/run-7/model"}],
    )
    assert values["model_source"] == "Finished run" and values["model_run"] == "/models/run-7/model"
    assert values["data_source"] == "File on this machine" and values["train_file"] == "/data/train.csv"
    assert values["warmup_ratio"] == 0.0 and values["lr_scheduler_type"] == "linear"
    assert json.loads(values["advanced_json"]) == {
        "warmup_steps": 100,
        "lr_scheduler_type": "reduce_lr_on_plateau",
        "logging_steps": 0.05,
    }
    assert F.model_name(values) == "/models/run-7/model"


def test_the_checkpoint_length_rule_is_the_engines():
    # The New run page shows this check's message under max_seq_length, as a launch's preflight does.
    check_max_length(512, {"max_position_embeddings": 512})
    check_max_length(4096, {"ok": True})  # a checkpoint that does not say its limit
    with pytest.raises(ConfigError) as err:
        check_max_length(600, {"max_position_embeddings": 512})
    assert err.value.field == "max_seq_length" and "use 512 or less" in err.value.message

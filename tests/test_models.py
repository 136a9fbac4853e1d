"""Checkpoints: resolving names, inspecting them cheaply, loading tokenizers and classification models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer_core import assets as builtins
from trainer_core.config import DataArguments, ModelArguments
from trainer_core.errors import ConfigError
from trainer_core.models import (
    inspect_checkpoint,
    load_model,
    load_tokenizer,
    resolve_checkpoint,
    safetensors_parameter_count,
)

MINILM_PARAMETERS = 22_713_216  # all-MiniLM-L6-v2's BertModel, position_ids buffer left out


@pytest.fixture(scope="module")
def labels():
    """Class names as the data pipeline derives them from the built-in dataset."""
    from trainer_core.data.prepare import cast_labels, load_raw_data

    raw = load_raw_data(DataArguments())
    names = cast_labels(raw.train["category"].tolist()).names
    return {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {n: i for i, n in enumerate(names)},
    }


@pytest.fixture(scope="module")
def saved_tiny_run(tmp_path_factory, labels):
    """A finished run's output folder: a tiny BERT classifier and its tokenizer, saved with save_pretrained."""
    from transformers import set_seed

    folder = tmp_path_factory.mktemp("run") / "model"
    set_seed(0)
    load_model(ModelArguments(model_name_or_path="builtin:tiny-bert"), **labels).save_pretrained(folder)
    load_tokenizer(ModelArguments(model_name_or_path="builtin:tiny-bert")).save_pretrained(folder)
    return folder


def test_resolve_checkpoint_kinds(tmp_path, saved_tiny_run):
    minilm = Path(resolve_checkpoint("builtin:minilm-l6"))
    assert minilm.is_absolute() and (minilm / "model.safetensors").is_file()
    assert resolve_checkpoint("bert-base-uncased") == "bert-base-uncased"
    assert resolve_checkpoint(str(saved_tiny_run)) == str(saved_tiny_run.resolve())
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="unknown built-in"):
        resolve_checkpoint("builtin:gpt-5")
    with pytest.raises(ConfigError, match=r"no config\.json.*model"):
        resolve_checkpoint(str(saved_tiny_run.parent))  # a run folder: its model/ subfolder is suggested


def test_inspect_builtin_minilm_reads_config_and_header_only():
    info = inspect_checkpoint("builtin:minilm-l6")
    assert info["ok"] and info["error"] is None and info["kind"] == "builtin"
    assert info["architecture"] == "BertModel" and info["model_type"] == "bert"
    assert info["num_parameters"] == MINILM_PARAMETERS
    assert (info["num_layers"], info["hidden_size"], info["vocab_size"]) == (6, 384, 30522)
    assert info["max_position_embeddings"] == 512
    assert info["num_labels"] is None and info["id2label"] is None  # no classification head yet


def test_inspect_builtin_tiny_bert():
    info = inspect_checkpoint("builtin:tiny-bert")
    assert info["ok"] and (info["num_layers"], info["hidden_size"]) == (2, 64)
    assert 2_000_000 < info["num_parameters"] < 2_200_000


def test_inspect_local_run_output_shows_its_head(saved_tiny_run, labels):
    info = inspect_checkpoint(str(saved_tiny_run))
    assert info["ok"] and info["kind"] == "local" and info["path"] == str(saved_tiny_run.resolve())
    assert info["architecture"] == "BertForSequenceClassification"
    assert info["num_labels"] == 2 and info["id2label"] == labels["id2label"]
    assert info["num_parameters"] == safetensors_parameter_count(saved_tiny_run / "model.safetensors")


def test_inspect_never_raises(tmp_path):
    from transformers import ViTConfig

    missing = inspect_checkpoint(str(tmp_path / "nope"))
    assert not missing["ok"] and missing["kind"] == "local" and "does not exist" in missing["error"]
    assert not inspect_checkpoint("")["ok"]
    vision = tmp_path / "vit"
    ViTConfig().save_pretrained(vision)
    not_text = inspect_checkpoint(str(vision))
    assert (
        not not_text["ok"] and "cannot classify text" in not_text["error"] and not_text["model_type"] == "vit"
    )


def test_inspect_uncached_hub_id_offline(monkeypatch):
    from huggingface_hub import constants

    # Offline for sure, so no request is made whatever the environment says.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    info = inspect_checkpoint("someone/not-a-cached-model")
    assert not info["ok"] and info["kind"] == "hub" and "not in the local Hugging Face cache" in info["error"]


def test_load_tiny_bert_with_labels_from_the_data(labels):
    from transformers import set_seed

    set_seed(5)
    model = load_model(ModelArguments(model_name_or_path="builtin:tiny-bert"), **labels)
    set_seed(5)
    again = load_model(ModelArguments(model_name_or_path="builtin:tiny-bert"), **labels)
    assert model.config.num_labels == 2 and model.config.id2label == {0: "fresh", 1: "rotten"}
    assert model.config.label2id == {"fresh": 0, "rotten": 1}
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64
    assert torch.equal(model.classifier.weight, again.classifier.weight)  # seeded: reproducible


def test_load_minilm_keeps_pretrained_weights_and_adds_a_head():
    from safetensors import safe_open

    names = ["neg", "neutral", "pos"]
    model = load_model(ModelArguments(), 3, dict(enumerate(names)), {n: i for i, n in enumerate(names)})
    assert model.classifier.out_features == 3 and model.dtype == torch.float32
    assert model.config.id2label == {0: "neg", 1: "neutral", 2: "pos"}
    folder = builtins.minilm_path()
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        pretrained = f.get_tensor("embeddings.word_embeddings.weight")
    assert torch.equal(model.bert.embeddings.word_embeddings.weight.detach(), pretrained)


def test_finished_run_can_be_fine_tuned_with_another_label_count(saved_tiny_run):
    names = ["a", "b", "c"]
    model = load_model(
        ModelArguments(model_name_or_path=str(saved_tiny_run)),
        3,
        dict(enumerate(names)),
        {n: i for i, n in enumerate(names)},
    )
    assert model.classifier.out_features == 3 and model.config.problem_type == "single_label_classification"


def test_load_errors_name_the_field(tmp_path):
    from transformers import BertConfig, ViTConfig

    two = {"num_labels": 2, "id2label": {0: "a", 1: "b"}, "label2id": {"a": 0, "b": 1}}
    with pytest.raises(ConfigError) as info:
        load_model(ModelArguments(model_name_or_path=str(tmp_path / "missing")), **two)
    assert info.value.field == "model_name_or_path"

    vision = tmp_path / "vit"
    ViTConfig().save_pretrained(vision)
    with pytest.raises(ConfigError, match="cannot classify text"):
        load_model(ModelArguments(model_name_or_path=str(vision)), **two)

    no_weights = tmp_path / "config-only"
    BertConfig().save_pretrained(no_weights)
    with pytest.raises(ConfigError, match="no weights"):
        load_model(ModelArguments(model_name_or_path=str(no_weights)), **two)
    with pytest.raises(ConfigError, match="no tokenizer files"):
        load_tokenizer(ModelArguments(model_name_or_path=str(no_weights)))


def test_tokenizers(saved_tiny_run):
    tiny = load_tokenizer(ModelArguments(model_name_or_path="builtin:tiny-bert"))
    assert tiny("a fine film")["input_ids"] == [101, 1037, 2986, 2143, 102]  # MiniLM's uncased WordPiece
    assert load_tokenizer(ModelArguments(model_name_or_path=str(saved_tiny_run))).vocab_size == 30522
    with pytest.raises(ConfigError) as info:
        load_tokenizer(ModelArguments(tokenizer_name="/no/such/tokenizer"))
    assert info.value.field == "tokenizer_name"


def test_a_collated_batch_trains_the_tiny_model(labels):
    """The tokenizer, data and model fit together the way Trainer uses them."""
    from transformers import DataCollatorWithPadding

    from trainer_core.data.prepare import prepare_datasets

    tokenizer = load_tokenizer(ModelArguments(model_name_or_path="builtin:tiny-bert"))
    data = prepare_datasets(
        DataArguments(max_train_samples=16, max_eval_samples=8, max_seq_length=24), tokenizer, 0
    )
    model = load_model(ModelArguments(model_name_or_path="builtin:tiny-bert"), **labels)
    batch = DataCollatorWithPadding(tokenizer)([data.train[i] for i in range(16)])
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss) and model.classifier.weight.grad is not None


def test_predictor_labels_texts_and_pairs_like_the_model_itself(saved_tiny_run, labels):
    """The pipeline gives the softmax of the model's own logits, truncated at max_length."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from trainer_core.inference import Predictor

    predictor = Predictor.from_dir(saved_tiny_run, max_length=16)
    assert predictor.labels == [labels["id2label"][i] for i in range(labels["num_labels"])]
    assert predictor.predict([]) == []
    texts, pairs = ["a gripping film", "a dull film " * 40], ["it is good", "it is not"]
    tokenizer = AutoTokenizer.from_pretrained(saved_tiny_run)
    model = AutoModelForSequenceClassification.from_pretrained(saved_tiny_run).eval()
    for given_pairs in (None, pairs):
        results = predictor.predict(texts, given_pairs)
        assert len(results) == 2
        for i, result in enumerate(results):
            # One input at a time, as the pipeline runs them: no padding, so the same floats.
            encoded = tokenizer(texts[i], given_pairs and given_pairs[i], truncation=True, max_length=16)
            with torch.inference_mode():
                logits = model(**{k: torch.tensor([v]) for k, v in encoded.items()}).logits[0]
            expected = torch.softmax(logits, dim=-1).tolist()
            assert list(result["probabilities"]) == predictor.labels
            # The untrained head is near-uniform: truncating the long text moves it by ~3e-6.
            assert list(result["probabilities"].values()) == pytest.approx(expected, rel=0, abs=1e-7)
            assert result["label"] == predictor.labels[max(range(2), key=expected.__getitem__)]
            assert result["score"] == max(result["probabilities"].values())


def _raised_by_transformers(hub_error: Exception) -> OSError:
    """``hub_error`` re-raised the way transformers does: an ``OSError`` from it, whose text we ignore."""
    try:
        try:
            raise hub_error
        except Exception as exc:
            raise OSError("transformers' wording, with nothing in it to match") from exc
    except OSError as wrapped:
        return wrapped


def _http(status: int):
    from huggingface_hub.utils import httpx

    return httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/api/models/org/x"))


@pytest.mark.parametrize(
    ("make_error", "field", "expected"),
    [
        (
            lambda hub: hub.GatedRepoError("gated", response=_http(403)),
            "model_name_or_path",
            "ask for access",
        ),
        (
            lambda hub: hub.RepositoryNotFoundError("nope", response=_http(404)),
            "model_name_or_path",
            "no checkpoint",
        ),
        (lambda hub: hub.RevisionNotFoundError("nope", response=_http(404)), "revision", "no such revision"),
        (lambda hub: hub.LocalEntryNotFoundError("not cached"), "model_name_or_path", "not in the local"),
        (lambda hub: hub.OfflineModeIsEnabled("offline"), "model_name_or_path", "not in the local"),
        (lambda hub: hub.HFValidationError("bad id"), "model_name_or_path", "neither a local folder nor"),
    ],
)
def test_hub_errors_are_told_apart_by_type(make_error, field, expected):
    from huggingface_hub import errors as hub

    from trainer_core.hub_errors import checkpoint_load_error as _load_error

    error = _load_error("org/x", _raised_by_transformers(make_error(hub)), "model_name_or_path")
    assert error.field == field and expected in error.message


def test_error_text_is_the_fallback_when_no_typed_error_says_more():
    from trainer_core.hub_errors import checkpoint_load_error as _load_error

    error = _load_error(
        "org/x", OSError("org/x is not a valid model identifier"), "tokenizer_name", "tokenizer"
    )
    assert error.field == "tokenizer_name" and "no tokenizer 'org/x' on the Hugging Face Hub" in error.message

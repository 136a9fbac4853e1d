"""Metrics: the shipped evaluate module against scikit-learn, the per-class report, loading offline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from trainer_core.errors import ConfigError
from trainer_core.metrics import (
    METRIC_MODULE,
    METRIC_NAMES,
    F1Choice,
    build_compute_metrics,
    classification_report,
    f1_meaning,
    majority_baseline,
    metric_path,
    resolve_f1,
    softmax,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def eval_arrays():
    """Seeded logits and labels: 3 classes, class 2 rare, so macro and weighted averages differ."""
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=200, p=[0.5, 0.4, 0.1])
    logits = rng.normal(size=(200, 3))
    logits[np.arange(200), labels] += 1.0  # better than chance, not perfect
    return logits, labels


def _eval_prediction(logits, labels):
    from transformers import EvalPrediction

    return EvalPrediction(predictions=logits, label_ids=labels)


def test_metric_path_prefers_the_shipped_module():
    path = Path(metric_path(METRIC_MODULE))
    assert (path / f"{METRIC_MODULE}.py").is_file() and path.is_relative_to(REPO / "trainer_core")
    assert metric_path("bleu") == "bleu"  # not shipped: left to evaluate's Hub lookup


def test_one_module_computes_every_metric_name():
    from trainer_core.metrics import load_metric

    scores = load_metric().compute(predictions=[1, 0, 2, 2], references=[1, 1, 2, 0], labels=[0, 1, 2])
    assert set(scores) == {*METRIC_NAMES, *(f"{n}_weighted" for n in METRIC_NAMES if n != "accuracy")}


def test_binary_metrics_match_sklearn(eval_arrays):
    logits, labels = eval_arrays
    binary_logits, binary_labels = logits[:, :2], np.minimum(labels, 1)
    predicted = binary_logits.argmax(axis=1)
    result = build_compute_metrics(["neg", "pos"])(_eval_prediction(binary_logits, binary_labels))
    assert set(result) == set(METRIC_NAMES) == {"accuracy", "f1", "precision", "recall"}
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(binary_labels, predicted))
    assert result["f1"] == pytest.approx(skm.f1_score(binary_labels, predicted))
    assert result["precision"] == pytest.approx(skm.precision_score(binary_labels, predicted))
    assert result["recall"] == pytest.approx(skm.recall_score(binary_labels, predicted))
    # By default the positive class is class id 1; naming the other class changes f1.
    assert result["f1"] != pytest.approx(skm.f1_score(binary_labels, predicted, pos_label=0))
    swapped = build_compute_metrics(["neg", "pos"], pos_label="neg")(
        _eval_prediction(binary_logits, binary_labels)
    )
    assert swapped["f1"] == pytest.approx(skm.f1_score(binary_labels, predicted, pos_label=0))
    assert swapped["recall"] == pytest.approx(skm.recall_score(binary_labels, predicted, pos_label=0))


def test_multiclass_metrics_are_macro_with_weighted_beside(eval_arrays):
    logits, labels = eval_arrays
    predicted = logits.argmax(axis=1)
    compute = build_compute_metrics(["a", "b", "c"])
    # Models that return more than logits hand Trainer a tuple; the logits come first.
    result = compute(_eval_prediction((logits, np.zeros((200, 4))), labels))
    for name, fn in (("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)):
        assert result[name] == pytest.approx(fn(labels, predicted, average="macro"))
        assert result[f"{name}_weighted"] == pytest.approx(fn(labels, predicted, average="weighted"))
    assert result["f1"] != pytest.approx(result["f1_weighted"])
    assert result["accuracy"] == pytest.approx((predicted == labels).mean())


def test_macro_average_counts_a_class_missing_from_the_eval_set():
    compute = build_compute_metrics(["a", "b", "c"])
    result = compute(_eval_prediction(np.eye(3)[[0, 1, 0, 1]], np.array([0, 1, 0, 0])))
    expected = skm.f1_score([0, 1, 0, 0], [0, 1, 0, 1], labels=[0, 1, 2], average="macro", zero_division=0)
    assert result["f1"] == pytest.approx(expected)


def test_classification_report_on_known_predictions():
    labels = [0, 0, 1, 1, 1, 2]
    predicted = [0, 1, 1, 1, 0, 1]
    report = classification_report(predicted, labels, ["neg", "neu", "pos"])
    assert report["labels"] == ["neg", "neu", "pos"]
    assert report["confusion_matrix"] == [[1, 1, 0], [1, 2, 0], [0, 1, 0]]  # rows true, columns predicted
    neu = report["per_class"][1]
    assert neu == {
        "label": "neu",
        "precision": 0.5,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(4 / 7),
        "support": 3,
    }
    assert report["per_class"][2]["f1"] == 0.0 and report["accuracy"] == pytest.approx(0.5)
    # Logits give the same report as their argmax.
    assert classification_report(np.eye(3)[predicted] * 5.0, labels, ["neg", "neu", "pos"]) == report


def test_classification_report_lists_classes_absent_from_the_data():
    report = classification_report([0, 0], [0, 0], ["x", "y"])
    assert report["confusion_matrix"] == [[2, 0], [0, 0]] and report["per_class"][1]["support"] == 0


def test_classification_report_class_names_that_look_like_report_keys():
    report = classification_report([0, 1, 1], [0, 1, 0], ["accuracy", "macro avg"])
    assert [row["label"] for row in report["per_class"]] == ["accuracy", "macro avg"]
    assert report["per_class"][0]["recall"] == 0.5 and report["accuracy"] == pytest.approx(2 / 3)


def test_softmax_is_stable_and_normalised():
    probabilities = softmax([[1000.0, 1000.0, -1000.0], [0.0, np.log(3.0), 0.0]])
    assert np.allclose(probabilities.sum(axis=1), 1.0) and np.isfinite(probabilities).all()
    assert np.allclose(probabilities[0], [0.5, 0.5, 0.0]) and probabilities[1, 1] == pytest.approx(0.6)


_LOADER = textwrap.dedent(
    """
    import multiprocessing, sys
    import numpy as np
    from transformers import EvalPrediction
    from trainer_core.metrics import build_compute_metrics

    def load_and_compute(barrier):
        barrier.wait(timeout=60)  # both children copy the module into the empty cache at the same moment
        compute = build_compute_metrics(["a", "b"])
        logits, labels = np.array([[0, 1], [1, 0], [0, 1]]), np.array([1, 1, 1])
        # One write per line: print() may write the text and its newline apart, and the two children's
        # lines then interleave into one (seen once in a full run).
        sys.stdout.write(f"{compute(EvalPrediction(predictions=logits, label_ids=labels))}\\n")
        sys.stdout.flush()

    # Forked from one parent so the slow `import evaluate` is paid once, not per process.
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    children = [context.Process(target=load_and_compute, args=(barrier,)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    sys.exit(sum(abs(child.exitcode or 0) for child in children))
    """
)


def test_two_processes_load_the_module_offline_into_a_fresh_cache(tmp_path):
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOADER], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 2 and all("'accuracy': 0.666" in r and "'recall': 0.666" in r for r in results)
    # The module was copied into the fresh cache; with keep_in_memory no prediction files are left behind.
    assert list((tmp_path / "hf_home").rglob(f"{METRIC_MODULE}.py"))
    assert not list((tmp_path / "hf_home").rglob("*.arrow"))


def test_majority_baseline_scores_always_answering_the_most_frequent_class():
    # MRPC-like: 209 of 300 validation rows are "1", so always answering "1" scores 0.6967.
    labels = np.array([1] * 209 + [0] * 91)
    baseline = majority_baseline(labels, ["0", "1"])
    assert baseline["label"] == "1" and baseline["label_id"] == 1
    assert baseline["accuracy"] == pytest.approx(209 / 300)
    assert baseline["f1"] == pytest.approx(skm.f1_score(labels, np.ones_like(labels)))
    # When the majority is the negative class, the positive class's F1 of that constant answer is 0.
    assert majority_baseline(1 - labels, ["ham", "spam"])["f1"] == 0.0
    assert majority_baseline([], ["0", "1"]) is None


@pytest.mark.parametrize("label_names", [["0", "1"], ["a", "b", "c"]])
def test_majority_baseline_f1_is_the_runs_f1(label_names):
    """The baseline F1 is what compute_metrics reports for the constant prediction (binary or macro)."""
    from transformers import EvalPrediction

    labels = np.array([1, 1, 1, 0, 1, 0, 1, 2, 1, 0])
    labels = labels[labels < len(label_names)]
    logits = np.zeros((len(labels), len(label_names)))
    logits[:, 1] = 1.0  # class 1 is the majority in both cases
    scores = build_compute_metrics(label_names)(EvalPrediction(predictions=logits, label_ids=labels))
    baseline = majority_baseline(labels, label_names)
    assert baseline["label_id"] == 1
    assert baseline["accuracy"] == pytest.approx(scores["accuracy"])
    assert baseline["f1"] == pytest.approx(scores["f1"])


def test_f1_meaning_names_the_positive_class_or_the_macro_average():
    assert f1_meaning(["ham", "spam"]) == "F1 of class 'spam'"
    assert f1_meaning(["0", "1"]) == "F1 of class '1'"
    assert f1_meaning(list("abcdef")) == "macro-averaged F1 over 6 classes"


# --------------------------------------------------------------------------------------------------
# the F1 choice: f1_average and pos_label
# --------------------------------------------------------------------------------------------------


def test_f1_choice_left_empty_keeps_the_meaning_runs_had_before_it_existed():
    assert resolve_f1(["0", "1"]) == F1Choice("binary", ("0", "1"), 1)
    assert resolve_f1(list("abc")).average == "macro" and resolve_f1(list("abc")).positive is None
    assert f1_meaning(["ham", "spam"], "binary", "ham") == "F1 of class 'ham'"
    assert f1_meaning(["ham", "spam"], "macro") == "macro-averaged F1 over 2 classes"
    assert f1_meaning(list("abcdef"), "weighted") == "F1 averaged over 6 classes, weighted by their rows"
    assert f1_meaning(["ham", "spam"], short=True) == "class 'spam'"
    assert f1_meaning(list("abcdef"), "weighted", short=True) == "weighted, 6 classes"


@pytest.mark.parametrize(
    ("names", "average", "pos_label", "field", "words"),
    [
        (list("abcdef"), "binary", None, "f1_average", "has 6 classes ('a', 'b', 'c', 'd', 'e', 'f')"),
        (
            ["ham", "spam"],
            None,
            "eggs",
            "pos_label",
            "'eggs' is not a label of this data; choose one of 'ham', 'spam'",
        ),
        (list("abc"), None, "a", "pos_label", "applies to two classes; this data has 3"),
        (["ham", "spam"], "micro", None, "f1_average", "equals accuracy"),
        (
            ["ham", "spam"],
            "weighted",
            "spam",
            "pos_label",
            "leave pos_label empty, or set f1_average to 'binary'",
        ),
        (["ham", "spam"], "avg", None, "f1_average", "use one of binary, macro, weighted"),
    ],
)
def test_f1_choices_that_do_not_fit_are_refused_naming_the_field(names, average, pos_label, field, words):
    with pytest.raises(ConfigError) as info:
        resolve_f1(names, average, pos_label)
    assert info.value.field == field and words in info.value.message, info.value.message


@pytest.mark.parametrize(
    ("n_classes", "average", "pos_label"),
    [(2, None, None), (2, "binary", "neg"), (2, "macro", None), (2, "weighted", None), (3, "weighted", None)],
)
def test_every_score_of_a_run_follows_its_f1_choice(eval_arrays, n_classes, average, pos_label):
    """compute_metrics, the per-class report and the majority baseline all give sklearn's number."""
    logits, labels = eval_arrays
    names = ["neg", "pos", "other"][:n_classes]
    logits, labels = logits[:, :n_classes], np.minimum(labels, n_classes - 1)
    predicted = logits.argmax(axis=1)
    options = resolve_f1(names, average, pos_label).sklearn_options()
    result = build_compute_metrics(names, average, pos_label)(_eval_prediction(logits, labels))
    for name, fn in (("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)):
        assert result[name] == pytest.approx(fn(labels, predicted, zero_division=0, **options)), name
    report = classification_report(predicted, labels, names, average, pos_label)["average"]
    assert report["f1"] == pytest.approx(result["f1"]) and report["recall"] == pytest.approx(result["recall"])
    majority = np.full_like(labels, np.bincount(labels).argmax())
    baseline = majority_baseline(labels, names, average, pos_label)
    assert baseline["f1"] == pytest.approx(skm.f1_score(labels, majority, zero_division=0, **options))


def test_the_module_reports_the_asked_average_and_the_weighted_one_beside_it():
    from trainer_core.metrics import load_metric

    scores = load_metric().compute(
        predictions=[1, 0, 2, 2, 1], references=[1, 1, 2, 0, 1], labels=[0, 1, 2], average="weighted"
    )
    assert (
        scores["f1"]
        == scores["f1_weighted"]
        == pytest.approx(skm.f1_score([1, 1, 2, 0, 1], [1, 0, 2, 2, 1], average="weighted"))
    )
    with pytest.raises(ValueError, match="needs 2 classes"):
        load_metric().compute(predictions=[0, 1, 2], references=[0, 1, 2], labels=[0, 1, 2], average="binary")


def test_real_runs_eval_f1_is_sklearns_on_their_saved_predictions(launcher):
    """Two real tiny runs, one macro, one scoring the class that is not the default positive one."""
    from tests.conftest import tiny_config

    choices = {"macro": {"f1_average": "macro"}, "fresh": {"pos_label": "fresh"}}
    small = {"max_train_samples": 48, "num_train_epochs": 1, "logging_steps": 3}
    ids = {key: launcher.launch(tiny_config(**small, **opts), name=key) for key, opts in choices.items()}
    for key, run_id in ids.items():
        run = launcher.wait(run_id, timeout=300)
        assert run["status"] == "completed", (run["error"], launcher.log_tail(run_id))
        config = launcher.config_of(run_id)
        assert {k: config.get(k) for k in choices[key]} == choices[key]  # recorded in the saved config
        table = launcher.predictions(run_id)
        names = run["summary"]["label_names"]
        assert names == ["fresh", "rotten"]
        if key == "macro":
            expected = skm.f1_score(table["label"], table["predicted"], average="macro", labels=names)
        else:
            expected = skm.f1_score(table["label"], table["predicted"], average="binary", pos_label="fresh")
        assert run["summary"]["final_metrics"]["eval_f1"] == pytest.approx(expected)
        # The choice mattered: the default (F1 of 'rotten') is another number on these predictions.
        default = skm.f1_score(table["label"], table["predicted"], pos_label="rotten")
        assert expected != pytest.approx(default)
        last_eval = launcher.store.get_series(run_id, "eval_f1")["value"].iloc[-1]
        assert last_eval == pytest.approx(expected)  # the curve's last point, same model, same rows
        assert run["summary"]["report"]["average"]["f1"] == pytest.approx(expected)
        majority = table["label"].value_counts().sort_index().idxmax()
        constant = [majority] * len(table)
        if key == "macro":
            baseline = skm.f1_score(table["label"], constant, average="macro", labels=names, zero_division=0)
        else:
            baseline = skm.f1_score(table["label"], constant, pos_label="fresh", zero_division=0)
        assert run["summary"]["baseline"]["f1"] == pytest.approx(baseline)

"""Evaluation metrics: ``compute_metrics`` for ``Trainer`` and a per-class report for the dashboard.

Hub metric scripts cannot be downloaded offline, so the project ships its own ``evaluate`` module,
``trainer_core/metric_modules/classification/classification.py`` (accuracy, F1, precision and recall in
one compute, the shape of ``evaluate.load("glue", "mrpc")``), and loads it by path. ``evaluate`` is
imported only when a metric is loaded: importing it pulls in ``transformers.pipelines`` (seconds), which
the dashboard does not need for :func:`classification_report` or :func:`softmax`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trainer_core.errors import ConfigError

if TYPE_CHECKING:
    import evaluate
    from transformers import EvalPrediction

METRIC_MODULES_DIR = Path(__file__).resolve().parent / "metric_modules"
# The shipped module that computes every metric below in one call.
METRIC_MODULE = "classification"
# What compute_metrics reports, in this order: the one list of metric names (the eval loss comes from
# Trainer itself). With more than two classes, f1/precision/recall are macro averages (every class
# counts the same, so a neglected minority class shows) and `<name>_weighted` is reported beside each.
METRIC_NAMES = ("accuracy", "f1", "precision", "recall")


def metric_path(name: str) -> str:
    """Where ``evaluate.load`` should find a metric module.

    Args:
        name: a metric module name, e.g. ``"classification"``.
    Returns:
        The folder of the project's own module when it ships one, else ``name`` unchanged, which
        ``evaluate.load`` looks up on the Hugging Face Hub (online only).
    """
    local = METRIC_MODULES_DIR / name / f"{name}.py"
    return str(local.parent) if local.is_file() else name


def load_metric(name: str = METRIC_MODULE) -> evaluate.EvaluationModule:
    """Load a metric module, keeping its inputs in memory.

    In memory, because by default ``evaluate`` writes every evaluation's predictions to an Arrow file
    under ``HF_HOME`` guarded by file locks: pointless for one process, and a source of lock contention
    when several runs evaluate at once.

    Args:
        name: a metric module name (see :func:`metric_path`); by default the shipped one.
    Returns:
        An ``evaluate.EvaluationModule``.
    Raises:
        ConfigError: the module is not shipped with the project and cannot be fetched from the Hub.
    """
    import evaluate

    path = metric_path(name)
    try:
        return evaluate.load(path, keep_in_memory=True)
    except (FileNotFoundError, ConnectionError) as exc:
        raise ConfigError(
            None,
            f"metric module {name!r} is not shipped with trainer_core ({METRIC_MODULE!r} is, with "
            f"{', '.join(METRIC_NAMES)}) and could not be loaded from the Hugging Face Hub: {exc}",
        ) from exc


def _predicted_ids(predictions: Any) -> np.ndarray:
    # Some models return (logits, hidden_states, ...); the logits come first.
    if isinstance(predictions, (tuple, list)) and predictions and isinstance(predictions[0], np.ndarray):
        predictions = predictions[0]
    array = np.asarray(predictions)
    return array.argmax(axis=-1) if array.ndim == 2 else array.reshape(-1)


def build_compute_metrics(
    label_names: Sequence[str], pos_label: int = 1
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` function for ``Trainer``.

    The metric module is loaded once, here, not at every evaluation.

    Args:
        label_names: class names by class id.
        pos_label: the positive class id of a binary task (1: MRPC's paraphrase).
    Returns:
        A function of an ``EvalPrediction`` (logits and label ids) returning :data:`METRIC_NAMES`. With 2
        classes f1/precision/recall are binary scores of ``pos_label``. With more, they are macro
        averages, and f1_weighted, precision_weighted and recall_weighted are added.
    """
    class_ids = list(range(len(label_names)))
    module = load_metric()

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        scores = module.compute(
            predictions=_predicted_ids(eval_pred.predictions),
            references=np.asarray(eval_pred.label_ids).reshape(-1),
            labels=class_ids,
            pos_label=pos_label,
        )
        result = {}
        for name in METRIC_NAMES:
            result[name] = float(scores[name])
            if f"{name}_weighted" in scores:
                result[f"{name}_weighted"] = float(scores[f"{name}_weighted"])
        return result

    return compute_metrics


def f1_positive_class(label_names: Sequence[str], pos_label: int = 1) -> str | None:
    """The class whose F1 ``f1`` is (two classes), or None when ``f1`` is the macro average (more)."""
    return str(label_names[pos_label]) if len(label_names) == 2 else None


def f1_meaning(label_names: Sequence[str], pos_label: int = 1) -> str:
    """What ``f1`` scores for these classes, in words: the positive class's F1, or the macro average."""
    positive = f1_positive_class(label_names, pos_label)
    if positive is not None:
        return f"F1 of class '{positive}'"
    return f"macro-averaged F1 over {len(label_names)} classes"


def majority_baseline(
    label_ids: Sequence[int], label_names: Sequence[str], pos_label: int = 1
) -> dict[str, Any] | None:
    """The scores of always answering the most frequent class: what a model must beat.

    An MRPC model at 0.7067 accuracy looks fine until one sees that always answering "1" scores 0.6967.

    Args:
        label_ids: true class ids of the split (the validation split).
        label_names: class names by class id.
        pos_label: the positive class id of a binary task, as in :func:`build_compute_metrics`.
    Returns:
        ``label`` (the class name), ``label_id``, ``accuracy`` and ``f1`` (under the same definition as
        :func:`build_compute_metrics`: binary F1 of ``pos_label`` for 2 classes, else macro), or None
        for an empty split. Ties go to the lowest class id.
    """
    from sklearn.metrics import f1_score

    truth = np.asarray(label_ids).reshape(-1)
    if not len(truth):
        return None
    class_ids = list(range(len(label_names)))
    majority = int(np.bincount(truth, minlength=len(class_ids)).argmax())
    constant = np.full_like(truth, majority)
    binary = len(class_ids) == 2
    f1 = f1_score(
        truth,
        constant,
        labels=None if binary else class_ids,
        average="binary" if binary else "macro",
        pos_label=pos_label,
        zero_division=0,
    )
    return {
        "label": str(label_names[majority]),
        "label_id": majority,
        "accuracy": float((truth == majority).mean()),
        "f1": float(f1),
    }


def softmax(logits: Any) -> np.ndarray:
    """Class probabilities from logits, over the last axis (float64, stable for large logits)."""
    from scipy.special import softmax as scipy_softmax

    return scipy_softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def classification_report(
    logits_or_predictions: Any, labels: Sequence[int], label_names: Sequence[str]
) -> dict[str, Any]:
    """Per-class scores and the confusion matrix of a set of predictions.

    Args:
        logits_or_predictions: logits of shape (rows, classes), or predicted class ids of shape (rows,).
        labels: true class ids.
        label_names: class names by class id; every class gets a row, even one absent from ``labels``.
    Returns:
        ``labels`` (the names), ``accuracy``, ``per_class`` (a list of {label, precision, recall, f1,
        support}), ``macro_avg`` ({precision, recall, f1}) and ``confusion_matrix`` (list of lists:
        rows are true classes, columns predicted classes, both in class-id order).
    """
    from sklearn import metrics

    predicted = _predicted_ids(logits_or_predictions)
    truth = np.asarray(labels).reshape(-1)
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions but {len(truth)} labels")
    class_ids = list(range(len(label_names)))
    names = [str(name) for name in label_names]
    # Keyed by class id, not by name: a class called "accuracy" or "macro avg" would clash with the
    # report's own keys. All ids are given, so "accuracy" is reported (not "micro avg").
    report = metrics.classification_report(
        truth, predicted, labels=class_ids, output_dict=True, zero_division=0
    )

    def scores(row: dict[str, float]) -> dict[str, float]:
        return {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1-score"]),
        }

    return {
        "labels": names,
        "accuracy": float(report["accuracy"]),
        "per_class": [
            {"label": name, **scores(report[str(i)]), "support": int(report[str(i)]["support"])}
            for i, name in enumerate(names)
        ],
        "macro_avg": scores(report["macro avg"]),
        "confusion_matrix": metrics.confusion_matrix(truth, predicted, labels=class_ids).tolist(),
    }

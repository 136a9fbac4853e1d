"""Evaluation metrics: ``compute_metrics`` for ``Trainer`` and a per-class report for the dashboard.

Hub metric scripts cannot be downloaded offline, so the project ships its own ``evaluate`` modules in
``trainer_core/metric_modules/<name>/<name>.py`` and loads them by path. ``evaluate`` is imported only
when a metric is loaded: importing it pulls in ``transformers.pipelines`` (seconds), which the
dashboard does not need for :func:`classification_report` or :func:`softmax`.
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
# What compute_metrics reports (config.REPORTED_METRICS lists the same names plus the eval loss).
METRIC_NAMES = ("accuracy", "f1", "precision", "recall")
# f1/precision/recall with more than two classes: macro is the headline number (every class counts the
# same, so a neglected minority class shows), weighted is reported beside it.
_AVERAGED = ("f1", "precision", "recall")


def metric_path(name: str) -> str:
    """Where ``evaluate.load`` should find a metric.

    Args:
        name: a metric name, e.g. ``"f1"``.
    Returns:
        The folder of the project's own module when it ships one, else ``name`` unchanged, which
        ``evaluate.load`` looks up on the Hugging Face Hub (online only).
    """
    local = METRIC_MODULES_DIR / name / f"{name}.py"
    return str(local.parent) if local.is_file() else name


def load_metric(name: str) -> evaluate.EvaluationModule:
    """Load one metric module, keeping its inputs in memory.

    In memory, because by default ``evaluate`` writes every evaluation's predictions to an Arrow file
    under ``HF_HOME`` guarded by file locks: pointless for one process, and a source of lock contention
    when several runs evaluate at once.

    Args:
        name: a metric name (see :func:`metric_path`).
    Returns:
        An ``evaluate.EvaluationModule``.
    Raises:
        ConfigError: the metric is not shipped with the project and cannot be fetched from the Hub.
    """
    import evaluate

    path = metric_path(name)
    try:
        return evaluate.load(path, keep_in_memory=True)
    except (FileNotFoundError, ConnectionError) as exc:
        raise ConfigError(
            None,
            f"metric {name!r} is not shipped with trainer_core ({', '.join(METRIC_NAMES)} are) and could not be "
            f"loaded from the Hugging Face Hub: {exc}",
        ) from exc


def _predicted_ids(predictions: Any) -> np.ndarray:
    # Some models return (logits, hidden_states, ...); the logits come first.
    if isinstance(predictions, (tuple, list)) and predictions and isinstance(predictions[0], np.ndarray):
        predictions = predictions[0]
    array = np.asarray(predictions)
    return array.argmax(axis=-1) if array.ndim == 2 else array.reshape(-1)


def build_compute_metrics(label_names: Sequence[str]) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` function for ``Trainer``.

    The metric modules are loaded once, here, not at every evaluation.

    Args:
        label_names: class names by class id.
    Returns:
        A function of an ``EvalPrediction`` (logits and label ids) returning accuracy, f1, precision and
        recall. With 2 classes f1/precision/recall are binary scores of class id 1 (the positive class:
        MRPC's paraphrase). With more, they are macro averages, and f1_weighted, precision_weighted and
        recall_weighted are added.
    """
    class_ids = list(range(len(label_names)))
    binary = len(class_ids) == 2
    modules = {name: load_metric(name) for name in METRIC_NAMES}

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        predicted = _predicted_ids(eval_pred.predictions)
        references = np.asarray(eval_pred.label_ids).reshape(-1)
        inputs = {"predictions": predicted, "references": references}
        result = {"accuracy": float(modules["accuracy"].compute(**inputs)["accuracy"])}
        for name in _AVERAGED:
            if binary:
                result[name] = float(modules[name].compute(**inputs, average="binary", pos_label=1)[name])
            else:
                for average, key in (("macro", name), ("weighted", f"{name}_weighted")):
                    score = modules[name].compute(**inputs, average=average, labels=class_ids)[name]
                    result[key] = float(score)
        return result

    return compute_metrics


def softmax(logits: Any) -> np.ndarray:
    """Class probabilities from logits, over the last axis (stable for large logits)."""
    array = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(array - array.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


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
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    predicted = _predicted_ids(logits_or_predictions)
    truth = np.asarray(labels).reshape(-1)
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions but {len(truth)} labels")
    class_ids = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=class_ids, zero_division=0
    )
    per_class = [
        {
            "label": str(name),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    ]
    return {
        "labels": [str(name) for name in label_names],
        "accuracy": float((predicted == truth).mean()) if len(truth) else 0.0,
        "per_class": per_class,
        "macro_avg": {
            "precision": float(np.mean(precision)),
            "recall": float(np.mean(recall)),
            "f1": float(np.mean(f1)),
        },
        "confusion_matrix": confusion_matrix(truth, predicted, labels=class_ids).tolist(),
    }

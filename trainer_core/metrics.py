"""Evaluation metrics: ``compute_metrics`` for ``Trainer`` and a per-class report for the dashboard.

Hub metric scripts cannot be downloaded offline, so the project ships its own ``evaluate`` module,
``trainer_core/metric_modules/classification/classification.py`` (accuracy, F1, precision and recall in
one compute, the shape of ``evaluate.load("glue", "mrpc")``), and loads it by path. ``evaluate`` is
imported only when a metric is loaded: importing it pulls in ``transformers.pipelines`` (seconds), which
the dashboard does not need for :func:`classification_report` or :func:`softmax`.

What "F1" means for a run (the F1 of one class, or an average over all) is decided once, by
:func:`resolve_f1` from the run's ``f1_average`` and ``pos_label``: compute_metrics, the report, the
majority baseline and the dashboard's labels all ask it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
# Trainer itself). f1/precision/recall are averaged as the run's F1 choice says (see resolve_f1); with
# more than two classes `<name>_weighted` is reported beside each as well.
METRIC_NAMES = ("accuracy", "f1", "precision", "recall")
# The averages a run may ask f1/precision/recall for (sklearn's `average`). "micro" is left out: for
# single-label classification micro-averaged F1, precision and recall all equal accuracy, already shown.
F1_AVERAGES = ("binary", "macro", "weighted")


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


@dataclass(frozen=True)
class F1Choice:
    """How a run's f1, precision and recall are computed, resolved against its class names.

    Attributes:
        average: one of :data:`F1_AVERAGES`.
        label_names: class names by class id.
        pos_id: the class id a ``binary`` score is about; None for the averages over all classes.
    """

    average: str
    label_names: tuple[str, ...]
    pos_id: int | None = None

    @property
    def positive(self) -> str | None:
        """The name of the class a binary F1 scores, else None."""
        return None if self.pos_id is None else self.label_names[self.pos_id]

    def sklearn_options(self) -> dict[str, Any]:
        """Keyword arguments of sklearn's ``f1_score`` (and its siblings) for this choice."""
        if self.pos_id is not None:
            # Without `labels`, as the course's recipe calls f1_score(average="binary"): the same floats.
            return {"average": "binary", "pos_label": self.pos_id}
        # Every class id given, so a class absent from a small evaluation set still counts (as 0).
        return {"average": self.average, "labels": list(range(len(self.label_names)))}

    def describe(self, short: bool = False) -> str:
        """``F1 of class 'spam'`` / ``macro-averaged F1 over 6 classes``; short: ``class 'spam'`` / ``macro, 6 classes``."""
        if self.positive is not None:
            return f"class '{self.positive}'" if short else f"F1 of class '{self.positive}'"
        n = len(self.label_names)
        if short:
            return f"{self.average}, {n} classes"
        if self.average == "weighted":
            return f"F1 averaged over {n} classes, weighted by their rows"
        return f"macro-averaged F1 over {n} classes"


def check_f1_options(f1_average: str | None, pos_label: str | None) -> None:
    """The rules on the F1 options that hold whatever the labels (``DataArguments`` checks them).

    Raises:
        ConfigError: an unknown average, or a positive class beside an average over all classes.
    """
    if f1_average is None:
        return
    if f1_average == "micro":
        raise ConfigError(
            "f1_average",
            "'micro' F1 equals accuracy when each row has one label, and accuracy is reported already; "
            f"use one of {', '.join(F1_AVERAGES)}",
        )
    if f1_average not in F1_AVERAGES:
        raise ConfigError(
            "f1_average",
            f"{f1_average!r} is not an average; use one of {', '.join(F1_AVERAGES)}, or leave it empty "
            "(binary for two classes, macro for more)",
        )
    if pos_label is not None and f1_average != "binary":
        raise ConfigError(
            "pos_label",
            f"a positive class applies to a binary F1 only; with f1_average {f1_average!r} every class "
            "is averaged: leave pos_label empty, or set f1_average to 'binary'",
        )


def _listed(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f", … {len(names) - limit} more" if len(names) > limit else "")


def resolve_f1(
    label_names: Sequence[str], f1_average: str | None = None, pos_label: str | None = None
) -> F1Choice:
    """What a run's F1 is, from its config's ``f1_average`` and ``pos_label`` and its class names.

    The one owner of the rule: left empty, the average is ``binary`` for two classes (F1 of class id 1,
    MRPC's paraphrase; the last class in sorted order for text labels, e.g. 'spam' of ham/spam) and
    ``macro`` for more, which is what every run meant before these options existed.

    Args:
        label_names: class names by class id.
        f1_average: one of :data:`F1_AVERAGES`, or None for the default above.
        pos_label: the name of the class a binary F1 scores (as the labels appear in the data), or None
            for class id 1.
    Returns:
        An :class:`F1Choice`.
    Raises:
        ConfigError: on ``f1_average`` for a binary F1 of more than two classes; on ``pos_label`` for a
            class the data lacks or a positive class where the F1 averages every class.
    """
    check_f1_options(f1_average, pos_label)
    names = tuple(str(n) for n in label_names)
    average = f1_average or ("binary" if len(names) == 2 else "macro")
    if average != "binary":
        if pos_label is not None:  # only reachable with the default average: more than two classes
            raise ConfigError(
                "pos_label",
                f"a positive class applies to two classes; this data has {len(names)} ({_listed(names)}), "
                "so F1 is the macro average: leave pos_label empty",
            )
        return F1Choice(average, names)
    if len(names) != 2:
        raise ConfigError(
            "f1_average",
            f"'binary' scores one class of two, but this data has {len(names)} classes ({_listed(names)}); "
            "use 'macro' or 'weighted', or leave f1_average empty (macro for more than two classes)",
        )
    if pos_label is None:
        return F1Choice(average, names, 1)
    if str(pos_label) not in names:
        raise ConfigError(
            "pos_label",
            f"{str(pos_label)!r} is not a label of this data; choose one of {_listed(names)}",
        )
    return F1Choice(average, names, names.index(str(pos_label)))


def build_compute_metrics(
    label_names: Sequence[str], f1_average: str | None = None, pos_label: str | None = None
) -> Callable[[EvalPrediction], dict[str, float]]:
    """A ``compute_metrics`` function for ``Trainer``.

    The metric module is loaded once, here, not at every evaluation.

    Args:
        label_names: class names by class id.
        f1_average, pos_label: the run's F1 choice, as :func:`resolve_f1` takes them.
    Returns:
        A function of an ``EvalPrediction`` (logits and label ids) returning :data:`METRIC_NAMES`, with
        f1/precision/recall as the F1 choice says. With more than two classes f1_weighted,
        precision_weighted and recall_weighted are added.
    Raises:
        ConfigError: the F1 choice does not fit the labels (see :func:`resolve_f1`).
    """
    choice = resolve_f1(label_names, f1_average, pos_label)
    class_ids = list(range(len(label_names)))
    module = load_metric()

    def compute_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
        scores = module.compute(
            predictions=_predicted_ids(eval_pred.predictions),
            references=np.asarray(eval_pred.label_ids).reshape(-1),
            labels=class_ids,
            pos_label=1 if choice.pos_id is None else choice.pos_id,
            average=choice.average,
        )
        result = {}
        for name in METRIC_NAMES:
            result[name] = float(scores[name])
            if f"{name}_weighted" in scores:
                result[f"{name}_weighted"] = float(scores[f"{name}_weighted"])
        return result

    return compute_metrics


def f1_positive_class(
    label_names: Sequence[str], f1_average: str | None = None, pos_label: str | None = None
) -> str | None:
    """The class whose F1 ``f1`` is (a binary F1), or None when ``f1`` averages every class."""
    return resolve_f1(label_names, f1_average, pos_label).positive


def f1_meaning(
    label_names: Sequence[str],
    f1_average: str | None = None,
    pos_label: str | None = None,
    short: bool = False,
) -> str:
    """What ``f1`` scores for these classes and this F1 choice, in words (see :meth:`F1Choice.describe`).

    Raises:
        ConfigError: the F1 choice does not fit the labels (see :func:`resolve_f1`).
    """
    return resolve_f1(label_names, f1_average, pos_label).describe(short=short)


def majority_baseline(
    label_ids: Sequence[int],
    label_names: Sequence[str],
    f1_average: str | None = None,
    pos_label: str | None = None,
) -> dict[str, Any] | None:
    """The scores of always answering the most frequent class: what a model must beat.

    An MRPC model at 0.7067 accuracy looks fine until one sees that always answering "1" scores 0.6967.

    Args:
        label_ids: true class ids of the split (the validation split).
        label_names: class names by class id.
        f1_average, pos_label: the run's F1 choice, so the baseline's F1 is the run's F1.
    Returns:
        ``label`` (the class name), ``label_id``, ``accuracy`` and ``f1`` (under the same definition as
        :func:`build_compute_metrics`), or None for an empty split. Ties go to the lowest class id.
    """
    from sklearn.metrics import f1_score

    truth = np.asarray(label_ids).reshape(-1)
    if not len(truth):
        return None
    choice = resolve_f1(label_names, f1_average, pos_label)
    majority = int(np.bincount(truth, minlength=len(label_names)).argmax())
    constant = np.full_like(truth, majority)
    f1 = f1_score(truth, constant, zero_division=0, **choice.sklearn_options())
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
    logits_or_predictions: Any,
    labels: Sequence[int],
    label_names: Sequence[str],
    f1_average: str | None = None,
    pos_label: str | None = None,
) -> dict[str, Any]:
    """Per-class scores and the confusion matrix of a set of predictions.

    Args:
        logits_or_predictions: logits of shape (rows, classes), or predicted class ids of shape (rows,).
        labels: true class ids.
        label_names: class names by class id; every class gets a row, even one absent from ``labels``.
        f1_average, pos_label: the run's F1 choice (see :func:`resolve_f1`), for ``average``.
    Returns:
        ``labels`` (the names), ``accuracy``, ``per_class`` (a list of {label, precision, recall, f1,
        support}), ``macro_avg`` ({precision, recall, f1}), ``average`` ({average, positive, meaning,
        precision, recall, f1}: the scores as the run's f1/precision/recall define them, so they equal
        its eval_f1 on the same predictions) and ``confusion_matrix`` (list of lists: rows are true
        classes, columns predicted classes, both in class-id order).
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

    choice = resolve_f1(names, f1_average, pos_label)
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        truth, predicted, zero_division=0, **choice.sklearn_options()
    )
    return {
        "labels": names,
        "accuracy": float(report["accuracy"]),
        "per_class": [
            {"label": name, **scores(report[str(i)]), "support": int(report[str(i)]["support"])}
            for i, name in enumerate(names)
        ],
        "macro_avg": scores(report["macro avg"]),
        "average": {
            "average": choice.average,
            "positive": choice.positive,
            "meaning": choice.describe(),
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
        },
        "confusion_matrix": metrics.confusion_matrix(truth, predicted, labels=class_ids).tolist(),
    }

"""Accuracy, F1, precision and recall in one ``evaluate`` module, shipped so it loads without the Hub.

The shape of ``evaluate.load("glue", "mrpc")`` (accuracy and F1 from one ``compute``), plus precision
and recall, and macro/weighted averages for more than two classes. One module instead of one per
metric: one load, and one Arrow table of predictions per evaluation instead of four.
"""

import datasets
import evaluate
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

_DESCRIPTION = """
Accuracy: the share of predictions that equal their reference label. On imbalanced data a model that
always predicts the majority class already scores high, so read it together with F1.
Precision: of the rows predicted positive, the share that are. Recall: of the positive rows, the share
predicted positive. F1: their harmonic mean, 2 * P * R / (P + R), high only when both are.
`average` says how precision, recall and F1 are computed: "binary" scores the positive class
(`pos_label`) of two; "macro" averages the per-class scores with every class counting the same (a
neglected minority class shows); "weighted" weights each class by its support. By default, "binary" for
two classes and "macro" for more. With more than two classes `f1_weighted` etc. are reported as well.
All scores are between 0 and 1.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length.
    labels (list of int): all class ids. Two ids mean a binary task; more mean macro and weighted
        averages over all of them, so a class missing from a small evaluation set still counts. By
        default, the ids present in the inputs.
    pos_label (int): the positive class of a binary average (default 1).
    average (str): "binary" (two classes only), "macro" or "weighted"; by default "binary" for two
        classes, "macro" for more.
    zero_division (int): the score of a class with no predicted (or no true) rows (default 0).
Returns:
    accuracy, f1, precision, recall (floats); with more than two classes also f1_weighted,
    precision_weighted and recall_weighted.
Example:
    >>> metric = evaluate.load("trainer_core/metric_modules/classification")
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 1, 1, 0], labels=[0, 1])
    {'accuracy': 0.5, 'f1': 0.6666666666666666, 'precision': 0.6666666666666666, 'recall': 0.6666666666666666}
"""

_CITATION = """
@article{pedregosa2011scikit,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_recall_fscore_support.html"
            ],
        )

    def _compute(self, predictions, references, labels=None, pos_label=1, average=None, zero_division=0):
        classes = sorted(set(references) | set(predictions)) if labels is None else list(labels)
        result = {"accuracy": float(accuracy_score(references, predictions))}
        average = average or ("binary" if len(classes) == 2 else "macro")
        if average == "binary":
            if len(classes) != 2:
                raise ValueError(f"average='binary' needs 2 classes, got {len(classes)}")
            # Without `labels`, as f1_score(average="binary") is called in the course's recipe: same floats.
            averages = [("binary", "")]
            options = {"pos_label": pos_label}
        else:
            # Every class id given, so a class missing from a small evaluation set still counts.
            averages = [(average, "")] + ([("weighted", "_weighted")] if len(classes) > 2 else [])
            options = {"labels": classes}
        # f1_score, precision_score and recall_score are each this call with one value kept.
        scores = {
            suffix: precision_recall_fscore_support(
                references, predictions, average=kind, zero_division=zero_division, **options
            )
            for kind, suffix in averages
        }
        for name, index in (("f1", 2), ("precision", 0), ("recall", 1)):  # (precision, recall, f1, support)
            for suffix, values in scores.items():
                result[name + suffix] = float(values[index])
        return result

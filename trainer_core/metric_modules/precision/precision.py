"""Precision, shipped with the project so ``evaluate.load`` works without the Hugging Face Hub."""

import datasets
import evaluate
from sklearn.metrics import precision_score

_DESCRIPTION = """
Of the rows predicted as a class, the share that truly belong to it: TP / (TP + FP).
Between 0 and 1. It says how much a positive prediction can be trusted, not how many positives are
found (that is recall).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length.
    labels (list of int): the class ids to score; by default those present in the inputs. Give all ids
        so that a class missing from a small evaluation set still counts in a macro average.
    pos_label (int): the positive class when average is "binary" (default 1).
    average (str): "binary" (default, two classes: score of pos_label), "macro" (unweighted mean over
        classes), "weighted" (mean weighted by each class's support), "micro" (over all rows), or None
        (one score per class).
    sample_weight (list of float): optional weight per prediction.
    zero_division (int or str): value when a class has no predicted (or true) rows; default 0.
Returns:
    precision (float, or a list of floats when average is None).
Example:
    >>> metric = evaluate.load("trainer_core/metric_modules/precision")
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 1, 1, 0])
    {'precision': 0.6666666666666666}
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
class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_score.html"
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        pos_label=1,
        average="binary",
        sample_weight=None,
        zero_division=0,
    ):
        score = precision_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        return {"precision": score.tolist() if getattr(score, "ndim", 0) else float(score)}

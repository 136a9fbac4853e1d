"""Accuracy, shipped with the project so ``evaluate.load`` works without the Hugging Face Hub."""

import datasets
import evaluate
from sklearn.metrics import accuracy_score

_DESCRIPTION = """
The share of predictions that equal their reference label: correct predictions divided by all
predictions. Between 0 (nothing right) and 1 (everything right). On imbalanced data a model that always
predicts the majority class already scores high, so read it together with F1.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): predicted class ids.
    references (list of int): true class ids, same length.
    normalize (bool): True (default) for the share of correct predictions, False for their count.
    sample_weight (list of float): optional weight per prediction.
Returns:
    accuracy (float, or int when normalize is False).
Example:
    >>> metric = evaluate.load("trainer_core/metric_modules/accuracy")
    >>> metric.compute(predictions=[1, 0, 1, 1], references=[1, 1, 1, 0])
    {'accuracy': 0.5}
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
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.accuracy_score.html"
            ],
        )

    def _compute(self, predictions, references, normalize=True, sample_weight=None):
        score = accuracy_score(references, predictions, normalize=normalize, sample_weight=sample_weight)
        return {"accuracy": float(score) if normalize else int(score)}

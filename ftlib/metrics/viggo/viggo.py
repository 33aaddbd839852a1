"""ViGGO meaning-representation match as an `evaluate` module, loadable offline from its folder:

    evaluate.load("ftlib/metrics/viggo")   # a local path: no hub access, works with HF_HUB_OFFLINE=1

It is a thin wrapper: the scoring lives in `ftlib.tasks.viggo` (score_viggo), so both always agree.
"""

import datasets
import evaluate

from ftlib import evals
from ftlib.tasks import viggo

_DESCRIPTION = (
    "ViGGO meaning representations compared at four nested levels: function; + attribute types "
    "(as a set); + their order; + exact values (value lists as sets). Values may hold commas, "
    "slashes and parentheses."
)
_KWARGS = """
Args:
    predictions: list of model outputs (str).
    references: list of gold meaning representations such as `inform(name[X], rating[good])` (str).
Returns:
    {"function", "attribute_types", "attribute_order", "exact", "n": number of examples}:
    each metric is the fraction of examples that pass it.
Example:
    >>> m = evaluate.load("ftlib/metrics/viggo")  # doctest: +SKIP
    >>> m.compute(
    ...     predictions=["inform(name[X], rating[good])"],
    ...     references=["inform(rating[good], name[X])"])  # doctest: +SKIP
    {'function': 1.0, 'attribute_types': 1.0, 'attribute_order': 0.0, 'exact': 0.0, 'n': 1}
"""
_CITATION = (
    "Juraska & Walker, ViGGO: A Video Game Corpus for Data-To-Text Generation in Open-Ended "
    "Conversations, INLG 2019."
)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Viggo(evaluate.Metric):
    """ViGGO meaning-representation match: function / attribute types / order / exact values."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Value("string"),
            }),
        )

    def _compute(self, predictions, references) -> dict:
        scores = [viggo.score_viggo(p, r) for p, r in zip(predictions, references)]
        return evals.metric_means(viggo.TASK.metrics, scores)

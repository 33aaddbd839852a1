"""GSM8K final-answer accuracy as an `evaluate` module, loadable offline from its folder:

    evaluate.load("ftlib/metrics/gsm8k")   # a local path: no hub access, works with HF_HUB_OFFLINE=1

It is a thin wrapper: the scoring lives in `ftlib.tasks.gsm8k` (gsm8k_lm_eval), so both always agree.
"""

import datasets
import evaluate

from ftlib import evals
from ftlib.tasks import gsm8k

_DESCRIPTION = (
    "GSM8K accuracy as lm-evaluation-harness scores it: strict_match (its 'strict-match', the first "
    "'#### <number>'; the headline) and flexible_extract (its 'flexible-extract', the last number), "
    "each compared as a string with the reference's after dropping ',', '$' and a final '.'."
)
_KWARGS = """
Args:
    predictions: list of model outputs (str).
    references: list of gold solutions ending in `#### <number>` (or bare numbers) (str).
Returns:
    {"strict_match", "flexible_extract", "n": number of examples}:
    each metric is the fraction of examples that pass it.
Example:
    >>> m = evaluate.load("ftlib/metrics/gsm8k")  # doctest: +SKIP
    >>> m.compute(
    ...     predictions=["9 * 2 = 18\\n#### 18"],
    ...     references=["#### 18"])  # doctest: +SKIP
    {'strict_match': 1.0, 'flexible_extract': 1.0, 'n': 1}
"""
_CITATION = "Cobbe et al., Training Verifiers to Solve Math Word Problems, arXiv:2110.14168, 2021."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Gsm8k(evaluate.Metric):
    """GSM8K final-answer accuracy: numeric match of the final answer."""

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
        scores = [gsm8k.gsm8k_lm_eval(p, r) for p, r in zip(predictions, references)]
        return evals.metric_means(gsm8k.TASK.metrics, scores)

"""GSM8K final-answer accuracy as an `evaluate` module, loadable offline from its folder:

    evaluate.load("ftlib/metrics/gsm8k")   # a local path: no hub access, works with HF_HUB_OFFLINE=1

It is a thin wrapper: the scoring lives in `ftlib.evals` (gsm8k_correct), so both always agree.
"""

import datasets
import evaluate

from ftlib import evals

_DESCRIPTION = (
    "GSM8K accuracy: the number after the last '####' (else the last number in the text), "
    "commas and '$' removed, compared numerically with the reference's."
)
_KWARGS = """
Args:
    predictions: list of model outputs (str).
    references: list of gold solutions ending in `#### <number>` (or bare numbers) (str).
Returns:
    {"correct", "n": number of examples}:
    each metric is the fraction of examples that pass it.
Example:
    >>> m = evaluate.load("ftlib/metrics/gsm8k")  # doctest: +SKIP
    >>> m.compute(
    ...     predictions=["9 * 2 = 18\\n#### 18"],
    ...     references=["#### 18.0"])  # doctest: +SKIP
    {'correct': 1.0, 'n': 1}
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
        scores = [{"correct": evals.gsm8k_correct(p, r)} for p, r in zip(predictions, references)]
        return evals.metric_means("gsm8k", scores)

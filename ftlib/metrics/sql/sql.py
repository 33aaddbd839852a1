"""SQL execution match as an `evaluate` module, loadable offline from its folder:

    evaluate.load("ftlib/metrics/sql")   # a local path: no hub access, works with HF_HUB_OFFLINE=1

It is a thin wrapper: the scoring lives in `ftlib.tasks.sql` (score_sql / sql_execution_match), so both always agree.
"""

import datasets
import evaluate

from ftlib import evals
from ftlib.tasks import sql

_DESCRIPTION = (
    "Text-to-SQL execution match: the predicted query (taken from <SQL> tags, a code fence or "
    "the first SELECT) and the gold query run in a read-only in-memory SQLite sandbox on seeded "
    "databases built from the CREATE TABLE context and chosen to tell the gold from its near-miss "
    "mutants; equal results (any column order; row order only on the gold's ORDER BY keys) on "
    "every database is a match."
)
_KWARGS = """
Args:
    predictions: list of model outputs (str).
    references: list of gold SQL queries (str).
    contexts: list of CREATE TABLE contexts (str), one per example.
Returns:
    {"execution_match", "valid_sql", "extracted", "judged", "n": number of examples}:
    execution_match counts only the judged examples (a gold that selects nothing, or that no database
    tells from its near-miss mutants, cannot judge).
    each metric is the fraction of examples that pass it.
Example:
    >>> m = evaluate.load("ftlib/metrics/sql")  # doctest: +SKIP
    >>> m.compute(
    ...     predictions=["<SQL>SELECT COUNT(*) FROM head</SQL>"],
    ...     references=["SELECT COUNT(*) FROM head"],
    ...     contexts=["CREATE TABLE head (age INTEGER)"])  # doctest: +SKIP
    {'execution_match': 1.0, 'valid_sql': 1.0, 'extracted': 1.0, 'judged': 1.0, 'n': 1}
"""
_CITATION = "Zhong, Yu & Klein, Semantic Evaluation for Text-to-SQL with Distilled Test Suites, EMNLP 2020."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Sql(evaluate.Metric):
    """SQL execution match: execution match on synthetic SQLite tables."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Value("string"),
                "contexts": datasets.Value("string"),
            }),
        )

    def _compute(self, predictions, references, contexts) -> dict:
        scores = [sql.score_sql(p, r, c) for p, r, c in zip(predictions, references, contexts)]
        return evals.metric_means(sql.TASK.metrics, scores)

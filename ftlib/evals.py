"""Scores with their intervals: per-example scores -> means with 95% intervals (`summarize`), and
`Score`, one such figure, as report, sweep, rounds and plots pass it around and print it.

The scorers themselves belong to their tasks (`ftlib.tasks.viggo`, `.gsm8k`, `.sql`, a user's task
file): `Task.score` gives one example's scores, this module summarizes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Score:
    """A score with its 95% interval and the items it counts (value and interval as fractions; None:
    not measured). Tables keep their own columns: `row()` for score/ci_low/ci_high/n, `named(m)` for
    m/m_ci_low/m_ci_high."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None

    @classmethod
    def of(cls, metric: dict | None) -> Score:
        """One metric of a summary, as `summarize` writes it ({mean, ci_low, ci_high, n}); None: not measured.

        >>> Score.of({"mean": 0.5, "ci_low": 0.2, "ci_high": 0.8, "n": 10}).row()
        {'score': 0.5, 'ci_low': 0.2, 'ci_high': 0.8, 'n': 10}
        """
        m = metric or {}
        return cls(m.get("mean"), m.get("ci_low"), m.get("ci_high"), m.get("n"))

    @classmethod
    def from_row(cls, row: dict) -> Score:
        """A table row's score (columns score, ci_low, ci_high, n)."""
        return cls(row.get("score"), row.get("ci_low"), row.get("ci_high"), row.get("n"))

    def text(self) -> str:
        """As the README writes it, in %: `96.8 [95.5, 97.7] (n=1,083)`; "not run" without a value.

        >>> Score(0.96768, 0.9549, 0.97702, 1083).text()
        '96.8 [95.5, 97.7] (n=1,083)'
        """
        if self.value is None:
            return "not run"
        return f"{100 * self.value:.1f} [{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}] (n={self.n:,})"

    def rounded(self, digits: int = 4) -> Score:
        """Value and interval rounded (as the committed tables hold them)."""
        r = [None if v is None else round(v, digits) for v in (self.value, self.ci_low, self.ci_high)]
        return Score(*r, self.n)

    def row(self) -> dict:
        """The columns score, ci_low, ci_high, n."""
        return {"score": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    def named(self, name: str) -> dict:
        """The columns <name>, <name>_ci_low, <name>_ci_high (several scores in one row)."""
        return {name: self.value, f"{name}_ci_low": self.ci_low, f"{name}_ci_high": self.ci_high}


def proportion_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (stays inside [0, 1], sane at 0 and n).

    >>> [round(x, 3) for x in proportion_ci(8, 10)]
    [0.49, 0.943]
    """
    if n <= 0:
        return (0.0, 1.0)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation interval of a mean (for scores that are numbers, not pass/fail).

    >>> [round(x, 3) for x in mean_ci([0.5, 1.0, 0.75, 1.0])]
    [0.578, 1.047]
    """
    n = len(values)
    if n < 2:
        return (float("nan"), float("nan"))
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return (mean - z * sd / math.sqrt(n), mean + z * sd / math.sqrt(n))


def is_number(v: object) -> bool:
    """A bool or a finite int/float: what a metric's value may be.

    >>> is_number(True), is_number(0.5), is_number("0.5"), is_number(float("nan")), is_number(10 ** 400)
    (True, True, False, False, False)
    """
    if isinstance(v, bool):
        return True
    try:
        return isinstance(v, (int, float)) and math.isfinite(float(v))
    except OverflowError:  # an int beyond a float's range
        return False


def summarize(scores: list[dict]) -> dict[str, dict]:
    """Per metric (every key of the score dicts, in first-seen order): mean, ci_low, ci_high, n.

    Pass/fail metrics get a Wilson interval; metrics that are numbers (a share of slots, a length)
    a normal-approximation one. A key holding anything else (a scorer's note, "why": "...") is no
    metric: it stays in the per-item scores and is left out here.

    >>> s = summarize([{"correct": True, "why": "same"}, {"correct": False, "why": "differs"}])
    >>> list(s), s["correct"]["mean"]
    (['correct'], 0.5)
    """
    keys = list(dict.fromkeys(k for s in scores for k in s))
    out = {}
    for key in keys:
        raw = [s[key] for s in scores if key in s]
        n = len(raw)
        if not all(is_number(v) for v in raw):
            continue
        if all(isinstance(v, bool) or v in (0, 1) for v in raw):
            k = sum(bool(v) for v in raw)
            lo, hi = proportion_ci(k, n)
            out[key] = {"mean": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n}
        else:
            values = [float(v) for v in raw]
            lo, hi = mean_ci(values)
            out[key] = {"mean": sum(values) / n, "ci_low": lo, "ci_high": hi, "n": n}
    return out


def metric_means(metrics: tuple[str, ...], scores: list[dict]) -> dict:
    """Each metric (a task's `metrics`) as its mean over examples (0.0 for none), plus n.

    >>> metric_means(("strict_match", "flexible_extract"), [{"strict_match": True, "flexible_extract": True},
    ...                                                     {"strict_match": False}])
    {'strict_match': 0.5, 'flexible_extract': 1.0, 'n': 2}
    """
    summary = summarize(scores)
    return {**{k: summary[k]["mean"] if k in summary else 0.0 for k in metrics}, "n": len(scores)}

"""Read finished evaluations back from disk for notebook 04: scores, CIs, error kinds.

Everything here reads files only (summary.json / predictions.jsonl written by `ftlib.harness`),
so the analysis notebook reruns in seconds and never needs a model.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from ftlib import evals, io, tasks
from ftlib import plan as plans


def summary_row(summary: dict, label: str) -> dict:
    """One bar of the figure: the primary metric of a summary.json, with its CI and n (`evals.Score`)."""
    score = evals.Score.of(summary["metrics"][summary["primary"]])
    return {"task": summary["task"], "label": label, "metric": summary["primary"], **score.row()}


def score_text(row: dict | None) -> str:
    """A summary_row as the README writes it: `96.8 [95.5, 97.7] (n=1,083)`, in %; "not run" for None."""
    return evals.Score.from_row(row or {}).text()


def tuned_eval_dir(plan: plans.Plan, task: str, model: str) -> Path:
    """Where the fine-tuned model of a plan's task was evaluated (its run folder's eval/)."""
    from ftlib import runs

    cfg = plans.train_config(plan, task, model)
    return runs.run_dir(cfg.experiment, cfg.run_name()) / "eval"


def evaluations(plan: plans.Plan, model: str) -> dict[tuple[str, str], Path]:
    """Every finished evaluation of a plan: {(task, label): folder}, untuned and tuned."""
    found = {}
    for summary in sorted(plans.eval_root(plan, model).glob("*/summary.json")):
        s = io.read_json(summary)
        label = summary.parent.name.removesuffix(f"-{tasks.name(s['task'])}")
        found[(s["task"], label)] = summary.parent
    for task in plan.tasks:
        folder = tuned_eval_dir(plan, task, model)
        if (folder / "summary.json").exists():
            found[(task, "fine-tuned")] = folder
    return found


def score_rows(found: dict[tuple[str, str], Path]) -> list[dict]:
    """summary_row for each evaluation, untuned first, in task order."""
    order = {t: i for i, t in enumerate(tasks.names())}
    rows = [summary_row(io.read_json(f / "summary.json"), label) for (task, label), f in found.items()]
    return sorted(rows, key=lambda r: (order.get(r["task"], len(order)), r["task"], r["label"] == "fine-tuned",
                                       r["label"]))


def predictions(folder: Path) -> list[dict]:
    """The per-example records of an evaluation folder."""
    return list(io.iter_jsonl(Path(folder) / "predictions.jsonl"))


def error_kinds(task: str | tasks.Task, records: list[dict]) -> Counter:
    """How each prediction failed (or 'correct'), with the task's own error classifier (or, for a task
    that declares none, 'correct' / 'wrong' by its headline metric)."""
    t = tasks.get(task)
    if t.error_kind is None:
        return Counter("correct" if r["scores"].get(t.primary) else "wrong" for r in records)
    return Counter(t.error_kind(r["prediction"], r) for r in records)


def numeric_rows(rows: list[dict]) -> list[dict]:
    """score_rows as plain numbers (score, ci_low, ci_high in [0, 1]; n), for scores.csv."""
    return [{"task": r["task"], "label": r["label"], "metric": r["metric"],
             **evals.Score.from_row(r).rounded(4).row()} for r in rows]


KEPT = ("truncated", "budget")  # a record's optional keys that travel with it: did it hit its budget, which


def export_predictions(found: dict[tuple[str, str], Path], out_dir: Path) -> list[Path]:
    """Per-item predictions of every evaluation as `<out_dir>/<task>-<label>.jsonl` (id, prediction,
    reference, scores): enough to re-score a headline number without rerunning anything."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (task, label), folder in sorted(found.items()):
        rows = [{"id": r["id"], "prediction": r["prediction"], "reference": r["reference"], "scores": r["scores"],
                 **{k: r[k] for k in KEPT if r.get(k) is not None}} for r in predictions(folder)]
        path = out_dir / f"{task}-{label}.jsonl"
        io.write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        written.append(path)
    return written


def paired(before: list[dict], after: list[dict], metric: str) -> dict[str, float]:
    """Two evaluations of the same items, compared item by item on `metric`: how many only `after`
    gets right, how many only `before`, and the exact two-sided sign test on those that differ
    (overlapping intervals can still hide a real paired difference). p keeps 4 significant digits, so a
    tiny one reads as such, never as 0.

    >>> paired([{"id": i, "scores": {"ok": i < 2}} for i in range(9)],
    ...        [{"id": i, "scores": {"ok": i < 8}} for i in range(9)], "ok")
    {'items': 9, 'both': 2, 'only_before': 0, 'only_after': 6, 'p': 0.03125}
    """
    b = {r["id"]: r["scores"].get(metric) for r in before}
    a = {r["id"]: r["scores"].get(metric) for r in after}
    if b.keys() != a.keys():
        raise ValueError(f"paired: the two evaluations cover different items ({len(b)} vs {len(a)} ids)")
    # an item without the metric (a SQL gold that cannot judge) is left out, as from the headline
    b = {i: bool(v) for i, v in b.items() if v is not None and a[i] is not None}
    a = {i: bool(a[i]) for i in b}
    only_b = sum(b[i] and not a[i] for i in b)
    only_a = sum(a[i] and not b[i] for i in a)
    k, n = min(only_a, only_b), only_a + only_b
    p = min(1.0, 2 * sum(math.comb(n, j) for j in range(k + 1)) / 2**n) if n else 1.0
    return {"items": len(b), "both": sum(b[i] and a[i] for i in b), "only_before": only_b,
            "only_after": only_a, "p": float(f"{p:.4g}")}

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
from ftlib.presets import Preset


def summary_row(summary: dict, label: str) -> dict:
    """One bar of the figure: the primary metric of a summary.json, with its CI and n (`evals.Score`)."""
    score = evals.Score.of(summary["metrics"][summary["primary"]])
    return {"task": summary["task"], "label": label, "metric": summary["primary"], **score.row()}


def score_text(row: dict | None) -> str:
    """A summary_row as the README writes it: `96.8 [95.5, 97.7] (n=1,083)`, in %; "not run" for None."""
    return evals.Score.from_row(row or {}).text()


def tuned_eval_dir(p: Preset, task: str, model: str) -> Path:
    """Where the fine-tuned model of a preset's task was evaluated (its run folder's eval/)."""
    from ftlib import runs

    cfg = plans.train_config(p, task, model)
    return runs.run_dir(cfg.experiment, cfg.run_name()) / "eval"


def evaluations(p: Preset, model: str) -> dict[tuple[str, str], Path]:
    """Every finished evaluation of a preset's plan: {(task, label): folder}, untuned and tuned."""
    found = {}
    for summary in sorted(plans.eval_root(p, model).glob("*/summary.json")):
        s = io.read_json(summary)
        label = summary.parent.name.removesuffix(f"-{tasks.name(s['task'])}")
        found[(s["task"], label)] = summary.parent
    for task in p.plan.tasks:
        folder = tuned_eval_dir(p, task, model)
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


def committed_predictions(folder: Path) -> dict[tuple[str, str], list[dict]]:
    """A results folder's exported predictions ({(task, label): records}), as export_predictions wrote them."""
    found = {}
    for path in sorted(Path(folder).glob("predictions/*.jsonl")):
        task, label = path.stem.split("-", 1)
        found[(task, label)] = list(io.iter_jsonl(path))
    return found


def summary_table(rows: list[dict], task_names: list[str], others: list[str]) -> list[dict]:
    """Notebook 04's summary: per task, each column's headline as `score_text`, the case study beside it."""
    from ftlib import plots

    def cell(task, label):  # "96.8 [95.5, 97.7] (n=1,083)": score in %, its 95% CI, the items scored
        return score_text(next((r for r in rows if r["task"] == task and r["label"] == label), None))

    return [{"task": t, "metric": tasks.get(t).primary, "untuned zero-shot": cell(t, "untuned-zero_shot"),
             "untuned few-shot": cell(t, "untuned-few_shot"), "fine-tuned": cell(t, "fine-tuned"),
             **{label: cell(t, label) for label in others},
             "case study 13B before → after": "{} → {}".format(*plots.CASE_STUDY_13B.get(t, ("-", "-")))}
            for t in task_names]


def error_table(kinds: dict[tuple[str, str], Counter]) -> list[dict]:
    """errors.csv's rows: each (task, model)'s outcome counts as `kind=n, ...` (zero counts left out)."""
    return [{"task": task, "model": label, "counts": ", ".join(f"{k}={v}" for k, v in sorted(c.items()) if v)}
            for (task, label), c in kinds.items()]


def refresh_from_predictions(folder: Path) -> list[Path]:
    """Rewrite a results folder's summary and errors tables (and the outcome charts) from its committed
    predictions, with the current scorers' scores: what notebook 04 writes, without the run folders."""
    from ftlib import plots, redraw

    folder = Path(folder)
    found = committed_predictions(folder)
    rows = [{"task": task, "label": label, "metric": tasks.get(task).primary,
             **evals.Score.of(evals.summarize([r["scores"] for r in recs]).get(tasks.get(task).primary)).row()}
            for (task, label), recs in found.items()]
    order = {t: i for i, t in enumerate(tasks.names())}
    task_names = sorted({t for t, _ in found}, key=lambda t: order.get(t, len(order)))
    standard = {"fine-tuned", "untuned-zero_shot", "untuned-few_shot"}
    others = sorted({label for _, label in found} - standard)
    written = [plots.save_table(summary_table(rows, task_names, others), "summary", folder)]
    kinds = {(t, label): error_kinds(t, found[(t, label)]) for t in task_names
             for label in ("untuned-few_shot", "fine-tuned") if (t, label) in found}
    written.append(plots.save_table(error_table(kinds), "errors", folder))
    return written + redraw.errors(folder)

"""Rescore committed per-item predictions with the current scorers, and refresh the tables built on them.

    python scripts/rescore.py            # every results/*/predictions/*.jsonl, rewritten in place

For each file it replaces each record's `scores`, then prints (and writes to results/rescoring.csv)
the old and the new headline with its 95% interval, and the other metrics; where the task names rows
to leave out of a second figure (`Task.excluded`, SQL: the gold errors), `<primary>_clean` is that
figure. It then rewrites, from the new scores, the rows of results/*/scores.csv and scores.md and of
results/sweep/sweep_*.csv and .md whose evaluation it rescored, and the sweep's paired sign tests; then
each plan folder's summary and errors tables and outcome charts (`report.refresh_from_predictions`).
Tables that need the git-ignored runs/ folders (before_after, training...) are left as they are.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ftlib import evals, paths, plots, report, tasks
from ftlib.experiments import sweep as sweep_lib

ROOT = Path(paths.ROOT) / "results"


def _headline(task: tasks.Task, scores: list[dict], metric: str) -> dict:
    s = evals.summarize(scores).get(metric, {"mean": float("nan"), "ci_low": float("nan"),
                                             "ci_high": float("nan"), "n": 0})
    return {"metric": metric, **evals.Score.of(s).row()}


def rescore_file(path: Path) -> dict:
    """Rescore one predictions file in place; old and new headline (old: its first stored metric)."""
    task = tasks.get(path.stem.split("-", 1)[0])
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    old_metric = task.primary if task.primary in records[0]["scores"] else next(iter(records[0]["scores"]))
    old = _headline(task, [r["scores"] for r in records], old_metric)
    for r in records:
        r["scores"] = task.score(r["prediction"], task.record_row(r))  # SQL: its row by id
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    new = _headline(task, [r["scores"] for r in records], task.primary)
    extra = {k: _headline(task, [r["scores"] for r in records], k) for k in task.metrics if k != task.primary}
    if task.excluded is not None:  # the second, stated headline: without the rows the task leaves out
        kept = [r["scores"] for r in records if not task.excluded(task.record_row(r))]
        extra[f"{task.primary}_clean"] = {**_headline(task, kept, task.primary), "metric": f"{task.primary}_clean"}
    return {"file": str(path.relative_to(ROOT.parent)), "task": task.name, "label": path.stem.split("-", 1)[1],
            "old": old, "new": new, "extra": extra}


def _update_table(csv_path: Path, found: dict, label_key: str, digits: int | None) -> None:
    """Rewrite the rows of a scores/sweep table (CSV and .md) for the evaluations rescored; `digits`
    rounds as the table's writer did (scores.csv: 4 places; the sweep tables: none)."""
    rows = plots.read_table(csv_path)
    for row in rows:
        new = found.get((row["task"], row[label_key]))
        if new is not None:
            row.update({"metric": new["metric"], "n": new["n"],
                        **{k: round(new[k], digits) if digits else new[k] for k in ("score", "ci_low", "ci_high")}})
    plots.save_table(rows, csv_path.stem, csv_path.parent)


def main() -> None:
    results = [rescore_file(p) for p in sorted(ROOT.glob("*/predictions/*.jsonl"))]
    with (ROOT / "rescoring.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "task", "metric", "old_metric", "old", "old_ci_low", "old_ci_high", "old_n",
                         "new", "new_ci_low", "new_ci_high", "new_n"])
        for r in results:
            for metric, new in [(r["new"]["metric"], r["new"]), *[(k, v) for k, v in r["extra"].items()]]:
                old = r["old"] if metric == r["new"]["metric"] else {"metric": "", "score": "", "ci_low": "",
                                                                      "ci_high": "", "n": ""}
                writer.writerow([r["file"], r["task"], metric, old["metric"],
                                 *[round(v, 4) if isinstance(v, float) else v
                                   for v in (old["score"], old["ci_low"], old["ci_high"], old["n"],
                                             new["score"], new["ci_low"], new["ci_high"], new["n"])]])
            print(f"{r['file']}: {r['old']['metric']} {r['old']['score']:.4f} (n={r['old']['n']}) -> "
                  f"{r['new']['metric']} {r['new']['score']:.4f} [{r['new']['ci_low']:.4f}, "
                  f"{r['new']['ci_high']:.4f}] (n={r['new']['n']})")
    for folder in sorted({Path(r["file"]).parts[1] for r in results}):
        found = {(r["task"], r["label"]): r["new"] for r in results if Path(r["file"]).parts[1] == folder}
        if (ROOT / folder / "scores.csv").exists():
            _update_table(ROOT / folder / "scores.csv", found, "label", 4)
            report.refresh_from_predictions(ROOT / folder)
        for sweep in (ROOT / folder).glob("sweep_*.csv"):
            _update_table(sweep, found, "arm", None)
            task = sweep.stem.removeprefix("sweep_")
            if (ROOT / folder / f"paired_{task}.csv").exists():  # the sign tests against the best arm
                paired = sweep_lib.paired_rows(task, plots.read_table(sweep), ROOT / folder / "predictions")
                plots.save_table(paired, f"paired_{task}", ROOT / folder)


if __name__ == "__main__":
    main()

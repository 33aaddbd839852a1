"""The case study's comparison across model sizes: the small tuned model beside larger untuned ones.

Every column is read from committed per-item predictions (`results/full/predictions/` for the
SmolLM2-135M and Gemma 3 270M runs of the `full` plan, `results/size/predictions/` for the Qwen
models), and every column of a task is scored on the *same* items: the test items that all of them
have answered (the larger models may have answered only the first n). So the comparison is paired,
and `n` says how many items it rests on.

    python -m ftlib.experiments.size run --limit sql=592 viggo=1083 gsm8k=500   # evaluate the Qwen models (resumes)
    python -m ftlib.experiments.size lr-check   # the fine-tuned 0.5B model's learning rate, on validation (resumes)
    python -m ftlib.experiments.size train      # fine-tune it on each task, score it on the test items (resumes)
    python -m ftlib.experiments.size report                                     # table, figure, paired tests
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.pyplot as plt

from ftlib import evals, harness, io, paths, plots, presets, report, tasks
from ftlib.experiments import baselines, size_tuned


def read_columns(task: str, root: Path | None = None) -> dict[str, dict]:
    """{label: {id: record}} for every column whose predictions exist."""
    out = {}
    for col in baselines.COLUMNS:
        path = baselines.predictions_path(col, task, root)
        if path.exists():
            out[col.label] = {r["id"]: r for r in io.iter_jsonl(path)}
    return out


def common_ids(columns: dict[str, dict], metric: str) -> list:
    """The items every column answered and `metric` judged (a SQL gold that cannot tell right from
    wrong is judged for no one), in the order of the first column."""
    if not columns:
        return []
    first, *rest = columns.values()
    return [i for i in first if all(i in c for c in rest)
            and all(metric in c[i]["scores"] for c in columns.values())]


def compare(task: str, root: Path | None = None, metric: str | None = None) -> list[dict]:
    """One row per column: its score on `metric` (default baselines.METRIC[task]) over the common items, 95 % CI, n."""
    columns = read_columns(task, root)
    metric = metric or baselines.METRIC[task]
    ids = common_ids(columns, metric)
    by_label = {c.label: c for c in baselines.COLUMNS}
    rows = []
    for label, recs in columns.items():
        s = evals.summarize([{metric: recs[i]["scores"][metric]} for i in ids])[metric] if ids else None
        col = by_label[label]
        rows.append({"task": task, "model": label, "params": col.params, "tuned": col.tuned,
                     "style": "chat (tuned format)" if col.tuned else prompt_label(col, task, root), "metric": metric,
                     **evals.Score.of(s).rounded(4).row(), "n": len(ids),
                     "truncated": harness.truncated_share([recs[i] for i in ids])})
    return rows


def prompt_label(col: baselines.Column, task: str, root: Path | None = None) -> str:
    """The prompting a column answers a task in, as the tables show it."""
    return "few_shot_text" if "few_shot_text" in col.file else baselines.style_of(col, task, root)


def paired(task: str, a: str = baselines.LARGE_UNTUNED, b: str = baselines.SMALL_TUNED,
           root: Path | None = None) -> dict | None:
    """Item by item on the common items: how often only `a` or only `b` is right, and the sign test."""
    columns = read_columns(task, root)
    if a not in columns or b not in columns:
        return None
    metric = baselines.METRIC[task]
    ids = set(common_ids(columns, metric))
    pick = {label: [r for i, r in columns[label].items() if i in ids] for label in (a, b)}
    return {"task": task, "metric": metric, "a": a, "b": b, **report.paired(pick[a], pick[b], metric)}


def pairs(root: Path | None = None) -> list[dict]:
    """The paired tests the comparison asks for, per task: the untuned 1.5B model against the tuned
    135M model, and against the tuned 0.5B model (where its predictions exist)."""
    return [p for b in (baselines.SMALL_TUNED, baselines.LARGER_TUNED) for task in baselines.STYLE
            if (p := paired(task, baselines.LARGE_UNTUNED, b, root))]


SIZE_TICKS = {135e6: "135M", 268e6: "270M", 494e6: "0.5B", 1.54e9: "1.5B", 13e9: "13B"}


def figure(rows: list[dict]):
    """Score against parameter count (log scale), one panel per task: untuned circles, tuned stars,
    95 % intervals, and the case study's Llama-2-13B before/after at 13 B. Sized to read at the width
    Jupyter shows it (plots.WIDTH)."""
    order = [t for t in baselines.STYLE if any(r["task"] == t for r in rows)]
    fig, axes = plt.subplots(1, len(order), figsize=(plots.WIDTH, 4.3), squeeze=False, sharey=True)
    for ax, task in zip(axes[0], order):
        mine = [r for r in rows if r["task"] == task and r["score"] is not None]
        for tuned, marker, color, name in ((False, "o", "tab:gray", "ours, untuned"),
                                           (True, "*", "tab:blue", "ours, fine-tuned")):
            pts = [r for r in mine if r["tuned"] == tuned]
            if not pts:
                continue
            ys = [100 * r["score"] for r in pts]
            err = [[y - 100 * r["ci_low"] for y, r in zip(ys, pts)], [100 * r["ci_high"] - y for y, r in zip(ys, pts)]]
            ax.errorbar([r["params"] for r in pts], ys, yerr=err, fmt=marker, color=color, ms=14 if tuned else 7,
                        capsize=3, lw=1.2, label=name)
            tuned_sizes = {r["params"] for r in mine if r["tuned"]}
            for r, y in zip(pts, ys):
                if tuned or y >= 5:  # the near-zero untuned points would only crowd each other
                    # above the interval; an untuned point with a tuned one at its size: below it
                    below = not tuned and r["params"] in tuned_sizes
                    ax.annotate(f"{y:.0f}%", (r["params"], 100 * r["ci_low" if below else "ci_high"]),
                                textcoords="offset points", xytext=(0, -4 if below else 4), ha="center",
                                va="top" if below else "bottom", fontsize=9.5, color=color,
                                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        before, after = plots.CASE_STUDY_13B[task]
        ax.plot([plots.CASE_STUDY_PARAMS], [before], "o", mfc="none", mew=1.5, color="tab:red", ms=8,
                label="Llama-2-13B untuned (published)")
        ax.plot([plots.CASE_STUDY_PARAMS], [after], "*", color="tab:red", ms=14,
                label="Llama-2-13B fine-tuned (published)")
        ax.axhline(after, color="tab:red", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlim(9e7, 2.5e10)
        ax.set_xticks(list(SIZE_TICKS), list(SIZE_TICKS.values()), fontsize=8.5, rotation=60)
        ax.minorticks_off()
        ax.set_ylim(-3, 110)
        n = mine[0]["n"] if mine else 0
        title = tasks.get(task).title.split(" (")[0]
        what = {"attribute_types": "function + attribute types", "execution_match": "execution match",
                "flexible_extract": "last number"}.get(baselines.METRIC[task], baselines.METRIC[task])
        ax.set_title(f"{title}: {what}\nn = {n:,} test items", fontsize=10)
        ax.set_xlabel("parameters (log scale)", fontsize=9.5)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%), 95 % interval", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=9.5, frameon=False)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    return fig


def eval_dir(alias: str, style: str, task: str, runs_root: Path | None = None) -> Path:
    """The evaluation folder of a Qwen model, beside the `full` plan's: runs/full/eval/<alias>-<style>-<task>."""
    return (runs_root or paths.runs_dir()) / "full" / "eval" / f"{alias}-{style}-{task}"


def export(runs_root: Path | None = None, out: Path | None = None) -> list[Path]:
    """Copy the Qwen evaluations' per-item predictions (both prompt styles, where run; the fine-tuned
    model's test evaluation) into results/size/predictions/."""
    found = {(task, f"{alias}-{style}"): eval_dir(alias, style, task, runs_root)
             for alias in baselines.QWEN for task in baselines.STYLE for style in baselines.PROMPTINGS}
    found |= {(task, f"{presets.SIZE_TUNED_MODEL}-fine-tuned"): size_tuned.tuned_dir(task, runs_root) / "eval"
              for task in baselines.STYLE}
    found = {k: f for k, f in found.items() if (f / "predictions.jsonl").exists()}
    return report.export_predictions(found, out or paths.results_dir() / "size" / "predictions")


def styles(root: Path | None = None) -> list[dict]:
    """Every Qwen model in every prompting: on validation (what the choice rests on, `chosen` marks the
    one the comparison uses) and on test where it was run (the first n test items; n differs between
    rows). Scored on baselines.METRIC, and on GSM8K on strict-match too; `truncated`: answers that hit the budget."""
    root = root or paths.results_dir()
    rows = []
    for task in baselines.STYLE:
        metrics = list(dict.fromkeys([baselines.METRIC[task], tasks.get(task).primary]))  # GSM8K: its headline too
        for alias in baselines.QWEN:
            pick = baselines.chosen(task, alias, baselines.METRIC[task], baselines.STYLE[task], root)
            for style in baselines.TRIED[task]:
                for split, path in (("validation", baselines.val_file(alias, style, task, root)),
                                    ("test", root / "size" / "predictions" / f"{task}-{alias}-{style}.jsonl")):
                    if not path.exists():
                        continue
                    recs = list(io.iter_jsonl(path))
                    summary = evals.summarize([r["scores"] for r in recs])
                    for m in metrics:
                        rows.append({"task": task, "model": alias, "style": style, "split": split,
                                     "chosen": style == pick, "metric": m,
                                     **evals.Score.of(summary[m]).rounded(4).row(),
                                     "truncated": harness.truncated_share(recs)})
    return rows


def run(limits: dict[str, int], models: tuple[str, ...] = baselines.QWEN) -> None:
    """Evaluate the larger untuned models on the first `limits[task]` test items, each in the prompting
    it does best on validation and that prompting's budget (resumes), then export."""
    for task, limit in limits.items():
        for alias in models:
            p = baselines.chosen(task, alias, baselines.METRIC[task], baselines.STYLE[task])
            harness.evaluate(alias, baselines.task_for(task, p), "test", baselines.PROMPTINGS[p].style, limit=limit,
                             out_dir=eval_dir(alias, p, task))
    export()


def write_report(out: Path | None = None) -> list[dict]:
    """results/size/: size.csv and size.md (the table), gsm8k_strict (the same columns on GSM8K's
    headline), styles (each Qwen model in both prompt styles), paired.csv, size.png; returns the table."""
    out = out or paths.results_dir() / "size"
    rows = [r for task in baselines.STYLE for r in compare(task)]
    plots.save_table(rows, "size", out)
    plots.save_table(compare("gsm8k", metric="strict_match"), "gsm8k_strict", out)
    plots.save_table(styles(out.parent), "styles", out)
    plots.save_table(pairs(), "paired", out)
    plots.save_figure(figure(rows), "size", out)
    return rows


def _limits(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        task, _, n = item.partition("=")
        if task not in baselines.STYLE or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--limit wants TASK=N with TASK in {list(baselines.STYLE)} and N >= 1, got {item!r}")
        out[task] = int(n)
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.experiments.size run|lr-check|train|export|report|latency`."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.experiments.size", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["run", "lr-check", "train", "export", "report", "latency"])
    ap.add_argument("--limit", nargs="*", default=["viggo=1083", "sql=592", "gsm8k=500"],
                    help="test items per task, TASK=N (the first N of the prepared split)")
    ap.add_argument("--tasks", nargs="*", choices=list(presets.SIZE_TUNED), default=list(presets.SIZE_TUNED),
                    help="train: the tasks to fine-tune on (each best in its own process: peak memory is per process)")
    ap.add_argument("--tuned-135m", help="latency: the tuned 135M model's folder (default: the full plan's ViGGO run)")
    args = ap.parse_args(argv)
    if args.command == "run":
        run(_limits(args.limit))
    elif args.command == "lr-check":
        print(json.dumps(size_tuned.lr_check(), indent=1))
    elif args.command == "train":
        size_tuned.train_tasks(tuple(args.tasks))
        export()
    elif args.command == "export":
        print("\n".join(paths.shown(p) for p in export()))
    elif args.command == "latency":
        print(json.dumps(size_tuned.latency(size_tuned.latency_conditions(args.tuned_135m)), indent=1))
    else:
        print(json.dumps(write_report(), indent=1))


if __name__ == "__main__":
    main()

"""Figures and tables that notebooks show and also save under `results/` for the README.

No backend is forced here: in Jupyter every figure a cell makes is displayed inline (and
`save_figure` writes it to disk too); outside Jupyter matplotlib picks its own backend (Agg on a
headless machine). Tables come back as DataFrames, which Jupyter renders as tables.
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from ftlib import tasks

# The case study's Llama-2-13B accuracy before -> after fine-tuning (docs/case_study.md).
CASE_STUDY_13B = {"viggo": (58, 98), "sql": (42, 89), "gsm8k": (28, 47)}


def save_figure(fig, name: str, out_dir: Path) -> Path:
    """Save a figure as `<out_dir>/<name>.png` and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a GitHub markdown table (columns in the first row's order).

    Floats are shown to 4 significant digits and missing values as blanks, for reading; the CSV
    that save_table writes beside it keeps every digit.

    >>> print(markdown_table([{"a": 1, "b": "x", "score": 0.8766666666666667, "lr": 1e-4, "n": None,
    ...                        "tokens": 1670740.0}]))
    | a | b | score | lr | n | tokens |
    |---|---|---|---|---|---|
    | 1 | x | 0.8767 | 0.0001 |  | 1670740 |
    """
    if not rows:
        return ""

    def cell(value) -> str:
        if value is None:
            return ""
        if not isinstance(value, float):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"  # no 1.671e+06 for a count

    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def save_table(rows: list[dict], name: str, out_dir: Path) -> Path:
    """Save rows as `<name>.csv` and `<name>.md` under out_dir; return the markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
    (out_dir / f"{name}.md").write_text(markdown_table(rows) + "\n")
    return out_dir / f"{name}.md"


def read_table(path: Path) -> list[dict]:
    """The rows of a table save_table wrote (`<name>.csv`), numbers as numbers, empty cells as None."""

    def value(text: str):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text or None

    with Path(path).open(newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def table(rows: list[dict], name: str | None = None, out_dir: Path | None = None):
    """Rows as a pandas DataFrame (Jupyter renders it as a table); saved first when name is given.

    >>> table([{"task": "sql", "score": 0.5}]).shape
    (1, 2)
    """
    import pandas as pd

    if name is not None:
        save_table(rows, name, out_dir)
    return pd.DataFrame(rows)


def histograms(values: dict[str, list[float]], xlabel: str, title: str):
    """One histogram per key, side by side."""
    fig, axes = plt.subplots(1, len(values), figsize=(4 * len(values), 3), squeeze=False)
    for ax, (key, vals) in zip(axes[0], values.items()):
        ax.hist(vals, bins=30, color="tab:blue", alpha=0.8)
        ax.set_title(key)
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel("examples")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(histories: dict[str, list[dict]]):
    """Training and validation loss against step, one panel per run (Trainer log_history rows)."""
    fig, axes = plt.subplots(1, len(histories), figsize=(4.5 * len(histories), 3.2), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        for key, style, label in (("loss", "-", "training loss"), ("eval_loss", "o-", "validation loss")):
            pts = [(h["step"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), style, label=label)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.legend()
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    return fig


def score_bars(results: list[dict], title: str = ""):
    """The case study's figure: per task, bars with 95% CIs for each condition, 13B marks.

    `results` rows: {task, label, mean, ci_low, ci_high, n} with mean and CI as fractions.
    """
    shown = list(dict.fromkeys(r["task"] for r in results))
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.8), squeeze=False)
    for ax, task in zip(axes[0], shown):
        rows = [r for r in results if r["task"] == task]
        xs = range(len(rows))
        means = [100 * r["mean"] for r in rows]
        err = [[100 * (r["mean"] - r["ci_low"]) for r in rows], [100 * (r["ci_high"] - r["mean"]) for r in rows]]
        # grey: our model untuned; green: fine-tuned; blue: any other model (a second size, an API)
        colors = ["tab:gray" if "untuned" in r["label"] else "tab:green" if "tuned" in r["label"]
                  else "tab:blue" for r in rows]
        ax.bar(xs, means, yerr=err, capsize=4, color=colors)
        for x, r, m in zip(xs, rows, means):
            ax.text(x, m + 2, f"{m:.0f}%\nn={r['n']}", ha="center", va="bottom", fontsize=8)
        if task in CASE_STUDY_13B:
            before, after = CASE_STUDY_13B[task]
            ax.axhline(before, color="tab:red", ls=":", lw=1, label=f"Llama-2-13B untuned {before}%")
            ax.axhline(after, color="tab:red", ls="--", lw=1, label=f"Llama-2-13B tuned {after}%")
        ax.set_xticks(list(xs), [r["label"] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 115)
        ax.set_title(tasks.get(task).title or task, fontsize=10)
        if task in CASE_STUDY_13B:
            ax.legend(fontsize=7, loc="upper left")
    axes[0][0].set_ylabel("accuracy (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def grouped_counts(counts: dict[str, dict[str, int]], title: str):
    """Side-by-side bars of category counts per group (e.g. error kinds per model)."""
    kinds = sorted({k for c in counts.values() for k in c})
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(kinds)), 3.2))
    width = 0.8 / max(1, len(counts))
    for i, (group, c) in enumerate(counts.items()):
        ax.bar([x + i * width for x in range(len(kinds))], [c.get(k, 0) for k in kinds], width, label=group)
    ax.set_xticks([x + width * (len(counts) - 1) / 2 for x in range(len(kinds))], kinds, rotation=20, ha="right")
    ax.set_ylabel("test items")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def rounds(rows: list[dict], title: str = "", x: str = "round", metrics: tuple[str, ...] = ("score",),
           log_x: bool = False, xlabel: str | None = None):
    """Score per round (or per `x` column) per series with 95% CI bars, one panel per metric.

    `rows` are `rounds.table` rows; metric "score" is the task's headline, "function" ViGGO's function
    alone (it moves long before the headline does). Round numbers are whole numbers on the axis.
    Where rows say which round they started from (`start`), a line joins each round to its start
    (rounds that start from the same model fan out from it); otherwise a series is one line.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name in dict.fromkeys(r["series"] for r in rows):
            pts = [r for r in rows if r["series"] == name and r.get(metric) is not None]
            y = [r[metric] for r in pts]
            err = [[r[metric] - r[f"{metric}_ci_low"] for r in pts], [r[f"{metric}_ci_high"] - r[metric] for r in pts]]
            tree = any("start" in r for r in pts)
            bars = ax.errorbar([r[x] for r in pts], y, yerr=err, marker="o", capsize=3, label=name,
                               linestyle="none" if tree else "-")
            for a, b in _starts(pts) if tree else ():
                ax.plot([a[x], b[x]], [a[metric], b[metric]], color=bars.lines[0].get_color())
        if x == "round":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel or ("round (0 = start model)" if x == "round" else x))
        ax.set_ylabel(rows[0]["metric"] if metric == "score" and rows else metric)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _starts(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(start, round) pairs among one series' rows: `start` names a row of the series, or "previous"."""
    by_name = {r.get("name"): r for r in rows}
    pairs = [(rows[i - 1] if r.get("start") == "previous" else by_name.get(r.get("start")), r)
             for i, r in enumerate(rows) if r.get("start") != "previous" or i > 0]
    return [(a, b) for a, b in pairs if a is not None and a is not b]


def quality(rows: list[dict], title: str = ""):
    """Score per data-quality level (x, in the rows' order), one dot per seed with its 95% CI, the
    seeds' mean as a bar; one panel per metric ("score" = the headline, "function" where present).

    `rows`: rounds.table rows with a `level` (e.g. "corrupt-30") and a `seed`.
    """
    levels = list(dict.fromkeys(r["level"] for r in rows))
    metrics = [m for m in ("score", "function") if any(r.get(m) is not None for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 3.6), squeeze=False)
    seeds = sorted({r["seed"] for r in rows})
    for ax, metric in zip(axes[0], metrics):
        for x, level in enumerate(levels):
            pts = [r for r in rows if r["level"] == level and r.get(metric) is not None]
            if pts:
                ax.bar(x, 100 * sum(r[metric] for r in pts) / len(pts), color="tab:green", alpha=0.3)
            for r in pts:
                dx = 0.2 * (seeds.index(r["seed"]) - (len(seeds) - 1) / 2)
                lo, hi = r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
                ax.errorbar(x + dx, 100 * r[metric], yerr=[[100 * (r[metric] - lo)], [100 * (hi - r[metric])]],
                            fmt="o", color="black", capsize=2, markersize=3)
        ax.set_xticks(range(len(levels)), levels, fontsize=8)
        ax.set_ylabel(f"{rows[0]['metric'] if metric == 'score' else metric} (%)")
        ax.set_ylim(0, 102)
    axes[0][0].set_title("bars: mean of the seeds; dots: each seed with its 95% CI", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep(rows: list[dict], title: str = ""):
    """Recipe sweep: validation score with its 95% CI per arm (left) and training minutes (right).

    `rows`: sweep.row dicts (arm, method, score, ci_low, ci_high, train_minutes), drawn top to bottom in
    their order (`sweep.table_rows`: the grid's, so the arms of one learning rate stand together).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    left.invert_yaxis()  # the first row on top, in both panels
    right.invert_yaxis()
    ys = range(len(rows))
    colors = ["tab:green" if r["method"] == "full" else "tab:purple" for r in rows]
    means = [100 * r["score"] for r in rows]
    err = [[100 * (r["score"] - r["ci_low"]) for r in rows], [100 * (r["ci_high"] - r["score"]) for r in rows]]
    left.errorbar(means, ys, xerr=err, fmt="none", ecolor="black", capsize=3)
    left.scatter(means, ys, c=colors, zorder=3)
    left.set_yticks(list(ys), [r["arm"] for r in rows], fontsize=8)
    left.set_xlabel(f"{rows[0]['metric']} on validation (%)" if rows else "score (%)")
    right.barh(list(ys), [r["train_minutes"] for r in rows], color=colors)
    right.set_yticks(list(ys), [""] * len(rows))
    right.set_xlabel(f"training minutes ({rows[0]['device']})" if rows else "training minutes")
    fig.suptitle(title or "arm = method-lr-examples x epochs (green: full fine-tuning, purple: LoRA r16)")
    fig.tight_layout()
    return fig


def metric_bars(summaries: dict[str, dict], metrics: tuple[str, ...], title: str = ""):
    """One panel per metric, one bar per condition (a harness summary each), with 95% CI bars.

    A metric whose values are shares (0-1) is drawn in %, like every score here.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    labels = list(summaries)
    for ax, metric in zip(axes[0], metrics):
        ms = [summaries[label]["metrics"][metric] for label in labels]
        means = [100 * m["mean"] for m in ms]
        err = [[100 * (m["mean"] - m["ci_low"]) for m in ms], [100 * (m["ci_high"] - m["mean"]) for m in ms]]
        colors = ["tab:gray" if "untuned" in label else "tab:green" for label in labels]
        ax.bar(range(len(labels)), means, yerr=err, capsize=4, color=colors)
        for x, (mean, m) in enumerate(zip(means, ms)):
            ax.text(x, mean + 2, f"{mean:.0f}%\nn={m['n']}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 118)
        ax.set_title(metric, fontsize=10)
    axes[0][0].set_ylabel("%")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def response_time(rows: list[dict], title: str = ""):
    """Latency per answer (one request at a time, 95% CI) and answers per second (batched), per
    condition; `rows` are `ftlib.latency.measure` results with a `label` (and prompt tokens)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    xs = range(len(rows))
    labels = [f"{r['label']}\n{r['prompt_tokens']:.0f} prompt tokens" for r in rows]
    lat = [r["latency_s"] for r in rows]
    err = [[r["latency_s"] - r["latency_ci_low"] for r in rows], [r["latency_ci_high"] - r["latency_s"] for r in rows]]
    left.bar(xs, lat, yerr=err, capsize=4, color="tab:orange")
    left.set_ylabel("seconds per answer (one at a time)")
    right.bar(xs, [r["answers_per_s"] for r in rows], color="tab:purple")
    right.set_ylabel("answers per second (batched)")
    for ax in (left, right):
        ax.set_xticks(list(xs), labels, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

"""Figures and tables that notebooks show and also save under `results/` (the README shows some).

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

# The case study's published numbers, the one place they are written (docs/case_study.md): its
# Llama-2-13B's accuracy (%) before -> after fine-tuning, and that model's parameter count.
CASE_STUDY_13B = {"viggo": (58, 98), "sql": (42, 89), "gsm8k": (28, 47)}
CASE_STUDY_PARAMS = 13e9

# Jupyter shows a figure about 880 px wide: figures stay under ~9.5 inches at 100 dpi, text >= 10 pt.
WIDTH = 9.5
FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9.5,
        "ytick.labelsize": 9.5, "legend.fontsize": 9, "figure.titlesize": 12}
plt.rcParams.update(FONT)

# Ids as words on a figure (tables keep the ids: they are data).
WORDS = {
    "untuned-zero_shot": "untuned, zero-shot", "untuned-few_shot": "untuned, few-shot",
    "zero_shot": "zero-shot", "few_shot": "few-shot", "few_shot_text": "few-shot (plain text)",
    "four_shot_text": "4-shot (plain text)", "program": "program (run in a sandbox)",
    "attribute_types": "function + attribute types", "execution_match": "execution match",
    "attribute_order": "attribute order", "exact": "exact values", "correct": "correct",
    "wrong_function": "wrong function", "missing_attribute": "attribute missing",
    "extra_attribute": "extra attribute", "wrong_attributes": "wrong attributes", "wrong_order": "wrong order",
    "wrong_value": "a wrong value", "unparsable": "unparsable",
    "no_sql": "no SQL", "syntax_error": "does not parse", "runtime_error": "fails when run",
    "forbidden": "refused (sandbox)", "wrong_columns": "wrong columns", "wrong_rows": "wrong rows",
    "no_answer": "no number", "no_number": "no number printed", "wrong_result": "wrong result",
    "arithmetic_slip": "arithmetic slip", "wrong_reasoning": "wrong reasoning",
    "rounds": "gold rounds", "scratch": "one run", "self-training": "verified self-training", "sql": "SQL rounds",
    "base": "start model", "filter-on": "filter on", "filter-off": "filter off",
    "all_slots": "all slots realized", "slots": "share of slots realized",
}
MODELS = {"smollm2-135m-instruct": "SmolLM2 135M", "gemma3-270m": "Gemma 3 270M",
          "qwen2.5-coder-0.5b": "Qwen2.5-Coder 0.5B", "qwen2.5-coder-1.5b": "Qwen2.5-Coder 1.5B"}


def words(label: str) -> str:
    """A label or id as words for a figure.

    >>> words("gemma3-270m-few_shot_text"), words("cpu.rounds"), words("attribute_types")
    ('Gemma 3 270M, few-shot (plain text)', 'gold rounds', 'function + attribute types')
    >>> words("corrupt-30"), words("full-0.0001-800x4"), words("lora-0.002-allx2")
    ('30 % wrong labels', 'full, lr 1e-4, 800 × 4', 'LoRA, lr 2e-3, all × 2')
    """
    label = str(label)
    if label in WORDS:
        return WORDS[label]
    preset, dot, series = label.partition(".")
    name, space, rest = series.partition(" ")
    if dot and name in WORDS and not preset[:1].isdigit():  # "<preset>.<series>[ note]"
        return WORDS[name] + space + rest
    for model, name in MODELS.items():
        if label.startswith(model + "-"):
            return f"{name}, {words(label[len(model) + 1:])}"
    if label.startswith("untuned-"):
        return "untuned, " + words(label[len("untuned-"):])
    parts = label.split("-")
    if parts[0] == "corrupt" and len(parts) == 2:
        return f"{parts[1]} % wrong labels"
    if parts[0] in ("full", "lora") and len(parts) == 3:  # a sweep arm: method-lr-examples x epochs
        lr = f"{float(parts[1]):.0e}".replace("e-0", "e-")
        return f"{'LoRA' if parts[0] == 'lora' else 'full'}, lr {lr}, {parts[2].replace('x', ' × ')}"
    if label.startswith("clean-"):
        return "half the rows, clean, twice"
    return label.replace("_", " ")


LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.5}  # a value label's ground


def _task_title(task: str) -> str:
    try:
        return tasks.get(task).title or task
    except (KeyError, ValueError):
        return task


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
    # JupyterLab typesets $...$ in HTML output as maths ("$80,000 ... $50,000" turned italic): the
    # frame's HTML is marked as no-maths instead.
    pd.set_option("display.html.use_mathjax", False)
    return pd.DataFrame(rows)


def histograms(values: dict[str, list[float]], xlabel: str, title: str, limit: float | None = 512):
    """One histogram per key, side by side, each titled with its n; `limit` (the context length the
    case study trained with, 512 tokens) drawn as a line, with how many values exceed it."""
    fig, axes = plt.subplots(1, len(values), figsize=(min(WIDTH, 3.2 * len(values)), 3), squeeze=False)
    for ax, (key, vals) in zip(axes[0], values.items()):
        ax.hist(vals, bins=30, color="tab:blue", alpha=0.8)
        ax.set_title(f"{_task_title(key).split(' (')[0]} (n={len(vals):,})")
        ax.set_xlabel(xlabel)
        if limit is not None:
            ax.axvline(limit, color="tab:red", ls="--", lw=1)
            over = sum(v > limit for v in vals)
            ax.text(limit, ax.get_ylim()[1] * 0.97, f"limit {limit:g}:\n{over} over ", color="tab:red",
                    ha="right", va="top", fontsize=9)
    axes[0][0].set_ylabel("examples")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_curves(histories: dict[str, list[dict]]):
    """Training and validation loss against step, one panel per run (Trainer log_history rows), on a
    log scale (the loss falls by orders of magnitude; a linear axis flattens all but the first steps),
    the best validation loss (the checkpoint kept) starred."""
    fig, axes = plt.subplots(1, len(histories), figsize=(min(WIDTH, 3.3 * len(histories) + 0.5), 3.2),
                             squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        for key, color, label in (("loss", "tab:blue", "training loss"),
                                  ("eval_loss", "tab:orange", "validation loss")):
            pts = [(h["step"], h[key]) for h in hist if key in h]
            if pts:
                ax.plot(*zip(*pts), "o-" if key == "eval_loss" and len(pts) > 1 else "o" if key == "eval_loss"
                        else "-", color=color, lw=1, label=label)
        evals_ = [(h["step"], h["eval_loss"]) for h in hist if "eval_loss" in h]
        if evals_:
            step, best = min(evals_, key=lambda p: p[1])
            ax.plot([step], [best], "*", color="tab:red", markersize=12, label=f"best: {best:.3g} (step {step})")
        ax.set_yscale("log")
        ax.set_title(_task_title(name.split("-")[0]) if name.split("-")[0] in tasks.names() else name)
        ax.set_xlabel("step")
        ax.legend(fontsize=8.5)
    axes[0][0].set_ylabel("loss (log scale)")
    fig.tight_layout()
    return fig


def score_bars(results: list[dict], title: str = ""):
    """The case study's figure: per task, bars with 95% CIs for each condition, 13B marks.

    `results` rows: {task, label, score, ci_low, ci_high, n} with score and CI as fractions (`report.summary_row`).
    """
    shown = list(dict.fromkeys(r["task"] for r in results))
    fig, axes = plt.subplots(1, len(shown), figsize=(min(WIDTH, 3.4 * len(shown)), 4.6), squeeze=False)
    for ax, task in zip(axes[0], shown):
        rows = sorted((r for r in results if r["task"] == task), key=_bar_order)
        xs = range(len(rows))
        means = [100 * r["score"] for r in rows]
        err = [[100 * (r["score"] - r["ci_low"]) for r in rows], [100 * (r["ci_high"] - r["score"]) for r in rows]]
        # grey: our model untuned; green: fine-tuned; blue: any other model (a second size, an API)
        colors = ["tab:gray" if "untuned" in r["label"] else "tab:green" if "tuned" in r["label"]
                  else "tab:blue" for r in rows]
        ax.bar(xs, means, yerr=err, capsize=3, color=colors, error_kw={"lw": 1})
        for x, r, m in zip(xs, rows, means):  # the value above the interval's top, on white: no line through it
            ax.text(x, 100 * r["ci_high"] + 1.5, f"{m:.0f}%", ha="center", va="bottom", fontsize=9.5,
                    bbox=LABEL_BOX, zorder=4)
        if task in CASE_STUDY_13B:
            before, after = CASE_STUDY_13B[task]
            ax.axhline(before, color="tab:red", ls=":", lw=1.2, label=f"13B untuned {before}%")
            ax.axhline(after, color="tab:red", ls="--", lw=1.2, label=f"13B tuned {after}%")
        ns = sorted({r["n"] for r in rows})  # one n in the title, or each bar's under its label
        ax.set_xticks(list(xs), [words(r["label"]).replace(", ", ",\n", 1) + (f"\nn={r['n']:,}" if len(ns) > 1 else "")
                                 for r in rows], rotation=35, ha="right", rotation_mode="anchor", fontsize=9)
        ax.set_ylim(0, 115)
        ax.set_title(f"{_task_title(task)}\n({f'n={ns[0]:,}' if len(ns) == 1 else 'n under each bar:'} test items)",
                     fontsize=10.5)
        if task in CASE_STUDY_13B:
            ax.legend(fontsize=8.5, loc="upper left", framealpha=1)
    axes[0][0].set_ylabel("accuracy (%), 95 % interval")
    fig.suptitle(title + ("\n" if title else "") + "red lines: the case study's Llama-2-13B", fontsize=11)
    fig.tight_layout()
    return fig


def _bar_order(row: dict) -> int:
    """Untuned zero-shot, untuned few-shot, other models, fine-tuned: from left to right."""
    label = row["label"]
    return 0 if label == "untuned-zero_shot" else 1 if "untuned" in label else 3 if "tuned" in label else 2


def grouped_counts(counts: dict[str, dict[str, int]], title: str):
    """Side-by-side bars of category counts per group (e.g. error kinds per model), labels in words,
    each group's n in the legend, "correct" first. ViGGO's "correct" outcome means every value right too
    (stricter than its headline), so it is labelled "exactly right"; a title starting with a task id
    gets its name."""
    kinds = sorted({k for c in counts.values() for k in c}, key=lambda k: (k != "correct", k))  # correct first
    viggo = bool({"wrong_value", "wrong_order", "wrong_function"} & set(kinds))
    names = [("exactly right (values too)" if viggo else "correct") if k == "correct" else words(k) for k in kinds]
    fig, ax = plt.subplots(figsize=(min(WIDTH, max(5.5, 1.15 * len(kinds) + 1)), 3.4))
    width = 0.8 / max(1, len(counts))
    for i, (group, c) in enumerate(counts.items()):
        ax.bar([x + i * width for x in range(len(kinds))], [c.get(k, 0) for k in kinds], width,
               label=f"{words(group)} (n={sum(c.values()):,})")
    ax.set_xticks([x + width * (len(counts) - 1) / 2 for x in range(len(kinds))], names, rotation=25, ha="right",
                  rotation_mode="anchor")
    ax.set_ylabel("test items")
    head, sep, rest = title.partition(":")
    ax.set_title(f"{_task_title(head)}{sep}{rest}" if sep else title)
    ax.legend()
    fig.tight_layout()
    return fig


def rounds(rows: list[dict], title: str = "", x: str = "round", metrics: tuple[str, ...] = ("score",),
           log_x: bool = False, xlabel: str | None = None):
    """Score per round (or per `x` column) per series with 95% CI bars, one panel per metric.

    `rows` are `rounds.table` rows; metric "score" is the task's headline, "function" ViGGO's function
    alone (it moves long before the headline does). Round numbers are whole numbers on the axis.
    Where rows say which round they started from (`start`), a line joins each round to its start
    (rounds that start from the same model fan out from it); otherwise a series is one line. One legend
    for all panels, under them: inside, it would cover some round's point.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(min(WIDTH, 4.7 * len(metrics)), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name in dict.fromkeys(r["series"] for r in rows):
            pts = [r for r in rows if r["series"] == name and r.get(metric) is not None]
            y = [100 * r[metric] for r in pts]
            err = [[100 * (r[metric] - r[f"{metric}_ci_low"]) for r in pts],
                   [100 * (r[f"{metric}_ci_high"] - r[metric]) for r in pts]]
            tree = any("start" in r for r in pts)
            xs = [words(r[x]) if x == "name" else r[x] for r in pts]
            n = sorted({r["n"] for r in pts if r.get("n")})
            bars = ax.errorbar(xs, y, yerr=err, marker="o", capsize=3, linestyle="none" if tree else "-",
                               label=words(name) + (f" (n={n[0]})" if len(n) == 1 else ""))
            for a, b in _starts(pts) if tree else ():
                ax.plot([words(a[x]) if x == "name" else a[x], words(b[x]) if x == "name" else b[x]],
                        [100 * a[metric], 100 * b[metric]], color=bars.lines[0].get_color())
        if x == "round":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel or ("round (0 = start model)" if x == "round" else "" if x == "name" else x))
        ax.set_ylabel(f"{words(rows[0]['metric'] if metric == 'score' and rows else metric)} (%)")
        ax.set_ylim(-2, 102)
    series = {}  # label -> handle, over every panel
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            series.setdefault(label, handle)
    fig.suptitle(title)
    fig.tight_layout()
    fig.legend(list(series.values()), list(series), loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False,
               ncol=min(len(series), len(metrics) + 1), fontsize=8.5, title="error bars: 95 % intervals",
               title_fontsize=8.5)
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
    fig, axes = plt.subplots(1, len(metrics), figsize=(min(WIDTH, 4.7 * len(metrics)), 3.8), squeeze=False)
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
        ax.set_xticks(range(len(levels)), [words(v).replace(", ", ",\n") for v in levels], fontsize=9,
                      rotation=30, ha="right", rotation_mode="anchor")
        ax.set_ylabel(f"{words(rows[0]['metric'] if metric == 'score' else metric)} (%)")
        ax.set_ylim(0, 102)
    n = sorted({r["n"] for r in rows if r.get("n")})
    axes[0][0].set_title(f"bars: mean of {len(seeds)} seeds; dots: each seed, 95 % interval"
                         + (f" (n={n[0]})" if len(n) == 1 else ""), fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep(rows: list[dict], title: str = ""):
    """Recipe sweep: validation score with its 95% CI per arm (left) and training minutes (right).

    `rows`: sweep.row dicts (arm, method, score, ci_low, ci_high, train_minutes), drawn top to bottom in
    their order (`sweep.table_rows`: the grid's, so the arms of one learning rate stand together). A title
    starting with a task id gets the task's name.
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 0.32 * len(rows) + 1.6),
                                      gridspec_kw={"width_ratios": [3, 2]})
    left.invert_yaxis()  # the first row on top, in both panels
    right.invert_yaxis()
    ys = range(len(rows))
    colors = ["tab:green" if r["method"] == "full" else "tab:purple" for r in rows]
    means = [100 * r["score"] for r in rows]
    err = [[100 * (r["score"] - r["ci_low"]) for r in rows], [100 * (r["ci_high"] - r["score"]) for r in rows]]
    left.errorbar(means, ys, xerr=err, fmt="none", ecolor="black", capsize=3)
    left.scatter(means, ys, c=colors, zorder=3)
    left.set_yticks(list(ys), [words(r["arm"]) for r in rows], fontsize=9)
    n = sorted({r["n"] for r in rows if r.get("n")})
    left.set_xlabel((f"{words(rows[0]['metric'])} on validation (%)" if rows else "score (%)")
                    + (f", n={n[0]}" if len(n) == 1 else "") + "\nlines: 95 % intervals")
    right.barh(list(ys), [r["train_minutes"] for r in rows], color=colors)
    right.set_yticks(list(ys), [""] * len(rows))
    for y, r in zip(ys, rows):  # tokens/s beside each bar: arms that ran on faster machines show it
        if r.get("tokens_per_s"):
            right.text(r["train_minutes"], y, f" {r['tokens_per_s']:.0f} tok/s", va="center", fontsize=9)
    right.set_xlim(0, 1.35 * max((r["train_minutes"] for r in rows), default=1))
    devices = sorted({str(r.get("device")) for r in rows if r.get("device")})
    right.set_xlabel("training minutes" + (f" ({', '.join(devices)})" if devices else "")
                     + "\nmachines of one kind differ: compare tokens/s")
    head, sep, rest = title.partition(":")  # "sql: ..." (notebook 06) -> the task's name
    fig.suptitle((f"{_task_title(head)}{sep}{rest}\n" if title else "")
                 + "green: full fine-tuning, purple: LoRA r16; arm: lr, examples × epochs", fontsize=11)
    fig.tight_layout()
    return fig


def metric_bars(summaries: dict[str, dict], metrics: tuple[str, ...], title: str = ""):
    """One panel per metric, one bar per condition (a harness summary each), with 95% CI bars.

    A metric whose values are shares (0-1) is drawn in %, like every score here.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(min(WIDTH, 3.2 * len(metrics)), 3.8), squeeze=False)
    labels = list(summaries)
    for ax, metric in zip(axes[0], metrics):
        ms = [summaries[label]["metrics"][metric] for label in labels]
        means = [100 * m["mean"] for m in ms]
        err = [[100 * (m["mean"] - m["ci_low"]) for m in ms], [100 * (m["ci_high"] - m["mean"]) for m in ms]]
        colors = ["tab:gray" if "untuned" in label else "tab:green" for label in labels]
        ax.bar(range(len(labels)), means, yerr=err, capsize=3, color=colors, error_kw={"lw": 1})
        for x, (mean, m) in enumerate(zip(means, ms)):  # above the interval's top
            ax.text(x, 100 * m["ci_high"] + 1.5, f"{mean:.0f}%", ha="center", va="bottom", fontsize=9.5)
        ax.set_xticks(range(len(labels)), [words(v) for v in labels], rotation=25, ha="right",
                      rotation_mode="anchor", fontsize=9)
        ax.set_ylim(0, 115)
        ns = sorted({m["n"] for m in ms})
        ax.set_title(f"{words(metric)}\n(n={', '.join(f'{n:,}' for n in ns)})", fontsize=10.5)
    axes[0][0].set_ylabel("%, 95 % interval")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def response_time(rows: list[dict], title: str = ""):
    """Latency per answer (one request at a time, 95% CI) and answers per second (batched), per
    condition; `rows` are `ftlib.latency.measure` results with a `label` (and prompt tokens)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 3.6))
    xs = range(len(rows))
    labels = [f"{r['label']}\n{r['prompt_tokens']:.0f} prompt tokens" for r in rows]
    lat = [r["latency_s"] for r in rows]
    err = [[r["latency_s"] - r["latency_ci_low"] for r in rows], [r["latency_ci_high"] - r["latency_s"] for r in rows]]
    left.bar(xs, lat, yerr=err, capsize=4, color="tab:orange")
    n_lat, n_all = rows[0].get("latency_items") if rows else None, rows[0].get("n") if rows else None
    left.set_ylabel("seconds per answer\n(one at a time" + (f", n={n_lat})" if n_lat else ")"))
    right.bar(xs, [r["answers_per_s"] for r in rows], color="tab:purple")
    right.set_ylabel("answers per second\n(batched" + (f", n={n_all})" if n_all else ")"))
    for ax in (left, right):
        ax.set_xticks(list(xs), labels, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

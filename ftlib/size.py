"""The case study's comparison across model sizes: the small tuned model beside larger untuned ones.

Every column is read from committed per-item predictions (`results/full/predictions/` for the
SmolLM2-135M and Gemma 3 270M runs of the `full` plan, `results/size/predictions/` for the Qwen
models), and every column of a task is scored on the *same* items: the test items that all of them
have answered (the larger models may have answered only the first n). So the comparison is paired,
and `n` says how many items it rests on.

    python -m ftlib.size run --limit sql=592 viggo=1083 gsm8k=500   # evaluate the Qwen models (resumes)
    python -m ftlib.size lr-check   # the fine-tuned 0.5B model's learning rate, on validation (resumes)
    python -m ftlib.size train      # fine-tune it on each task, score it on the test items (resumes)
    python -m ftlib.size report                                     # table, figure, paired tests
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from ftlib import baselines, evals, harness, io, paths, presets, runs, tasks

# Each untuned chat model is asked in one style per task: few-shot where the output has a format to
# copy (ViGGO's meaning representation, SQL in tags), zero-shot on GSM8K, where an instruction model
# reasons in its own words (and few-shot prompts cost ~500 more tokens a question).
STYLE = {"viggo": "few_shot", "sql": "few_shot", "gsm8k": "zero_shot"}
QWEN = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
# The score every column of a task is compared on: the task's headline, except on GSM8K. Its headline,
# strict-match, needs the `#### <number>` line the tuned models learned; an untuned chat model asked for
# it mostly ends with \boxed{18} or "the answer is 18" instead, so strict-match would measure the format,
# not the reasoning. lm-evaluation-harness's other GSM8K figure, flexible-extract (the last number in
# the answer), compares the reasoning of every column alike.
METRIC = {"viggo": "attribute_types", "sql": "execution_match", "gsm8k": "flexible_extract"}


@dataclass(frozen=True)
class Column:
    """One model in the comparison: its label, size, whether it was fine-tuned, and its predictions."""

    label: str
    params: float  # the published parameter count
    tuned: bool
    file: str  # predictions file name pattern, `{task}` and `{style}` filled in per task
    folder: str = "full"  # results/<folder>/predictions/


# Published sizes. The Qwen GGUF files carry an untied copy of the embeddings as their output layer,
# so they convert to 0.63 B and 1.78 B parameters; the models themselves are the 0.49 B and 1.54 B ones.
COLUMNS = (
    Column("SmolLM2-135M fine-tuned", 135e6, True, "{task}-fine-tuned.jsonl"),
    Column("SmolLM2-135M untuned", 135e6, False, "{task}-untuned-{style}.jsonl"),
    Column("Gemma 3 270M base, untuned", 268e6, False, "{task}-gemma3-270m-few_shot_text.jsonl"),
    Column("Qwen2.5-Coder-0.5B untuned", 494e6, False, "{task}-qwen2.5-coder-0.5b-{style}.jsonl", "size"),
    Column("Qwen2.5-Coder-1.5B untuned", 1.54e9, False, "{task}-qwen2.5-coder-1.5b-{style}.jsonl", "size"),
    Column("Qwen2.5-Coder-0.5B fine-tuned", 494e6, True, "{task}-qwen2.5-coder-0.5b-fine-tuned.jsonl", "size"),
)
SMALL_TUNED, LARGE_UNTUNED, LARGER_TUNED = COLUMNS[0].label, COLUMNS[4].label, COLUMNS[5].label
CASE_STUDY = {"viggo": (58, 98), "sql": (42, 89), "gsm8k": (28, 47)}  # Llama-2-13B, %, docs/case_study.md
CASE_STUDY_PARAMS = 13e9


def style_of(col: Column, task: str, root: Path | None = None) -> str:
    """The prompting a column answers a task in: an untuned Qwen model's better one on validation
    (`baselines.chosen`), the fixed STYLE for the others."""
    alias = next((a for a in QWEN if a in col.file), None)
    if col.tuned or alias is None:
        return STYLE[task]
    return baselines.chosen(task, alias, METRIC[task], STYLE[task], root)


def predictions_path(col: Column, task: str, root: Path | None = None) -> Path:
    """Where a column's per-item predictions of a task are committed."""
    root = root or paths.results_dir()
    return root / col.folder / "predictions" / col.file.format(task=task, style=style_of(col, task, root))


def model_of(col: Column) -> str:
    """The model spec whose tokenizer counts a column's answers."""
    alias = next((a for a in QWEN if a in col.file), None)
    return alias or ("gemma3-270m" if "gemma" in col.file else "smollm2-135m-instruct")


def committed_budgets(root: Path | None = None) -> list[tuple[Path, str, int]]:
    """(predictions file, model, the budget it was made with) for every committed column file: what
    `baselines.mark` counts truncated answers against (a record that says its budget wins)."""
    out = []
    for col in COLUMNS:
        for task in STYLE:
            path = predictions_path(col, task, root)
            if path.exists():
                out.append((path, model_of(col), tasks.get(task).max_new_tokens))
    return out


def read_columns(task: str, root: Path | None = None) -> dict[str, dict]:
    """{label: {id: record}} for every column whose predictions exist."""
    out = {}
    for col in COLUMNS:
        path = predictions_path(col, task, root)
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
    """One row per column: its score on `metric` (default METRIC[task]) over the common items, 95 % CI, n."""
    columns = read_columns(task, root)
    metric = metric or METRIC[task]
    ids = common_ids(columns, metric)
    by_label = {c.label: c for c in COLUMNS}
    rows = []
    for label, recs in columns.items():
        s = evals.summarize([{metric: recs[i]["scores"][metric]} for i in ids])[metric] if ids else None
        col = by_label[label]
        rows.append({"task": task, "model": label, "params": col.params, "tuned": col.tuned,
                     "style": "chat (tuned format)" if col.tuned else prompt_label(col, task, root), "metric": metric,
                     **evals.Score.of(s).rounded(4).row(), "n": len(ids),
                     "truncated": harness.truncated_share([recs[i] for i in ids])})
    return rows


def prompt_label(col: Column, task: str, root: Path | None = None) -> str:
    """The prompting a column answers a task in, as the tables show it."""
    return "few_shot_text" if "few_shot_text" in col.file else style_of(col, task, root)


def paired(task: str, a: str = LARGE_UNTUNED, b: str = SMALL_TUNED, root: Path | None = None) -> dict | None:
    """Item by item on the common items: how often only `a` or only `b` is right, and the sign test."""
    from ftlib import report

    columns = read_columns(task, root)
    if a not in columns or b not in columns:
        return None
    metric = METRIC[task]
    ids = set(common_ids(columns, metric))
    pick = {label: [r for i, r in columns[label].items() if i in ids] for label in (a, b)}
    return {"task": task, "metric": metric, "a": a, "b": b, **report.paired(pick[a], pick[b], metric)}


def pairs(root: Path | None = None) -> list[dict]:
    """The paired tests the comparison asks for, per task: the untuned 1.5B model against the tuned
    135M model, and against the tuned 0.5B model (where its predictions exist)."""
    return [p for b in (SMALL_TUNED, LARGER_TUNED) for task in STYLE if (p := paired(task, LARGE_UNTUNED, b, root))]


SIZE_TICKS = {135e6: "135M", 268e6: "270M", 494e6: "0.5B", 1.54e9: "1.5B", 13e9: "13B"}


def figure(rows: list[dict]):
    """Score against parameter count (log scale), one panel per task: untuned circles, tuned stars,
    95 % intervals, and the case study's Llama-2-13B before/after at 13 B. Sized to read at the width
    Jupyter shows it (plots.WIDTH)."""
    import matplotlib.pyplot as plt

    from ftlib import plots

    order = [t for t in STYLE if any(r["task"] == t for r in rows)]
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
        before, after = CASE_STUDY[task]
        ax.plot([CASE_STUDY_PARAMS], [before], "o", mfc="none", mew=1.5, color="tab:red", ms=8,
                label="Llama-2-13B untuned (published)")
        ax.plot([CASE_STUDY_PARAMS], [after], "*", color="tab:red", ms=14,
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
                "flexible_extract": "last number"}.get(METRIC[task], METRIC[task])
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


def tuned_dir(task: str, runs_root: Path | None = None) -> Path:
    """The fine-tuned larger model's run folder of a task: runs/size/<alias>-<task>."""
    return (runs_root or paths.runs_dir()) / "size" / f"{presets.SIZE_TUNED_MODEL}-{task}"


def export(runs_root: Path | None = None, out: Path | None = None) -> list[Path]:
    """Copy the Qwen evaluations' per-item predictions (both prompt styles, where run; the fine-tuned
    model's test evaluation) into results/size/predictions/."""
    from ftlib import report

    found = {(task, f"{alias}-{style}"): eval_dir(alias, style, task, runs_root)
             for alias in QWEN for task in STYLE for style in baselines.PROMPTINGS}
    found |= {(task, f"{presets.SIZE_TUNED_MODEL}-fine-tuned"): tuned_dir(task, runs_root) / "eval" for task in STYLE}
    found = {k: f for k, f in found.items() if (f / "predictions.jsonl").exists()}
    return report.export_predictions(found, out or paths.results_dir() / "size" / "predictions")


def styles(root: Path | None = None) -> list[dict]:
    """Every Qwen model in every prompting: on validation (what the choice rests on, `chosen` marks the
    one the comparison uses) and on test where it was run (the first n test items; n differs between
    rows). Scored on METRIC, and on GSM8K on strict-match too; `truncated`: answers that hit the budget."""
    root = root or paths.results_dir()
    rows = []
    for task in STYLE:
        metrics = list(dict.fromkeys([METRIC[task], tasks.get(task).primary]))  # GSM8K: its headline too
        for alias in QWEN:
            pick = baselines.chosen(task, alias, METRIC[task], STYLE[task], root)
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


def run(limits: dict[str, int], models: tuple[str, ...] = QWEN) -> None:
    """Evaluate the larger untuned models on the first `limits[task]` test items, each in the prompting
    it does best on validation and that prompting's budget (resumes), then export."""
    for task, limit in limits.items():
        for alias in models:
            p = baselines.chosen(task, alias, METRIC[task], STYLE[task])
            harness.evaluate(alias, baselines.task_for(task, p), "test", baselines.PROMPTINGS[p].style, limit=limit,
                             out_dir=eval_dir(alias, p, task))
    export()


def train(names: tuple[str, ...] = tuple(presets.SIZE_TUNED)) -> None:
    """Fine-tune the larger model on each task (presets.SIZE_TUNED; a finished run is skipped, an
    interrupted one resumes), score it on the comparison's test items, then export."""
    from ftlib import train as training

    for task in names:
        cfg = training.preset("cpu", task=task, model=presets.SIZE_TUNED_MODEL, method="full", experiment="size",
                              name=tuned_dir(task).name, eval_split="test", **presets.SIZE_SPEED,
                              **presets.SIZE_TUNED[task])
        training.run(cfg)
    export()
    keep_measured(training_rows(), "training", ("task",))


def keep_measured(rows: list[dict], name: str, keys: tuple[str, ...], out: Path | None = None) -> Path:
    """Save rows as results/size/<name>.csv/.md on top of the committed table: a row measured here
    replaces the committed row with the same `keys`, every other committed row is kept (run folders
    are not committed, so a clone that runs one task must not erase the others)."""
    from ftlib import plots

    out = out or paths.results_dir() / "size"
    path = out / f"{name}.csv"
    merged = {tuple(r[k] for k in keys): r for r in (plots.read_table(path) if path.exists() else [])}
    merged.update((tuple(r[k] for k in keys), r) for r in rows)
    return plots.save_table(list(merged.values()), name, out)


def lr_name(task: str, lr: float, method: str = "full") -> str:
    """A learning-rate arm's run name, e.g. viggo-0.5b-full-2e-5-320x1."""
    c = presets.SIZE_LR_CHECK
    return f"{task}-0.5b-{method}-{lr:.0e}-{c['n_train']}x{c['epochs']}".replace("e-0", "e-")


def arm_config(task: str, method: str, lr: float):
    """The TrainConfig of one learning-rate arm (presets.SIZE_LR_CHECK; LoRA with the sweep's settings)."""
    from ftlib import train as training

    extra = presets.SWEEP.lora if method == "lora" else {}
    return training.preset("cpu", task=task, model=presets.SIZE_TUNED_MODEL, method=method, lr=lr,
                           experiment="size-lr", name=lr_name(task, lr, method), **presets.SIZE_LR_CHECK,
                           **presets.SIZE_SPEED, **extra)


def lr_check(runs_root: Path | None = None) -> list[dict]:
    """Train the arms of presets.SIZE_ARMS (skipping finished ones) and tabulate them."""
    from ftlib import train as training

    for task, arms in presets.SIZE_ARMS.items():
        for method, lr in arms:
            training.run(arm_config(task, method, lr))
    rows = lr_rows(runs_root)
    keep_measured(rows, "lr_check", ("task", "method", "lr"))
    export_lr_predictions(runs_root)
    return rows


def _arm_folders(runs_root: Path | None) -> dict[tuple[str, str, float], Path]:
    root = (runs_root or paths.runs_dir()) / "size-lr"
    return {(task, method, lr): root / lr_name(task, lr, method)
            for task, arms in presets.SIZE_ARMS.items() for method, lr in arms}


def export_lr_predictions(runs_root: Path | None = None, out: Path | None = None) -> list[Path]:
    """The arms' per-item validation predictions, as results/size/lr_check/<task>-<arm>.jsonl."""
    from ftlib import report

    found = {(task, folder.name.removeprefix(f"{task}-")): folder / "eval"
             for (task, _, _), folder in _arm_folders(runs_root).items()}
    found = {k: f for k, f in found.items() if (f / "predictions.jsonl").exists()}
    return report.export_predictions(found, out or paths.results_dir() / "size" / "lr_check")


def lr_rows(runs_root: Path | None = None) -> list[dict]:
    """One row per finished arm: validation loss and validation score with its interval."""
    rows = []
    for (task, method, lr), folder in _arm_folders(runs_root).items():
        if not (folder / "eval" / "summary.json").exists():
            continue
        ev, s = io.read_json(folder / "eval" / "summary.json"), io.read_json(folder / "summary.json")
        rows.append({"task": task, "method": method, "lr": lr, "rows": presets.SIZE_LR_CHECK["n_train"],
                     "best_eval_loss": round(s["best_eval_loss"], 4), "metric": ev["primary"],
                     **evals.Score.of(ev["metrics"][ev["primary"]]).rounded(4).row()})
    return rows


def training_rows(runs_root: Path | None = None) -> list[dict]:
    """What each fine-tuning of the larger model cost: rows, tokens, tokens/s, minutes, peak memory, CPU.
    Tokens and tokens/s count every session of a resumed run (segments.jsonl); the median step's rate
    is the last session's."""
    rows = []
    for task in STYLE:
        folder = tuned_dir(task, runs_root)
        if not (folder / "summary.json").exists():
            continue
        s, c = io.read_json(folder / "summary.json"), io.read_json(folder / "config.json")
        env = io.read_json(folder / "env.json")
        segments = runs.read_segments(folder)
        tokens = sum(g["tokens"] for g in segments) if segments else s["tokens"]
        step_seconds = sum(g["step_seconds"] for g in segments) if segments else None
        rows.append({"task": task, "model": c["model"], "method": c["method"], "rows": c["n_train"],
                     "epochs": c["epochs"], "lr": c["lr"], "steps": s["global_step"], "tokens": tokens,
                     "tokens_per_s": round(tokens / step_seconds, 1) if step_seconds else s["tokens_per_s"],
                     "median_step_tokens_per_s": s.get("median_step_tokens_per_s"),
                     "train_minutes": round(s["train_wall_seconds_all_sessions"] / 60, 1),
                     "peak_rss_gib": s.get("peak_rss_gib"), "sessions": s["sessions"],
                     "cpu_kind": env.get("cpu_kind"),
                     "matmul_gflops": env.get("matmul_gflops"), "best_eval_loss": round(s["best_eval_loss"], 4)})
    return rows


def write_report(out: Path | None = None) -> list[dict]:
    """results/size/: size.csv and size.md (the table), gsm8k_strict (the same columns on GSM8K's
    headline), styles (each Qwen model in both prompt styles), paired.csv, size.png; returns the table."""
    from ftlib import plots

    out = out or paths.results_dir() / "size"
    rows = [r for task in STYLE for r in compare(task)]
    plots.save_table(rows, "size", out)
    plots.save_table(compare("gsm8k", metric="strict_match"), "gsm8k_strict", out)
    plots.save_table(styles(out.parent), "styles", out)
    plots.save_table(pairs(), "paired", out)
    plots.save_figure(figure(rows), "size", out)
    return rows


def latency_conditions(tuned_135m: str | None = None, runs_root: Path | None = None) -> dict[str, tuple[str, str]]:
    """The models whose response time the comparison measures on ViGGO: label -> (model spec, style).
    The tuned 135M model defaults to the `full` plan's ViGGO run; the tuned 0.5B one is `tuned_dir`'s."""
    from ftlib import plan

    if tuned_135m is None:
        cfg = plan.train_config(plan.get("full"), "viggo", "smollm2-135m-instruct")
        tuned_135m = str(runs.run_dir(cfg.experiment, cfg.run_name(), runs_root) / "model")
    return {SMALL_TUNED: (tuned_135m, "chat"), LARGER_TUNED: (str(tuned_dir("viggo", runs_root) / "model"), "chat"),
            LARGE_UNTUNED: (QWEN[1], "few_shot")}


def latency(conditions: dict[str, tuple[str, str]], runs_root: Path | None = None,
            out: Path | None = None) -> list[dict]:
    """Response time of each condition on the first 100 ViGGO test items (30 timed one at a time, then
    all 100 as a batch), each in a fresh process, into runs/size/latency-*.json (a measured one is
    kept); the table results/size/latency.csv/.md, with the CPU kind and its matmul rate."""
    from ftlib import latency as lat
    from ftlib import plots

    folder = (runs_root or paths.runs_dir()) / "size" / "latency"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, (model, style) in conditions.items():
        r = lat.measure(model, "viggo", style, limit=100, latency_items=30,
                        out=folder / f"{label.replace(' ', '_')}-{style}.json")
        rows.append({"model": label, "style": style, **{k: r.get(k) for k in lat.COLUMNS if k != "device"},
                     "matmul_gflops": r.get("matmul_gflops")})
    plots.save_table(rows, "latency", out or paths.results_dir() / "size")
    return rows


def _limits(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        task, _, n = item.partition("=")
        if task not in STYLE or not n.isdigit() or int(n) < 1:
            raise SystemExit(f"--limit wants TASK=N with TASK in {list(STYLE)} and N >= 1, got {item!r}")
        out[task] = int(n)
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.size run|lr-check|train|export|report|latency`."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.size", description=__doc__.split("\n")[0])
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
        print(json.dumps(lr_check(), indent=1))
    elif args.command == "train":
        train(tuple(args.tasks))
    elif args.command == "export":
        print("\n".join(paths.shown(p) for p in export()))
    elif args.command == "latency":
        print(json.dumps(latency(latency_conditions(args.tuned_135m)), indent=1))
    else:
        print(json.dumps(write_report(), indent=1))


if __name__ == "__main__":
    main()

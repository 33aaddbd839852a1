"""The size comparison's fine-tuned larger model: its learning-rate check (a small sweep), its training
on each task and what that cost, and the response time of the tuned models beside the untuned 1.5B one.

The commands are `ftlib.experiments.size`'s (`lr-check`, `train`, `latency`); the settings are `presets.SIZE_*`.
"""

from __future__ import annotations

from pathlib import Path

from ftlib import evals, io, paths, plan, plots, presets, report, runs, train, train_config
from ftlib import latency as timing
from ftlib.experiments import baselines, sweep


def tuned_dir(task: str, runs_root: Path | None = None) -> Path:
    """The fine-tuned larger model's run folder of a task: runs/size/<alias>-<task>."""
    return (runs_root or paths.runs_dir()) / "size" / f"{presets.SIZE_TUNED_MODEL}-{task}"


def tuned_config(task: str) -> train_config.TrainConfig:
    """The larger model's TrainConfig on a task: the cpu preset, presets.SIZE_TUNED, scored on test."""
    return train_config.preset("cpu", task=task, model=presets.SIZE_TUNED_MODEL, method="full", experiment="size",
                               name=tuned_dir(task).name, eval_split="test", **presets.SIZE_SPEED,
                               **presets.SIZE_TUNED[task])


def train_tasks(names: tuple[str, ...] = tuple(presets.SIZE_TUNED)) -> list[dict]:
    """Fine-tune the larger model on each task (a finished run is skipped, an interrupted one resumes),
    scored on the comparison's test items; results/size/training.csv/.md gets what each run cost."""
    for task in names:
        train.run(tuned_config(task))
    rows = training_rows()
    keep_measured(rows, "training", ("task",))
    return rows


def keep_measured(rows: list[dict], name: str, keys: tuple[str, ...], out: Path | None = None) -> Path:
    """Save rows as results/size/<name>.csv/.md on top of the committed table: a row measured here
    replaces the committed row with the same `keys`, every other committed row is kept (run folders
    are not committed, so a clone that runs one task must not erase the others)."""
    out = out or paths.results_dir() / "size"
    path = out / f"{name}.csv"
    merged = {tuple(r[k] for k in keys): r for r in (plots.read_table(path) if path.exists() else [])}
    merged.update((tuple(r[k] for k in keys), r) for r in rows)
    return plots.save_table(list(merged.values()), name, out)


def lr_name(task: str, lr: float, method: str = "full") -> str:
    """A learning-rate arm's run name, e.g. viggo-0.5b-full-2e-5-320x1."""
    c = presets.SIZE_LR_CHECK
    return f"{task}-0.5b-{method}-{lr:.0e}-{c['n_train']}x{c['epochs']}".replace("e-0", "e-")


def arm_config(task: str, method: str, lr: float) -> train_config.TrainConfig:
    """One learning-rate arm: a sweep arm (`sweep.config`: its preset, LoRA settings and validation
    scoring) of the larger model, sized by presets.SIZE_LR_CHECK, in runs/size-lr/."""
    c = presets.SIZE_LR_CHECK
    arm = sweep.Arm(method, lr, c["n_train"], c["epochs"])
    return sweep.config(task, arm, presets.SIZE_TUNED_MODEL, c["eval_limit"], experiment="size-lr",
                        name=lr_name(task, lr, method), **c, **presets.SIZE_SPEED)


def lr_check(runs_root: Path | None = None) -> list[dict]:
    """Train the arms of presets.SIZE_ARMS (skipping finished ones) and tabulate them."""
    for task, arms in presets.SIZE_ARMS.items():
        for method, lr in arms:
            train.run(arm_config(task, method, lr))
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
    for task in baselines.STYLE:
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


def latency_conditions(tuned_135m: str | None = None, runs_root: Path | None = None) -> dict[str, tuple[str, str]]:
    """The models whose response time the comparison measures on ViGGO: label -> (model spec, style).
    The tuned 135M model defaults to the `full` plan's ViGGO run; the tuned 0.5B one is `tuned_dir`'s."""
    if tuned_135m is None:
        cfg = plan.train_config(presets.FULL, "viggo", "smollm2-135m-instruct")
        tuned_135m = str(runs.run_dir(cfg.experiment, cfg.run_name(), runs_root) / "model")
    return {baselines.SMALL_TUNED: (tuned_135m, "chat"),
            baselines.LARGER_TUNED: (str(tuned_dir("viggo", runs_root) / "model"), "chat"),
            baselines.LARGE_UNTUNED: (baselines.QWEN[1], "few_shot")}


def latency(conditions: dict[str, tuple[str, str]], runs_root: Path | None = None,
            out: Path | None = None) -> list[dict]:
    """Response time of each condition on the first 100 ViGGO test items (30 timed one at a time, then
    all 100 as a batch), each in a fresh process, into runs/size/latency-*.json (a measured one is
    kept); the table results/size/latency.csv/.md, with the CPU kind and its matmul rate."""
    folder = (runs_root or paths.runs_dir()) / "size" / "latency"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for label, (model, style) in conditions.items():
        r = timing.measure(model, "viggo", style, limit=100, latency_items=30,
                        out=folder / f"{label.replace(' ', '_')}-{style}.json")
        rows.append({"model": label, "style": style, **{k: r.get(k) for k in timing.COLUMNS if k != "device"},
                     "matmul_gflops": r.get("matmul_gflops")})
    plots.save_table(rows, "latency", out or paths.results_dir() / "size")
    return rows


"""The recipe sweep: at a fixed training budget, which learning rate, epoch count and number of
examples give the best score on the validation split (never the test split)?

The budget is a number of example-passes (examples x epochs), so every arm of a task costs about
the same compute: 800 examples x 4 epochs, 1,600 x 2 or 3,200 x 1 are one budget. Full fine-tuning
is swept over the learning rate; LoRA (rank 16, all linear layers) runs at learning rates that suit
LoRA, since the case study's 1e-4 barely moved this model (docs/measurements.md).

    python -m ftlib.experiments.sweep --task viggo [--arms full-2e-4-1600x2 ...] [--val-limit 300]

Each arm is an ordinary run folder, `runs/sweep/<task>-<arm>/`, scored on the validation split
after training (its `eval/summary.json`); `results/sweep/` gets the table, the figure and every arm's
per-item predictions (`predictions/<task>-<arm>.jsonl`), so the item-by-item comparison of each arm with
the winner (`paired_rows`) can be recomputed from a fresh clone. Finished arms are skipped on rerun, so
the sweep can be spread over sessions or machines.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ftlib import evals, io, paths, plots, presets, report, runs, tasks, train, train_config

EXPERIMENT = "sweep"


@dataclass(frozen=True)
class Arm:
    """One point of the sweep."""

    method: str  # "full" or "lora"
    lr: float
    n_train: int | None  # None: every training row
    epochs: float

    @property
    def name(self) -> str:
        n = "all" if self.n_train is None else self.n_train
        return f"{self.method}-{self.lr:g}-{n}x{self.epochs:g}"


def swept() -> list[str]:
    """The tasks that declare a sweep grid."""
    return [t.name for t in tasks.BUILTIN if t.sweep_grid]


def grid(task: str) -> list[Arm]:
    """The arms of a task (`Task.sweep_grid`): full fine-tuning over lr x (examples, epochs) at one
    budget, and LoRA."""
    arms = [Arm(*a) for a in tasks.get(task).sweep_grid]
    if not arms:
        raise ValueError(f"no sweep grid for task {task!r}; expected one of {swept()}")
    return arms


def config(task: str, arm: Arm, model: str, val_limit: int, **overrides) -> train_config.TrainConfig:
    """The TrainConfig of one arm: the sweep's preset and sizes (`presets.SWEEP`), scored on the
    validation split."""
    sizes = presets.SWEEP
    values = dict(task=task, model=model, method=arm.method, lr=arm.lr, n_train=arm.n_train,
                  epochs=arm.epochs, **sizes.train, experiment=EXPERIMENT,
                  name=f"{task}-{arm.name}", eval_split="validation", eval_limit=val_limit,
                  **(sizes.lora if arm.method == "lora" else {}))
    return train_config.preset(sizes.train_preset, **{**values, **overrides})


def row(task: str, arm: Arm, folder: Path) -> dict:
    """One table row of a finished arm: its recipe, training time and validation score."""
    s = io.read_json(folder / "summary.json")
    ev = s.get("eval") or {}
    score = evals.Score.of(ev.get("metrics", {}).get(ev.get("primary")))
    env = io.read_json(folder / "env.json")
    return {"task": task, "arm": arm.name, "method": arm.method, "lr": arm.lr,
            "n_train": io.read_json(folder / "data.json")["n_train"], "epochs": arm.epochs,
            "train_minutes": round(runs.training_seconds(s) / 60, 2), "tokens_per_s": s["tokens_per_s"],
            "best_val_loss": s["best_eval_loss"], "metric": ev.get("primary"),
            **score.row(),
            "device": (env.get("cuda_devices") or [env.get("cpu_kind")])[0]}


def run(task: str, arms: list[Arm], model: str, val_limit: int = 300, **overrides) -> list[dict]:
    """Train and score every arm (finished ones are skipped); return the table rows."""
    rows = []
    for arm in arms:
        folder = train.run(config(task, arm, model, val_limit, **overrides))
        rows.append(row(task, arm, folder))
    return rows


def finished(task: str, arms: list[Arm] | None = None, root: Path | None = None) -> list[tuple[Arm, Path]]:
    """The arms (of `arms`, default the task's grid) whose run folder under runs/sweep/ is finished."""
    found = [(arm, runs.run_dir(EXPERIMENT, f"{task}-{arm.name}", root)) for arm in arms or grid(task)]
    return [(arm, folder) for arm, folder in found if runs.is_done(folder)]


def finished_rows(task: str, arms: list[Arm] | None = None, root: Path | None = None) -> list[dict]:
    """Table rows of every finished arm (of `arms`, default the task's grid) found under runs/sweep/."""
    return [row(task, arm, folder) for arm, folder in finished(task, arms, root)]


def table_rows(task: str, out_dir: Path, arms: list[Arm] | None = None, root: Path | None = None) -> list[dict]:
    """Every arm measured so far, in the grid's order: the committed table `<out_dir>/sweep_<task>.csv`,
    with each arm (of `arms`, default the grid) that has a finished run folder here taking its row from
    that folder. Run folders are not committed, so a clone that trains one arm adds it to the table
    instead of replacing the table."""
    path = Path(out_dir) / f"sweep_{task}.csv"
    rows = {r["arm"]: r for r in (plots.read_table(path) if path.exists() else [])}
    rows.update((r["arm"], r) for r in finished_rows(task, arms, root))
    order = [a.name for a in grid(task)]
    return sorted(rows.values(), key=lambda r: order.index(r["arm"]) if r["arm"] in order else len(order))


def best(rows: list[dict]) -> dict:
    """The winning arm: the highest validation score (ties: the lower validation loss)."""
    return max(rows, key=lambda r: (r["score"] or 0.0, -(r["best_val_loss"] or 0.0)))


def export_predictions(task: str, out_dir: Path, arms: list[Arm] | None = None,
                       root: Path | None = None) -> list[Path]:
    """The per-item validation predictions of every finished arm (of `arms`, default the task's grid)
    as `<out_dir>/<task>-<arm>.jsonl`; arms without a finished run folder are left as they are."""
    found = {(task, arm.name): folder / "eval" for arm, folder in finished(task, arms, root)}
    return report.export_predictions(found, out_dir)


def paired_rows(task: str, rows: list[dict], pred_dir: Path) -> list[dict]:
    """Each arm against the winner (`best`), item by item on the same validation items
    (`report.paired`): how many only the arm gets right, how many only the winner, and the sign test."""
    win = best(rows)

    def records(arm: str) -> list[dict]:
        path = pred_dir / f"{task}-{arm}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no predictions of arm {arm!r}; run `python -m ftlib.experiments.sweep "
                                    f"--task {task} --table-only` where its run folder is")
        return list(io.iter_jsonl(path))

    won = records(win["arm"])
    out = []
    for r in rows:
        if r["arm"] == win["arm"]:
            continue
        p = report.paired(records(r["arm"]), won, r["metric"])
        out.append({"task": task, "arm": r["arm"], "winner": win["arm"], "items": p["items"],
                    "only_arm": p["only_before"], "only_winner": p["only_after"], "both": p["both"], "p": p["p"]})
    return out


def save(task: str, out_dir: Path | None = None) -> list[dict]:
    """Write results/sweep/sweep_<task>.md/.csv (`table_rows`: the committed arms and every finished
    one) and the finished arms' predictions; return the table's rows."""
    out_dir = out_dir or paths.results_dir() / "sweep"
    rows = table_rows(task, out_dir)
    if rows:
        plots.save_table(rows, f"sweep_{task}", out_dir)
        export_predictions(task, out_dir / "predictions")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ftlib.experiments.sweep", description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True, choices=swept())
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--arms", nargs="*", help="arm names to run (default: the whole grid)")
    ap.add_argument("--val-limit", type=int, default=300, help="validation items scored per arm")
    ap.add_argument("--table-only", action="store_true", help="train nothing: tabulate finished arms")
    args = ap.parse_args(argv)
    names = [a.name for a in grid(args.task)]
    unknown = set(args.arms or ()) - set(names)
    if unknown:
        raise SystemExit(f"unknown arm(s) {sorted(unknown)}; the {args.task} grid has {names}")
    if not args.table_only:
        run(args.task, [a for a in grid(args.task) if not args.arms or a.name in args.arms],
            args.model, args.val_limit)
    rows = save(args.task)
    print(plots.markdown_table(rows))
    if rows:
        print(f"best: {best(rows)['arm']}")


if __name__ == "__main__":
    main()

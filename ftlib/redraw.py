"""Redraw a results folder's figures from its committed tables, without the run folders.

The notebooks draw every figure from `runs/`; a reference run's `runs/` may be gone while its tables
(`scores.csv`, `errors.csv`, the rounds', own task's and sweeps' tables) stay in `results/<label>/`. This module
draws the same figures, with the current `plots`, from those tables alone. Figures that need more
than a table (loss curves, token lengths) are left as they are: rerun notebooks 02 or 01 for them.

    python -m ftlib.redraw results/cpu results/full results/sweep
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ftlib import plots, tasks


def _rows(folder: Path, name: str) -> list[dict] | None:
    path = Path(folder) / f"{name}.csv"
    return plots.read_table(path) if path.exists() else None


def _save(fig, name: str, folder: Path) -> Path:
    """plots.save_figure, then close the figure: a redraw makes dozens, and shows none."""
    import matplotlib.pyplot as plt

    path = plots.save_figure(fig, name, folder)
    plt.close(fig)
    return path


def parse_counts(text: str) -> dict[str, int]:
    """errors.csv's counts cell as a dict.

    >>> parse_counts("correct=3, wrong_rows=2")
    {'correct': 3, 'wrong_rows': 2}
    """
    pairs = (item.split("=") for item in str(text or "").split(", ") if "=" in item)
    return {k: int(v) for k, v in pairs}


def run_name(folder: Path) -> str:
    """The run a results folder holds, in words, for its figures' titles.

    >>> run_name(Path("results/full")), run_name(Path("results/full-h200"))
    ('full preset', 'full preset, H200 run')
    """
    preset, _, where = Path(folder).name.partition("-")
    return f"{preset} preset" + (f", {where.upper()} run" if where else "")


def scores(folder: Path, title: str) -> Path | None:
    """scores.png from scores.csv (notebook 04's figure)."""
    rows = _rows(folder, "scores")
    if not rows:
        return None
    return _save(plots.score_bars(rows, title), "scores", folder)


def errors(folder: Path) -> list[Path]:
    """errors_<task>.png from errors.csv (notebook 04's outcome charts), titled with the run."""
    rows = _rows(folder, "errors") or []
    written = []
    for task in dict.fromkeys(r["task"] for r in rows):
        kinds = {r["model"]: parse_counts(r["counts"]) for r in rows if r["task"] == task}
        fig = plots.grouped_counts(kinds, f"{task}: outcome of each test item\n({run_name(folder)})")
        written.append(_save(fig, f"errors_{task}", folder))
    return written


def rounds_figures(folder: Path) -> list[Path]:
    """rounds_scores.png, quality_viggo.png and sql_rounds.png from their tables (notebook 03's)."""
    written = []
    if table := _rows(folder, "rounds_scores"):
        gold = [r for r in table if r["series"].endswith(".rounds")]
        scratch = [{**r, "series": f"{r['series']} on the same rows and steps"} for r in table
                   if r["series"].endswith(".scratch")]
        selftrain = [r for r in table if r["series"].endswith(".self-training")]
        starts = {str(r["start"]).split("/")[-1] for r in selftrain if "/" in str(r["start"])}
        start = [{**r, "series": selftrain[0]["series"]} for r in gold if selftrain and r["name"] in starts]
        fig = plots.rounds(gold + scratch + start + selftrain, "ViGGO per round: gold rounds, one run on the same "
                           "rows, self-training", metrics=("score", "function"))
        written.append(_save(fig, "rounds_scores", folder))
    if table := _rows(folder, "quality_scores"):
        start = str(table[0]["start"]).split("round-")[-1]
        fig = plots.quality(table, f"ViGGO, one round from round {start}'s model at equal steps")
        written.append(_save(fig, "quality_viggo", folder))
    if table := _rows(folder, "sql_scores"):
        fig = plots.rounds(table, "SQL: start model, then 3 rounds from it at equal steps", x="name",
                           xlabel="round (the three after 'gold' all start from it)")
        written.append(_save(fig, "sql_rounds", folder))
    return written


def own_task(folder: Path, task_file: Path) -> list[Path]:
    """own_task_scores.png and own_task_speed.png from their tables (notebook 05's)."""
    written = []
    title = tasks.get(str(task_file)).title if task_file.exists() else "Your own task"
    if table := _rows(folder, "own_task_scores"):
        summaries: dict[str, dict] = {}
        for r in table:
            summaries.setdefault(r["condition"], {"metrics": {}})["metrics"][r["metric"]] = {
                "mean": r["score"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "n": r["n"]}
        metrics = tuple(dict.fromkeys(r["metric"] for r in table))
        fig = plots.metric_bars(summaries, metrics, f"{title}: before and after fine-tuning")
        written.append(_save(fig, "own_task_scores", folder))
    if table := _rows(folder, "own_task_speed"):
        fig = plots.response_time(table, f"{title}: response time on {table[0]['device']} ({table[0]['cpu_kind']})")
        written.append(_save(fig, "own_task_speed", folder))
    return written


def sweeps(folder: Path) -> list[Path]:
    """sweep_<task>.png from sweep_<task>.csv (notebook 06's), arms in the table's order."""
    written = []
    for path in sorted(Path(folder).glob("sweep_*.csv")):
        if rows := plots.read_table(path):
            task = rows[0]["task"]
            fig = plots.sweep(rows, f"{task}: validation score and training time per arm")
            written.append(_save(fig, path.stem, folder))
    return written


def redraw(folder: Path, title: str | None = None) -> list[Path]:
    """Every figure of a results folder that its tables allow; return the files written."""
    from ftlib import paths

    folder = Path(folder)
    title = title or f"Untuned vs fine-tuned ({run_name(folder)})"
    written = [scores(folder, title), *errors(folder), *rounds_figures(folder),
               *own_task(folder, paths.ROOT / "data" / "viggo_voice" / "task.json"), *sweeps(folder)]
    return [p for p in written if p is not None]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ftlib.redraw", description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--title", help="the score figure's title (default: from the folder's name)")
    args = ap.parse_args(argv)
    for folder in args.folders:
        for path in redraw(folder, args.title):
            print(path)


if __name__ == "__main__":
    main()

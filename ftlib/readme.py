"""The README's numbers, written from the committed result files, never typed.

A table sits between `<!-- numbers:NAME -->` and `<!-- /numbers -->`; a number inside a sentence
sits between `<!--n:KEY-->` and `<!--/n-->` (hidden when rendered). This module computes every
block and value from `results/` and rewrites them, so a rescoring changes every place at once:

    python -m ftlib.readme           # rewrite README.md
    python -m ftlib.readme --check   # exit 1, naming each stale block or value (what the tests run)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ftlib import evals, paths, plots, presets
from ftlib.experiments import baselines

BLOCK = re.compile(r"(<!-- numbers:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /numbers -->)", re.S)
VALUE = re.compile(r"(<!--n:(?P<key>[\w.-]+)-->)(?P<body>.*?)(<!--/n-->)")
TASKS = ("viggo", "sql", "gsm8k")
# The README's headline per task: GSM8K by its last number (flexible-extract), since the untuned
# chat models end with \boxed{} rather than `#### n` (baselines.METRIC); strict-match is shown beside it.
HEADLINE = dict(baselines.METRIC)
OTHER = {"gsm8k": "strict_match"}
METRIC_WORDS = {"attribute_types": "function + attribute types", "execution_match": "execution match",
                "flexible_extract": "last number", "strict_match": "strict-match, the `####` line"}
COLUMNS = {"u135": "SmolLM2-135M untuned", "u05": "Qwen2.5-Coder-0.5B untuned",
           "u15": "Qwen2.5-Coder-1.5B untuned", "t135": baselines.SMALL_TUNED, "t05": baselines.LARGER_TUNED}
HEADERS = {"u135": "untuned 135M", "u05": "untuned 0.5B", "u15": "untuned 1.5B",
           "t135": "**tuned 135M**", "t05": "**tuned 0.5B**"}
PRESETS = ("quick", "cpu", "full")
LESSONS = ("01_data_prep.ipynb", "02_sft.ipynb", "04_evaluation.ipynb")  # what `make reproduce` runs


def pct(x: float | None) -> str:
    """A fraction as the README's percent, one decimal.

    >>> pct(0.96115), pct(None)
    ('96.1', '—')
    """
    return "—" if x is None else f"{100 * x:.1f}"


def with_ci(row: dict | None) -> str:
    """`96.1 [94.8, 97.1]` from a table row (score, ci_low, ci_high as fractions).

    >>> with_ci({"score": 0.9612, "ci_low": 0.948, "ci_high": 0.9712})
    '96.1 [94.8, 97.1]'
    """
    if not row or row.get("score") is None:
        return "—"
    return f"{pct(row['score'])} [{pct(row['ci_low'])}, {pct(row['ci_high'])}]"


def minutes(seconds: float) -> str:
    """A duration as the README writes it.

    >>> minutes(309.3), minutes(2171.8), minutes(6899.8)
    ('5 min 9 s', '36 min 12 s', '1.9 h')
    """
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{int(seconds // 60)} min {round(seconds % 60)} s"


def _rows(root: Path, name: str) -> list[dict]:
    path = root / name
    if not path.exists():
        raise FileNotFoundError(f"{paths.shown(path)}: the README quotes it; run the notebook that writes it")
    return plots.read_table(path)


def _find(rows: list[dict], **match) -> dict:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        raise LookupError(f"expected one row with {match}, found {len(found)}")
    return found[0]


def size_values(root: Path) -> dict[str, str]:
    """Scores, paired counts, training and latency of the size comparison (results/size/)."""
    scores = _rows(root / "size", "size.csv")
    strict = _rows(root / "size", "gsm8k_strict.csv")
    values = {}
    for task in TASKS:
        for key, label in COLUMNS.items():
            row = _find(scores, task=task, model=label)
            values[f"{task}.{key}"], values[f"{task}.{key}.ci"] = pct(row["score"]), with_ci(row)
            values[f"{task}.{key}.cut"] = pct(row.get("truncated"))  # answers that hit the token budget
            values[f"{task}.n"] = f"{row['n']:,}"
        for p in _rows(root / "size", "paired.csv"):
            key = next(k for k, v in COLUMNS.items() if v == p["b"])
            if p["task"] == task and p["a"] == baselines.LARGE_UNTUNED:
                values[f"{task}.{key}.wins"] = str(p["only_after"])
                values[f"{task}.{key}.losses"] = str(p["only_before"])
                values[f"{task}.{key}.p"] = f"{p['p']:.2g}"
    for key, label in COLUMNS.items():
        values[f"strict.{key}"] = pct(_find(strict, model=label)["score"])
    for row in _rows(root / "size", "training.csv"):
        values[f"train.{row['task']}.rows"] = f"{row['rows']:,}"
        # tokens / tokens-per-second: the time inside optimizer steps, every session
        values[f"train.{row['task']}.step_min"] = f"{row['tokens'] / row['tokens_per_s'] / 60:.0f}"
        values[f"train.{row['task']}.wall_min"] = f"{row['train_minutes']:.0f}"
        values["train.cpu"] = row["cpu_kind"]
    for key, label in COLUMNS.items():
        if row := next((r for r in _rows(root / "size", "latency.csv") if r["model"] == label), None):
            values[f"latency.{key}.s"] = f"{row['latency_s']:.2f}"
            values[f"latency.{key}.per_s"] = f"{row['answers_per_s']:.2f}"
            values["latency.cpu"] = row["cpu_kind"]
            values[f"latency.{key}.prompt"] = f"{row['prompt_tokens']:.0f}"
    return values


def own_task_values(root: Path) -> dict[str, str]:
    """Notebook 05's example task (results/cpu/own_task_*.csv): the voice check, response time, prompt."""
    speed = _rows(root / "cpu", "own_task_speed.csv")
    few, tuned = _find(speed, label="untuned few-shot"), _find(speed, label="fine-tuned")
    return {"own.few": pct(few["voice"]), "own.tuned": pct(tuned["voice"]),
            "own.sooner": f"{few['latency_s'] / tuned['latency_s']:.1f}",
            "own.shorter": f"{few['prompt_tokens'] / tuned['prompt_tokens']:.0f}", "own.cpu": tuned["cpu_kind"]}


def time_values(root: Path) -> dict[str, str]:
    """Notebook 03's time (results/cpu/notebooks/timings.json) and the full plan's training hours."""
    record = json.loads((root / "cpu" / "notebooks" / "timings.json").read_text())
    timings = record["seconds"]
    training = _rows(root / "full", "training.csv")
    return {"rounds.min": f"{timings['03_iterative_rounds.ipynb'] / 60:.0f}",
            "rounds.cpu": record.get("cpu_kind", {}).get("03_iterative_rounds.ipynb", "not recorded"),
            "full.train_h": f"{sum(r['minutes'] for r in training) / 60:.1f}"}


def sql_values(root: Path) -> dict[str, str]:
    """How many SQL test items the full plan leaves unjudged (a gold whose suite cannot tell its near-misses)."""
    path = root / "full" / "predictions" / "sql-fine-tuned.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    unjudged = sum(r["scores"].get("judged") is False for r in records)
    return {"sql.unjudged": str(unjudged), "sql.items": f"{len(records):,}"}


def values(root: Path | None = None) -> dict[str, str]:
    """Every inline value the README may quote, by key."""
    root = Path(root or paths.ROOT / "results")
    return {**size_values(root), **own_task_values(root), **time_values(root), **sql_values(root)}


def size_table(root: Path) -> str:
    """The answer's table: every model on the same items, headline metric, the other GSM8K one beside it."""
    scores, strict = _rows(root / "size", "size.csv"), _rows(root / "size", "gsm8k_strict.csv")
    lines = ["| task (metric, items) | " + " | ".join(HEADERS.values()) + " | case study 13B |",
             "|---" * (len(HEADERS) + 2) + "|"]
    for task, metric in [*HEADLINE.items(), ("gsm8k", OTHER["gsm8k"])]:
        rows = strict if metric != HEADLINE[task] else [r for r in scores if r["task"] == task]
        n = _find(rows, model=baselines.SMALL_TUNED)["n"]
        cells = [with_ci(_find(rows, model=label)) for label in COLUMNS.values()]
        cells = [f"**{c}**" if HEADERS[k].startswith("**") else c for k, c in zip(HEADERS, cells)]
        study = "{} → {}".format(*plots.CASE_STUDY_13B[task]) if metric == HEADLINE[task] else ""
        lines.append(f"| {task_name(task)} ({METRIC_WORDS[metric]}, {n:,}) | " + " | ".join(cells) + f" | {study} |")
    gsm8k = [r for r in scores if r["task"] == "gsm8k"]
    cut = [pct(_find(gsm8k, model=label).get("truncated")) for label in COLUMNS.values()]
    lines.append("| GSM8K answers cut at the token budget, % | " + " | ".join(cut) + " |  |")
    return "\n".join(lines) + "\n"


def task_name(task: str) -> str:
    return {"viggo": "ViGGO", "sql": "SQL", "gsm8k": "GSM8K"}[task]


def _predictions_score(folder: Path, task: str, metric: str) -> dict | None:
    path = folder / "predictions" / f"{task}-fine-tuned.jsonl"
    if not path.exists():
        return None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    summary = evals.summarize([r["scores"] for r in records]).get(metric)
    return {**evals.Score.of(summary).row()} if summary else None


def preset_rows(root: Path) -> list[dict]:
    """Per preset: what `make reproduce` timed (notebooks 01, 02, 04) and the fine-tuned scores, from
    results/<preset>/notebooks/timings.json and the committed predictions (rescored files)."""
    rows = []
    for preset in PRESETS:
        folder = root / preset
        timings = json.loads((folder / "notebooks" / "timings.json").read_text())["seconds"]
        missing = [nb for nb in LESSONS if nb not in timings]
        scores = []
        for task in TASKS:
            row = _predictions_score(folder, task, HEADLINE[task])
            if row is None:
                continue
            text = f"{task_name(task)} {pct(row['score'])}"
            if task in OTHER:
                text += f" (strict {pct(_predictions_score(folder, task, OTHER[task])['score'])})"
            scores.append(f"{text}, n={row['n']:,}")
        kinds = json.loads((folder / "notebooks" / "timings.json").read_text()).get("cpu_kind", {})
        rows.append({"preset": preset, "time": "not timed: " + ", ".join(missing) if missing else
                     minutes(sum(timings[nb] for nb in LESSONS)), "scores": "; ".join(scores),
                     "cpu": kinds.get("02_sft.ipynb", "not recorded")})  # 02 is nearly all of the time
    return rows


def preset_words(name: str) -> str:
    """Training rows / test items of each task of a preset's plan, from ftlib/presets.py.

    >>> preset_words("quick")
    'ViGGO 400 / 100'
    """
    plan = presets.get(name).plan
    rows = {t: plan.train_overrides.get(t, {}).get("n_train") for t in plan.tasks}
    return ", ".join(f"{task_name(t)} {'all' if n is None else f'{n:,}'} / {plan.eval_limit[t]:,}"
                     for t, n in rows.items())


def presets_table(root: Path) -> str:
    """The presets' times and fine-tuned scores (headline metrics, GSM8K's strict-match beside)."""
    what = {name: preset_words(name) for name in PRESETS}
    lines = ["| preset | training rows / test items | notebooks' time | 2-core CPU | fine-tuned 135M, % |",
             "|---|---|---|---|---|"]
    for r in preset_rows(root):
        lines.append(f"| `{r['preset']}` | {what[r['preset']]} | {r['time']} | {r['cpu']} | {r['scores']} |")
    return "\n".join(lines) + "\n"


BLOCKS = {"size-table": size_table, "presets": presets_table}


def render(text: str, root: Path | None = None, where: str = "README.md") -> str:
    """`text` with every block and inline value regenerated; an unknown name is an error with its line."""
    root = Path(root or paths.ROOT / "results")
    known = values(root)

    def block(m: re.Match) -> str:
        if m["name"] not in BLOCKS:
            raise KeyError(f"{where}:{_line(text, m.start())}: no block named {m['name']!r} (known: {sorted(BLOCKS)})")
        return m.group(1) + BLOCKS[m["name"]](root) + m.group(4)

    def value(m: re.Match) -> str:
        if m["key"] not in known:
            raise KeyError(f"{where}:{_line(text, m.start())}: no value named {m['key']!r}")
        return m.group(1) + known[m["key"]] + m.group(4)

    return VALUE.sub(value, BLOCK.sub(block, text))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def stale(path: Path, root: Path | None = None) -> list[str]:
    """The blocks and values of `path` whose text differs from what the result files give, by line."""
    text = path.read_text()
    fresh = render(text, root, path.name)
    if fresh == text:
        return []
    old, new = text.splitlines(), fresh.splitlines()
    return [f"{path.name}:{i + 1}: {a!r} should be {b!r}" for i, (a, b) in enumerate(zip(old, new)) if a != b]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ftlib.readme", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a number is stale")
    ap.add_argument("files", nargs="*", type=Path, default=[paths.ROOT / "README.md"])
    args = ap.parse_args(argv)
    problems = []
    for path in args.files:
        if args.check:
            problems += stale(path)
        else:
            path.write_text(render(path.read_text(), where=path.name))
    print("\n".join(problems) or "up to date" if args.check else "written", file=sys.stderr if problems else sys.stdout)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

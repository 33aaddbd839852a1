"""Load the three case-study tasks as `datasets.Dataset` splits, from the vendored files or the hub.

Tasks and splits:
- `viggo`: train / validation / test, the official ViGGO splits (GEM format); plus GEM's
  `challenge_train_{1,2,5,10,20}_percent` subsets as splits of the same name.
- `sql`:   train / validation / test, a deterministic split of sql-create-context made here
  (there is no official one): rows are grouped by the set of tables their CREATE TABLE context
  declares, and whole groups go to one split by a hash of the group, so a test question never
  shares its exact schema with a training question. Related schemas that share one table can
  still fall on both sides; notebook 01 measures that overlap.
- `gsm8k`: train / validation / test; validation is the last 500 rows of the official train file.

`source="hub"` loads the full data from the Hugging Face hub instead (same fields, same split rules).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ftlib import paths
from ftlib.io import iter_jsonl
from ftlib.sql import schema

TASKS = ("viggo", "sql", "gsm8k")
REQUIRED = {
    "viggo": ("meaning_representation", "target"),
    "sql": ("question", "context", "answer"),
    "gsm8k": ("question", "answer"),
}
VIGGO_CHALLENGE = {f"challenge_train_{p}_percent": p for p in (1, 2, 5, 10, 20)}
GSM8K_VALIDATION_ROWS = 500
SQL_SPLIT_PERCENT = {"train": (0, 75), "validation": (75, 85), "test": (85, 100)}
HUB_IDS = {"viggo": "GEM/viggo", "sql": "b-mc2/sql-create-context", "gsm8k": "openai/gsm8k"}


def task_file(task: str, split: str) -> Path:
    """The vendored JSONL file that holds `task`/`split` (before any split of our own)."""
    d = paths.data_dir()
    if task == "viggo":
        if split in VIGGO_CHALLENGE:
            return d / "viggo" / "challenge" / f"{split}.jsonl"
        return d / "viggo" / f"{split}.jsonl"
    if task == "sql":
        return d / "sql_create_context" / "train.jsonl"
    if task == "gsm8k":
        return d / "gsm8k" / ("test.jsonl" if split == "test" else "train.jsonl")
    raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def _check_split(task: str, split: str) -> None:
    allowed = ["train", "validation", "test"] + (list(VIGGO_CHALLENGE) if task == "viggo" else [])
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if split not in allowed:
        raise ValueError(f"unknown split {split!r} for task {task!r}; expected one of {allowed}")


def read_rows(path: Path, task: str) -> list[dict]:
    """Read a task's JSONL file, checking that every required field is a non-empty string."""
    return list(iter_jsonl(path, REQUIRED[task], strings=True))


def sql_tables(context: str) -> list[str]:
    """Lower-cased table names declared by a CREATE TABLE context, sorted and unique.

    >>> sql_tables("CREATE TABLE b (x INT); CREATE TABLE A (y INT)")
    ['a', 'b']
    """
    return schema.table_names(context)


def sql_split_of(context: str) -> str:
    """Which split a SQL row belongs to: a stable hash of its table set, so schemas stay apart."""
    key = "|".join(sql_tables(context)) or context
    bucket = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 100
    return next(s for s, (lo, hi) in SQL_SPLIT_PERCENT.items() if lo <= bucket < hi)


def _select(task: str, split: str, rows: list[dict]) -> list[dict]:
    """Apply the project's own split rules to rows of the source file."""
    if task == "sql":
        for i, r in enumerate(rows):
            r.setdefault("row_index", i)
        return [r for r in rows if sql_split_of(r["context"]) == split]
    if task == "gsm8k" and split != "test":
        cut = len(rows) - GSM8K_VALIDATION_ROWS
        return rows[:cut] if split == "train" else rows[cut:]
    return rows


def _hub_rows(task: str, split: str) -> list[dict]:
    """Download the task from the hub (needs internet) as rows with the vendored files' fields."""
    import datasets

    if task == "viggo":
        ds = datasets.load_dataset(HUB_IDS[task], split=split)
    elif task == "gsm8k":
        ds = datasets.load_dataset(HUB_IDS[task], "main", split="test" if split == "test" else "train")
    else:
        ds = datasets.load_dataset(HUB_IDS[task], split="train")
    return [dict(r) for r in ds]


def load_rows(task: str, split: str, source: str = "local") -> list[dict]:
    """Rows of one task split as plain dicts (`source` is "local" or "hub")."""
    _check_split(task, split)
    if source == "local":
        rows = read_rows(task_file(task, split), task)
    elif source == "hub":
        rows = _hub_rows(task, split)
    else:
        raise ValueError(f"unknown source {source!r}; expected 'local' or 'hub'")
    return _select(task, split, rows)


def load_task(task: str, split: str, source: str = "local", limit: int | None = None):
    """One task split as a `datasets.Dataset`.

    >>> load_task("gsm8k", "test").num_rows  # doctest: +SKIP
    1319
    """
    import datasets

    rows = load_rows(task, split, source)
    if limit is not None:
        rows = rows[:limit]
    return datasets.Dataset.from_list(rows)


def read_checksums(data_dir: Path | None = None) -> list[tuple[str, int, str]]:
    """Parse `data/SHA256SUMS.txt` into (sha256, rows, relative path)."""
    d = data_dir or paths.data_dir()
    out = []
    for line in (d / "SHA256SUMS.txt").read_text().splitlines():
        if line.strip():
            digest, n, _, rel = line.split(maxsplit=3)
            out.append((digest, int(n), rel.strip()))
    return out


def verify_checksums(data_dir: Path | None = None) -> list[str]:
    """Check every vendored file's SHA-256 and line count; return the problems (empty: all good)."""
    d = data_dir or paths.data_dir()
    problems = []
    for digest, n, rel in read_checksums(d):
        f = d / rel
        if not f.exists():
            problems.append(f"{rel}: missing")
            continue
        blob = f.read_bytes()
        if hashlib.sha256(blob).hexdigest() != digest:
            problems.append(f"{rel}: SHA-256 differs from SHA256SUMS.txt")
        rows = blob.count(b"\n")
        if rows != n:
            problems.append(f"{rel}: {rows} rows, expected {n}")
    return problems

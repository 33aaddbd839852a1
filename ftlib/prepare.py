"""Prepared splits: the exact rows that training and evaluation read, written once to disk.

`prepare(task)` writes `runs/data/<task>/{train,validation,test}.jsonl` and `stats.json`, and a
rerun skips a task already prepared. What it does beyond `ftlib.data`:
- SQL: rows whose gold query does not execute on its own CREATE TABLE context (a column the
  auto-generated context lacks, ...) are left out of every split: they cannot be scored and would
  teach the model to name columns that do not exist. `stats.json` counts them and other defects.
- Optionally the case study's filter: drop SQL rows whose query compares a VARCHAR column with a
  number (`sql_filter_varchar_numbers=True`; off by default because the contexts here already type
  such columns INTEGER in most rows: notebook 01 counts how many remain).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ftlib import data, paths
from ftlib.io import iter_jsonl, rows_hash, write_json, write_text_atomic
from ftlib.sql import match, schema

SPLITS = ("train", "validation", "test")
_NUMBER_COMPARE = re.compile(r"(?:\w+\.)?(\w+)\s*(?:=|!=|<>|<=|>=|<|>)\s*-?\d+(?:\.\d+)?\b")


def prepared_dir(task: str, root: Path | None = None) -> Path:
    """Where a task's prepared splits live (`runs/data/<task>/`)."""
    return (root or paths.runs_dir() / "data") / task


def varchar_number_comparison(context: str, gold: str) -> bool:
    """True if the query compares a VARCHAR column with a bare number (the case study's filter).

    >>> varchar_number_comparison("CREATE TABLE t (age VARCHAR)", "SELECT * FROM t WHERE age > 30")
    True
    """
    types = schema.column_types(context)
    return any(types.get(col.lower(), "").startswith("VARCHAR") for col in _NUMBER_COMPARE.findall(gold))


def _keep(task: str, row: dict, filter_varchar_numbers: bool) -> bool:
    if task != "sql":
        return True
    if not match.sql_gold_usable(row):
        return False
    return not (filter_varchar_numbers and varchar_number_comparison(row["context"], row["answer"]))


def prepare(task: str, *, root: Path | None = None, source: str = "local",
            sql_filter_varchar_numbers: bool = False) -> Path:
    """Write a task's prepared splits and stats once; return the folder."""
    out = prepared_dir(task, root)
    if (out / "stats.json").exists():
        return out
    stats: dict = {"task": task, "source": source, "sql_filter_varchar_numbers": sql_filter_varchar_numbers}
    for split in SPLITS:
        raw = data.load_rows(task, split, source)
        kept = [r for r in raw if _keep(task, r, sql_filter_varchar_numbers)]
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
        write_text_atomic(out / f"{split}.jsonl", lines)
        stats[split] = {"raw": len(raw), "kept": len(kept), "sha256_16": rows_hash(kept)[:16]}
        if task == "sql":
            stats[split]["audit"] = match.audit_rows(raw)
    write_json(out / "stats.json", stats)  # written last: its presence marks the task as prepared
    return out


def load_split(task: str, split: str, *, root: Path | None = None, limit: int | None = None) -> list[dict]:
    """The prepared rows of one split (preparing the task first if needed)."""
    folder = prepare(task, root=root)
    rows = list(iter_jsonl(folder / f"{split}.jsonl", data.REQUIRED[task], strings=True))
    return rows[:limit] if limit is not None else rows


def read_stats(task: str, root: Path | None = None) -> dict:
    """The stats.json of a prepared task."""
    return json.loads((prepared_dir(task, root) / "stats.json").read_text())

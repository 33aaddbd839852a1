"""Prepared splits: the exact rows that training and evaluation read, written once to disk.

`prepare(task)` writes `runs/data/<task>/{train,validation,test}.jsonl` and `stats.json`, and a
rerun skips a task already prepared (a user's task is prepared again when its files change).
Training, the harness, the rounds and the report all read these files (`load_split`, `items`):
the item numbers in every predictions file index them. What it does beyond loading the task, by the
task's hooks:
- rows its declaration marks unusable (`Task.usable`) are left out of every split (SQL: a gold query
  that does not execute on its own CREATE TABLE context can be neither scored nor learned);
- `Task.audit` counts the defects of each raw split into `stats.json` (SQL: `match.audit_rows`);
- optionally the rows `Task.flagged` marks are dropped (`sql_filter_varchar_numbers=True`: the case
  study's filter of SQL queries comparing a VARCHAR column with a number; off by default because the
  contexts here already type such columns INTEGER in most rows: notebook 01 counts how many remain).
"""

from __future__ import annotations

import json
from pathlib import Path

from ftlib import paths, tasks
from ftlib.io import iter_jsonl, rows_hash, write_json, write_text_atomic
from ftlib.tasks import SPLITS, Task


def prepared_dir(task: Task, root: Path | None = None) -> Path:
    """Where a task's prepared splits live (`runs/data/<task name>/`)."""
    return (root or paths.runs_dir() / "data") / task.name


def _keep(t: Task, row: dict, drop_flagged: bool) -> bool:
    if t.usable is not None and not t.usable(row):
        return False
    return not (drop_flagged and t.flagged is not None and t.flagged(row))


def _is_current(out: Path, t: Task) -> bool:
    """Prepared by the task's code as it is now (its audit and `usable` run the scorer's code: SQL's
    defect counts change with it) and, for a user's task, from the files as they are now."""
    if not (out / "stats.json").exists():
        return False
    stats = json.loads((out / "stats.json").read_text())
    if stats.get("code", "") != t.scorer_id:
        return False
    if t.source is None:  # built-in data is vendored and checksummed
        return True
    return all(stats.get(s, {}).get("raw_sha256_16") == rows_hash(t.load(s))[:16] for s in SPLITS)


def prepare(task: str | Task, *, root: Path | None = None, source: str = "local",
            sql_filter_varchar_numbers: bool = False) -> Path:
    """Write a task's prepared splits and stats once; return the folder. `sql_filter_varchar_numbers`
    (its name in stats.json): drop the rows the task flags. A spec is resolved here (`prepared`: a Task)."""
    return prepared(tasks.get(task), root, source, sql_filter_varchar_numbers)


def prepared(t: Task, root: Path | None = None, source: str = "local", drop_flagged: bool = False) -> Path:
    """`prepare` for a resolved task."""
    out = prepared_dir(t, root)
    if _is_current(out, t):
        return out
    stats: dict = {"task": t.name, "source": t.source or source, "sql_filter_varchar_numbers": drop_flagged,
                   "code": t.scorer_id}
    for split in SPLITS:
        raw = t.rows(split, source)
        kept = [r for r in raw if _keep(t, r, drop_flagged)]
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept)
        write_text_atomic(out / f"{split}.jsonl", lines)
        stats[split] = {"raw": len(raw), "kept": len(kept), "sha256_16": rows_hash(kept)[:16],
                        "raw_sha256_16": rows_hash(raw)[:16]}
        if t.audit is not None:
            stats[split]["audit"] = t.audit(raw)
    write_json(out / "stats.json", stats)  # written last: its presence marks the task as prepared
    return out


def load_split(task: str | Task, split: str, *, root: Path | None = None, limit: int | None = None) -> list[dict]:
    """The prepared rows of one split (preparing the task first if needed); a split that is not
    prepared (ViGGO's GEM subsets) is loaded and filtered the same way. A spec is resolved here."""
    return split_rows(tasks.get(task), split, root, limit)


def split_rows(t: Task, split: str, root: Path | None = None, limit: int | None = None) -> list[dict]:
    """`load_split` for a resolved task."""
    if split in SPLITS:
        rows = list(iter_jsonl(prepared(t, root) / f"{split}.jsonl", t.fields, strings=True))
    else:
        rows = [r for r in t.load(split) if _keep(t, r, False)]
    return rows[:limit] if limit is not None else rows


def items(t: Task, split: str, limit: int | None = None) -> list[tuple[int, dict]]:
    """(item number, row) of the first `limit` prepared rows: what every evaluation scores."""
    return list(enumerate(split_rows(t, split, limit=limit)))


def evaluation_items(t: Task, split: str, limit: int | None = None) -> tuple[list[tuple[int, dict]], int]:
    """What an evaluation scores: `items`, and how many rows of the whole split the task's declaration
    left out (SQL rows whose gold query does not run; 0 for a split that is not prepared)."""
    numbered = items(t, split, limit)  # prepares the task first where needed
    counts = stats(t).get(split, {})
    return numbered, counts.get("raw", 0) - counts.get("kept", 0)


def read_stats(task: str | Task, root: Path | None = None) -> dict:
    """The stats.json of a prepared task (a spec is resolved here)."""
    return stats(tasks.get(task), root)


def stats(t: Task, root: Path | None = None) -> dict:
    """`read_stats` for a resolved task."""
    return json.loads((prepared_dir(t, root) / "stats.json").read_text())

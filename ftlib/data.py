"""The vendored data of the built-in tasks: loading a task's split by its spec, and the checksums.

Each task's own module says how its splits load and what its split rules are (`ftlib.tasks.viggo`:
the official splits and GEM's challenge subsets; `ftlib.tasks.sql`: a deterministic split by table
set; `ftlib.tasks.gsm8k`: validation is the last 500 official train rows). `source="hub"` loads the
full data of a built-in task from the Hugging Face hub instead (same fields, same split rules).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ftlib import paths, tasks

TASKS = tuple(t.name for t in tasks.BUILTIN)


def load_rows(task: str | tasks.Task, split: str, source: str = "local") -> list[dict]:
    """Rows of one task split as plain dicts (`source` is "local" or "hub"; `Task.rows`)."""
    return tasks.get(task).rows(split, source)


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

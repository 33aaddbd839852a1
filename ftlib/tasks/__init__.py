"""Tasks: one home each. Everything the pipeline needs to know about a task lives in its module.

- `base`: the `Task` type (its fields and the hooks the pipeline's stages call) and `safe_score`;
- `viggo`, `gsm8k`, `sql/`: the built-in tasks, each its loading, prompt parts, scoring, error kinds
  and hooks, declared as one `TASK`;
- `user`: a user's own task from a task file (JSON declaration + JSONL splits, built-in scorers).

A spec is a built-in name (viggo, sql, gsm8k), the name of a task registered in this process
(`register`), or the path of a task file. It is resolved once, where it enters (the command line, a
notebook parameter, a config file): `get(spec)` gives the `Task` that generic code takes.

A new built-in task is one module declaring `TASK = base.builtin(...)` and one line in BUILTIN below
(docs/tasks.md).
"""

from __future__ import annotations

from pathlib import Path

from ftlib import paths
from ftlib.tasks import gsm8k, sql, user, viggo
from ftlib.tasks.base import SPLITS, Task, check_name, safe_score
from ftlib.tasks.user import check_spec, from_file, read_user_rows

__all__ = [
    "BUILTIN",
    "GSM8K",
    "SPLITS",
    "SQL",
    "VIGGO",
    "Task",
    "check_name",
    "check_spec",
    "from_file",
    "get",
    "gsm8k",
    "name",
    "names",
    "read_user_rows",
    "register",
    "safe_score",
    "sql",
    "user",
    "viggo",
]

BUILTIN = (viggo.TASK, sql.TASK, gsm8k.TASK)  # the registry of built-in tasks, in display order
VIGGO, SQL, GSM8K = BUILTIN
_REGISTRY: dict[str, Task] = {t.name: t for t in BUILTIN}


def register(task: Task) -> Task:
    """Make a task known by its name in this process (a file-based task is registered by `get`)."""
    check_name(task.name, task.source or "register")
    if task.name in {t.name for t in BUILTIN} and _REGISTRY[task.name] is not task:
        raise ValueError(f"{task.name!r} is a built-in task; give yours another name")
    _REGISTRY[task.name] = task
    return task


def get(spec: str | Task) -> Task:
    """The task of a spec: a Task, a known name, or the path of a task file (`.json`)."""
    if isinstance(spec, Task):
        return spec
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if str(spec).endswith(".json"):  # relative to the working directory, else to the repository
        path = Path(spec)
        if not path.exists() and not path.is_absolute() and (paths.ROOT / path).exists():
            path = paths.ROOT / path
        return register(from_file(path))
    raise ValueError(f"unknown task {spec!r}; expected one of {list(_REGISTRY)} or the path of a task file (.json)")


def name(spec: str | Task) -> str:
    """A task's name (folder names use it; a spec may be a path)."""
    return get(spec).name


def names() -> tuple[str, ...]:
    """The tasks known by name: the built-in ones, then those registered."""
    return tuple(_REGISTRY)

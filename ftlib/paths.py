"""Where things live. Every path is derived from the repository root, never from the cwd."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The vendored datasets (`data/`), or `$FTLIB_DATA` if set."""
    return Path(os.environ.get("FTLIB_DATA", ROOT / "data"))


def cache_dir() -> Path:
    """Git-ignored cache for converted model checkpoints (`.cache/`), or `$FTLIB_CACHE`."""
    return Path(os.environ.get("FTLIB_CACHE", ROOT / ".cache"))


def runs_dir() -> Path:
    """Git-ignored folder holding every run (`runs/`), or `$FTLIB_RUNS`."""
    return Path(os.environ.get("FTLIB_RUNS", ROOT / "runs"))


def results_dir() -> Path:
    """Committed figures and tables of the reference run (`results/`), or `$FTLIB_RESULTS`."""
    return Path(os.environ.get("FTLIB_RESULTS", ROOT / "results"))


def shown(path: str | Path) -> str:
    """A path as notebooks print it: relative to the repository root when inside it (no machine paths).

    >>> shown(ROOT / "results" / "cpu")
    'results/cpu'
    """
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


# One rule for every field that names a folder (a task's name, a run's name, an experiment, the parts
# of an evaluation's --out): one safe path component, short enough for any file system.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
COMPONENT = "one path component of at most 100 characters: letters, digits, '-', '_' and '.' (not first)"


def is_component(name: object) -> bool:
    """Whether `name` may name a folder (`SAFE_NAME`).

    >>> is_component("viggo-full-cpu"), is_component("../x"), is_component("/abs"), is_component("a" * 101)
    (True, False, False, False)
    """
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None


def check_component(name: object, field: str) -> str:
    """`name` if it may name a folder, else a ValueError naming the field and the rule."""
    if not is_component(name):
        raise ValueError(f"{field}={name!r}: expected {COMPONENT}")
    return name


def inside_runs(path: str | Path) -> Path:
    """`path` resolved, if it lies inside the runs folder and each part below it is a `COMPONENT`;
    else a ValueError saying which rule it breaks."""
    root, resolved = runs_dir().resolve(), Path(path).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"expected a folder inside the runs folder {shown(root)} (FTLIB_RUNS sets it)")
    for part in resolved.relative_to(root).parts:
        if not is_component(part):
            raise ValueError(f"{part[:40]!r}{'...' if len(part) > 40 else ''}: expected {COMPONENT}")
    return resolved

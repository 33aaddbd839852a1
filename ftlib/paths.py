"""Where things live. Every path is derived from the repository root, never from the cwd."""

from __future__ import annotations

import os
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

"""Where a preset's plan runs: its label, run folders, result folders and the config of each task.

Every function takes the resolved preset (`presets.get(name)`, once, where the name enters: the
command line, `make`, a notebook's first cell) and reads its plan (tasks, per-task overrides, test
items, untuned styles, notebooks: a block of `ftlib/presets.py`). Runs land in `runs/<label>/...`,
figures, tables and executed notebooks in `results/<label>/`, where the label is the preset's name, or
`<preset>-<model>` for a model other than the default (a user's own run never overwrites the reference
run's results). Smoke runs are tests: their results go to `runs/results/`, never into the committed
`results/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ftlib import paths, tasks
from ftlib.models import DEFAULT_MODEL
from ftlib.presets import Preset
from ftlib.train_config import TrainConfig, from_preset


def label(p: Preset, model: str | None = None) -> str:
    """The preset's name, or `<preset>-<model>` for a model other than the default.

    >>> from ftlib import presets
    >>> label(presets.CPU), label(presets.CPU, "meta-llama/Llama-2-7b-hf")
    ('cpu', 'cpu-Llama-2-7b-hf')
    """
    if model in (None, DEFAULT_MODEL):
        return p.plan.name
    return f"{p.plan.name}-{slug(model)}"


def slug(model: str) -> str:
    """A model spec as a folder-name part: its last path part, odd characters replaced.

    >>> slug("meta-llama/Llama-2-7b-hf"), slug("runs/cpu/viggo-full-cpu/model")
    ('Llama-2-7b-hf', 'model')
    """
    return re.sub(r"[^\w.-]+", "_", Path(model).name)


def train_config(p: Preset, task: str, model: str) -> TrainConfig:
    """The TrainConfig of one task under a preset's plan, its run folder in runs/<label>/."""
    overrides = {"eval_limit": p.plan.eval_limit.get(task), **p.plan.train_overrides.get(task, {})}
    return from_preset(p, task=task, model=model, experiment=label(p, model), **overrides)


def eval_root(p: Preset, model: str | None = None) -> Path:
    """runs/<label>/eval/: one folder per evaluation that is not a training run's own."""
    return paths.runs_dir() / label(p, model) / "eval"


def eval_dir(p: Preset, name: str, task: str, model: str | None = None) -> Path:
    """runs/<label>/eval/<name>-<task name>: where an untuned (or other) evaluation writes."""
    return eval_root(p, model) / f"{name}-{tasks.name(task)}"


def results_dir(p: Preset, model: str | None = None) -> Path:
    """results/<label>/: the committed figures, tables and executed notebooks of a plan's run
    (runs/results/<label>/ for smoke runs: tests must not touch the committed results)."""
    root = paths.runs_dir() / "results" if p.plan.name == "smoke" else paths.results_dir()
    return root / label(p, model)

"""Where a preset's plan runs: its label, run folders, result folders and the config of each task.

The plans themselves (tasks, training preset and per-task overrides, test items, untuned styles,
notebooks) are blocks of `ftlib/presets.py`, one per preset. Runs land in `runs/<label>/...`, figures,
tables and executed notebooks in `results/<label>/`, where the label is the plan's name, or
`<plan>-<model>` for a model other than the default (a user's own run never overwrites the reference
run's results). Smoke runs are tests: their results go to `runs/results/`, never into the committed
`results/`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ftlib import paths, presets, tasks
from ftlib.presets import Plan

PLANS: dict[str, Plan] = {name: p.plan for name, p in presets.PRESETS.items()}  # a view of the presets


def get(name: str) -> Plan:
    """The plan of a preset name (ftlib/presets.py)."""
    return presets.get(name).plan


def label(plan: Plan, model: str | None = None) -> str:
    """The plan's name, or `<plan>-<model>` for a model other than the default.

    >>> label(PLANS["cpu"]), label(PLANS["cpu"], "meta-llama/Llama-2-7b-hf")
    ('cpu', 'cpu-Llama-2-7b-hf')
    """
    from ftlib.models import DEFAULT_MODEL

    if model in (None, DEFAULT_MODEL):
        return plan.name
    return f"{plan.name}-{slug(model)}"


def slug(model: str) -> str:
    """A model spec as a folder-name part: its last path part, odd characters replaced.

    >>> slug("meta-llama/Llama-2-7b-hf"), slug("runs/cpu/viggo-full-cpu/model")
    ('Llama-2-7b-hf', 'model')
    """
    return re.sub(r"[^\w.-]+", "_", Path(model).name)


def train_config(plan: Plan, task: str, model: str):
    """The ftlib.train config of one task under a plan, its run folder in runs/<label>/."""
    from ftlib import train

    overrides = {"eval_limit": plan.eval_limit.get(task), **plan.train_overrides.get(task, {})}
    return train.preset(plan.train_preset, task=task, model=model, experiment=label(plan, model), **overrides)


def eval_root(plan: Plan, model: str | None = None) -> Path:
    """runs/<label>/eval/: one folder per evaluation that is not a training run's own."""
    return paths.runs_dir() / label(plan, model) / "eval"


def eval_dir(plan: Plan, name: str, task: str, model: str | None = None) -> Path:
    """runs/<label>/eval/<name>-<task name>: where an untuned (or other) evaluation writes."""
    return eval_root(plan, model) / f"{name}-{tasks.name(task)}"


def results_dir(plan: Plan, model: str | None = None) -> Path:
    """results/<label>/: the committed figures, tables and executed notebooks of a plan's run
    (runs/results/<label>/ for smoke runs: tests must not touch the committed results)."""
    root = paths.runs_dir() / "results" if plan.name == "smoke" else paths.results_dir()
    return root / label(plan, model)

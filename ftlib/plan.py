"""What the notebooks (and `make reproduce`) run for each preset: one readable block per preset.

A plan names the tasks, the training preset of `ftlib.train` (plus per-task overrides), how many
test items every evaluation scores (the same items before and after training, so the comparison
is paired), and the untuned prompt styles. Runs land in `runs/<label>/...`, figures, tables and
executed notebooks in `results/<label>/`, where the label is the plan's name, or `<plan>-<model>` for
a model other than the default (a user's own run never overwrites the reference run's results).
Smoke runs are tests: their results go to `runs/results/`, never into the committed `results/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ftlib import paths

ALL_TASKS = ("viggo", "sql", "gsm8k")


@dataclass(frozen=True)
class Plan:
    name: str
    train_preset: str  # a preset of ftlib.train
    tasks: tuple[str, ...] = ALL_TASKS
    eval_limit: dict[str, int] = field(default_factory=dict)  # test items per task (first n)
    baseline_styles: tuple[str, ...] = ("zero_shot", "few_shot")
    train_overrides: dict[str, dict] = field(default_factory=dict)  # per task, on top of the preset
    notebooks: tuple[str, ...] = ("01", "02", "03", "04")  # what `make reproduce` runs, by number


PLANS = {
    # Seconds: CI runs every notebook with a tiny random model and a handful of examples.
    "smoke": Plan("smoke", "smoke", eval_limit={"viggo": 4, "sql": 4, "gsm8k": 4}),
    # A workshop slot (<= 10 minutes here): ViGGO only, the task where tuning changes the most.
    "quick": Plan("quick", "cpu", tasks=("viggo",), eval_limit={"viggo": 60},
                  baseline_styles=("few_shot",), notebooks=("01", "02", "04"),
                  train_overrides={"viggo": dict(n_train=200, epochs=1, batch_size=4, lr=2e-4, n_val=24)}),
    # The reference run on this project's 2-core CPU (AVX2, fp32: ~110 training tokens/s for the
    # 135M model with the cpu preset's levers), sized to finish in ~45 minutes. ViGGO, the headline,
    # gets most of the budget: 400 examples twice (docs/measurements.md: 800 x 2 epochs reached 80%); SQL
    # and GSM8K one epoch of a few hundred. Notebook 03 runs separately (`make rounds`).
    "cpu": Plan("cpu", "cpu", eval_limit={"viggo": 100, "sql": 100, "gsm8k": 40}, notebooks=("01", "02", "04"),
                train_overrides={
                    "viggo": dict(n_train=400, epochs=2, batch_size=8, lr=2e-4, n_val=40),
                    "sql": dict(n_train=240, epochs=1, batch_size=4, lr=2e-4, n_val=40),
                    "gsm8k": dict(n_train=120, epochs=1, batch_size=4, lr=1e-4, n_val=24),
                }),
    # The case study's own setting on a GPU box: all data, every test item.
    "gpu": Plan("gpu", "gpu", eval_limit={"viggo": 1083, "sql": 626, "gsm8k": 1319}),
}


def get(name: str) -> Plan:
    """The plan of a preset name."""
    if name not in PLANS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PLANS)}")
    return PLANS[name]


def label(plan: Plan, model: str | None = None) -> str:
    """The plan's name, or `<plan>-<model>` for a model other than the default.

    >>> label(PLANS["cpu"]), label(PLANS["cpu"], "meta-llama/Llama-2-7b-hf")
    ('cpu', 'cpu-Llama-2-7b-hf')
    """
    from ftlib.models import DEFAULT_MODEL

    if model in (None, DEFAULT_MODEL):
        return plan.name
    slug = re.sub(r"[^\w.-]+", "_", Path(model).name)
    return f"{plan.name}-{slug}"


def train_config(plan: Plan, task: str, model: str):
    """The ftlib.train config of one task under a plan, its run folder in runs/<label>/."""
    from ftlib import train

    overrides = {"eval_limit": plan.eval_limit.get(task), **plan.train_overrides.get(task, {})}
    return train.preset(plan.train_preset, task=task, model=model, experiment=label(plan, model), **overrides)


def eval_root(plan: Plan, model: str | None = None) -> Path:
    """runs/<label>/eval/: one folder per evaluation that is not a training run's own."""
    return paths.runs_dir() / label(plan, model) / "eval"


def eval_dir(plan: Plan, name: str, task: str, model: str | None = None) -> Path:
    """runs/<label>/eval/<name>-<task>: where an untuned (or other) evaluation writes."""
    return eval_root(plan, model) / f"{name}-{task}"


def results_dir(plan: Plan, model: str | None = None) -> Path:
    """results/<label>/: the committed figures, tables and executed notebooks of a plan's run
    (runs/results/<label>/ for smoke runs: tests must not touch the committed results)."""
    root = paths.runs_dir() / "results" if plan.name == "smoke" else paths.results_dir()
    return root / label(plan, model)

"""What the notebooks (and `make reproduce`) run for each preset: one readable block per preset.

A plan names the tasks, the training preset of `ftlib.train` (plus per-task overrides), how many
test items every evaluation scores (the same items before and after training, so the comparison
is paired), and the untuned prompt styles. Runs land in `runs/<plan>/...`, figures and tables in
`results/<plan>/`.
"""

from __future__ import annotations

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


PLANS = {
    # Seconds: CI runs every notebook with a tiny random model and a handful of examples.
    "smoke": Plan("smoke", "smoke", eval_limit={"viggo": 4, "sql": 4, "gsm8k": 4}),
    # A workshop slot (<= 10 minutes): ViGGO only, the task where tuning changes the most.
    "quick": Plan("quick", "cpu", tasks=("viggo",), eval_limit={"viggo": 150},
                  baseline_styles=("few_shot",),
                  train_overrides={"viggo": dict(n_train=400, epochs=2)}),
    # The reference run on a 2-core CPU (<= 45 minutes for all three tasks).
    "cpu": Plan("cpu", "cpu", eval_limit={"viggo": 300, "sql": 300, "gsm8k": 200},
                train_overrides={"viggo": {}, "sql": {}, "gsm8k": dict(n_train=600, epochs=1)}),
    # The case study's own setting on a GPU box: all data, every test item.
    "gpu": Plan("gpu", "gpu", eval_limit={"viggo": 1083, "sql": 626, "gsm8k": 1319}),
}


def get(name: str) -> Plan:
    """The plan of a preset name."""
    if name not in PLANS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PLANS)}")
    return PLANS[name]


def train_config(plan: Plan, task: str, model: str):
    """The ftlib.train config of one task under a plan, its run folder in runs/<plan>/."""
    from ftlib import train

    overrides = {"eval_limit": plan.eval_limit.get(task), **plan.train_overrides.get(task, {})}
    return train.preset(plan.train_preset, task=task, model=model, experiment=plan.name, **overrides)


def eval_root(plan: Plan) -> Path:
    """runs/<plan>/eval/: one folder per evaluation that is not a training run's own."""
    return paths.runs_dir() / plan.name / "eval"


def eval_dir(plan: Plan, label: str, task: str) -> Path:
    """runs/<plan>/eval/<label>-<task>: where an untuned (or other) evaluation writes."""
    return eval_root(plan) / f"{label}-{task}"


def results_dir(plan: Plan) -> Path:
    """results/<plan>/: the committed figures and tables of a plan's run."""
    return paths.results_dir() / plan.name

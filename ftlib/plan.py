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
    # A workshop slot (<= 10 minutes on a 2-core CPU): ViGGO only, the task where tuning changes
    # the most. Sized for bf16 on an AVX-512-BF16 CPU (~240 training tokens/s); an AVX2 CPU trains
    # in fp32 at ~110 tokens/s and takes about twice as long.
    "quick": Plan("quick", "cpu", tasks=("viggo",), eval_limit={"viggo": 100},
                  baseline_styles=("few_shot",), notebooks=("01", "02", "04"),
                  train_overrides={"viggo": dict(n_train=400, epochs=1, batch_size=4, lr=2e-4, n_val=24)}),
    # The reference run on a 2-core CPU, sized to finish in ~45 minutes on an AVX-512-BF16 CPU
    # (bf16; an AVX2 CPU trains in fp32 at about half the speed). ViGGO, the headline, gets most of
    # the budget. The recipe is the sweep's (results/sweep/): at a fixed budget, more examples once
    # beat fewer examples several times (3,200 x 1 epoch: 95 % on validation; 1,600 x 2: 88 %), and
    # lr 1e-4 to 4e-4 were within noise. Notebook 03 runs separately (`make rounds`).
    "cpu": Plan("cpu", "cpu", eval_limit={"viggo": 200, "sql": 150, "gsm8k": 60}, notebooks=("01", "02", "04"),
                train_overrides={
                    "viggo": dict(n_train=2400, epochs=1, batch_size=8, lr=2e-4, n_val=60),
                    "sql": dict(n_train=600, epochs=1, batch_size=8, lr=2e-4, n_val=60),
                    "gsm8k": dict(n_train=240, epochs=1, batch_size=8, lr=1e-4, n_val=24),
                }),
    # The case study's question at full scale: every usable training row, every test item, the
    # best checkpoint by validation loss (one per epoch; the second epoch still lowered it on
    # ViGGO and SQL in the reference run). GSM8K gets every training row that fits
    # 512 tokens (6,959 of 6,973) for one epoch: that is what a night allows on a 2-core AVX-512-BF16 CPU
    # (~1.7 M tokens at ~240 tokens/s: ~2 h of the plan's ~5-6 h there (estimated)). Minutes on a GPU.
    "full": Plan("full", "cpu", eval_limit={"viggo": 1083, "sql": 626, "gsm8k": 1319}, notebooks=("01", "02", "04"),
                 train_overrides={
                     "viggo": dict(n_train=None, epochs=2, batch_size=8, lr=2e-4, n_val=200),
                     "sql": dict(n_train=None, epochs=2, batch_size=8, lr=2e-4, n_val=200),
                     "gsm8k": dict(n_train=None, epochs=1, batch_size=8, lr=1e-4, n_val=100),
                 }),
    # The case study's own training setting on a GPU box (global batch 256, lr 5e-6, 10 epochs):
    # meant for 7B-class models; all data, every test item.
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

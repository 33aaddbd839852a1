"""The built-in round strategies and the quality experiment, sized per preset.

Each builder returns the Series to run (the strategy and its comparison), e.g.

    sizes = strategies.sizes("cpu")
    for s in strategies.growing_data(sizes, "cpu"):
        rounds.run_series(s, strategies.base_config(sizes, "cpu", model))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ftlib import train
from ftlib.rounds import Round, SelfTrain, Series, Source


@dataclass(frozen=True)
class Sizes:
    """How big every experiment is under one preset (rows, steps, test items)."""

    train_preset: str
    percents: tuple[int, ...]  # GEM ViGGO subsets for growing data; 100 = the whole train split
    cap: int | None  # at most this many rows of any subset (smoke)
    mix_n: int  # broad -> specific: rows of the mixed round (split over the three tasks)
    task_n: int  # ... and of the task-specific round
    gold_n: int  # self-training: gold rows
    prompts_n: int  # ... and training prompts the model answers
    quality_n: int  # rows of each corruption level
    quality_steps: int  # the same steps for every quality run
    small_clean_n: int  # the small clean set against quality_n rows at 30% noise
    fractions: tuple[float, ...]
    sql_n: int
    sql_steps: int
    eval_limit: int  # test items of every evaluation (the same items every round)
    train: dict = field(default_factory=dict)  # TrainConfig overrides for every round


SIZES = {
    # Seconds with the tiny test model: just enough rows for every code path.
    "smoke": Sizes("smoke", (1, 2), cap=8, mix_n=6, task_n=8, gold_n=8, prompts_n=4, quality_n=8,
                   quality_steps=2, small_clean_n=4, fractions=(0.0, 0.5), sql_n=8, sql_steps=2,
                   eval_limit=2, train=dict(max_steps=2, n_val=4, epochs=1)),
    # 64 minutes on 2 cores for the whole notebook, measured (~240 steps of batch 8 + 19 evaluations of 50
    # items): toy-sized, so expect wide CIs. GEM's 1, 2 and 5 % subsets only (10, 20 and 100 % would
    # take hours here). One epoch per round at the quick preset's lr (2e-4: few steps must count);
    # 2 warm-up steps since rounds are short.
    "cpu": Sizes("cpu", (1, 2, 5), cap=None, mix_n=48, task_n=48, gold_n=48, prompts_n=48,
                 quality_n=96, quality_steps=16, small_clean_n=24, fractions=(0.0, 0.1, 0.3, 0.5),
                 sql_n=64, sql_steps=8, eval_limit=50,
                 train=dict(epochs=1, n_val=32, warmup_steps=2, lr=2e-4)),
    # A GPU box: every GEM subset and the full set, thousands of rows, the whole ViGGO test set.
    # Not run here: sizes are a starting point. One GPU: global batch 16 x 4.
    "gpu": Sizes("gpu", (1, 2, 5, 10, 20, 100), cap=None, mix_n=3000, task_n=3000, gold_n=2000,
                 prompts_n=2000, quality_n=2000, quality_steps=250, small_clean_n=500,
                 fractions=(0.0, 0.1, 0.3, 0.5), sql_n=2000, sql_steps=250, eval_limit=1083,
                 train=dict(epochs=3, grad_accum=4, lr=1e-5, n_val=200)),
}
SIZES["quick"] = SIZES["cpu"]


def sizes(preset: str) -> Sizes:
    """The sizes of a preset (smoke, quick, cpu, gpu)."""
    if preset not in SIZES:
        raise ValueError(f"unknown preset {preset!r}; expected one of {list(SIZES)}")
    return SIZES[preset]


def base_config(sz: Sizes, model: str, **overrides) -> train.TrainConfig:
    """The TrainConfig every round starts from: the train preset plus the sizes' overrides."""
    return train.preset(sz.train_preset, model=model, eval_limit=sz.eval_limit, **{**sz.train, **overrides})


def _subset(p: int) -> str:
    return "train" if p == 100 else f"challenge_train_{p}_percent"


def growing_data(sz: Sizes, prefix: str) -> list[Series]:
    """ViGGO's GEM subsets in growing order, continuing each time; and from scratch at each size."""
    def rnd(p: int, start: str) -> Round:
        return Round(f"pct-{p}", (Source("viggo", _subset(p), n=sz.cap),), start=start)

    chain = Series(f"{prefix}.growing", "viggo", tuple(rnd(p, "previous") for p in sz.percents))
    # The smallest size from scratch is the chain's first round: not trained twice.
    scratch = Series(f"{prefix}.growing-scratch", "viggo", tuple(rnd(p, "base") for p in sz.percents[1:]))
    return [chain, scratch]


def broad_to_specific(sz: Sizes, prefix: str, task: str = "viggo") -> list[Series]:
    """A mixed three-task round then a task round; against the same two budgets on the task alone."""
    third = sz.mix_n // 3
    mix = tuple(Source(t, n=third, offset=sz.task_n if t == task else 0) for t in ("viggo", "sql", "gsm8k"))
    specific = Round("specific", (Source(task, n=sz.task_n),))
    alone = Round("task-first", (Source(task, n=3 * third, offset=sz.task_n),))
    return [Series(f"{prefix}.broad-specific", task, (Round("broad", mix), specific)),
            Series(f"{prefix}.task-only", task, (alone, specific))]


def self_training(sz: Sizes, prefix: str, task: str = "viggo") -> list[Series]:
    """Gold round, then gold + the model's own answers that the task's scorer verifies."""
    gold = (Source(task, n=sz.gold_n),)
    return [Series(f"{prefix}.self-training", task, (
        Round("gold", gold),
        Round("gold+verified", gold, self_train=SelfTrain(sz.prompts_n, offset=sz.gold_n))))]


def quality(sz: Sizes, prefix: str) -> list[Series]:
    """Same steps from the base model: ViGGO at each corruption level, a small clean set; SQL filter off/on."""
    steps = {"max_steps": sz.quality_steps}
    noisy = tuple(Round(f"corrupt-{round(100 * f)}", (Source("viggo", n=sz.quality_n, corrupt=f),),
                        start="base", train=steps) for f in sz.fractions)
    small = Round(f"clean-{sz.small_clean_n}", (Source("viggo", n=sz.small_clean_n),), start="base", train=steps)
    sql = tuple(Round(f"filter-{'on' if on else 'off'}", (Source("sql", n=sz.sql_n, sql_filter=on),),
                      start="base", train={"max_steps": sz.sql_steps}) for on in (False, True))
    return [Series(f"{prefix}.quality-viggo", "viggo", noisy + (small,)),
            Series(f"{prefix}.quality-sql", "sql", sql)]


def planned_steps(series_list: list[Series], cfg: train.TrainConfig, cap: int | None = None) -> int:
    """Optimizer steps the series will take (self-training counted at its most): the time budget."""
    total = 0
    for s in series_list:
        for r in s.rounds:
            steps = r.train.get("max_steps", cfg.max_steps)
            if steps > 0:
                total += steps
                continue
            rows = sum(_rows(src, cap) for src in r.sources) + (r.self_train.n if r.self_train else 0)
            total += math.ceil(rows / cfg.batch_size) * math.ceil(cfg.epochs)
    return total


def _rows(src: Source, cap: int | None) -> int:
    """Rows a Source yields (before filters)."""
    from ftlib import rounds

    return len(rounds.source_rows(src)[0]) if src.n is None else src.n

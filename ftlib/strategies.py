"""The built-in round strategies and the quality experiment, sized per preset.

The sizes are the `rounds` of each preset's block in `ftlib/presets.py`. Each builder returns the
Series to run (the strategy and its comparison), e.g.

    sizes = strategies.sizes("cpu")
    for s in strategies.growing_data(sizes, "cpu"):
        rounds.run_series(s, strategies.base_config(sizes, model))
"""

from __future__ import annotations

import math

from ftlib import presets, train
from ftlib.presets import Sizes
from ftlib.rounds import Round, SelfTrain, Series, Source


def sizes(preset: str) -> Sizes:
    """The rounds sizes of a preset (ftlib/presets.py); a ValueError for one without rounds."""
    sz = presets.get(preset).rounds
    if sz is None:
        have = [name for name, p in presets.PRESETS.items() if p.rounds is not None]
        raise ValueError(f"preset {preset!r} has no rounds sizes; expected one of {have}")
    return sz


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

"""The built-in round strategies and the quality experiment, sized per preset.

The sizes are the `rounds` of each preset's block in `ftlib/presets.py`. Each builder returns the
Series to run (the strategy and its comparison), e.g.

    sizes = strategies.sizes(presets.CPU)
    for s in strategies.iterative(sizes, "cpu"):
        rounds.run_series(s, strategies.base_config(sizes, model))
"""

from __future__ import annotations

import math

from ftlib import presets, tasks, train_config
from ftlib.experiments import rounds
from ftlib.experiments.rounds import Round, SelfTrain, Series, Source
from ftlib.presets import Sizes


def sizes(p: presets.Preset) -> Sizes:
    """The rounds sizes of a resolved preset (ftlib/presets.py); a ValueError for one without rounds."""
    sz = p.rounds
    if sz is None:
        have = [name for name, p in presets.PRESETS.items() if p.rounds is not None]
        raise ValueError(f"PRESET = {p.name!r}: notebook 03 has no rounds of that size (its smallest real "
                         f"run is cpu's, 100 min on a 2-core CPU). Use one of {have}: 'smoke' shows every "
                         "step in minutes with a tiny model, 'cpu' runs the experiment, 'gpu' its scale-up")
    return sz


def base_config(sz: Sizes, model: str, **overrides) -> train_config.TrainConfig:
    """The TrainConfig every round starts from: the train preset plus the sizes' overrides."""
    return train_config.preset(sz.train_preset, model=model, eval_limit=sz.eval_limit, **{**sz.train, **overrides})


def _steps(sz: Sizes, rows: int) -> int:
    """Optimizer steps of `rows` rows under the sizes' training config."""
    return _rows_to_steps(rows, base_config(sz, "m"))


def _rows_to_steps(rows: int, cfg: train_config.TrainConfig, epochs: float | None = None) -> int:
    """Optimizer steps of `rows` rows for `epochs` (cfg's by default) at cfg's batch and accumulation."""
    return math.ceil(rows / (cfg.batch_size * cfg.grad_accum)) * math.ceil(cfg.epochs if epochs is None else epochs)


def iterative(sz: Sizes, prefix: str) -> list[Series]:
    """ViGGO in rounds of new gold rows, each round from the previous one; and, at equal steps, one
    run from the start model on all the rows those rounds saw (after each round in `scratch_at`)."""
    chain = Series(f"{prefix}.rounds", "viggo", tuple(
        Round(f"round-{k}", (Source("viggo", n=sz.round_n, offset=(k - 1) * sz.round_n),))
        for k in range(1, sz.n_rounds + 1)))
    scratch = Series(f"{prefix}.scratch", "viggo", tuple(
        Round(f"rows-{k * sz.round_n}", (Source("viggo", n=k * sz.round_n),), start="base")
        for k in sz.scratch_at))
    return [chain, scratch]


def self_training(sz: Sizes, prefix: str) -> list[Series]:
    """From round `st_from` of the iterative series: rounds on the model's own verified answers only,
    each capped at a gold round's steps (ViGGO); SQL's is in `sql`."""
    start = f"{prefix}.rounds/round-{sz.st_from}"
    first = sz.n_rounds * sz.round_n  # prompts after every gold row the rounds train on
    cap = {"max_steps": _steps(sz, sz.round_n)}
    return [Series(f"{prefix}.self-training", "viggo", tuple(
        Round(f"verified-{sz.st_from + j}", start=start if j == 1 else "previous", train=cap,
              self_train=SelfTrain(sz.st_prompts, offset=first + (j - 1) * sz.st_prompts))
        for j in range(1, sz.st_rounds + 1)), first=sz.st_from + 1)]


def quality(sz: Sizes, prefix: str) -> list[Series]:
    """From round `quality_from`: a round of `quality_n` new rows with each corrupted fraction, and half
    as many clean rows twice, once per seed; all at equal steps."""
    start = f"{prefix}.rounds/round-{sz.quality_from}"
    offset = sz.n_rounds * sz.round_n + sz.st_rounds * sz.st_prompts  # rows no other round uses
    epochs = base_config(sz, "m").epochs
    out = []
    for seed in sz.seeds:
        noisy = tuple(Round(f"corrupt-{round(100 * f)}-seed{seed}",
                            (Source("viggo", n=sz.quality_n, offset=offset, corrupt=f, seed=seed),),
                            start=start, train={"seed": seed}) for f in sz.fractions)
        small = Round(f"clean-{sz.quality_n // 2}x2-seed{seed}", (Source("viggo", n=sz.quality_n // 2, offset=offset),),
                      start=start, train={"seed": seed, "epochs": 2 * epochs})
        out.append(Series(f"{prefix}.quality-seed{seed}", "viggo", noisy + (small,), first=sz.quality_from + 1))
    return out


def sql(sz: Sizes, prefix: str) -> list[Series]:
    """SQL: a start model on `sql_n` filtered gold rows, then three rounds from it at equal steps:
    the next filtered gold rows (filter on), the same rows plus every row the filter drops from the
    whole split (filter off), and the model's own answers that execution match verifies."""
    gold = Round("gold", (Source("sql", n=sz.sql_n, sql_filter=True),), start="base")
    nxt = Source("sql", n=sz.sql_round_n, offset=sz.sql_n, sql_filter=True)
    cap = {"max_steps": _steps(sz, sz.sql_round_n)}
    return [Series(f"{prefix}.sql", "sql", (
        gold,
        Round("filter-on", (nxt,), start="gold", train=cap),
        Round("filter-off", (nxt, Source("sql", flagged_only=True)), start="gold", train=cap),
        Round("verified", start="gold", train=cap,
              self_train=SelfTrain(sz.sql_prompts, offset=sz.sql_n + sz.sql_round_n, sql_filter=True))))]


def broad_to_specific(sz: Sizes, prefix: str, task: str = "viggo") -> list[Series]:
    """A mixed three-task round then a task round; against the same two budgets on the task alone
    (not in `make rounds`; notebook 03's exercise)."""
    third = sz.mix_n // 3
    mix = tuple(Source(t, n=third, offset=sz.task_n if t == task else 0) for t in ("viggo", "sql", "gsm8k"))
    specific = Round("specific", (Source(task, n=sz.task_n),))
    alone = Round("task-first", (Source(task, n=3 * third, offset=sz.task_n),))
    return [Series(f"{prefix}.broad-specific", task, (Round("broad", mix), specific)),
            Series(f"{prefix}.task-only", task, (alone, specific))]


def all_series(sz: Sizes, prefix: str) -> dict[str, list[Series]]:
    """What `make rounds` runs, in order (self-training and quality start from the iterative series)."""
    return {"iterative": iterative(sz, prefix), "self_training": self_training(sz, prefix),
            "quality": quality(sz, prefix), "sql": sql(sz, prefix)}


def planned_steps(series_list: list[Series], cfg: train_config.TrainConfig) -> int:
    """Optimizer steps the series will take (self-training counted at its most): the time budget."""
    total = 0
    for s in series_list:
        for r in s.rounds:
            steps = r.train.get("max_steps", cfg.max_steps)
            if steps > 0:
                total += steps
                continue
            rows = sum(_rows(src) for src in r.sources) + (r.self_train.n if r.self_train else 0)
            total += _rows_to_steps(rows, cfg, r.train.get("epochs"))
    return total


def _rows(src: Source) -> int:
    """Rows a Source yields (before filters)."""
    return len(rounds.source_rows(tasks.get(src.task), src)[0]) if src.n is None else src.n

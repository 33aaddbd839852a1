"""Iterative fine-tuning: a Series is an ordered list of Rounds, and every Round is a run folder.

A Round = a data recipe (Sources: task, split or GEM subset, how many rows, filters, corruption;
optionally verified self-training) + where it starts ("previous", "base" or an earlier round's
name, passed to train as `TrainConfig.init_from`) + training overrides. Round k of series S lives in
`runs/<S.name>/<round k>/` with its data (`round_data.jsonl`) and recipe (`round.json`): a
finished round is skipped and an interrupted series resumes. Every round ends with the same
evaluation (the first `eval_limit` test items of the series' task), so rounds are comparable.

    s = Series("viggo-two", "viggo", (Round("r1", (Source("viggo", n=64),)),
                                      Round("r2", (Source("viggo", n=64, offset=64),))))
    folders = run_series(s, train_config.preset("cpu", eval_limit=50))
    rows = table([s])                          # plots.rounds(rows) draws them

The strategies (broad -> specific, growing data, verified self-training, quality) are in
`ftlib.experiments.strategies`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from ftlib import evals, io, paths, prepare, prompts, runs, sft, tasks, train
from ftlib.tasks import Task
from ftlib.train_config import TrainConfig


@dataclass(frozen=True)
class Source:
    """Rows of one task: split (prepared split, or a GEM ViGGO subset), slice, filter, corruption."""

    task: str
    split: str = "train"
    n: int | None = None  # rows after offset (None: all)
    offset: int = 0
    corrupt: float = 0.0  # fraction of labels corrupted (`Task.corrupt`; ViGGO: a wrong MR)
    sql_filter: bool = False  # drop the rows the task flags (`Task.flagged`; SQL: VARCHAR vs number)
    flagged_only: bool = False  # only the rows the task flags
    seed: int = 0


@dataclass(frozen=True)
class SelfTrain:
    """Verified self-training: the start model answers n training prompts; verified answers join the data."""

    n: int
    offset: int = 0  # where the prompts start in the train split (after the gold rows, say)
    sql_filter: bool = False  # SQL: prompts from the filtered split (offset counts its rows)


@dataclass(frozen=True)
class Round:
    """One fine-tuning round: data recipe, starting point and training overrides."""

    name: str
    sources: tuple[Source, ...] = ()
    start: str = "previous"  # "previous", "base", an earlier round of the series, or "<series>/<round>"
    self_train: SelfTrain | None = None
    train: dict = field(default_factory=dict)  # TrainConfig overrides, e.g. {"max_steps": 20}


@dataclass(frozen=True)
class Series:
    """An ordered list of rounds; `name` is the experiment (runs/<name>/), `task` the evaluation task,
    `first` the number of its first round (a series that goes on from another's round 2 starts at 3)."""

    name: str
    task: str
    rounds: tuple[Round, ...]
    first: int = 1


def source_rows(t: Task, src: Source) -> tuple[list[dict], dict]:
    """The rows of a Source of task `t` (its `src.task` resolved), and what round.json records about them."""
    rows = prepare.split_rows(t, src.split)
    dropped = 0
    if src.sql_filter or src.flagged_only:
        if t.flagged is None:
            raise ValueError(f"task {t.name!r} flags no rows: its Source cannot filter them")
        flagged = [t.flagged(r) for r in rows]
        kept = [r for r, f in zip(rows, flagged) if f == src.flagged_only]
        dropped = len(rows) - len(kept) if src.sql_filter else 0  # flagged_only selects, drops nothing
        rows = kept
    rows = rows[src.offset:][: src.n]
    if src.corrupt:
        if t.corrupt is None:
            raise ValueError(f"task {t.name!r} declares no way to corrupt its labels")
        rows = t.corrupt(rows, src.corrupt, src.seed)
    info = {**dataclasses.asdict(src), "rows": len(rows), "dropped_by_filter": dropped,
            "corrupted": sum(r.get("corrupted", False) for r in rows)}
    return rows, info


def answer_row(t: Task, row: dict, prediction: str) -> dict:
    """The row with the model's answer in place of the gold one (what self-training learns)."""
    if t.with_answer is None:
        raise ValueError(f"task {t.name!r} declares no with_answer: it cannot self-train")
    return t.with_answer(row, prediction)


def keep_verified(t: Task, rows: list[dict], predictions: list[str]) -> list[dict]:
    """Rows carrying the model's answer, only where the task's strict scorer verifies it
    (the declaration's `strict` metric: ViGGO exact, SQL execution match, else the headline)."""
    metric = t.strict or t.primary
    return [answer_row(t, r, p) for r, p in zip(rows, predictions)
            if tasks.safe_score(t, p, r)[0][metric]]


def self_train_rows(t: Task, spec: SelfTrain, model_spec: str, fmt: str) -> tuple[list[dict], dict]:
    """Let the model answer spec.n training prompts; return the verified rows and the counts."""
    from ftlib.backends.local import LocalGenerator

    rows = source_rows(t, Source(t.name, n=spec.n, offset=spec.offset, sql_filter=spec.sql_filter))[0]
    style = "special" if fmt == "special" else "chat"
    gen = LocalGenerator.from_spec(model_spec)
    texts, stop = prompts.batch(t, rows, style, gen.tokenizer)
    outs = gen.generate(texts, t.max_new_tokens, stop)
    kept = keep_verified(t, rows, outs)
    return kept, {"prompts": len(rows), "kept": len(kept), "model": paths.shown(model_spec)}


def round_examples(rnd: Round, task: Task, start_spec: str, fmt: str, seed: int) -> tuple[list[dict], dict]:
    """The round's prompt-completion examples (sources + verified answers, shuffled) and its record."""
    examples, info = [], {"round": rnd.name, "sources": [], "self_train": None}
    for src in rnd.sources:
        src_task = tasks.get(src.task)  # a Source names its task: the spec enters here
        rows, src_info = source_rows(src_task, src)
        examples += [prompts.sft_example(src_task, r, fmt) for r in rows]
        info["sources"].append(src_info)
    if rnd.self_train:
        kept, info["self_train"] = self_train_rows(task, rnd.self_train, start_spec, fmt)
        examples += [prompts.sft_example(task, r, fmt) for r in kept]
    random.Random(seed).shuffle(examples)  # a mixture is interleaved, not one task after another
    info["examples"] = len(examples)
    return examples, info


def round_dir(series: Series, name: str) -> Path:
    """runs/<series>/<round>/."""
    return runs.run_dir(series.name, name)


def round_config(series: Series, i: int, base: TrainConfig) -> TrainConfig:
    """Round i's TrainConfig: base + the round's overrides, starting where the round says."""
    rnd = series.rounds[i]
    start = series.rounds[i - 1].name if rnd.start == "previous" and i > 0 else rnd.start
    names = [r.name for r in series.rounds[:i]]
    if "/" in start:  # another series' round: run that series first
        init = str(runs.run_dir(*start.split("/", 1)))
    elif start not in ("base", "previous") and start not in names:
        raise ValueError(f"round {rnd.name!r} starts from {start!r}: not an earlier round of {series.name}"
                         " (nor '<series>/<round>')")
    else:
        init = str(round_dir(series, start)) if start in names else None
    return dataclasses.replace(base, task=series.task, experiment=series.name, name=rnd.name,
                               init_from=init, **{"n_train": None, **rnd.train})


def run_round(series: Series, i: int, base: TrainConfig, callbacks=(), fresh_process: bool | None = None) -> Path:
    """Build (or reuse) round i's data, train it into its run folder, evaluate; skip if done.

    The training (and its evaluation) runs in a fresh Python process (`train.run_in_fresh_process`)
    unless callbacks are given, which run in this process."""
    fresh = not callbacks if fresh_process is None else fresh_process
    if fresh and callbacks:
        raise ValueError("callbacks run in this process: pass fresh_process=False with them")
    cfg = round_config(series, i, base)
    folder = round_dir(series, cfg.name)
    if runs.is_done(folder):
        return folder
    data_path = folder / "round_data.jsonl"
    if not data_path.exists():  # else resuming: the same examples, not a second round of self-training
        examples, info = round_examples(series.rounds[i], tasks.get(series.task), sft.start_spec(cfg), cfg.fmt,
                                        cfg.seed)
        io.write_json(folder / "round.json", info)
        io.write_text_atomic(data_path, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    if data_path.stat().st_size == 0:
        return untrained_round(cfg, folder)
    cfg = dataclasses.replace(cfg, train_file=str(data_path))
    return train.run_in_fresh_process(cfg) if fresh else train.run(cfg, callbacks=callbacks)


def untrained_round(cfg: TrainConfig, folder: Path) -> Path:
    """A round with nothing to train on (self-training that verified no answer): its model is the
    model it starts from (a link to it), evaluated like every round, so the series goes on."""
    start = Path(sft.start_spec(cfg))
    if not start.is_dir():
        raise ValueError(f"round {cfg.name!r} has no examples and starts from {start}, not a run folder")
    link = folder / "model"
    if not link.exists():
        link.symlink_to(os.path.relpath(start.resolve(), folder.resolve()), target_is_directory=True)
    print(f"[rounds] {cfg.name}: no examples, the round keeps the model it starts from")
    runs.finish(folder, {"global_step": 0, "wall_seconds": 0.0, "untrained": "no examples",
                         "eval": train.evaluate_run(cfg, folder)})
    return folder


def run_series(series: Series, base: TrainConfig, callbacks=(), fresh_process: bool | None = None) -> list[Path]:
    """Run every round in order (finished ones skipped); return their folders. Each round trains in
    its own process unless callbacks are given (`run_round`)."""
    return [run_round(series, i, base, callbacks, fresh_process) for i in range(len(series.rounds))]


def base_score(task: str, base: TrainConfig, experiment: str) -> dict | None:
    """The untrained start model under the same evaluation (round 0 of every series)."""
    from ftlib import harness

    out = runs.run_dir(experiment, f"base-{task}") / "eval"
    return harness.evaluate(base.model, task, "test", style=base.eval_style, limit=base.eval_limit,
                            out_dir=out)


def _score_row(series: str, index: int, name: str, summary: dict | None, task: Task) -> dict:
    """The headline with its interval, and the metrics the task shows beside it (`Task.rounds_metrics`)."""
    metrics = (summary or {}).get("metrics", {})
    score = evals.Score.of(metrics.get(task.primary))
    row = {"series": series, "round": index, "name": name, "metric": task.primary, **score.named("score"),
           "n": score.n}
    for extra in task.rounds_metrics:
        row.update(evals.Score.of(metrics.get(extra)).named(extra))
    return row


def round_numbers(series: Series) -> dict[str, int]:
    """Each round's number: one more than the round it starts from (the start model is round 0; a
    round starting from another series' round is numbered `series.first`)."""
    out: dict[str, int] = {}
    for i, rnd in enumerate(series.rounds):
        start = series.rounds[i - 1].name if rnd.start == "previous" and i > 0 else rnd.start
        out[rnd.name] = (series.first if "/" in start or (rnd.start == "previous" and i == 0)
                         else 1 if start == "base" else out[start] + 1)
    return out


def table(series_list: list[Series], base: dict | None = None) -> list[dict]:
    """One row per finished round: score with CI, examples, verified answers kept, steps, seconds."""
    out = []
    for s in series_list:
        task = tasks.get(s.task)
        if base is not None:
            out.append({**_score_row(s.name, 0, "base", base, task), "start": "-"})
        numbers = round_numbers(s)
        for rnd in s.rounds:
            i = numbers[rnd.name]
            folder = round_dir(s, rnd.name)
            if not runs.is_done(folder):
                continue
            summary, info = io.read_json(folder / "summary.json"), io.read_json(folder / "round.json")
            st, srcs = info.get("self_train") or {}, info["sources"]
            out.append({**_score_row(s.name, i, rnd.name, summary.get("eval"), task),
                        "start": rnd.start, "examples": info["examples"],
                        "corrupted": sum(x["corrupted"] for x in srcs),
                        "dropped_by_filter": sum(x["dropped_by_filter"] for x in srcs),
                        "kept": st.get("kept"), "prompts": st.get("prompts"),
                        "steps": summary["global_step"], "wall_s": runs.training_seconds(summary)})
    cols = list(dict.fromkeys(k for r in out for k in r))  # base rows lack the training columns
    return [{c: r.get(c) for c in cols} for r in out]


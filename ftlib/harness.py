"""The one evaluation entry point: (model, task, split, prompt style, limit) -> predictions + summary.

Writes into `out_dir`:
- `config.json`: what is being evaluated (a rerun with another config in the same folder is refused);
- `predictions.jsonl`: one line per example (idx, input, reference, prediction, scores), appended
  per batch, so an interrupted run continues where it stopped (a truncated last line is dropped; a
  damaged line elsewhere is named and only its item generated again);
- `summary.json`, written atomically at the end: every metric of the task with its 95%
  confidence interval and n, timing and tokens/s, and the hashes of what they came from (`sources`).
  A folder with a summary is finished and skipped while those hashes hold. Otherwise only what
  changed is redone, and said: a changed scorer (its code, `Task.scorer_id`) or an item's row (a
  reference edited) rescores the stored predictions; an item's prompt, or the model's files,
  generates them again (`ftlib.sources`).

The items are the first `limit` rows of the prepared split (`prepare.evaluation_items`), the same rows training
reads: SQL rows whose gold query does not execute on its own context are not among them (the summary
counts them in the whole split as `unusable_in_split`). `task` is any spec of `ftlib.tasks.get`: a
built-in name or a user's task file. A scorer that raises on an output scores that item as failed;
its line says why (`scorer_error`) and the summary counts them (`scorer_errors`).

    python -m ftlib.harness --model smollm2-135m-instruct --task viggo --split test \
        --style few_shot --limit 200 --out runs/baselines/viggo-few_shot
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from tqdm.auto import tqdm

from ftlib import backends, evals, io, paths, prepare, prompts, scorers, sources, tasks
from ftlib.backends import Generator
from ftlib.tasks import Task, gsm8k

CHUNK = 96  # examples per generate call: the unit of resumption (and of length sorting) ...


def chunk_size(gen: Generator) -> int:
    """... or two of the generator's batches, when those are larger (a GPU's batch of 512)."""
    return max(CHUNK, 2 * getattr(gen, "batch_size", 0))


def default_out_dir(model: str, task: Task, split: str, style: str) -> Path:
    """runs/eval/<model>-<task>-<split>-<style>, the model spec made into a folder name."""
    name = re.sub(r"[^\w.-]+", "_", Path(model).name if Path(model).exists() else model)
    return paths.runs_dir() / "eval" / f"{name}-{task.name}-{split}-{style}"


def read_predictions(path: Path) -> list[dict]:
    """Rows written so far. A damaged line (not UTF-8, not Unicode, not a JSON record) is named and
    left out, so its item is generated again, and the rows after it are kept; a last line cut short
    by an interruption goes quietly. The file is then rewritten without them."""
    if not path.exists():
        return []
    good, damaged = [], False
    for lineno, raw in io.read_lines(path):
        where = f"{path}:{lineno}"
        try:
            row = io.parse_line(raw, where)
            if not (isinstance(row, dict) and isinstance(row.get("idx"), int)
                    and isinstance(row.get("prediction"), str)):
                raise io.DataFormatError(f"{where}: expected a record with an integer 'idx' and a 'prediction'")
            good.append(row)
        except io.DataFormatError as e:
            damaged = True
            if raw.endswith(b"\n"):  # a whole line that is damaged, not the cut end of an interruption
                print(f"warning: {e}; left out, its item is generated again")
    if damaged:
        io.write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in good))
    return good


def _record(idx: int, task: Task, row: dict, prediction: str, seconds: float, truncated: bool | None,
            hashes: dict) -> dict:
    """One predictions.jsonl line (`idx`: the item's number in the prepared split), scored later.
    `truncated`: the answer hit the token budget before it ended (None: the backend cannot tell);
    `hashes`: its row's and prompt's (`sources.item_hashes`)."""
    rid = task.row_id(row) if task.row_id else None
    return {"idx": idx, "id": idx if rid is None else rid, "input": task.question(row),
            "reference": task.reference(row), "prediction": prediction, "scores": None, "seconds": seconds,
            "truncated": truncated, **hashes}


SCORE_TIMEOUT_S = 30.0  # per item: a scorer that takes longer is stuck (SQL's own bounds are tighter)


def score_records(task: Task, records: dict[int, dict], rows: dict[int, dict], pred_path: Path) -> None:
    """Score the records not yet scored by this scorer (`Task.scorer_id`), each in a bounded worker
    (`scorers.Bounded`), and rewrite predictions.jsonl whole once they are."""
    todo = [i for i, r in records.items() if r.get("scores") is None or r.get("scorer", "") != task.scorer_id]
    if not todo:
        return
    with scorers.Bounded(task.score, SCORE_TIMEOUT_S) as score:
        for i in tqdm(todo, unit="ex", desc="scoring", leave=False):
            scores, error = tasks.safe_score(task, records[i]["prediction"], rows[i], score)
            records[i].pop("scorer_error", None)
            records[i].update(scores=scores, **({"scorer_error": error} if error else {}),
                              **({"scorer": task.scorer_id} if task.scorer_id else {}))
    io.write_text_atomic(pred_path, "".join(json.dumps(records[i], ensure_ascii=False) + "\n"
                                            for i in sorted(records)))


def check_context(gen: Generator, rendered: dict[int, object], max_new: int) -> None:
    """Refuse, before any generation, an item whose prompt and answer do not fit the local model's
    context (a huge few-shot example or input would otherwise take minutes and gigabytes, then fail
    or answer garbage). Generators without a tokenizer (an API) leave this to their server."""
    tok = getattr(gen, "tokenizer", None)
    context = getattr(getattr(getattr(gen, "model", None), "config", None), "max_position_embeddings", None)
    if tok is None or not isinstance(context, int):
        return
    for i, prompt in rendered.items():
        if not isinstance(prompt, str):
            continue
        n = len(tok(prompt, add_special_tokens=False).input_ids)
        if n + max_new > context:
            raise ValueError(f"item {i}: its prompt is {n} tokens and its answer may take {max_new}, over the "
                             f"model's context of {context} tokens; shorten the input or the few-shot "
                             "examples (few_shot: 0 leaves them out)")


def _run_chunks(gen: Generator, task: Task, style: str, todo: list, pred_path: Path, bar, max_new: int,
                hashes: dict) -> None:
    """Generate the remaining examples, appending each chunk as it finishes (unscored: scoring
    comes after, so a scorer problem never costs the generation)."""
    texts, stop = prompts.batch(task, [r for _, r in todo], style, None if gen.wants_messages else gen.tokenizer)
    rendered = {i: text for (i, _), text in zip(todo, texts)}
    check_context(gen, rendered, max_new)
    size = chunk_size(gen)
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        t0 = time.perf_counter()
        outs = gen.generate([rendered[i] for i, _ in chunk], max_new, stop)
        per = (time.perf_counter() - t0) / len(chunk)
        cut = getattr(gen, "truncated", None)
        cut = cut if isinstance(cut, list) and len(cut) == len(chunk) else [None] * len(chunk)
        io.append_jsonl(pred_path, [_record(i, task, r, o, per, c, hashes[i])
                                    for (i, r), o, c in zip(chunk, outs, cut)])
        bar.update(len(chunk))


def summarize_run(cfg: dict, task: Task, records: list[dict], unusable: int, gen: Generator | None) -> dict:
    """The summary: each metric with its CI and n, plus timing and the evaluated config."""
    metrics = evals.summarize([r["scores"] for r in records])
    seconds = sum(r.get("seconds", 0.0) for r in records)
    stats = getattr(gen, "stats", None)
    return {**cfg, "n": len(records), "unusable_in_split": unusable,
            "scorer_errors": sum("scorer_error" in r for r in records), "primary": task.primary,
            "max_new_tokens": cfg.get("max_new_tokens", task.max_new_tokens), "truncated": truncated_share(records),
            "metrics": {m: metrics[m] for m in task.metrics if m in metrics},
            "generation_seconds": round(seconds, 2),
            "examples_per_s": round(len(records) / seconds, 3) if seconds else None,
            "tokens_per_s_this_session": round(stats.tokens_per_s, 1) if stats and stats.seconds else None}


def truncated_share(records: list[dict]) -> float | None:
    """The share of answers that hit their token budget; None where a record does not say (a backend
    that cannot tell, a file older than the flag).

    >>> truncated_share([{"truncated": True}, {"truncated": False}]), truncated_share([{"truncated": True}, {}])
    (0.5, None)
    """
    flags = [r.get("truncated") for r in records]
    return None if not flags or None in flags else round(sum(flags) / len(flags), 4)


TOOLS = {"calculator": gsm8k.calculator}  # decoding tools a local model can use (LocalGenerator.tool)


def evaluate(model: str | Generator, task: str | Task, split: str = "test", style: str = "chat",
             limit: int | None = None, out_dir: str | Path | None = None, tool: str | None = None,
             max_new_tokens: int | None = None, **gen_kw) -> dict:
    """Evaluate a model spec (or a Generator) on a task split; returns the summary dict.

    `task`: a Task, or a spec resolved here once (config.json keeps the spec as given, a Task's name).
    `tool`: a name in TOOLS, e.g. "calculator" for GSM8K (recorded in the summary).
    `max_new_tokens`: the answer's token budget, default the task's (recorded where it differs).

    >>> evaluate("smollm2-135m-instruct", "viggo", "test", "few_shot", limit=50)  # doctest: +SKIP
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit={limit!r}: expected an integer >= 1, or None (every item)")
    size = gen_kw.get("batch_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"batch_size={size!r}: expected an integer >= 1, or None (the backend's own)")
    t = tasks.get(task)
    style = prompts.RENAMED_STYLES.get(style, style)
    if style not in prompts.STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {prompts.STYLES}")
    name = model if isinstance(model, str) else getattr(model, "spec", None) or type(model).__name__
    if Path(name).is_absolute():  # a model folder: relative to the repo, summaries travel between machines
        name = paths.shown(name)
    out = Path(out_dir) if out_dir else default_out_dir(name, t, split, style)
    cfg = {"model": name, "task": task if isinstance(task, str) else t.name, "split": split, "style": style,
           "limit": limit}
    if max_new_tokens is not None and max_new_tokens != t.max_new_tokens:
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens!r}: expected an integer >= 1")
        cfg["max_new_tokens"] = max_new_tokens  # only where it differs: older folders stay finished
    if tool is not None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; expected one of {list(TOOLS)}")
        cfg["tool"], gen_kw["tool"] = tool, TOOLS[tool]
    items, unusable = prepare.evaluation_items(t, split, limit)
    hashes = sources.item_hashes(t, items, style)
    src = sources.summary_sources(hashes, t.scorer_id, sources.model_stamp(model if isinstance(model, str)
                                                                           else name, name))
    if (out / "summary.json").exists() and _same(saved := io.read_json(out / "summary.json"), cfg, t) \
            and saved.get("sources") == src:
        return saved  # finished, from these rows and prompts, by this scorer and model: skip
    with io.folder_lock(out, "an evaluation"):  # one process per folder: no item written twice
        _claim(out, cfg, src["model"])
        summary, records = _evaluate_in(out, cfg, t, model, gen_kw, items, unusable, hashes)
        summary["sources"] = src
        io.write_json(out / "summary.json", summary)
    _warn_scorer_errors(summary, records, out)
    return summary


def _evaluate_in(out: Path, cfg: dict, task: Task, model: str | Generator, gen_kw: dict, items: list,
                 unusable: int, hashes: dict) -> tuple[dict, dict]:
    """Generate the missing items, score the unscored: (summary, records); the caller writes it."""
    wanted, rows, pred_path = {i for i, _ in items}, dict(items), out / "predictions.jsonl"
    stored = read_predictions(pred_path)
    done = {r["idx"]: r for r in stored if r["idx"] in wanted}
    if notes := sources.reconcile(task, done, rows, hashes):  # rows or prompts changed since: say so
        print(f"note: {paths.shown(out)}: " + "; ".join(notes))
        kept = [r for r in stored if r["idx"] not in wanted or done.get(r["idx"]) is r]
        io.write_text_atomic(pred_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    todo = [(i, r) for i, r in items if i not in done]
    gen = backends.from_spec(model, **gen_kw) if todo else None
    with tqdm(total=len(items), initial=len(done), unit="ex", desc=f"{task.name}/{cfg['style']}") as bar:
        if todo:
            _run_chunks(gen, task, cfg["style"], todo, pred_path, bar, cfg.get("max_new_tokens", task.max_new_tokens),
                        hashes)
    records = {r["idx"]: r for r in read_predictions(pred_path) if r["idx"] in wanted}
    score_records(task, records, rows, pred_path)
    summary = summarize_run(cfg, task, [records[i] for i in sorted(records)], unusable, gen)
    if task.scorer_id:
        summary["scorer"] = task.scorer_id
    return summary, records


def _warn_scorer_errors(summary: dict, records: dict, out: Path) -> None:
    if summary["scorer_errors"]:
        first = next(r for _, r in sorted(records.items()) if "scorer_error" in r)
        print(f"warning: the scorer raised on {summary['scorer_errors']} of {summary['n']} outputs (scored as "
              f"failed), first on item {first['idx']}: {first['scorer_error']} (see {out / 'predictions.jsonl'})")


def _same(saved: dict, cfg: dict, task: Task) -> bool:
    """Whether a finished summary answers this config (a summary without a budget used the task's)."""
    budget = cfg.get("max_new_tokens", task.max_new_tokens)
    return all(saved.get(k) == v for k, v in cfg.items()) and saved.get("tool") == cfg.get("tool") \
        and saved.get("max_new_tokens", task.max_new_tokens) == budget


def _claim(out: Path, cfg: dict, model_stamp: str) -> None:
    """Write config.json, refusing a folder that holds another evaluation's predictions; a model
    whose files changed since (`sources.model_stamp`) has every item generated again."""
    path = out / "config.json"
    if path.exists():
        old = io.read_json(path)
        if any(old.get(k) != cfg.get(k) for k in ("model", "task", "split", "style", "tool", "max_new_tokens")):
            raise ValueError(f"{out} holds an evaluation of {old}; not mixing in {cfg}")
        if old.get("model_stamp", model_stamp) != model_stamp and (out / "predictions.jsonl").exists():
            print(f"note: {paths.shown(out)}: the model's files changed since its predictions were made: "
                  "generating every item again")
            (out / "predictions.jsonl").unlink()
    io.write_json(path, {**cfg, "model_stamp": model_stamp})


def main(argv: list[str] | None = None) -> None:
    """Command line: evaluate one model on one task and print the summary's metrics."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.harness", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct", help="model spec, or api:NAME")
    ap.add_argument("--task", required=True, help="viggo, sql, gsm8k or a task file (.json)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--style", default="chat", choices=prompts.STYLES + tuple(prompts.RENAMED_STYLES))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None, help="output folder inside runs/ (default runs/eval/<model>-<task>-...)")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--tool", choices=list(TOOLS), help="a decoding tool, e.g. calculator (GSM8K notes)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="the answer's token budget (default: the task's)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit {args.limit}: expected an integer >= 1 (leave it out for every item)")
    if args.batch_size is not None and args.batch_size < 1:
        ap.error(f"--batch-size {args.batch_size}: expected an integer >= 1 (leave it out for the backend's own)")
    if args.out is not None:
        try:
            paths.inside_runs(args.out)  # no evaluation written outside runs/, nor a name too long
        except ValueError as e:
            ap.error(f"--out {args.out}: {e}")
    kw = {"batch_size": args.batch_size} if args.batch_size else {}
    try:
        s = evaluate(args.model, args.task, args.split, args.style, args.limit, args.out, tool=args.tool,
                     max_new_tokens=args.max_new_tokens, **kw)
    except (io.FolderBusy, io.WriteError) as e:  # another process holds the folder, or a full disk:
        raise SystemExit(f"error: {e}") from None  # what and what to do, without a traceback
    for m, v in s["metrics"].items():
        print(f"{m:18s} {v['mean']:.3f}  [{v['ci_low']:.3f}, {v['ci_high']:.3f}]  n={v['n']}")


if __name__ == "__main__":
    main()

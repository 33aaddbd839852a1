"""Fair untuned baselines for the size comparison: a token budget that cuts (almost) no answer, and
each model's better prompt style, chosen on the validation split, never on test.

- `truncated`: an answer that hit its token budget before it ended. The harness records it for every
  new answer; `mark` fills it in for committed predictions made before it did (the answer, tokenized
  again by its model's tokenizer, fills the budget it was made with).
- `extend`: an answer that hit an older, smaller budget is continued from where it stopped, up to the
  new budget. Under greedy decoding this is the answer the larger budget would have given (the model
  sees the same prompt and the same first tokens); answers that ended within the old budget are the
  same under any larger one, so only the cut ones need generating.
- `validate`: each Qwen model in every prompting of `TRIED` on the first `VAL_N` validation items;
  `chosen` picks the better one per (task, model) by the comparison's metric.

    python -m ftlib.experiments.baselines mark
    python -m ftlib.experiments.baselines extend --task gsm8k --model qwen2.5-coder-1.5b --style zero_shot
    python -m ftlib.experiments.baselines validate --task gsm8k
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ftlib import evals, harness, io, models, paths, prepare, prompts, report, tasks
from ftlib.backends.local import LocalGenerator
from ftlib.tasks import Task, gsm8k


@dataclass(frozen=True)
class Prompting:
    """How an untuned model is asked: a prompt style, and for few-shot text the number of examples."""

    style: str
    shots: int | None = None  # None: the task's own few-shot count
    program: bool = False  # answered by a program the sandbox runs (`gsm8k.as_program`)


# zero-shot chat, few-shot chat (the task's 3 worked examples), and for GSM8K the protocol of Qwen's
# report (4 worked examples as plain text, answered greedily) and program-of-thought (a Python program
# whose printed number is the answer: a code model computes instead of doing arithmetic in words).
PROMPTINGS = {"zero_shot": Prompting("zero_shot"), "few_shot": Prompting("few_shot"),
              "four_shot_text": Prompting("few_shot_text", shots=4), "program": Prompting("zero_shot", program=True)}
TRIED = {"viggo": ("zero_shot", "few_shot"), "sql": ("zero_shot", "few_shot"),
         "gsm8k": ("zero_shot", "few_shot", "four_shot_text", "program")}
# Token budgets where the task's own is too small for an untuned model's answer. Qwen's chat answers to
# GSM8K run 150-400 tokens (LaTeX steps, a boxed result) and 34 % of them hit the old 320.
BUDGET = {("gsm8k", "zero_shot"): 1024, ("gsm8k", "few_shot"): 768, ("gsm8k", "four_shot_text"): 512,
          ("gsm8k", "program"): gsm8k.PROGRAM_BUDGET}
VAL_N = 100  # validation items per (task, model, prompting): the style choice's sample
OLD_BUDGET = 320  # GSM8K's budget before BUDGET: what `extend` continues from


# Each untuned chat model is asked in one style per task: few-shot where the output has a format to
# copy (ViGGO's meaning representation, SQL in tags), zero-shot on GSM8K, where an instruction model
# reasons in its own words (and few-shot prompts cost ~500 more tokens a question).
STYLE = {"viggo": "few_shot", "sql": "few_shot", "gsm8k": "zero_shot"}
QWEN = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
# The score every column of a task is compared on: the task's headline, except on GSM8K. Its headline,
# strict-match, needs the `#### <number>` line the tuned models learned; an untuned chat model asked for
# it mostly ends with \boxed{18} or "the answer is 18" instead, so strict-match would measure the format,
# not the reasoning. lm-evaluation-harness's other GSM8K figure, flexible-extract (the last number in
# the answer), compares the reasoning of every column alike.
METRIC = {"viggo": "attribute_types", "sql": "execution_match", "gsm8k": "flexible_extract"}


@dataclass(frozen=True)
class Column:
    """One model in the comparison: its label, size, whether it was fine-tuned, and its predictions."""

    label: str
    params: float  # the published parameter count
    tuned: bool
    file: str  # predictions file name pattern, `{task}` and `{style}` filled in per task
    folder: str = "full"  # results/<folder>/predictions/


# Published sizes. The Qwen GGUF files carry an untied copy of the embeddings as their output layer,
# so they convert to 0.63 B and 1.78 B parameters; the models themselves are the 0.49 B and 1.54 B ones.
COLUMNS = (
    Column("SmolLM2-135M fine-tuned", 135e6, True, "{task}-fine-tuned.jsonl"),
    Column("SmolLM2-135M untuned", 135e6, False, "{task}-untuned-{style}.jsonl"),
    Column("Gemma 3 270M base, untuned", 268e6, False, "{task}-gemma3-270m-few_shot_text.jsonl"),
    Column("Qwen2.5-Coder-0.5B untuned", 494e6, False, "{task}-qwen2.5-coder-0.5b-{style}.jsonl", "size"),
    Column("Qwen2.5-Coder-1.5B untuned", 1.54e9, False, "{task}-qwen2.5-coder-1.5b-{style}.jsonl", "size"),
    Column("Qwen2.5-Coder-0.5B fine-tuned", 494e6, True, "{task}-qwen2.5-coder-0.5b-fine-tuned.jsonl", "size"),
)
SMALL_TUNED, LARGE_UNTUNED, LARGER_TUNED = COLUMNS[0].label, COLUMNS[4].label, COLUMNS[5].label


def task_for(task: str, prompting: str) -> Task:
    """The task as this prompting asks it (its few-shot count and answer budget)."""
    t, p = tasks.get(task), PROMPTINGS[prompting]
    t = gsm8k.as_program(t) if p.program else t
    changes = {"max_new_tokens": budget(t, prompting)}
    if p.shots is not None:
        changes["few_shot"] = p.shots
    return dataclasses.replace(t, **changes)


def budget(t: Task, prompting: str) -> int:
    """The answer budget of a task in a prompting (BUDGET, else the task's own)."""
    return BUDGET.get((t.name, prompting), t.max_new_tokens)


def hit_budget(text: str, tokenizer, limit: int) -> bool:
    """Whether a stored answer filled its budget: its tokens, counted again, reach `limit` (an answer
    cut at a stop string or ended by EOS is shorter)."""
    return len(tokenizer(text, add_special_tokens=False).input_ids) >= limit


def mark(path: Path, model: str, limit: int) -> int:
    """Fill `truncated` in a committed predictions file where it is missing; returns how many hit."""
    records = list(io.iter_jsonl(path))
    todo = [r for r in records if r.get("truncated") is None]
    if todo:
        tok = models.load_tokenizer(model)
        for r in todo:
            r["truncated"] = hit_budget(r["prediction"], tok, limit)
        write_records(path, records)
    return sum(bool(r.get("truncated")) for r in records)


def extend(path: Path, model: str, task: str, prompting: str, old: int = OLD_BUDGET, batch: int = 16,
           new: int | None = None) -> dict:
    """Continue every answer of a committed predictions file that hit `old` tokens, up to the
    prompting's budget (or `new`); rescore them; write the file after each batch (an interruption
    loses at most one batch). Returns counts."""
    t = task_for(task, prompting)
    t = dataclasses.replace(t, max_new_tokens=new) if new else t
    records = list(io.iter_jsonl(path))
    gen = LocalGenerator.from_spec(model)
    for r in records:
        if r.get("truncated") is None:
            r["truncated"] = hit_budget(r["prediction"], gen.tokenizer, old)
    todo = [r for r in records if r["truncated"] and r.get("budget", old) < t.max_new_tokens]
    rows = dict(prepare.evaluation_items(t, "test", None)[0])
    _, stop = prompts.batch(t, [], PROMPTINGS[prompting].style, gen.tokenizer)
    for start in tqdm(range(0, len(todo), batch), desc=f"extend {path.stem}", unit="batch"):
        part = todo[start:start + batch]
        texts = [prompts.render(t, rows[r["id"]], PROMPTINGS[prompting].style, gen.tokenizer) + r["prediction"]
                 for r in part]
        outs = gen.generate(texts, t.max_new_tokens - old, stop)
        for r, out, cut in zip(part, outs, gen.truncated):
            r["prediction"] += out
            r.update(truncated=cut, budget=t.max_new_tokens, extended_from=old,
                     scores=t.score(r["prediction"], rows[r["id"]]))
        write_records(path, records)
    return {"continued": len(todo), "still_truncated": sum(bool(r.get("truncated")) for r in records)}


def write_records(path: Path, records: list[dict]) -> None:
    """Rewrite a predictions file whole, atomically."""
    io.write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def val_dir(alias: str, prompting: str, task: str, runs_root: Path | None = None) -> Path:
    """A validation evaluation's folder: runs/size/val/<alias>-<prompting>-<task>."""
    return (runs_root or paths.runs_dir()) / "size" / "val" / f"{alias}-{prompting}-{task}"


def val_file(alias: str, prompting: str, task: str, root: Path | None = None) -> Path:
    """Its committed per-item predictions: results/size/validation/<task>-<alias>-<prompting>.jsonl."""
    return (root or paths.results_dir()) / "size" / "validation" / f"{task}-{alias}-{prompting}.jsonl"


def validate(task: str, models: tuple[str, ...], n: int = VAL_N, promptings: tuple[str, ...] = ()) -> list[Path]:
    """Evaluate each model in every prompting of TRIED[task] (or those given) on the first `n`
    validation items (resumes), and copy the predictions to results/size/validation/."""
    found = {}
    for alias in models:
        for p in promptings or TRIED[task]:
            out = val_dir(alias, p, task)
            harness.evaluate(alias, task_for(task, p), "validation", PROMPTINGS[p].style, limit=n, out_dir=out)
            found[(task, f"{alias}-{p}")] = out
    return report.export_predictions(found, paths.results_dir() / "size" / "validation")


def val_scores(task: str, alias: str, metric: str, root: Path | None = None) -> dict[str, dict]:
    """{prompting: score row} for every prompting of a model measured on validation."""
    out = {}
    for p in TRIED[task]:
        path = val_file(alias, p, task, root)
        if path.exists():
            recs = list(io.iter_jsonl(path))
            s = evals.summarize([{metric: r["scores"][metric]} for r in recs])[metric]
            out[p] = {**evals.Score.of(s).rounded(4).row(), "truncated": harness.truncated_share(recs)}
    return out


def chosen(task: str, alias: str, metric: str, default: str, root: Path | None = None) -> str:
    """The prompting with the best validation score; the default on a tie, and where the default itself
    was not measured (a prompting measured alone has nothing to be chosen over)."""
    scores = val_scores(task, alias, metric, root)
    if default not in scores:
        return default
    return max(scores.items(), key=lambda kv: (kv[1]["score"], kv[0] == default))[0]


def style_of(col: Column, task: str, root: Path | None = None) -> str:
    """The prompting a column answers a task in: an untuned Qwen model's better one on validation
    (`baselines.chosen`), the fixed STYLE for the others."""
    alias = next((a for a in QWEN if a in col.file), None)
    if col.tuned or alias is None:
        return STYLE[task]
    return chosen(task, alias, METRIC[task], STYLE[task], root)


def predictions_path(col: Column, task: str, root: Path | None = None) -> Path:
    """Where a column's per-item predictions of a task are committed."""
    root = root or paths.results_dir()
    return root / col.folder / "predictions" / col.file.format(task=task, style=style_of(col, task, root))


def model_of(col: Column) -> str:
    """The model spec whose tokenizer counts a column's answers."""
    alias = next((a for a in QWEN if a in col.file), None)
    return alias or ("gemma3-270m" if "gemma" in col.file else "smollm2-135m-instruct")


def committed_budgets(root: Path | None = None) -> list[tuple[Path, str, int]]:
    """(predictions file, model, the budget it was made with) for every committed column file: what
    `baselines.mark` counts truncated answers against (a record that says its budget wins)."""
    out = []
    for col in COLUMNS:
        for task in STYLE:
            path = predictions_path(col, task, root)
            if path.exists():
                out.append((path, model_of(col), tasks.get(task).max_new_tokens))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.experiments.baselines mark|extend|validate`."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.experiments.baselines", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["mark", "extend", "validate"])
    ap.add_argument("--task", choices=list(TRIED), default="gsm8k")
    ap.add_argument("--model", choices=list(QWEN), nargs="*", default=list(QWEN))
    ap.add_argument("--style", choices=list(PROMPTINGS), default="zero_shot", help="extend: the answers' prompting")
    ap.add_argument("--prompting", choices=list(PROMPTINGS), nargs="*", default=[],
                    help="validate: only these promptings (default: every one the task tries)")
    ap.add_argument("-n", type=int, default=VAL_N, help="validate: validation items per model and prompting")
    args = ap.parse_args(argv)
    if args.command == "mark":
        for path, model, limit in committed_budgets():
            try:
                print(f"{paths.shown(path)}: {mark(path, model, limit)} hit {limit} tokens")
            except models.ModelNotInstalled as e:  # its tokenizer counts: without it, the file stays unmarked
                print(f"{paths.shown(path)}: not marked, {e}")
    elif args.command == "extend":
        for alias in args.model:
            path = paths.results_dir() / "size" / "predictions" / f"{args.task}-{alias}-{args.style}.jsonl"
            print(paths.shown(path), extend(path, alias, args.task, args.style), flush=True)
    else:
        print("\n".join(paths.shown(p) for p in validate(args.task, tuple(args.model), args.n, tuple(args.prompting))))


if __name__ == "__main__":
    main()

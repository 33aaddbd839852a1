"""The `Task` type: everything the pipeline needs to know about a task, and the hooks it calls.

Generic code (prepare, prompts, harness, train, rounds, sweep, report) receives a `Task` and reads
its fields; it never asks for a task's name. A built-in task is one module of `ftlib.tasks` that
declares one `TASK` with `builtin(...)`; a user's task comes from a task file (`ftlib.tasks.user`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftlib import io, paths, scorers
from ftlib.io import DataFormatError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Task:
    """One task, declared. Functions take a row as `load` returns it."""

    name: str
    load: Callable[[str], list[dict]]  # split -> rows (bad rows raise DataFormatError with file:line)
    question: Callable[[dict], str]  # the input, without any instruction
    reference: Callable[[dict], str]  # the gold answer a tuned model should write
    score: Callable[[str, dict], dict]  # (prediction, row) -> {metric: bool or number}
    metrics: tuple[str, ...]  # what `score` returns, in display order
    primary: str  # the headline metric
    instruction: str  # the tuned prompt: instruction, blank line, question (the `chat` style)
    system: str  # the untuned prompt: the output format spelled out (zero_shot / few_shot styles)
    max_new_tokens: int = 256
    few_shot: int | Callable[[list[dict]], list[dict]] = 3  # first n train rows, or a chooser
    answer_label: str = "Answer:"  # few_shot_text: the line that introduces an answer
    stop: tuple[str, ...] = ()  # strings that end an answer besides EOS (cut from the output)
    text_stop: tuple[str, ...] = ("\n",)  # few_shot_text: where a plain-text answer ends (the next example)
    fields: tuple[str, ...] = ()  # fields every row must hold as a non-empty string
    fmt: str = "chat"  # "chat" (the model's chat template) or "text" (plain prompt + completion)
    splits: tuple[str, ...] = SPLITS  # splits `load` accepts beyond these are the task's own
    usable: Callable[[dict], bool] | None = None  # rows kept in prepared splits (None: all)
    shot_answer: Callable[[dict], str] | None = None  # a worked example's answer (default: reference)
    strict: str | None = None  # rounds: the metric that verifies a self-made answer (default: primary)
    with_answer: Callable[[dict, str], dict] | None = None  # rounds: the row carrying a model's answer
    error_kind: Callable[[str, dict], str] | None = None  # (prediction, predictions.jsonl record) -> one word
    row_id: Callable[[dict], object] | None = None  # a stable id for predictions files
    record_row: Callable[[dict], dict] | None = None  # the row a predictions.jsonl record was scored on
    title: str = ""  # figure titles
    source: str | None = None  # the task file a user's task came from
    scorer_id: str = ""  # the scorer's identity (a user's: spec, args, file bytes; built-in: its code's
    #                      hash, `builtin`): stored scores count while it is the same
    code: tuple[Path, ...] = ()  # a built-in task's scoring code, hashed into scorer_id
    # ---- hooks of the pipeline's stages (None or empty: the stage has nothing to do for the task)
    hub: Callable[[str], list[dict]] | None = None  # prepare(source="hub"): a split from the hub
    audit: Callable[[list[dict]], dict] | None = None  # prepare: defects of a raw split, kept in stats.json
    flagged: Callable[[dict], bool] | None = None  # rows an optional filter drops (prepare, rounds)
    excluded: Callable[[dict], bool] | None = None  # rows a second, stated headline leaves out (SQL: gold errors)
    corrupt: Callable[[list[dict], float, int], list[dict]] | None = None  # rounds: (rows, fraction, seed)
    rounds_metrics: tuple[str, ...] = ()  # rounds: metrics shown beside the headline
    sweep_grid: tuple[tuple[str, float, int | None, float], ...] = ()  # sweep: (method, lr, n_train, epochs)

    def __post_init__(self):
        if self.primary not in self.metrics:
            raise ValueError(f"task {self.name!r}: primary metric {self.primary!r} is not one of {self.metrics}")
        if self.fmt not in ("chat", "text"):
            raise ValueError(f"task {self.name!r}: fmt {self.fmt!r}; expected 'chat' or 'text'")

    def rows(self, split: str, source: str = "local") -> list[dict]:
        """A split from the task's own files ("local") or from the hub ("hub", built-in tasks)."""
        if source == "local":
            return self.load(split)
        if source != "hub":
            raise ValueError(f"unknown source {source!r}; expected 'local' or 'hub'")
        if self.hub is None:
            raise ValueError(f"task {self.name!r} has no hub copy; load it with source='local'")
        return self.hub(split)


def builtin(code: tuple[Path, ...], **kw) -> Task:
    """A built-in task; its scorer_id hashes its score function's source and its `code` files (the
    module that declares it, and what it scores with), so an edit to either rescores stored predictions."""
    return Task(**kw, code=code, scorer_id=scorers.code_id(kw["score"], code))


def check_split(task: str, split: str, allowed: tuple[str, ...]) -> None:
    """A ValueError naming the splits a task has, for one it has not."""
    if split not in allowed:
        raise ValueError(f"unknown split {split!r} for task {task!r}; expected one of {list(allowed)}")


def read_vendored(rel: str, fields: tuple[str, ...]) -> list[dict]:
    """Rows of a vendored JSONL file under data/, every field in `fields` a non-empty string."""
    return list(io.iter_jsonl(paths.data_dir() / rel, fields, strings=True))


def hub_rows(dataset: str, split: str, config: str | None = None) -> list[dict]:
    """Rows of a hub dataset's split as plain dicts (needs internet)."""
    import datasets

    return [dict(r) for r in datasets.load_dataset(dataset, config, split=split)]


NAME_RULE = "letters, digits, '-', '_' and '.' (not first), at most 100 characters: it names folders under runs/"


def check_name(name: object, where: str) -> str:
    """A task name that is one safe path component, else a DataFormatError with the rule.

    >>> check_name("mr_to_text.v2", "task.json")
    'mr_to_text.v2'
    """
    if not paths.is_component(name):  # the rule of every field that names a folder
        raise DataFormatError(f"{where}: 'name' must be {NAME_RULE}; got {name!r}")
    return name


def safe_score(task: Task, prediction: str, row: dict, score: Callable | None = None) -> tuple[dict, str | None]:
    """(scores, error): a scorer that raises or returns something other than a bool or a finite
    number per metric scores every metric as failed and says why. `score`: task.score run another
    way, returning (value, error) (`scorers.Bounded`)."""
    if score is None:
        try:
            out, error = task.score(prediction, row), None
        except Exception as e:  # a user's scorer on a model's output: report it, never stop the run
            out, error = None, f"{type(e).__name__}: {e}"
    else:
        out, error = score(prediction, row)
    error = error or scorers.check_scores(out, task.metrics)
    return (dict.fromkeys(task.metrics, False), error) if error else (out, None)

"""Tasks as declarations: everything the pipeline needs to know about a task, in one place each.

A `Task` says how its splits load, how a row becomes a prompt and a completion, how a prediction is
scored and which metric is the headline, how many tokens an answer may take, and which training rows
serve as worked examples. Training, the harness, the rounds, the plans and the report look a task up
by its spec (`get("viggo")`) and never by name.

A spec is a built-in name (viggo, sql, gsm8k), the name of a task registered in this process
(`register`), or the path of a task file: a JSON declaration of a user's own task, e.g.

    {"name": "mr_to_text",
     "files": {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"},
     "instruction": "Write the sentence this meaning representation describes.",
     "scorer": "normalized",                        # or exact, number, json_fields, regex, "score.py:score"
     "max_new_tokens": 64}

Rows of a user's task are JSONL with `prompt` and `completion` strings, or chat `messages` whose last
turn is the assistant's answer (`ftlib.scorers` lists the built-in scorers; see `from_file`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftlib import data, evals, io, paths, scorers
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
    fields: tuple[str, ...] = ()  # fields every row must hold as a non-empty string
    fmt: str = "chat"  # "chat" (the model's chat template) or "text" (plain prompt + completion)
    splits: tuple[str, ...] = SPLITS  # splits `load` accepts beyond these are the task's own
    usable: Callable[[dict], bool] | None = None  # rows kept in prepared splits (None: all)
    shot_answer: Callable[[dict], str] | None = None  # a worked example's answer (default: reference)
    strict: str | None = None  # rounds: the metric that verifies a self-made answer (default: primary)
    with_answer: Callable[[dict, str], dict] | None = None  # rounds: the row carrying a model's answer
    error_kind: Callable[[str, dict], str] | None = None  # (prediction, predictions.jsonl record) -> one word
    row_id: Callable[[dict], object] | None = None  # a stable id for predictions files
    title: str = ""  # figure titles
    source: str | None = None  # the task file a user's task came from
    scorer_id: str = ""  # the scorer's identity (a user's: spec, args, file bytes; built-in: its code's
    #                      hash, `_builtin`): stored scores count while it is the same

    def __post_init__(self):
        if self.primary not in self.metrics:
            raise ValueError(f"task {self.name!r}: primary metric {self.primary!r} is not one of {self.metrics}")
        if self.fmt not in ("chat", "text"):
            raise ValueError(f"task {self.name!r}: fmt {self.fmt!r}; expected 'chat' or 'text'")


# ---- the case study's three tasks ---------------------------------------------------------------

VIGGO_SYSTEM = (
    "Given a target sentence about video games, construct the underlying meaning representation "
    "of the input sentence as a single function with attributes and attribute values.\n"
    f"The function must be one of: {', '.join(evals.VIGGO_FUNCTIONS)}.\n"
    f"The attributes must be one of: {', '.join(evals.VIGGO_ATTRIBUTES)}.\n"
    "List the attributes in that order, each as attribute[value], and only those the sentence "
    "mentions. Answer with the meaning representation only, on one line, like "
    "request(has_multiplayer[yes], specifier[fast-paced])."
)


def viggo_shots(train_rows: list[dict]) -> list[dict]:
    """The first train row of each of the 9 functions, in the functions' listed order (as the case study)."""
    first: dict[str, dict] = {}
    for r in train_rows:
        first.setdefault(r["meaning_representation"].split("(", 1)[0].strip(), r)
    return [first[f] for f in evals.VIGGO_FUNCTIONS]


def _loader(name: str) -> Callable[[str], list[dict]]:
    return functools.partial(data.load_rows, name)


@functools.cache
def _sql_rows() -> dict[int, dict]:
    return {r["row_index"]: r for s in SPLITS for r in data.load_rows("sql", s)}


def sql_row(record: dict) -> dict:
    """The SQL data row (question, context, gold query) of a predictions.jsonl record (by its id)."""
    return _sql_rows()[record["id"]]


# The built-in tasks' scoring code: an edit to any of it rescores stored predictions (`Task.scorer_id`).
SCORING_CODE = (Path(evals.__file__), *sorted((Path(evals.__file__).parent / "sql").glob("*.py")))


def _builtin(**kw) -> Task:
    """A built-in task; its scorer_id hashes its score function's source and SCORING_CODE."""
    return Task(**kw, scorer_id=scorers.code_id(kw["score"], SCORING_CODE))


# Gold answers' token lengths on the test sets (99th pct / max): viggo 73/80, sql 127/179 (plus the
# <SQL> tags), gsm8k 287/415. The caps leave room for the 99th percentile and then some; longer
# outputs are almost always a model that never stops.
VIGGO = _builtin(
    name="viggo", load=_loader("viggo"), fields=data.REQUIRED["viggo"],
    splits=SPLITS + tuple(data.VIGGO_CHALLENGE),
    question=lambda r: f"Sentence: {r['target']}",
    reference=lambda r: r["meaning_representation"],
    score=lambda p, r: evals.score_viggo(p, r["meaning_representation"]),
    metrics=("function", "attribute_types", "attribute_order", "exact"), primary="attribute_types",
    instruction="Convert this video game sentence into a meaning representation.",
    system=VIGGO_SYSTEM, max_new_tokens=96, few_shot=viggo_shots, answer_label="Meaning representation:",
    strict="exact", with_answer=lambda r, p: {**r, "meaning_representation": p.strip()},
    error_kind=lambda p, rec: evals.viggo_error_kind(p, rec["reference"]),
    row_id=lambda r: r.get("gem_id"), title="ViGGO (function + attribute types)",
)

SQL = _builtin(
    name="sql", load=_loader("sql"), fields=data.REQUIRED["sql"],
    question=lambda r: f"Tables: {r['context']}\nQuestion: {r['question']}",
    reference=lambda r: f"<SQL>{r['answer']}</SQL>",
    score=lambda p, r: evals.score_sql(p, r["answer"], r["context"]),
    metrics=("execution_match", "valid_sql", "extracted", "judged"), primary="execution_match",
    instruction="Write the SQLite query that answers the question, using these tables. "
    "Put the query inside <SQL>...</SQL>.",
    system="You write SQLite queries. Given CREATE TABLE statements and a question, answer with one "
    "SQL query that answers the question, inside <SQL>...</SQL>, and nothing else.",
    max_new_tokens=160, few_shot=3, answer_label="Query:",
    # a gold query that does not run on its own context can be neither learned nor scored
    usable=evals.sql_gold_usable,
    with_answer=lambda r, p: {**r, "answer": evals.extract_sql(p) or p.strip()},
    error_kind=lambda p, rec: evals.sql_error_kind(p, sql_row(rec)["answer"], sql_row(rec)["context"]),
    row_id=lambda r: r.get("row_index"), title="SQL (execution match)",
)

GSM8K = _builtin(
    name="gsm8k", load=_loader("gsm8k"), fields=data.REQUIRED["gsm8k"],
    question=lambda r: f"Problem: {r['question']}",
    reference=lambda r: r["answer"],
    # lm-evaluation-harness's two figures; the headline is strict-match (the first `#### <number>`)
    score=lambda p, r: evals.gsm8k_lm_eval(p, r["answer"]),
    metrics=("strict_match", "flexible_extract"), primary="strict_match",
    instruction="Solve this math problem step by step. End with '#### ' followed by the final number.",
    system="You solve grade-school math word problems. Reason step by step, then write the final "
    "answer as a number on its own line after '#### ', for example:\n#### 42",
    max_new_tokens=320, few_shot=3, answer_label="Solution:",
    # worked examples without the calculator notes `<<4*2=8>>`, for readability
    shot_answer=lambda r: re.sub(r"<<[^>]*>>", "", r["answer"]),
    with_answer=lambda r, p: {**r, "answer": p.strip()},
    error_kind=lambda p, rec: evals.gsm8k_error_kind(p, rec["reference"]),
    title="GSM8K (strict-match: the number after ####)",
)

BUILTIN = (VIGGO, SQL, GSM8K)
_REGISTRY: dict[str, Task] = {t.name: t for t in BUILTIN}


def register(task: Task) -> Task:
    """Make a task known by its name in this process (a file-based task needs no registering)."""
    check_name(task.name, task.source or "register")
    if task.name in {t.name for t in BUILTIN} and _REGISTRY[task.name] is not task:
        raise ValueError(f"{task.name!r} is a built-in task; give yours another name")
    _REGISTRY[task.name] = task
    return task


def get(spec: str | Task) -> Task:
    """The task of a spec: a Task, a known name, or the path of a task file (`.json`)."""
    if isinstance(spec, Task):
        return spec
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    if str(spec).endswith(".json"):  # relative to the working directory, else to the repository
        path = Path(spec)
        if not path.exists() and not path.is_absolute() and (paths.ROOT / path).exists():
            path = paths.ROOT / path
        return from_file(path)
    raise ValueError(f"unknown task {spec!r}; expected one of {list(_REGISTRY)} or the path of a task "
                     "file (.json)")


def name(spec: str | Task) -> str:
    """A task's name (folder names use it; a spec may be a path)."""
    return get(spec).name


def names() -> tuple[str, ...]:
    """The tasks known by name: the built-in ones, then those registered."""
    return tuple(_REGISTRY)


# ---- a user's task from files -------------------------------------------------------------------

def read_user_rows(path: Path) -> list[dict]:
    """Rows of a user's JSONL file as {"prompt", "completion", ...}; a bad row raises file:line."""
    rows = []
    for i, row in enumerate(io.iter_jsonl(path), 1):
        where = f"{path}:{i}"
        if "messages" in row:
            row = {**row, **_from_messages(row["messages"], where)}
        missing = [k for k in ("prompt", "completion") if k not in row]
        if missing:
            raise DataFormatError(f"{where}: missing {missing}; expected 'prompt' and 'completion' "
                                  "strings, or chat 'messages' ending with the assistant's answer")
        for k in ("prompt", "completion"):
            if not (isinstance(row[k], str) and row[k].strip()):
                raise DataFormatError(f"{where}: {k!r} must be a non-empty string, got {row[k]!r}")
        rows.append(row)
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


def _from_messages(messages, where: str) -> dict:
    """prompt/completion of a chat row: the user's turn, and the assistant's answer after it."""
    ok = (isinstance(messages, list) and len(messages) >= 2
          and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages))
    if not ok or [m.get("role") for m in messages[-2:]] != ["user", "assistant"]:
        raise DataFormatError(f"{where}: 'messages' must be a list of {{role, content}} turns ending with a "
                              "user turn and then the assistant's answer")
    system = [m["content"] for m in messages[:-2] if m.get("role") == "system"]
    if len(messages) - 2 != len(system):
        raise DataFormatError(f"{where}: only one exchange per row (optionally after system turns); "
                              "earlier user/assistant turns are not supported")
    return {"prompt": messages[-2]["content"], "completion": messages[-1]["content"],
            **({"system": "\n".join(system)} if system else {})}


def _user_loader(files: dict[str, Path], task_name: str) -> Callable[[str], list[dict]]:
    def load(split: str) -> list[dict]:
        if split not in files:
            raise ValueError(f"task {task_name!r} has no {split!r} split; it has {list(files)}")
        return read_user_rows(files[split])
    return load


def from_file(path: str | Path) -> Task:
    """A user's task from its JSON declaration (paths inside it are relative to the file).

    Keys: name, files {train, validation, test} (validation optional: then the last 10 % of train),
    instruction, system (default: the instruction), scorer and scorer_args, primary, metrics,
    max_new_tokens (default 256), stop (strings that end an answer), few_shot (default 3),
    fmt ("chat" or "text"), title.
    """
    path = Path(path).resolve()
    return _from_file(path, path.stat().st_mtime_ns, _scorer_stamp(path))


def _scorer_stamp(path: Path) -> str:
    """The hash of a task file's own scorer file ("": none), so an edited scorer is loaded again
    (and its stored scores redone: `Task.scorer_id`); by content, as two edits can share an mtime."""
    try:
        scorer = io.read_json(path).get("scorer", "")
        file = path.parent / scorer.rpartition(":")[0] if isinstance(scorer, str) and ":" in scorer else None
        return hashlib.sha256(file.read_bytes()).hexdigest() if file and file.is_file() else ""
    except (OSError, ValueError, AttributeError):
        return ""  # _from_file reports what is wrong with the file


SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # one path component: folders are named after it
NAME_RULE = "letters, digits, '-', '_' and '.' (not first): it names folders under runs/"


def check_name(name: object, where: str) -> str:
    """A task name that is one safe path component, else a DataFormatError with the rule.

    >>> check_name("mr_to_text.v2", "task.json")
    'mr_to_text.v2'
    """
    if not (isinstance(name, str) and SAFE_NAME.fullmatch(name)):
        raise DataFormatError(f"{where}: 'name' must be {NAME_RULE}; got {name!r}")
    return name


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# key -> (check, what is expected): every optional key of a task file, checked before anything loads
_KEY_TYPES = {
    "files": (lambda v: isinstance(v, dict) and all(isinstance(f, str) and f for f in v.values()),
              "an object of split -> file name"),
    "instruction": (lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "system": (lambda v: isinstance(v, str), "a string"),
    "scorer": (lambda v: isinstance(v, str), "a string"),
    "scorer_args": (lambda v: isinstance(v, dict), "an object"),
    "metrics": (lambda v: isinstance(v, list) and v and all(isinstance(m, str) for m in v),
                "a non-empty list of strings"),
    "primary": (lambda v: isinstance(v, str), "a string"),
    "max_new_tokens": (lambda v: _is_int(v) and v > 0, "a positive integer"),
    "few_shot": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "stop": (lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
             'a list of non-empty strings, e.g. ["END"]'),
    "fmt": (lambda v: v in ("chat", "text"), "'chat' or 'text'"),
    "title": (lambda v: isinstance(v, str), "a string"),
}


def check_spec(spec: object, where: str) -> dict:
    """A task file's declaration with every key's type checked; a DataFormatError names the key."""
    if not isinstance(spec, dict):
        raise DataFormatError(f"{where}: expected a JSON object, got {type(spec).__name__}")
    for key in ("name", "files", "instruction"):
        if key not in spec:
            raise DataFormatError(f"{where}: missing {key!r}; a task file needs name, files and instruction")
    check_name(spec["name"], where)
    for key, (ok, expected) in _KEY_TYPES.items():
        if key in spec and not ok(spec[key]):
            raise DataFormatError(f"{where}: {key!r} must be {expected}; got {spec[key]!r}")
    return spec


@functools.cache
def _from_file(path: Path, _mtime: int, _scorer_hash: str) -> Task:
    where = str(path)
    spec = check_spec(io.read_json(path), where)
    files = {s: path.parent / f for s, f in spec["files"].items()}
    for split in ("train", "test"):
        if split not in files:
            raise DataFormatError(f"{where}: 'files' needs a {split!r} file (validation is optional)")
    for split, f in files.items():
        if not f.exists():
            raise DataFormatError(f"{where}: the {split} file {f.name} does not exist next to it")
    load = _user_loader(files, spec["name"])
    if "validation" not in files:
        load = _split_off_validation(load)
    scorer, scorer_args = spec.get("scorer", "exact"), spec.get("scorer_args", {})
    score, metrics = scorers.build(scorer, scorer_args, path.parent, where, spec.get("metrics"))
    with_row = scorers.wants_row(score)
    return register(Task(
        name=spec["name"], load=load, question=lambda r: r["prompt"], reference=lambda r: r["completion"],
        score=lambda p, r: score(p, r["completion"], r) if with_row else score(p, r["completion"]),
        metrics=metrics, primary=spec.get("primary", metrics[0]),
        instruction=spec["instruction"], system=spec.get("system", spec["instruction"]),
        max_new_tokens=spec.get("max_new_tokens", 256), few_shot=spec.get("few_shot", 3),
        stop=tuple(spec.get("stop", ())),
        fields=("prompt", "completion"), fmt=spec.get("fmt", "chat"), title=spec.get("title", spec["name"]),
        with_answer=lambda r, p: {**r, "completion": p.strip()}, source=where,
        scorer_id=scorers.file_hash(scorer, scorer_args, path.parent)))


def _split_off_validation(load: Callable[[str], list[dict]]) -> Callable[[str], list[dict]]:
    """A loader whose validation split is the last 10 % of train (at least one row)."""
    def split_load(split: str) -> list[dict]:
        if split not in ("train", "validation"):
            return load(split)
        rows = load("train")
        cut = len(rows) - max(1, len(rows) // 10)
        return rows[:cut] if split == "train" else rows[cut:]
    return split_load


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


def replace(task: Task, **changes) -> Task:
    """A copy of a task with some fields changed (e.g. another instruction)."""
    return dataclasses.replace(task, **changes)

"""A user's own task from files: a JSON declaration (the task file) and JSONL splits, e.g.

    {"name": "mr_to_text",
     "files": {"train": "train.jsonl", "validation": "validation.jsonl", "test": "test.jsonl"},
     "instruction": "Write the sentence this meaning representation describes.",
     "scorer": "normalized",                        # or exact, number, json_fields, regex, "score.py:score"
     "max_new_tokens": 64}

Rows are JSONL with `prompt` and `completion` strings, or chat `messages` whose last turn is the
assistant's answer (`ftlib.scorers` lists the built-in scorers; see `from_file`). `ftlib.tasks.get`
takes the file's path as a spec and registers the task under its name.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path

from ftlib import io, scorers
from ftlib.io import DataFormatError
from ftlib.tasks.base import Task, check_name


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
    return Task(
        name=spec["name"], load=load, question=lambda r: r["prompt"], reference=lambda r: r["completion"],
        score=lambda p, r: score(p, r["completion"], r) if with_row else score(p, r["completion"]),
        metrics=metrics, primary=spec.get("primary", metrics[0]),
        instruction=spec["instruction"], system=spec.get("system", spec["instruction"]),
        max_new_tokens=spec.get("max_new_tokens", 256), few_shot=spec.get("few_shot", 3),
        stop=tuple(spec.get("stop", ())),
        fields=("prompt", "completion"), fmt=spec.get("fmt", "chat"), title=spec.get("title", spec["name"]),
        with_answer=lambda r, p: {**r, "completion": p.strip()}, source=where,
        record_row=lambda rec: {"completion": rec["reference"]},
        scorer_id=scorers.file_hash(scorer, scorer_args, path.parent))


def _split_off_validation(load: Callable[[str], list[dict]]) -> Callable[[str], list[dict]]:
    """A loader whose validation split is the last 10 % of train (at least one row)."""
    def split_load(split: str) -> list[dict]:
        if split not in ("train", "validation"):
            return load(split)
        rows = load("train")
        cut = len(rows) - max(1, len(rows) // 10)
        return rows[:cut] if split == "train" else rows[cut:]
    return split_load

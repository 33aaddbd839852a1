"""Scorers for a user's own task: `score(prediction, reference) -> {metric: bool or number}`.

Built in (name in the task file's "scorer", options in "scorer_args"):
- `exact`: the stripped texts are equal.
- `normalized`: equal after lower-casing, dropping punctuation and collapsing white space.
- `number`: the last number of each text is the same number (1,000 == 1000.0).
- `json_fields`: the prediction is a JSON object (`valid_json`) whose `fields` (default: all of the
  reference's) equal the reference's (`fields`).
- `regex`: `pattern` finds the same text in both (its first group if it has one); `found`: it finds
  something in the prediction at all.
- `path/to/file.py:function`: your own, relative to the task file. It gets the model's raw output and
  the reference, and the whole row too if it takes a third argument (to check an output against the
  prompt's content); whatever it raises is recorded per item and the item scores as failed.

Each metric is a boolean per item (reported with a Wilson interval) or a number (reported with a
normal-approximation interval).
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import re
import string
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ftlib.io import DataFormatError

Scorer = Callable[[str, str], dict]
_PUNCT = str.maketrans("", "", string.punctuation)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def normalize(text: str) -> str:
    """Lower case, no punctuation, single spaces.

    >>> normalize("  The Witcher 3: Wild Hunt!  ")
    'the witcher 3 wild hunt'
    """
    return " ".join(text.lower().translate(_PUNCT).split())


def exact(prediction: str, reference: str) -> dict:
    """The stripped texts are equal.

    >>> exact(" 42 ", "42")
    {'exact': True}
    """
    return {"exact": prediction.strip() == reference.strip()}


def normalized(prediction: str, reference: str) -> dict:
    """Equal after `normalize`.

    >>> normalized("Hello, World", "hello world.")
    {'normalized': True}
    """
    return {"normalized": normalize(prediction) == normalize(reference)}


def last_number(text: str) -> Decimal | None:
    """The last number in a text, commas removed.

    >>> last_number("from 3 to 1,250.50 apples"), last_number("none")
    (Decimal('1250.50'), None)
    """
    found = _NUMBER.findall(text)
    try:
        return Decimal(found[-1].replace(",", "")) if found else None
    except InvalidOperation:
        return None


def number(prediction: str, reference: str) -> dict:
    """The last numbers are equal.

    >>> number("so 1,000.0 in all", "1000")
    {'number': True}
    """
    pred, ref = last_number(prediction), last_number(reference)
    return {"number": pred is not None and pred == ref}


def json_fields(fields: list[str] | None = None) -> Scorer:
    """A scorer comparing JSON objects on some fields (all of the reference's by default).

    >>> json_fields(["a"])('{"a": 1, "b": 2}', '{"a": 1, "b": 3}')
    {'valid_json': True, 'fields': True}
    """
    def score(prediction: str, reference: str) -> dict:
        ref = json.loads(reference)
        try:
            pred = json.loads(prediction.strip())
        except json.JSONDecodeError:
            pred = None
        if not isinstance(pred, dict):
            return {"valid_json": False, "fields": False}
        keys = fields if fields is not None else list(ref)
        return {"valid_json": True, "fields": all(k in pred and pred[k] == ref.get(k) for k in keys)}
    return score


def regex(pattern: str) -> Scorer:
    """A scorer comparing what a pattern finds in both texts (its first group if it has one).

    >>> regex(r"answer: (\\w+)")("I think answer: B", "answer: B")
    {'regex': True, 'found': True}
    """
    compiled = re.compile(pattern)

    def find(text: str) -> str | None:
        m = compiled.search(text)
        return None if m is None else (m.group(1) if compiled.groups else m.group(0))

    def score(prediction: str, reference: str) -> dict:
        pred, ref = find(prediction), find(reference)
        return {"regex": pred is not None and pred == ref, "found": pred is not None}
    return score


BUILT_IN: dict[str, Callable[..., Scorer]] = {
    "exact": lambda: exact, "normalized": lambda: normalized, "number": lambda: number,
    "json_fields": json_fields, "regex": regex,
}


def load_function(spec: str, base: Path, where: str) -> Scorer:
    """`file.py:function` (relative to `base`) imported as a scorer."""
    file, _, func = spec.rpartition(":")
    path = (base / file).resolve()
    if not path.exists():
        raise DataFormatError(f"{where}: scorer file {file} not found next to the task file")
    module_spec = importlib.util.spec_from_file_location(f"user_scorer_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not callable(getattr(module, func, None)):
        raise DataFormatError(f"{where}: {file} defines no function {func!r}")
    return getattr(module, func)


def wants_row(score: Callable) -> bool:
    """Whether a scorer takes the row as a third argument.

    >>> wants_row(lambda p, r: {}), wants_row(lambda p, r, row: {})
    (False, True)
    """
    try:
        params = list(inspect.signature(score).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in params)


def build(spec: str, args: dict, base: Path, where: str = "task file",
          metrics: list[str] | None = None) -> tuple[Scorer, tuple[str, ...]]:
    """(scorer, its metric names) of a task file's `scorer` entry.

    The metric names of your own function come from probing it on a tiny example unless the task
    file declares them (`metrics`).
    """
    if spec in BUILT_IN:
        try:
            score = BUILT_IN[spec](**args)
        except TypeError as e:
            raise DataFormatError(f"{where}: scorer_args {args} do not fit scorer {spec!r} ({e})") from None
    elif re.fullmatch(r"[^:]+\.py:\w+", spec):
        score = load_function(spec, base, where)
    else:
        raise DataFormatError(f"{where}: unknown scorer {spec!r}; expected one of {list(BUILT_IN)} "
                              "or 'file.py:function'")
    return score, tuple(metrics or metric_names(score, spec, where))


def metric_names(score: Scorer, spec: str, where: str) -> list[str]:
    """The keys a scorer returns (probed on a tiny example; a built-in's are fixed)."""
    probe = {"json_fields": ('{"a": 1}', '{"a": 1}')}.get(spec, ("1", "1"))
    try:
        out = score(*probe, {"prompt": "1", "completion": "1"}) if wants_row(score) else score(*probe)
    except Exception as e:
        raise DataFormatError(f"{where}: the scorer raised on a probe ({type(e).__name__}: {e}); "
                              "declare its \"metrics\" in the task file") from None
    if not isinstance(out, dict) or not out:
        raise DataFormatError(f"{where}: a scorer must return a non-empty dict of metric -> value, "
                              f"got {out!r}")
    return list(out)

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
normal-approximation interval); anything else (a string, None, NaN, an integer too large for a
float) is refused per item (`check_scores`); a key that is not a metric (a note such as "why") is kept
in the item's scores and left out of the summary. Scorers run in a worker process (`Bounded`), so one that
loops, exits or crashes costs its item (`scorer_error: timeout ...`), never the evaluation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import inspect
import json
import multiprocessing
import os
import re
import signal
import string
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ftlib import procs
from ftlib.evals import is_number
from ftlib.io import DataFormatError

Scorer = Callable[[str, str], dict]
_PUNCT = str.maketrans("", "", string.punctuation)
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")  # a number as people write it: 1,250.50, -3, .5


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
    found = NUMBER.findall(text)
    return as_number(found[-1]) if found else None


def as_number(token: str) -> Decimal | None:
    """A number token of NUMBER as a Decimal (commas removed), None if it is not one."""
    try:
        return Decimal(token.replace(",", ""))
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


LOAD_TIMEOUT_S = 30.0  # importing a scorer file: as long as scoring one item may take (harness)


def load_function(spec: str, base: Path, where: str) -> Scorer:
    """`file.py:function` (relative to `base`) imported as a scorer. The file is first run in a
    bounded worker (`Bounded`), so a loop or an error at its top level fails here with one line
    instead of hanging or stopping the harness; its top level therefore runs twice."""
    file, _, func = spec.rpartition(":")
    path = (base / file).resolve()
    if not path.exists():
        raise DataFormatError(f"{where}: scorer file {file} not found next to the task file")
    with Bounded(lambda p: _import(p) and None, LOAD_TIMEOUT_S) as trial:  # a module does not pickle
        _, error = trial(path)
    if error and error.startswith("timeout"):
        raise DataFormatError(f"{where}: loading {file} did not finish within {LOAD_TIMEOUT_S:g} s "
                              "(a loop at its top level?)")
    if error:
        raise DataFormatError(f"{where}: loading {file} failed: {error}")
    module = _import(path)
    if not callable(getattr(module, func, None)):
        raise DataFormatError(f"{where}: {file} defines no function {func!r}")
    return getattr(module, func)


def _import(path: Path):
    """The module of a Python file, run once."""
    module_spec = importlib.util.spec_from_file_location(f"user_scorer_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


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


PROBE_TIMEOUT_S = 10.0  # a scorer that takes longer on "1" vs "1" is stuck


def metric_names(score: Scorer, spec: str, where: str) -> list[str]:
    """The keys a scorer returns (probed on a tiny example, in a bounded worker; a built-in's are fixed)."""
    probe = {"json_fields": ('{"a": 1}', '{"a": 1}')}.get(spec, ("1", "1"))
    args = (*probe, {"prompt": "1", "completion": "1"}) if wants_row(score) else probe
    with Bounded(score, PROBE_TIMEOUT_S) as bounded:
        out, error = bounded(*args)
    if error:
        raise DataFormatError(f"{where}: the scorer failed on a probe ({error}); "
                              "declare its \"metrics\" in the task file") from None
    if not isinstance(out, dict) or not out:
        raise DataFormatError(f"{where}: a scorer must return a non-empty dict of metric -> value, "
                              f"got {out!r}")
    names = [k for k, v in out.items() if is_number(v)]  # a text beside them is a note, kept per item
    if not names:
        raise DataFormatError(f"{where}: the scorer returned no bool or number on a probe ({out!r:.120}); "
                              "declare its \"metrics\" in the task file")
    return names


def check_scores(out: object, metrics: tuple[str, ...]) -> str | None:
    """None if a scorer's result is a dict with every metric a bool or a finite number, else what is wrong.
    `{"judged": False}` alone is a valid result: the item's reference cannot judge any answer (a SQL gold
    whose test suite cannot tell it from its near-misses), so it counts in no metric.

    >>> check_scores({"a": True, "b": 0.5}, ("a", "b")), check_scores({"a": "yes"}, ("a",))
    (None, "metric 'a' is 'yes'; expected a bool or a finite number")
    >>> check_scores({"judged": False}, ("a", "judged"))
    """
    if not isinstance(out, dict):
        return f"returned {type(out).__name__} {out!r:.80}; expected a dict of metric -> value"
    if out.get("judged") is False:
        metrics = tuple(m for m in metrics if m in out)
    missing = [m for m in metrics if m not in out]
    if missing:
        return f"returned no {missing}; expected the metrics {list(metrics)}"
    for m in metrics:
        v = out[m]
        if not is_number(v):
            return f"metric {m!r} is {v!r:.80}; expected a bool or a finite number"
    return None


SOURCE = Path(__file__)  # the built-in scorers' code, part of their identity (`file_hash`)


def file_hash(spec: str, args: dict, base: Path) -> str:
    """What identifies a scorer's behaviour: its spec and args, and the bytes of its code (your own
    file, or this module for a built-in one): stored scores are reused only while this is the same."""
    h = hashlib.sha256(json.dumps([spec, args], sort_keys=True, default=str).encode())
    file = SOURCE if spec in BUILT_IN else base / spec.rpartition(":")[0] if ":" in spec else None
    if file and file.is_file():
        h.update(file.read_bytes())
    return h.hexdigest()[:16]


def code_id(score: Callable, files: Iterable[Path]) -> str:
    """What identifies a built-in task's scorer: its score function's source and the bytes of the
    files that do the scoring (`Task.code`); an edit to any of them rescores stored predictions."""
    h = hashlib.sha256(inspect.getsource(score).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def _serve(conn, score: Callable) -> None:
    """The worker: score each (args) it receives; whatever happens (a raise, sys.exit) is sent back."""
    while (args := conn.recv()) is not None:
        try:
            conn.send((score(*args), None))
        except BaseException as e:  # a user's code: any outcome becomes that item's error
            conn.send((None, f"{type(e).__name__}: {e}"))


class Bounded:
    """A scorer called in a forked worker process with a time limit per call:
    `with Bounded(score, 10) as f: value, error = f(prediction, reference)`.

    A call past the limit kills the worker (a fresh one serves the next call) and returns the error
    "timeout: ..."; a worker that dies returns its exit code. The worker runs under a keeper
    (`procs.keep`, in its own process group) that kills it and everything it started when the call
    times out, the block ends, or this process dies, even by SIGKILL. Without `fork` (Windows) the
    scorer runs in this process, unbounded.
    """

    def __init__(self, score: Callable, timeout_s: float):
        self.score, self.timeout_s, self.proc = score, timeout_s, None
        self.fork = "fork" in multiprocessing.get_all_start_methods()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        work = functools.partial(_serve, child, self.score)
        self.proc = ctx.Process(target=procs.keep, args=(work, os.getpid()), daemon=True)
        self.proc.start()
        child.close()

    def __call__(self, *args) -> tuple[object, str | None]:
        if not self.fork:
            try:
                return self.score(*args), None
            except Exception as e:
                return None, f"{type(e).__name__}: {e}"
        if self.proc is None:
            self._start()
        try:
            self.conn.send(args)
            if self.conn.poll(self.timeout_s):
                return self.conn.recv()
            error = f"timeout: no result within {self.timeout_s:g} s"
        except (EOFError, OSError):
            self.proc.join(5)
            error = f"the scorer ended its process (exit code {self.proc.exitcode})"
        self.close()
        return None, error

    def close(self) -> None:
        """Stop the worker: its keeper kills it (it may be stuck in the scorer) and what it started."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join(5)
            if self.proc.exitcode is None:  # the keeper itself is stuck: it and its group go
                self.proc.kill()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.join()
            self.conn.close()
            self.proc = None

    def __enter__(self) -> "Bounded":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

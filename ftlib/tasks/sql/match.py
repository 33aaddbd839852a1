"""Execution match for SQL: run the gold and the predicted query on the databases that judge the gold
(`suite`: chosen so the gold differs from its near-miss mutants), compared as the test-suite
evaluation does: any order of the selected columns; row order only where the gold sorts, and then only
on its ORDER BY keys (rows tied on the keys may come in any order); where it sorts and limits, the
last rows may be any of those tied with its last one (`ORDER BY COUNT(*) DESC LIMIT 1` with two
groups at the top count: either is a correct answer). One prediction has `ITEM_SECONDS` of wall
clock on all the item's databases together.

Also the audit of the gold queries themselves: the local sql-create-context data has real defects
(gold queries naming a column their context lacks; tables or columns repeated with another case),
so training and scoring leave out the rows whose gold query does not execute.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
from collections import Counter

from ftlib.tasks.sql import sandbox, schema, suite, synthetic

_SYNTAX = ("syntax error", "incomplete input", "unrecognized token")
_FORBIDDEN = ("not authorized", "authorization denied", "not a read-only", "one statement", "nul character")
_BUDGET = ("interrupted", "more than", "too big", "too long")
ITEM_SECONDS = 1.5  # wall clock for one prediction on all its databases: a slow answer fails the item
MAX_PERMUTED = 6  # columns up to which every order of the predicted columns is tried (6! = 720)
# Queries whose row count is not "rows of the FROM table that pass the filter".
_NOT_SINGLE = re.compile(r"\bJOIN\b|\bGROUP\s+BY\b|\b(?:COUNT|SUM|AVG|MIN|MAX)\s*\(|\bDISTINCT\b|\bLIMIT\b"
                         r"|\bINTERSECT\b|\bUNION\b|\bEXCEPT\b|\bFROM\s+\w+(?:\s+(?:AS\s+)?\w+)?\s*,", re.I)


def _images(context: str, gold: str, instances: int, seed: int) -> list[bytes]:
    """The plain synthetic instances the gold audit runs on."""
    return [synthetic.database_image(context, gold, seed, i) for i in range(max(1, instances))]


@functools.lru_cache(maxsize=16384)
def _gold_result(context: str, gold: str, seed: int, instance: int) -> sandbox.QueryResult:
    """The gold query's result on one instance (cached: every prediction for an item reuses it)."""
    return sandbox.run_query(synthetic.database_image(context, gold, seed, instance), gold)


@functools.lru_cache(maxsize=16384)
def _judge(context: str, gold: str, seed: int, instance: int) -> tuple[sandbox.QueryResult, list | None,
                                                                     Counter | None]:
    """The gold's result on one judging database, its ORDER BY key per row (None: compare the whole
    order) and, where it sorts and limits, every row tied with its last one (any of them may end a
    correct answer); cached, as every prediction for an item reuses it."""
    image = suite.build(context, gold, seed).images[instance]
    ref = sandbox.run_trusted(image, gold)
    if ref.error is not None or not suite.top_level_order_by(gold):
        return ref, None, None
    limit = _without_limit(gold)
    query = _with_keys(limit or gold)
    keyed = sandbox.run_trusted(image, query) if query else None
    width, n = (len(ref.rows[0]) if ref.rows else 0), len(ref.rows)
    if keyed is None or keyed.error is not None or len(keyed.rows) < n or (not limit and len(keyed.rows) != n):
        return ref, None, None
    keys = [r[width:] for r in keyed.rows]
    if not limit or n == 0:
        return ref, keys[:n], None
    tail = Counter(r[:width] for r, k in zip(keyed.rows, keys) if k == keys[n - 1])
    head = [r[:width] for r in keyed.rows[:n]]  # the gold's rows, ties at the limit broken as the full sort does
    if not same_result(head, ref.rows, True, keys[:n], tail):  # the rewrite changed the rows: compare as is
        return ref, None, None
    return sandbox.QueryResult(rows=head), keys[:n], tail


def _without_limit(gold: str) -> str | None:
    """The gold without its final top-level `LIMIT n`; None where it has none (or an OFFSET)."""
    m = re.search(r"\s+LIMIT\s+\d+\s*$", gold, re.I)
    return gold[: m.start()] if m and _depth(gold, m.start()) == 0 else None


def _with_keys(gold: str) -> str | None:
    """The gold with its ORDER BY keys appended to the select list (`ORDER BY 2` names a column
    already there), or None where that is not a plain rewrite (a compound or DISTINCT query, no
    top-level FROM)."""
    if re.search(r"\b(?:UNION|INTERSECT|EXCEPT)\b", gold, re.I) or re.match(r"\s*SELECT\s+DISTINCT\b", gold, re.I):
        return None  # (a key added to a DISTINCT select list changes which rows are distinct)
    order = [m for m in re.finditer(r"\bORDER\s+BY\b", gold, re.I) if _depth(gold, m.start()) == 0]
    froms = [m for m in re.finditer(r"\bFROM\b", gold, re.I) if _depth(gold, m.start()) == 0]
    if not order or not froms:
        return None
    clause = re.split(r"\bLIMIT\b", gold[order[-1].end():], flags=re.I)[0]
    keys = [re.sub(r"\s+(?:ASC|DESC)\s*$", "", k.strip(), flags=re.I) for k in _split_top(clause)]
    if any(k.isdigit() for k in keys):
        return None
    at = froms[0].start()
    return f"{gold[:at].rstrip()}, {', '.join(keys)} {gold[at:]}"


def _depth(text: str, pos: int) -> int:
    prefix = text[:pos]
    return prefix.count("(") - prefix.count(")")


def _split_top(clause: str) -> list[str]:
    """A comma-separated list split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(clause):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(clause[start:i])
            start = i + 1
    return parts + [clause[start:]]


def _runs(keys: list[tuple]) -> list[tuple[int, int]]:
    """(start, end) of each run of rows with equal ORDER BY keys."""
    runs, start = [], 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            runs.append((start, i))
            start = i
    return runs


def same_result(gold_rows: list[tuple], pred_rows: list[tuple], ordered: bool, keys: list | None = None,
                tail: Counter | None = None) -> bool:
    """Equal up to an order of the predicted columns; rows as a multiset unless the gold sorts, then
    in order between runs of rows tied on the gold's ORDER BY keys (`keys`; None: every row in order);
    with `tail` (the gold limits), the last run may be any rows of `tail`, the rows tied at the limit.

    >>> same_result([("a", 1), ("b", 2)], [(2, "b"), (1, "a")], ordered=False)
    True
    >>> same_result([("a", 5)], [("b", 5)], True, [(5,)], Counter({("a", 5): 1, ("b", 5): 1}))
    True
    """
    if len(gold_rows) != len(pred_rows):
        return False
    width = len(gold_rows[0]) if gold_rows else 0
    if any(len(r) != width for r in gold_rows + pred_rows):
        return False
    orders = itertools.permutations(range(width)) if width <= MAX_PERMUTED else [tuple(range(width))]
    for order in orders:
        rows = [tuple(r[i] for i in order) for r in pred_rows]
        if not ordered:
            if Counter(rows) == Counter(gold_rows):
                return True
        elif keys is None:
            if rows == gold_rows:
                return True
        elif _runs_match(rows, gold_rows, _runs(keys), tail):
            return True
    return False


def _runs_match(rows: list[tuple], gold_rows: list[tuple], runs: list[tuple[int, int]], tail: Counter | None) -> bool:
    """Each run of tied rows the same multiset as the gold's; the last one, with `tail`, within it."""
    for a, b in runs:
        if tail is not None and b == len(rows):
            if Counter(rows[a:b]) - tail:
                return False
        elif Counter(rows[a:b]) != Counter(gold_rows[a:b]):
            return False
    return True


def _error_kind(error: str) -> str:
    """Bucket an error message: syntax_error / forbidden / budget / runtime_error."""
    low = error.lower()
    for kind, needles in (("syntax_error", _SYNTAX), ("forbidden", _FORBIDDEN), ("budget", _BUDGET)):
        if any(n in low for n in needles):
            return kind
    return "runtime_error"


def compare(prediction: str, gold: str, context: str, *, seed: int = 0) -> str:
    """One word for the outcome: correct, no_sql (no query found), syntax_error, runtime_error
    (unknown column/table...), forbidden (not one read-only statement), budget (too many rows, or
    over `ITEM_SECONDS` on all the item's databases together), gold_error (the gold query fails),
    unjudgeable (the gold selects nothing, or no database tells it from its mutants: leave the item
    out), wrong_columns or wrong_rows.

    >>> compare("<SQL>SELECT COUNT(*) FROM head</SQL>", "SELECT COUNT(*) FROM head", "CREATE TABLE head (age INTEGER)")
    'correct'
    """
    judge = suite.build(context, gold, seed)
    golds = [_judge(context, gold, seed, i) for i in range(len(judge.images))]
    if any(ref.error is not None for ref, _, _ in golds):
        return "gold_error"
    if not judge.judgeable:  # a property of the gold: the same items are left out of every evaluation
        return "unjudgeable"
    query = sandbox.extract_sql(prediction)
    if query is None:
        return "no_sql"
    ordered = suite.top_level_order_by(gold)
    deadline = time.perf_counter() + ITEM_SECONDS
    for image, (ref, keys, tail) in zip(judge.images, golds):
        left = deadline - time.perf_counter()
        if left <= 0:
            return "budget"
        pred = sandbox.run_query(image, query, max_seconds=min(sandbox.MAX_SECONDS, left),
                                 kill_seconds=min(sandbox.KILL_SECONDS, left))
        if pred.error is not None:
            return _error_kind(pred.error)
        if not same_result(ref.rows, pred.rows, ordered, keys, tail):
            widths = {len(r) for r in ref.rows} | {len(r) for r in pred.rows}
            return "wrong_columns" if len(widths) > 1 else "wrong_rows"
    return "correct"


def sql_execution_match(prediction: str, gold: str, context: str, *, seed: int = 0) -> bool:
    """True when the predicted query returns what the gold query returns on every judging database.

    >>> sql_execution_match("SELECT name FROM t WHERE age > 5", "SELECT name FROM t WHERE 5 < age",
    ...                     "CREATE TABLE t (name VARCHAR, age INTEGER)")
    True
    """
    return compare(prediction, gold, context, seed=seed) == "correct"


def sql_error_kind(prediction: str, gold: str, context: str) -> str:
    """Why a prediction fails (see `compare`); "correct" when it matches."""
    return compare(prediction, gold, context)


def _missing(error: str, context: str) -> tuple[bool, bool]:
    """(missing_column, missing_table): the gold names a column / table the context does not declare."""
    tables = schema.parse_context(context)
    m = re.search(r"no such (column|table): (?:\w+\.)?(\w+)", error)
    if not m:
        return False, False
    columns = {c.lower() for t in tables.values() for c, _ in t.columns}
    if m.group(1) == "table":
        return False, m.group(2).lower() not in tables
    return m.group(2).lower() not in columns, False


def _degenerate(gold: str, context: str, results: list[list[tuple]], images: list[bytes]) -> str | None:
    """"empty" when no instance selects anything (no rows, or only NULL/0 aggregates); "every_row"
    when a filtering single-table query returns every row of its table on every instance."""
    if all(all(v in (None, 0) for r in rows for v in r) for rows in results):
        return "empty"
    m = re.search(r"\bFROM\s+(\w+)", gold, re.I)
    single = m and not _NOT_SINGLE.search(gold)
    if single and re.search(r"\bWHERE\b", gold, re.I):
        sizes = [sandbox.run_query(img, f'SELECT COUNT(*) FROM "{m.group(1)}"').rows for img in images]
        if all(s and len(rows) == s[0][0] for s, rows in zip(sizes, results)):
            return "every_row"
    return None


def audit_gold(context: str, gold: str, *, instances: int = 3, seed: int = 0) -> dict:
    """Check one gold query on its own context: executes, error, missing_column, missing_table,
    case_duplicate, repeated_table, degenerate (None, "empty" or "every_row").

    >>> audit_gold("CREATE TABLE t (a VARCHAR)", "SELECT b FROM t")["missing_column"]
    True
    """
    return dict(_audit(context, gold, instances, seed))  # a copy: the cached one stays intact


@functools.lru_cache(maxsize=8192)
def _audit(context: str, gold: str, instances: int, seed: int) -> dict:
    report = {
        "executes": True, "error": None, "missing_column": False, "missing_table": False,
        "case_duplicate": schema.has_case_duplicate(context), "repeated_table": schema.repeated_tables(context),
        "degenerate": None,
    }
    images = _images(context, gold, instances, seed)
    results = [_gold_result(context, gold, seed, i) for i in range(len(images))]
    failed = next((r for r in results if r.error is not None), None)
    if failed is not None:
        report.update(executes=False, error=failed.error)
        report["missing_column"], report["missing_table"] = _missing(failed.error, context)
    else:
        report["degenerate"] = _degenerate(gold, context, [r.rows for r in results], images)
    return report


def sql_gold_usable(row: dict) -> bool:
    """Whether a SQL row's gold query executes on its own context (the rows to train and score on)."""
    return audit_gold(row["context"], row["answer"])["executes"]


def audit_rows(rows: list[dict]) -> dict[str, int]:
    """Defect counts over SQL rows: n, executes, non_executable, missing_column, missing_table,
    other_error, case_duplicate, repeated_table, degenerate, degenerate_empty, degenerate_every_row."""
    counts = Counter(n=len(rows))
    for row in rows:
        a = audit_gold(row["context"], row["answer"])
        counts["executes"] += a["executes"]
        counts["non_executable"] += not a["executes"]
        counts["other_error"] += not a["executes"] and not (a["missing_column"] or a["missing_table"])
        for key in ("missing_column", "missing_table", "case_duplicate", "repeated_table"):
            counts[key] += a[key]
        counts["degenerate"] += a["degenerate"] is not None
        counts["degenerate_empty"] += a["degenerate"] == "empty"
        counts["degenerate_every_row"] += a["degenerate"] == "every_row"
    keys = ("n", "executes", "non_executable", "missing_column", "missing_table", "other_error",
            "case_duplicate", "repeated_table", "degenerate", "degenerate_empty", "degenerate_every_row")
    return {k: counts[k] for k in keys}

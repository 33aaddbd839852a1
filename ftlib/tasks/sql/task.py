"""The SQL task (sql-create-context): a question and its CREATE TABLE context -> a SQLite query in
`<SQL>...</SQL>`, scored by execution match (`match`).

Data: a deterministic split made here (there is no official one): rows are grouped by the set of
tables their CREATE TABLE context declares, and whole groups go to one split by a hash of the group,
so a test question never shares its exact schema with a training question. Related schemas that
share one table can still fall on both sides; notebook 01 measures that overlap.
Prepare: rows whose gold query does not execute on its own context are unusable (left out of every
split, counted in stats.json with the other defects of `match.audit_rows`); optionally the case
study's filter drops queries that compare a VARCHAR column with a number (`varchar_number_comparison`).
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from ftlib.tasks.base import SPLITS, builtin, check_split, hub_rows, read_vendored
from ftlib.tasks.sql import gold_errors, match, schema
from ftlib.tasks.sql.match import compare
from ftlib.tasks.sql.sandbox import extract_sql

FIELDS = ("question", "context", "answer")
SPLIT_PERCENT = {"train": (0, 75), "validation": (75, 85), "test": (85, 100)}
HUB_ID = "b-mc2/sql-create-context"


def score_sql(prediction: str, gold: str, context: str) -> dict[str, bool]:
    """execution_match, valid_sql (a query that runs), extracted (a query was found at all) and judged
    (the gold can judge: it selects something and its databases tell it from its mutants). Where it
    cannot, execution_match is left out, so the headline's n counts judged items only."""
    kind = compare(prediction, gold, context)
    out = {
        "execution_match": kind == "correct",
        "valid_sql": kind in ("correct", "wrong_columns", "wrong_rows"),
        "extracted": kind != "no_sql",
        "judged": kind != "unjudgeable",
    }
    if kind == "unjudgeable":
        del out["execution_match"], out["valid_sql"], out["extracted"]
    return out


def sql_tables(context: str) -> list[str]:
    """Lower-cased table names declared by a CREATE TABLE context, sorted and unique.

    >>> sql_tables("CREATE TABLE b (x INT); CREATE TABLE A (y INT)")
    ['a', 'b']
    """
    return schema.table_names(context)


def sql_split_of(context: str) -> str:
    """Which split a SQL row belongs to: a stable hash of its table set, so schemas stay apart."""
    key = "|".join(sql_tables(context)) or context
    bucket = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 100
    return next(s for s, (lo, hi) in SPLIT_PERCENT.items() if lo <= bucket < hi)


def _split(split: str, rows: list[dict]) -> list[dict]:
    """The rows of one split (each numbered `row_index` in the source file first)."""
    for i, r in enumerate(rows):
        r.setdefault("row_index", i)
    return [r for r in rows if sql_split_of(r["context"]) == split]


def load(split: str) -> list[dict]:
    """Rows of one split from the vendored file."""
    check_split("sql", split, SPLITS)
    return _split(split, read_vendored("sql_create_context/train.jsonl", FIELDS))


def hub(split: str) -> list[dict]:
    """One split from the hub (needs internet), split the same way."""
    check_split("sql", split, SPLITS)
    return _split(split, hub_rows(HUB_ID, "train"))


@functools.cache
def _rows_by_id() -> dict[int, dict]:
    return {r["row_index"]: r for s in SPLITS for r in load(s)}


def sql_row(record: dict) -> dict:
    """The SQL data row (question, context, gold query) of a predictions.jsonl record (by its id)."""
    return _rows_by_id()[record["id"]]


_NUMBER_COMPARE = re.compile(r"(?:\w+\.)?(\w+)\s*(?:=|!=|<>|<=|>=|<|>)\s*-?\d+(?:\.\d+)?\b")


def varchar_number_comparison(context: str, gold: str) -> bool:
    """True if the query compares a VARCHAR column with a bare number (the case study's filter).

    >>> varchar_number_comparison("CREATE TABLE t (age VARCHAR)", "SELECT * FROM t WHERE age > 30")
    True
    """
    types = schema.column_types(context)
    return any(types.get(col.lower(), "").startswith("VARCHAR") for col in _NUMBER_COMPARE.findall(gold))


def schema_overlap(train: list[dict], test: list[dict]) -> dict[str, int]:
    """Test rows whose exact table set, or any one table name, also occurs in train."""
    train_sets = {tuple(sql_tables(r["context"])) for r in train}
    train_names = {t for s in train_sets for t in s}
    sets = [tuple(sql_tables(r["context"])) for r in test]
    return {
        "test_rows": len(test),
        "same_table_set": sum(s in train_sets for s in sets),
        "shares_a_table_name": sum(any(t in train_names for t in s) for s in sets),
    }


# The recipe sweep's arms: 2,729 usable rows, so the budget is epochs of all of them.
SWEEP = (
    tuple(("full", lr, None, 2) for lr in (1e-4, 2e-4, 4e-4))
    + tuple(("full", 2e-4, None, e) for e in (1, 3))
    + tuple(("lora", lr, None, 2) for lr in (1e-3, 2e-3))
)

# Gold queries are 127 tokens at the 99th percentile (179 at most) on the test set, plus the <SQL> tags.
TASK = builtin(
    code=tuple(sorted(Path(__file__).parent.glob("*.py"))),
    name="sql",
    load=load,
    hub=hub,
    fields=FIELDS,
    question=lambda r: f"Tables: {r['context']}\nQuestion: {r['question']}",
    reference=lambda r: f"<SQL>{r['answer']}</SQL>",
    score=lambda p, r: score_sql(p, r["answer"], r["context"]),
    metrics=("execution_match", "valid_sql", "extracted", "judged"),
    primary="execution_match",
    instruction="Write the SQLite query that answers the question, using these tables. "
    "Put the query inside <SQL>...</SQL>.",
    system="You write SQLite queries. Given CREATE TABLE statements and a question, answer with one "
    "SQL query that answers the question, inside <SQL>...</SQL>, and nothing else.",
    max_new_tokens=160,
    few_shot=3,
    answer_label="Query:",
    # a gold query that does not run on its own context can be neither learned nor scored
    usable=match.sql_gold_usable,
    with_answer=lambda r, p: {**r, "answer": extract_sql(p) or p.strip()},
    error_kind=lambda p, rec: match.sql_error_kind(p, sql_row(rec)["answer"], sql_row(rec)["context"]),
    record_row=sql_row,
    row_id=lambda r: r.get("row_index"),
    title="SQL (execution match)",
    audit=match.audit_rows,
    flagged=lambda r: varchar_number_comparison(r["context"], r["answer"]),
    excluded=gold_errors.is_gold_error,
    sweep_grid=SWEEP,
)

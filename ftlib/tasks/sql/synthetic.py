"""Synthetic SQLite databases for a CREATE TABLE context, seeded from the literals of a gold query.

The sql-create-context rows come without data, so a query can only be checked by running it on
tables we fill ourselves. Several small random instances per item (the "test-suite accuracy" idea of
Zhong, Yu & Klein, EMNLP 2020) tell apart queries that one instance would confuse. The values are
drawn from the gold query's literals so its WHERE clauses select some rows and not all of them.

A database is built once per (context, gold, seed, instance) and cached as a serialized image:
opening a copy of it takes microseconds, so scoring hundreds of items takes seconds.
"""

from __future__ import annotations

import functools
import random
import re
import sqlite3
from dataclasses import dataclass, field

from ftlib.tasks.sql.schema import Table, parse_context

NUMERIC_TYPE = re.compile(r"INT|REAL|NUM|FLOA|DOUB|DEC", re.I)
LIT = r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|-?\d+(?:\.\d+)?"""
COMPARE = re.compile(rf"(?:\w+\.)?(\w+)\s*(?:==|=|!=|<>|<=|>=|<|>|\bNOT\s+LIKE\b|\bLIKE\b)\s*({LIT})", re.I)
BETWEEN = re.compile(rf"(?:\w+\.)?(\w+)\s+(?:NOT\s+)?BETWEEN\s+({LIT})\s+AND\s+({LIT})", re.I)
IN_LIST = re.compile(rf"(?:\w+\.)?(\w+)\s+(?:NOT\s+)?IN\s*\(\s*((?:{LIT})(?:\s*,\s*(?:{LIT}))*)\s*\)", re.I)
SUM_AVG = re.compile(r"\b(?:SUM|AVG)\s*\(\s*(?:DISTINCT\s+)?(?:\w+\.)?(\w+)\s*\)", re.I)
# Shared by every text column, so join keys of different tables meet.
VOCAB = ("alpha", "beta", "gamma", "delta", "omega")
ROWS_PER_TABLE = (6, 12)


def _literal(token: str) -> str | float | int:
    """A SQL literal token as a Python value: quotes stripped, numbers as numbers."""
    if token[0] in "'\"":
        return token[1:-1].replace(token[0] * 2, token[0])
    return float(token) if "." in token else int(token)


@dataclass
class Literals:
    """What the gold query says about values: literals per column, all literals, numeric columns."""

    by_column: dict[str, list] = field(default_factory=dict)
    strings: list[str] = field(default_factory=list)
    numeric: set[str] = field(default_factory=set)


def gold_literals(gold: str) -> Literals:
    """Collect the literals of a gold query, tied to the column they are compared with.

    >>> lit = gold_literals("SELECT a FROM t WHERE T1.age > 56 AND name = 'Bo'")
    >>> lit.by_column, sorted(lit.numeric)
    ({'age': [56], 'name': ['Bo']}, ['age'])
    """
    lit = Literals()
    pairs = [(m.group(1), m.group(2)) for m in COMPARE.finditer(gold)]
    pairs += [(m.group(1), t) for m in BETWEEN.finditer(gold) for t in m.group(2, 3)]
    for m in IN_LIST.finditer(gold):
        pairs += [(m.group(1), t) for t in re.findall(LIT, m.group(2))]
    for column, token in pairs:
        value = _literal(token)
        lit.by_column.setdefault(column.lower(), []).append(value)
        if not isinstance(value, str):
            lit.numeric.add(column.lower())
    lit.strings = [_literal(t) for t in re.findall(r"""'(?:[^']|'')*'|"(?:[^"]|"")*\"""", gold)]
    lit.numeric |= {c.lower() for c in SUM_AVG.findall(gold)}
    return lit


def _unlike(pattern: str, rng: random.Random) -> str:
    """The literal itself or, half the time, a string it matches as a LIKE pattern (% and _ filled)."""
    if rng.random() < 0.5:
        return pattern
    return "".join(rng.choice(VOCAB) if ch == "%" else "x" if ch == "_" else ch for ch in pattern)


def _numeric_value(lits: list, rng: random.Random) -> int | float:
    """A number near the column's literals (so comparisons split the rows), else a small id-like int."""
    nums = [v for v in lits if not isinstance(v, str)]
    if not nums:
        return rng.randint(0, 9)
    r, spread = rng.random(), max(3, int(max(abs(v) for v in nums) * 0.2))
    if r < 0.3:
        return rng.choice(nums)
    if r < 0.6:  # just either side of a literal, so `>` and `>=` give different rows
        return int(rng.choice(nums)) + rng.choice((-1, 1)) * rng.randint(1, spread)
    value = rng.randint(int(min(nums)) - spread, int(max(nums)) + spread)
    return value + 0.5 if any(isinstance(v, float) for v in nums) and rng.random() < 0.5 else value


def _near_text(lits: list, strings: list[str], rng: random.Random) -> str | None:
    """A near-miss of a literal (a word before or after it, a case change) or NULL: values that tell
    `LIKE 'x%'` from `LIKE '%x%'`, `=` from `LIKE`, and a kept condition from a dropped one."""
    pool = [str(v).strip("%") for v in lits + strings if isinstance(v, str)]
    r = rng.random()
    if r < 0.2 or not pool:
        return None
    word, other = rng.choice(pool), rng.choice(VOCAB)
    return rng.choice((f"{other} {word}", f"{word} {other}", f"{other}{word}{other}", word.upper(), word))


def _text_value(lits: list, strings: list[str], rng: random.Random, rich: bool = False) -> str | None:
    """A value from the column's own literals (LIKE patterns filled in), the query's others, or VOCAB;
    with `rich`, also near-misses and NULLs."""
    if rich and rng.random() < 0.3:
        return _near_text(lits, strings, rng)
    r = rng.random()
    if lits and r < 0.45:
        return _unlike(str(rng.choice(lits)), rng)
    if strings and r < 0.55:
        return _unlike(rng.choice(strings), rng)
    return rng.choice(VOCAB)


def _rich_number(lits: list, rng: random.Random) -> int | float | None:
    """NULL, or a value equal to a literal or one away from it (ties and non-ties around each bound)."""
    nums = [v for v in lits if not isinstance(v, str)]
    if rng.random() < 0.2 or not nums:
        return None if rng.random() < 0.5 else rng.randint(0, 3)
    return rng.choice(nums) + rng.choice((-1, 0, 0, 1))


def is_key(table: str, column: str) -> bool:
    """Whether a column looks like its table's own key (`id`, `<table>_id`, `<table>id`): Spider's
    primary keys are named so, and a duplicated key makes a bare column of a GROUP BY ambiguous.

    >>> is_key("track", "Track_ID"), is_key("race", "track_id"), is_key("tracks", "track_id")
    (True, False, True)
    """
    t, c = table.lower(), column.lower()
    return c == "id" or c.removesuffix("_id").removesuffix("id") in (t, t.removesuffix("s"))


def _key_values(n: int, numeric: bool, rng: random.Random) -> list:
    """n distinct key values from the same pool the other columns draw from, so joins still meet."""
    values = list(range(1, n + 1)) if numeric else [w + (str(i // len(VOCAB)) if i >= len(VOCAB) else "")
                                                    for i, w in zip(range(n), VOCAB * n)]
    rng.shuffle(values)
    return values


def _fill(conn: sqlite3.Connection, table: Table, lit: Literals, rng: random.Random, rich: bool = False,
          keys: bool = False) -> None:
    """Create one table (numeric columns with NUMERIC affinity) and insert random rows; with `keys`,
    the table's own key column holds distinct values."""
    kinds = [bool(NUMERIC_TYPE.search(t)) or c.lower() in lit.numeric for c, t in table.columns]
    cols = ", ".join(f'"{c}" {"NUMERIC" if k else "TEXT"}' for (c, _), k in zip(table.columns, kinds))
    conn.execute(f'CREATE TABLE "{table.name}" ({cols})')
    rows = []
    for _ in range(rng.randint(*ROWS_PER_TABLE)):
        lits = [lit.by_column.get(c.lower(), []) for c, _ in table.columns]
        rows.append([(_rich_number(ls, rng) if rich and rng.random() < 0.3 else _numeric_value(ls, rng)) if k
                     else _text_value(ls, lit.strings, rng, rich) for ls, k in zip(lits, kinds)])
    if keys:
        for j, (column, _) in enumerate(table.columns):
            if is_key(table.name, column) and not lit.by_column.get(column.lower()):
                for row, value in zip(rows, _key_values(len(rows), kinds[j], rng)):
                    row[j] = value
    marks = ", ".join("?" * len(table.columns))
    conn.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)


@functools.lru_cache(maxsize=4096)
def database_image(context: str, gold: str, seed: int, instance: int, rich: bool = False,
                   keys: bool = False) -> bytes:
    """The serialized SQLite image of one synthetic instance (cached: contexts repeat across calls);
    `rich` adds near-miss values and NULLs, `keys` distinct key values (for `ftlib.tasks.sql.suite`)."""
    rng = random.Random(f"{seed}:{instance}:{context}:{gold}" + (":rich" if rich else "") + (":keys" if keys else ""))
    lit = gold_literals(gold)
    conn = sqlite3.connect(":memory:")
    try:
        for table in parse_context(context).values():
            if table.columns:
                _fill(conn, table, lit, rng, rich, keys)
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()

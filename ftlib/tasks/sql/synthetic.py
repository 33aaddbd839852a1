"""Synthetic SQLite databases for a CREATE TABLE context, seeded from the literals of a gold query.

The sql-create-context rows come without data, so a query can only be checked by running it on
tables we fill ourselves. Several small random instances per item (the "test-suite accuracy" idea of
Zhong, Yu & Klein, EMNLP 2020) tell apart queries that one instance would confuse. The values come
from the gold query's literals (`values`) so its WHERE clauses select some rows and not all of them,
and the keys a reader assumes hold (`keys`): a primary key is unique and not NULL, a link table
holds each pair once, a foreign key points at an existing row. Only a `broken` instance breaks them.

A database is built once per (context, gold, seed, instance, kind) and cached as a serialized image:
opening a copy of it takes microseconds, so scoring hundreds of items takes seconds.
"""

from __future__ import annotations

import functools
import random
import re
import sqlite3

from ftlib.tasks.sql import keys as keys_lib
from ftlib.tasks.sql import values
from ftlib.tasks.sql.schema import Table, parse_context
from ftlib.tasks.sql.values import Literals, gold_literals

NUMERIC_TYPE = re.compile(r"INT|REAL|NUM|FLOA|DOUB|DEC", re.I)
ROWS_PER_TABLE = (6, 12)
MAX_DENSE_ROWS = 500  # rows per table of a dense instance (a HAVING COUNT(*) >= 200 needs 200 in a group)
KINDS = ("plain", "rich", "dense", "twins", "broken")
COMMON = {"dense": 0.6, "twins": 0.9}  # share of a text column's free values on one word


def _row_count(kind: str, lit: Literals, rng: random.Random) -> int:
    if kind == "dense":  # room for a group past the gold's COUNT threshold, even split among values
        return min(MAX_DENSE_ROWS, max(16, 2 * lit.count_at_least + 4))
    return rng.randint(*ROWS_PER_TABLE)


def _value(column: str, numeric: bool, lit: Literals, rng: random.Random, kind: str, numbered: bool = False):
    """A value of an ordinary (not key) column; a `numbered` one (id-like, `keys.Keys.numbered`) holds
    small integers, as keys do, so a join the names do not reveal (`manager_id = employee_id`) meets."""
    lits = lit.by_column.get(column.lower(), [])
    if not lits and numbered:
        if kind in ("dense", "twins") and rng.random() < 0.6:
            return 1
        return None if kind == "rich" and rng.random() < 0.1 else rng.randint(1, 6)
    if numeric and kind == "rich" and rng.random() < 0.3:
        return values.rich_number(lits, rng)
    if numeric:
        return values.numeric_value(lits, rng, wide=column.lower() in lit.ordered)
    return values.text_value(lits, lit.strings, rng, rich=kind == "rich", common=COMMON.get(kind, 0.0))


def _key_pool(n: int, wanted: list, rng: random.Random) -> list:
    """n distinct key values: the literals the gold compares the key with, then 1, 2, 3... (Spider's
    ids are small integers; as text they never equal a word of `values.VOCAB`)."""
    pool = list(dict.fromkeys(v for v in wanted if rng.random() < 0.8))
    fresh = (i for i in range(1, 10 * n + 10) if i not in pool and str(i) not in pool)
    pool += [next(fresh) for _ in range(max(0, n - len(pool)))]
    pool = pool[:n]
    rng.shuffle(pool)
    return pool


def _foreign_value(targets: list, rng: random.Random, kind: str):
    """An existing key of the referenced table, skewed to a few (groups of several rows, shared members)."""
    if kind == "dense":  # most rows on one key: a group past a HAVING COUNT(*) threshold
        return targets[0] if rng.random() < 0.7 else rng.choice(targets)
    popular = targets[: max(1, len(targets) // 3)]
    return rng.choice(popular if rng.random() < 0.4 else targets)


def _rows(table: Table, numeric_columns: list[bool], found: keys_lib.Keys, pools: dict, lit: Literals,
          rng: random.Random, kind: str) -> list[list]:
    """The rows of one table: its key from `pools`, foreign keys from the referenced keys, the rest random."""
    t, n = table.name.lower(), _row_count(kind, lit, rng)
    pk = found.primary.get(t)
    if pk is not None:
        wanted = lit.by_column.get(pk, []) + [v for (t1, c), (t2, _) in found.foreign.items() if t2 == t
                                               for v in lit.by_column.get(c, [])]
        pools[t] = _key_pool(n, wanted, rng)
    rows = []
    for i in range(n):
        row = []
        for (column, _), numeric in zip(table.columns, numeric_columns):
            c = column.lower()
            target = found.foreign.get((t, c))
            if c == pk:
                row.append(pools[t][i])
            elif target is not None:  # (a table in a cycle of references comes first: its targets are 1..6)
                row.append(_foreign_value(pools.get(target[0]) or list(range(1, 7)), rng, kind))
            else:
                row.append(_value(column, numeric, lit, rng, kind, (t, c) in found.numbered))
        rows.append(row)
    unique = found.unique.get(t)
    if unique:  # a link table holds each combination once
        at = [i for i, (c, _) in enumerate(table.columns) if c.lower() in unique]
        rows = list({tuple(r[i] for i in at): r for r in rows}.values())
    return rows


def _break(rows: list[list], table: Table, found: keys_lib.Keys, rng: random.Random) -> None:
    """One row that breaks each assumption: a repeated primary key, a dangling and a NULL foreign key."""
    t = table.name.lower()
    for j, (column, _) in enumerate(table.columns):
        c = column.lower()
        if c == found.primary.get(t) and len(rows) > 1:
            rows[-1][j] = rows[0][j]
        elif (t, c) in found.foreign and len(rows) > 2:
            rows[rng.randrange(len(rows) - 1)][j] = None
            rows[-2][j] = 10_000 + rng.randint(0, 9)


@functools.lru_cache(maxsize=1024)
def _plan(context: str, gold: str) -> tuple[dict[str, Table], keys_lib.Keys, Literals]:
    """What every instance of one (context, gold) shares: its tables, keys and literals (cached)."""
    tables = parse_context(context)
    return tables, keys_lib.infer(tables, gold), gold_literals(gold)


def _fill(conn: sqlite3.Connection, context: str, gold: str, rng: random.Random, kind: str) -> None:
    """Create every table (numeric columns with NUMERIC affinity) and insert its rows, referenced tables first."""
    tables, found, lit = _plan(context, gold)
    pools: dict[str, list] = {}
    for t in found.order([t for t, table in tables.items() if table.columns]):
        table = tables[t]
        numeric = [(bool(NUMERIC_TYPE.search(ty)) and c.lower() not in lit.textual) or c.lower() in lit.numeric
                   for c, ty in table.columns]
        cols = ", ".join(f'"{c}" {"NUMERIC" if k else "TEXT"}' for (c, _), k in zip(table.columns, numeric))
        conn.execute(f'CREATE TABLE "{table.name}" ({cols})')
        rows = _rows(table, numeric, found, pools, lit, rng, kind)
        if kind == "broken":
            _break(rows, table, found, rng)
        marks = ", ".join("?" * len(table.columns))
        conn.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)


@functools.lru_cache(maxsize=4096)
def database_image(context: str, gold: str, seed: int, instance: int, kind: str = "plain") -> bytes:
    """The serialized SQLite image of one synthetic instance (cached: contexts repeat across calls).

    `kind`: "plain"; "rich" (fuzzed literals, numbers at each bound, NULLs); "dense" (many rows,
    common values: a HAVING threshold or an INTERSECT of two values can select rows); "twins" (as
    plain, with the common values of dense: two rows of different keys share a name); "broken"
    (one row breaks each key assumption: for telling real near-misses apart only)."""
    if kind not in KINDS:
        raise ValueError(f"database kind {kind!r}: expected one of {KINDS}")
    rng = random.Random(f"{seed}:{instance}:{context}:{gold}:{kind}")
    conn = sqlite3.connect(":memory:")
    try:
        _fill(conn, context, gold, rng, kind)
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()

"""The tables of a `CREATE TABLE` context: the one parser that data splits, databases and audits share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[`\"\[]?(\w+)[`\"\]]?\s*\(", re.I)


@dataclass
class Table:
    """One table of a context: its name as first written, its columns (name, declared type), and
    every spelling of its name and of each column's (lower-cased key) that the context uses."""

    name: str
    columns: list[tuple[str, str]] = field(default_factory=list)
    spellings: set[str] = field(default_factory=set)
    column_spellings: dict[str, set[str]] = field(default_factory=dict)


def _body(text: str, start: int) -> str:
    """The text inside the parenthesis opened just before `start`, up to its matching close."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:]


def parse_context(context: str) -> dict[str, Table]:
    """Tables of a CREATE TABLE context keyed by lower-cased name, repeats merged (SQLite ignores case).

    >>> t = parse_context("CREATE TABLE a (x INT); CREATE TABLE A (X VARCHAR, y VARCHAR)")
    >>> t["a"].columns, sorted(t["a"].spellings), sorted(t["a"].column_spellings["x"])
    ([('x', 'INT'), ('y', 'VARCHAR')], ['A', 'a'], ['X', 'x'])
    """
    tables: dict[str, Table] = {}
    for m in CREATE.finditer(context):
        table = tables.setdefault(m.group(1).lower(), Table(m.group(1)))
        table.spellings.add(m.group(1))
        for part in _body(context, m.end()).split(","):
            words = part.replace("`", " ").replace('"', " ").split()
            if not words:
                continue
            key = words[0].lower()
            if key not in table.column_spellings and re.fullmatch(r"\w+", words[0]):
                table.columns.append((words[0], words[1] if len(words) > 1 else ""))
            table.column_spellings.setdefault(key, set()).add(words[0])
    return tables


def table_names(context: str) -> list[str]:
    """Lower-cased table names a context declares, sorted and unique.

    >>> table_names("CREATE TABLE b (x INT); CREATE TABLE A (y INT)")
    ['a', 'b']
    """
    return sorted(parse_context(context))


def repeated_tables(context: str) -> bool:
    """Whether a context declares some table more than once (in any case)."""
    return len(CREATE.findall(context)) > len(parse_context(context))


def has_case_duplicate(context: str) -> bool:
    """Whether a table or a column is written in more than one case (SQLite sees one name)."""
    return any(len(t.spellings) > 1 or any(len(s) > 1 for s in t.column_spellings.values())
               for t in parse_context(context).values())


def column_types(context: str) -> dict[str, str]:
    """Declared type (upper case) per lower-cased column name, over every table of a context.

    >>> column_types("CREATE TABLE t (age VARCHAR, id INT)")
    {'age': 'VARCHAR', 'id': 'INT'}
    """
    return {c.lower(): ty.upper() for t in parse_context(context).values() for c, ty in t.columns}

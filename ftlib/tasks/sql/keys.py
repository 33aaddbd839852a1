"""The keys a reader assumes of a CREATE TABLE context that declares none: primary keys, link-table
pairs and foreign keys, inferred from Spider's naming (sql-create-context drops every constraint).

- a table's primary key is `id`, or the id-like column it is named for: `track_id` in `track`,
  `Address_ID` in `Addresses`, `building_id` in `Apartment_Buildings`, `document_type_code` in
  `Ref_Document_Types`, `StuID` in `Student` (a short stem that starts the table's name);
- a table without one whose id-like or shared columns number two or more holds each combination
  once (`product_suppliers (product_id, supplier_id)`: a link table);
- a column is a foreign key when another table's primary key has its name (`race.track_id` ->
  `track.track_id`), or that key is `id` and the column is `<table>_id` (`playlist_tracks.playlist_id`
  -> `playlists.id`; `advisor.s_id` -> `student.id`, a one-letter stem no other table starts with).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ftlib.tasks.sql.schema import Table

_ID_SUFFIX = re.compile(r"_?(?:id|code|number|no)$", re.I)


def table_forms(name: str) -> set[str]:
    """A table name's singular and plural spellings, lower case, `ref_` dropped.

    >>> sorted(table_forms("Ref_Addresses"))
    ['address', 'addresse', 'addresses']
    """
    t = name.lower().removeprefix("ref_")
    forms = {t, t.removesuffix("s")}
    if t.endswith("es"):
        forms.add(t[:-2])
    if t.endswith("ies"):
        forms.add(t[:-3] + "y")
    return forms


def stem(column: str) -> str | None:
    """The part of an id-like column before its suffix (`id`, `code`, `number`, `no`); None if none.

    >>> stem("StuID"), stem("document_type_code"), stem("id"), stem("name")
    ('stu', 'document_type', '', None)
    """
    m = _ID_SUFFIX.search(column)
    return column[: m.start()].lower().rstrip("_") if m else None


def key_rank(table: str, column: str) -> int:
    """How surely `column` is the key `table` is named for: 3 its name (`id`, `track_id` in `track`),
    2 the last word of its name (`building_id` in `Apartment_Buildings`), 1 a short stem that starts
    it (`eid` in `Employee`, `StuID` in `Student`), 0 not at all.

    >>> key_rank("track", "Track_ID"), key_rank("race", "track_id"), key_rank("Employee", "eid")
    (3, 0, 1)
    >>> key_rank("Apartment_Buildings", "building_id"), key_rank("Has_allergy", "StuID")
    (2, 0)
    """
    s = stem(column)
    if s is None:
        return 0
    forms = table_forms(table)
    if (s == "" and column.lower() == "id") or s in forms:
        return 3
    if s and any(f.endswith("_" + s) for f in forms):
        return 2
    return 1 if 0 < len(s) <= 3 and table.lower().startswith(s) else 0


@dataclass
class Keys:
    """Keys of one context: primary key per table, unique column groups, foreign keys (all lower case)."""

    primary: dict[str, str] = field(default_factory=dict)  # table -> column
    unique: dict[str, tuple[str, ...]] = field(default_factory=dict)  # link table -> its column pair...
    foreign: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (t, c) -> (t2, c2)
    numbered: set[tuple[str, str]] = field(default_factory=set)  # other id-like columns: small integers

    def order(self, tables: list[str]) -> list[str]:
        """Tables in an order that fills every referenced table before the tables referring to it."""
        done: list[str] = []
        pending = list(tables)
        while pending:
            ready = [t for t in pending if all(t2 in done or t2 == t or t2 not in pending
                                               for (t1, _), (t2, _) in self.foreign.items() if t1 == t)]
            ready = ready or pending[:1]  # a cycle: break it anywhere
            done.append(ready[0])
            pending.remove(ready[0])
        return done


def _target(table: str, column: str, primary: dict[str, str], names: dict[str, str]) -> str | None:
    """The table whose primary key `column` refers to, if exactly one fits."""
    c = column.lower()
    same = [t for t, k in primary.items() if t != table and k == c]
    if same:
        return same[0] if len(same) == 1 else None
    s = stem(column)
    if not s:
        return None
    by_id = [t for t, k in primary.items() if t != table and k == "id"]
    exact = [t for t in by_id if s in table_forms(names[t])]
    if exact:
        return exact[0] if len(exact) == 1 else None
    prefix = [t for t in by_id if len(s) <= 2 and t.startswith(s)]
    return prefix[0] if len(prefix) == 1 else None


_TABLE_REF = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(?!ON\b|JOIN\b|WHERE\b|GROUP\b|ORDER\b|LIMIT\b"
                        r"|INNER\b|LEFT\b|NATURAL\b|CROSS\b|UNION\b|INTERSECT\b|EXCEPT\b|HAVING\b)(\w+))?", re.I)
# `a.x = b.y`, and `x = (SELECT y ...` / `x IN (SELECT y ...`: a subquery's column meets x too
_EQUAL = re.compile(r"(?:(\w+)\.)?(\w+)\s*(?:=|\bIN\b)\s*(?:\(\s*SELECT\s+(?:DISTINCT\s+)?)?(?:(\w+)\.)?([A-Za-z_]\w*)",
                    re.I)


def _column_of(alias: str | None, column: str, aliases: dict[str, str], tables: dict[str, Table]) -> tuple | None:
    """(table, column) an `alias.column` of a query names, lower case; None if unknown or ambiguous."""
    c = column.lower()
    if alias is not None:
        t = aliases.get(alias.lower())
        return (t, c) if t in tables and c in tables[t].column_spellings else None
    holders = [t for t, table in tables.items() if c in table.column_spellings]
    return (holders[0], c) if len(holders) == 1 else None


def join_pairs(gold: str, tables: dict[str, Table]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The (table, column) pairs a query sets equal, such as `ON T1.Country_id = T2.Country` (a table
    may meet itself: `employees.reports_to = employees.id`).

    >>> from ftlib.tasks.sql.schema import parse_context
    >>> ctx = parse_context("CREATE TABLE c (id INT); CREATE TABLE m (country INT)")
    >>> join_pairs("SELECT * FROM c AS T1 JOIN m AS T2 ON T1.id = T2.country", ctx)
    [(('c', 'id'), ('m', 'country'))]
    """
    aliases = {}
    for m in _TABLE_REF.finditer(gold):
        aliases[m.group(1).lower()] = m.group(1).lower()
        if m.group(2):
            aliases[m.group(2).lower()] = m.group(1).lower()
    pairs = []
    for m in _EQUAL.finditer(re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", "''", gold)):
        a, b = _column_of(m.group(1), m.group(2), aliases, tables), _column_of(m.group(3), m.group(4), aliases, tables)
        if a and b and a != b:
            pairs.append((a, b))
    return pairs


def _primary_keys(tables: dict[str, Table]) -> dict[str, str]:
    """Each table's own key. A column name two tables claim goes to the surer claim alone
    (`product_id`: `products` over `regular_order_products`), to neither on a tie below 3
    (`rID` in `Reviewer` and `Rating`)."""
    claims = {}
    for t, table in tables.items():
        ranked = [(key_rank(table.name, c), c.lower()) for c, _ in table.columns]
        rank, column = max(ranked, default=(0, ""), key=lambda rc: rc[0])
        if rank:
            claims[t] = (rank, column)
    primary = {}
    for t, (rank, column) in claims.items():
        rivals = [r for t2, (r, c) in claims.items() if t2 != t and c == column]
        if column == "id" or all(r < rank for r in rivals) or (rank == 3 and max(rivals) == 3):
            primary[t] = column
    return primary


def infer(tables: dict[str, Table], gold: str = "") -> Keys:
    """Primary keys, link tables' unique pairs and foreign keys of a parsed context (see the module);
    with `gold`, also the foreign keys its joins imply (a column set equal to another table's key)."""
    keys = Keys(primary=_primary_keys(tables))
    names = {t: table.name for t, table in tables.items()}
    for t, table in tables.items():
        for c, _ in table.columns:
            if keys.primary.get(t) == c.lower():
                continue
            target = _target(t, c, keys.primary, names)
            if target is not None:
                keys.foreign[(t, c.lower())] = (target, keys.primary[target])
    pairs = join_pairs(gold, tables)
    for (t1, c1), (t2, c2) in pairs + [(b, a) for a, b in pairs]:  # `prescribes.patient = patient.SSN`
        if t1 not in keys.primary and c2 in table_forms(names[t1]) and keys.primary.get(t2) != c2:
            keys.primary[t1] = c1
    for (t1, c1), (t2, c2) in pairs + [(b, a) for a, b in pairs]:
        if keys.primary.get(t1) == c1 and keys.primary.get(t2) != c2 and (t2, c2) not in keys.foreign:
            keys.foreign[(t2, c2)] = (t1, c1)
    keyed = {(t, c) for t, c in keys.primary.items()} | set(keys.foreign)
    keys.numbered = {(t, c.lower()) for t, table in tables.items() for c, _ in table.columns
                     if stem(c) is not None and (t, c.lower()) not in keyed}
    for _ in pairs:  # a column the gold sets equal to a numbered one is numbered too (until nothing changes)
        grown = {x for a, b in pairs for x, y in ((a, b), (b, a)) if y in keys.numbered and x not in keyed}
        if grown <= keys.numbered:
            break
        keys.numbered |= grown
    for t, table in tables.items():
        if t in keys.primary:
            continue
        others = {c.lower() for t2, tb in tables.items() if t2 != t for c, _ in tb.columns}
        linked = tuple(c.lower() for c, _ in table.columns
                       if stem(c) is not None or c.lower() in others)
        if len(linked) >= 2:
            keys.unique[t] = linked
    return keys

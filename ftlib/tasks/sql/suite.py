"""A distilled test suite per gold query (Zhong, Yu & Klein, EMNLP 2020, reduced to what fits here).

Small random databases let near-misses through: on six rows drawn from a few shared values, `<>`
and `<`, or `LIKE 'x%'` and `LIKE '%x%'`, often return the same rows. So for each gold query we
write its *mutants* (a comparison flipped, a condition dropped, a LIKE pattern widened, AND/OR
swapped, DISTINCT, LIMIT or a sort direction toggled), build candidate databases (the plain ones of
`synthetic` plus richer ones with near-miss values, ties and NULLs; dense ones while the gold still
selects nothing; two that break a key assumption), and keep the few candidates on which the gold
disagrees with the most mutants. A prediction is then judged on those. Every kept database respects
the keys of `keys`, except a broken one kept because it alone tells a condition mutant apart.

A gold that selects nothing on every kept database, or that no database tells from any of its
mutants, cannot judge a prediction: `Suite.judgeable` is False and scoring leaves the item out.
Everything is seeded and cached per (context, gold).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass

from ftlib.tasks.sql import sandbox, synthetic

CANDIDATES = (6, 18)  # plain and rich candidate databases per gold query
MAX_DATABASES = 6  # kept per gold query
_BATCH = 4  # candidates tried between checks for stopping early (at least two batches are tried)
MIN_DATABASES = 3  # kept even when fewer already separate every mutant (they still test columns, tables)
DENSE = 12  # dense candidates tried, while the gold selects nothing (HAVING thresholds, INTERSECTs)
BROKEN = 2  # candidates that break a key assumption, kept only to tell a condition mutant apart
_FLIPS = {"=": ("!=", "<", ">"), "!=": ("=",), "<>": ("=",), "<": ("<=", ">", "<>"), ">": (">=", "<", "<>"),
          "<=": ("<", ">="), ">=": (">", "<=")}
_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_OPERATOR = re.compile(r"<>|!=|<=|>=|==|=|<|>")
_CONDITION = re.compile(r"(?:\w+\.)?\w+\s*(?:<>|!=|<=|>=|=|<|>|\bNOT\s+LIKE\b|\bLIKE\b)\s*"
                        r"(?:'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|-?\d+(?:\.\d+)?|(?:\w+\.)?\w+)", re.I)


def _outside_strings(query: str) -> list[tuple[int, int]]:
    """(start, end) spans of `query` that are not inside a quoted string."""
    spans, pos = [], 0
    for m in _STRING.finditer(query):
        spans.append((pos, m.start()))
        pos = m.end()
    return spans + [(pos, len(query))]


def _operator_mutants(query: str) -> list[str]:
    """Each comparison operator (outside strings) replaced by each of its near relatives."""
    out = []
    for a, b in _outside_strings(query):
        for m in _OPERATOR.finditer(query, a, b):
            op = "=" if m.group(0) == "==" else m.group(0)
            out += [f"{query[:m.start()]}{new}{query[m.end():]}" for new in _FLIPS[op]]
    return out


def _like_mutants(query: str) -> list[str]:
    """Each LIKE pattern made wider, narrower or exact: 'x%' -> '%x%', '%x', 'x' and so on; spaces
    around a word dropped: '% x %' -> '%x%'."""
    out = []
    for m in re.finditer(r"(\bLIKE\s+)(['\"])(.*?)\2", query, re.I):
        core, q = m.group(3).strip("%"), m.group(2)
        word = core.strip()  # '% the %' -> '%the%' too: "the" inside "other" tells them apart
        for pattern in {f"%{core}%", f"{core}%", f"%{core}", core, f"%{word}%"} - {m.group(3)}:
            out.append(f"{query[:m.start(2)]}{q}{pattern}{q}{query[m.end():]}")
    return out


def _condition_mutants(query: str) -> list[str]:
    """Each condition joined by AND/OR dropped, and each AND/OR swapped for the other."""
    out = []
    for m in re.finditer(r"\s+(AND|OR)\s+", query, re.I):
        swap = "OR" if m.group(1).upper() == "AND" else "AND"
        out.append(f"{query[:m.start()]} {swap} {query[m.end():]}")
        after = _CONDITION.match(query, m.end())
        if after:  # drop the condition after the connective
            out.append(query[:m.start()] + query[after.end():])
        before = [c for c in _CONDITION.finditer(query, 0, m.start()) if c.end() == m.start()]
        if before:  # drop the condition before it
            out.append(query[:before[-1].start()] + query[m.end():])
    return out


def _clause_mutants(query: str) -> list[str]:
    """DISTINCT added or removed, LIMIT removed, an aggregate dropped, each sort direction flipped."""
    out = [re.sub(r"^\s*SELECT\s+DISTINCT\b", "SELECT", query, count=1, flags=re.I)
           if re.match(r"\s*SELECT\s+DISTINCT\b", query, re.I)
           else re.sub(r"^\s*SELECT\b", "SELECT DISTINCT", query, count=1, flags=re.I)]
    out.append(re.sub(r"\s+LIMIT\s+\d+(?:\s*,\s*\d+)?", "", query, flags=re.I))
    for m in re.finditer(r"\b(?:SUM|AVG|MIN|MAX)\s*\(\s*((?:\w+\.)?\w+)\s*\)", query, re.I):  # SUM(x) -> x
        out.append(query[:m.start()] + m.group(1) + query[m.end():])
    for m in re.finditer(r"\b(ASC|DESC)\b", query, re.I):
        out.append(query[:m.start()] + ("ASC" if m.group(1).upper() == "DESC" else "DESC") + query[m.end():])
    if re.search(r"\bORDER\s+BY\b", query, re.I) and not re.search(r"\b(?:ASC|DESC)\b", query, re.I):
        out.append(re.sub(r"(\bORDER\s+BY\s+[^,]+?)(\s+LIMIT\b|$)", r"\1 DESC\2", query, count=1, flags=re.I))
    return out


def mutants(gold: str) -> list[str]:
    """Near-miss rewrites of a gold query (unique, the gold itself left out).

    >>> sorted(mutants("SELECT a FROM t WHERE b < 3"))[:3]
    ['SELECT DISTINCT a FROM t WHERE b < 3', 'SELECT a FROM t WHERE b <= 3', 'SELECT a FROM t WHERE b <> 3']
    """
    found = condition_mutants(gold) + _clause_mutants(gold)
    return [m for m in dict.fromkeys(found) if m.strip() != gold.strip()]


def condition_mutants(gold: str) -> list[str]:
    """The mutants that change which rows pass: comparisons, LIKE patterns, AND/OR and dropped conditions."""
    found = _operator_mutants(gold) + _like_mutants(gold) + _condition_mutants(gold)
    return [m for m in dict.fromkeys(found) if m.strip() != gold.strip()]


def _key(rows: list[tuple] | None, ordered: bool):
    """A result as a value to compare: the list when the query sorts, else the multiset."""
    if rows is None:
        return None
    return tuple(rows) if ordered else frozenset(Counter(rows).items())


def top_level_order_by(query: str) -> bool:
    """Whether the outer query sorts (an ORDER BY inside a subquery does not order the result)."""
    for m in re.finditer(r"\bORDER\s+BY\b", query, re.I):
        prefix = query[: m.start()]
        if prefix.count("(") == prefix.count(")"):
            return True
    return False


def _selects_something(rows: list[tuple] | None) -> bool:
    """A result with at least one value that is not NULL or 0 (an empty COUNT is 0, an empty MAX NULL)."""
    return bool(rows) and any(v not in (None, 0) for r in rows for v in r)


@dataclass(frozen=True)
class Suite:
    """The databases that judge one gold query, and what they achieve."""

    images: tuple[bytes, ...]
    mutants: int  # how many mutants the gold has
    killed: int  # how many of them some kept database tells apart from the gold
    conditions: int  # mutants of its conditions (operators, LIKE patterns, AND/OR): they change the rows
    conditions_killed: int
    selects: bool  # whether the gold selects something on some kept database

    @property
    def judgeable(self) -> bool:
        """A gold can judge when it selects something and, where it has conditions, some database
        tells it from a mutant of them (a DISTINCT added to a COUNT may be the same query: not counted)."""
        return self.selects and (self.conditions == 0 or self.conditions_killed > 0)


def _candidates(context: str, gold: str, seed: int):
    """Candidate databases, plain and rich in turn, built only as far as they are asked for."""
    for i in range(max(CANDIDATES)):
        if i < CANDIDATES[0]:
            yield synthetic.database_image(context, gold, seed, i, "plain")
        if i < CANDIDATES[1]:
            yield synthetic.database_image(context, gold, seed, i, "rich")


def _kills(image: bytes, gold: str, muts: list[str], skip: set[int]) -> tuple[list[tuple] | None, set[int]]:
    """The gold's rows on one database, and the mutants (not in `skip`) whose result differs there."""
    todo = [j for j in range(len(muts)) if j not in skip]
    results = sandbox.run_trusted_many(image, [gold] + [muts[j] for j in todo])
    rows = None if results[0].error is not None else results[0].rows
    g = _key(rows, top_level_order_by(gold))
    if g is None:
        return None, set()
    return rows, {j for j, r in zip(todo, results[1:])
                  if _key(None if r.error is not None else r.rows, top_level_order_by(muts[j])) != g}


def _evaluate(context: str, gold: str, seed: int, muts: list[str], conditions: set[int]):
    """(images, gold rows, kills, kinds): each candidate run against the mutants not yet told apart;
    stops early once every mutant is, or a batch of candidates tells apart nothing new. Dense
    candidates follow while the gold has selected nothing; broken ones while a condition mutant is
    not told apart (they are run on those mutants only: see `build`)."""
    images, gold_rows, kills, kinds, killed = [], [], [], [], set()
    for image in _candidates(context, gold, seed):
        rows, new = _kills(image, gold, muts, killed)
        images.append(image)
        gold_rows.append(rows)
        kills.append(new)
        kinds.append("plain")  # (or rich)
        killed |= new
        done = len(killed) == len(muts) or (len(images) % _BATCH == 0 and not any(kills[-_BATCH:]))
        if len(images) >= 2 * _BATCH and done:
            break
    extra = [("twins", 0)] + [("dense", i) for i in range(DENSE)] + [("broken", i) for i in range(BROKEN)]
    for kind, i in extra:
        if kind == "dense" and any(map(_selects_something, gold_rows)) or kind == "broken" and conditions <= killed:
            continue
        image = synthetic.database_image(context, gold, seed, i, kind)
        skip = killed | (set(range(len(muts))) - conditions) if kind == "broken" else set()
        rows, new = _kills(image, gold, muts, skip)
        killed |= new
        images.append(image)
        gold_rows.append(rows)
        kills.append(new)
        kinds.append(kind)
    return images, gold_rows, kills, kinds


@functools.lru_cache(maxsize=4096)
def build(context: str, gold: str, seed: int = 0) -> Suite:
    """Choose, greedily, the candidate databases that tell the gold from the most of its mutants."""
    muts = mutants(gold)
    conditions = {j for j, m in enumerate(muts) if m in set(condition_mutants(gold))}
    images, gold_rows, kills, kinds = _evaluate(context, gold, seed, muts, conditions)
    chosen, killed = [], set()
    usable = [i for i in range(len(images)) if gold_rows[i] is not None and kinds[i] != "broken"]
    usable = usable or [i for i in range(len(images)) if kinds[i] == "plain"]  # a failing gold: its error shows
    while len(chosen) < MAX_DATABASES:
        order = sorted(usable, key=lambda i: (-len(kills[i] - killed), not _selects_something(gold_rows[i]), i))
        best = next((i for i in order if i not in chosen), None)
        if best is None or (not kills[best] - killed and len(chosen) >= MIN_DATABASES):
            break
        chosen.append(best)
        killed |= kills[best]
    selecting = [i for i in usable if _selects_something(gold_rows[i])]
    if selecting and not any(i in selecting for i in chosen):  # one database where the gold selects rows
        chosen = chosen[: MAX_DATABASES - 1] + [selecting[0]]
    twins = [i for i in usable if kinds[i] == "twins" and _selects_something(gold_rows[i])]
    if twins and twins[0] not in chosen:  # names that repeat: GROUP BY a name is not GROUP BY its key
        chosen = chosen[: MAX_DATABASES - 1] + twins[:1]
    for i, kind in enumerate(kinds):  # a broken database only where it tells apart a real near-miss
        if kind == "broken" and gold_rows[i] is not None and (kills[i] & conditions) - killed:
            chosen = chosen[: MAX_DATABASES - 1] + [i] if len(chosen) >= MAX_DATABASES else chosen + [i]
            killed |= kills[i]
    return Suite(images=tuple(images[i] for i in chosen), mutants=len(muts), killed=len(killed),
                 conditions=len(conditions), conditions_killed=len(conditions & killed),
                 selects=any(_selects_something(gold_rows[i]) for i in chosen))

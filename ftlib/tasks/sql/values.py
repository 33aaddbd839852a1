"""The values of the synthetic databases, derived from a gold query's literals the way the Spider
test-suite fuzzer does (Zhong, Yu & Klein's test-suite accuracy): for each string literal, values holding it
at word boundaries and inside a word, in other cases; for each number compared, values equal to it,
just above and just below; NULLs where a column allows them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

LIT = r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|-?\d+(?:\.\d+)?"""
_OP = r"(?:==|=|!=|<>|<=|>=|<|>|\bNOT\s+LIKE\b|\bLIKE\b)"
COMPARE = re.compile(rf"(?:\w+\.)?(\w+)\s*{_OP}\s*({LIT})", re.I)
# an aggregate compared with a number ties the number to its column: HAVING AVG(salary) > 42000
AGG_COMPARE = re.compile(rf"\b(?:SUM|AVG|MIN|MAX)\s*\(\s*(?:DISTINCT\s+)?(?:\w+\.)?(\w+)\s*\)\s*{_OP}\s*({LIT})", re.I)
BETWEEN = re.compile(rf"(?:\w+\.)?(\w+)\s+(?:NOT\s+)?BETWEEN\s+({LIT})\s+AND\s+({LIT})", re.I)
IN_LIST = re.compile(rf"(?:\w+\.)?(\w+)\s+(?:NOT\s+)?IN\s*\(\s*((?:{LIT})(?:\s*,\s*(?:{LIT}))*)\s*\)", re.I)
SUM_AVG = re.compile(r"\b(?:SUM|AVG)\s*\(\s*(?:DISTINCT\s+)?(?:\w+\.)?(\w+)\s*\)", re.I)
ARITHMETIC = re.compile(r"(?:\w+\.)?([A-Za-z_]\w*)\s*[-+/]\s*(?:\w+\.)?([A-Za-z_]\w*)")
ORDER_KEYS = re.compile(r"\bORDER\s+BY\s+(?:\w+\.)?([A-Za-z_]\w*)\s*(?:ASC|DESC)?\s*(?:LIMIT\b|$|\))", re.I)
COUNT_AT_LEAST = re.compile(r"\bCOUNT\s*\([^)]*\)\s*(>=|>)\s*(\d+)", re.I)
_STRING = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*\"""")
# Shared by every text column that is not a key, so joins between such columns meet.
VOCAB = ("alpha", "beta", "gamma", "delta", "omega")


def literal(token: str) -> str | float | int:
    """A SQL literal token as a Python value: quotes stripped, numbers as numbers."""
    if token[0] in "'\"":
        return token[1:-1].replace(token[0] * 2, token[0])
    return float(token) if "." in token else int(token)


@dataclass
class Literals:
    """What the gold says about values: literals per column, all string literals, numeric columns,
    and the largest `COUNT(...) >`/`>=` threshold (a HAVING that needs big groups)."""

    by_column: dict[str, list] = field(default_factory=dict)
    strings: list[str] = field(default_factory=list)
    numeric: set[str] = field(default_factory=set)
    textual: set[str] = field(default_factory=set)  # compared with text only ('1986-11-13'), whatever their type
    ordered: set[str] = field(default_factory=set)  # sorted on (ORDER BY x): mostly distinct numbers
    count_at_least: int = 0


def gold_literals(gold: str) -> Literals:
    """Collect the literals of a gold query, tied to the column they are compared with.

    >>> lit = gold_literals("SELECT a FROM t WHERE T1.age > 56 AND name = 'Bo' GROUP BY a HAVING COUNT(*) > 5")
    >>> lit.by_column, sorted(lit.numeric), lit.count_at_least
    ({'age': [56], 'name': ['Bo']}, ['age'], 6)
    """
    lit = Literals()
    pairs = [(m.group(1), m.group(2)) for m in COMPARE.finditer(gold)]
    pairs += [(m.group(1), m.group(2)) for m in AGG_COMPARE.finditer(gold)]
    pairs += [(m.group(1), t) for m in BETWEEN.finditer(gold) for t in m.group(2, 3)]
    for m in IN_LIST.finditer(gold):
        pairs += [(m.group(1), t) for t in re.findall(LIT, m.group(2))]
    for column, token in pairs:
        value = literal(token)
        lit.by_column.setdefault(column.lower(), []).append(value)
        if not isinstance(value, str):
            lit.numeric.add(column.lower())
    lit.textual = {c for c, vs in lit.by_column.items() if all(isinstance(v, str) for v in vs)}
    lit.strings = [literal(t) for t in _STRING.findall(gold)]
    lit.numeric |= {c.lower() for c in SUM_AVG.findall(gold)}
    unquoted = _STRING.sub("''", gold)
    lit.numeric |= {c.lower() for m in ARITHMETIC.finditer(unquoted) for c in m.groups()}
    sorted_on = ORDER_KEYS.findall(unquoted)
    lit.ordered = {c.lower() for c in sorted_on} - lit.textual
    lit.numeric |= lit.ordered
    lit.count_at_least = max((int(n) + (op == ">") for op, n in COUNT_AT_LEAST.findall(gold)), default=0)
    return lit


def _unlike(pattern: str, rng: random.Random) -> str:
    """The literal itself or, half the time, a string it matches as a LIKE pattern (% and _ filled)."""
    if rng.random() < 0.5:
        return pattern
    return "".join(rng.choice(VOCAB) if ch == "%" else "x" if ch == "_" else ch for ch in pattern)


def numeric_value(lits: list, rng: random.Random, wide: bool = False) -> int | float:
    """A number near the column's literals (so comparisons split the rows), else a small int (`wide`:
    one of 0..99, so a sort on the column has few ties and its order is tested)."""
    nums = [v for v in lits if not isinstance(v, str)]
    if not nums:
        return rng.randint(0, 99 if wide else 9)
    r, spread = rng.random(), max(3, int(max(abs(v) for v in nums) * 0.2))
    if r < 0.3:
        return rng.choice(nums)
    if r < 0.6:  # just either side of a literal, so `>` and `>=` give different rows
        return int(rng.choice(nums)) + rng.choice((-1, 1)) * rng.randint(1, spread)
    value = rng.randint(int(min(nums)) - spread, int(max(nums)) + spread)
    return value + 0.5 if any(isinstance(v, float) for v in nums) and rng.random() < 0.5 else value


def fuzz_text(word: str, rng: random.Random) -> str:
    """A value holding a literal's core (its LIKE wildcards and spaces stripped): alone, at a word
    boundary, inside a word, in another case, or cut short (just below it: a literal's prefix sorts before the literal).

    >>> found = {fuzz_text("% the %", random.Random(i)) for i in range(300)}
    >>> "the" in found, "THE" in found, "alphathe" in found, "alpha the beta" in found
    (True, True, True, True)
    """
    core = word.strip("% ").replace("%", " ") or word
    a, b = rng.choice(VOCAB), rng.choice(VOCAB)
    return rng.choice((core, f"{a} {core}", f"{core} {b}", f"{a} {core} {b}", f"{a}{core}{b}", f"{a}{core}",
                       f"{core}{b}", core.upper(), core.lower(), core.title(), core[:-1] or core))


def text_value(lits: list, strings: list[str], rng: random.Random, rich: bool = False,
               common: float = 0.0) -> str | None:
    """A value from the column's own literals (LIKE patterns filled in), the query's others, or VOCAB;
    `rich` adds fuzzed literals and NULLs; `common` > 0 favours literals and puts that share of the
    rest on one word (big groups, names that repeat)."""
    if rich and rng.random() < 0.35:
        pool = [str(v) for v in lits + strings if isinstance(v, str)]
        return None if rng.random() < 0.2 or not pool else fuzz_text(rng.choice(pool), rng)
    r = rng.random()
    if lits and r < (0.8 if common else 0.45):
        return _unlike(str(rng.choice(lits)), rng)
    if strings and r < (0.85 if common else 0.55):
        return _unlike(rng.choice(strings), rng)
    return VOCAB[0] if rng.random() < common else rng.choice(VOCAB)


def rich_number(lits: list, rng: random.Random) -> int | float | None:
    """NULL, or a value equal to a literal or just above or below it (ties and non-ties at each bound)."""
    nums = [v for v in lits if not isinstance(v, str)]
    if rng.random() < 0.2 or not nums:
        return None if rng.random() < 0.5 else rng.randint(0, 3)
    step = 0.5 if any(isinstance(v, float) for v in nums) else 1
    return rng.choice(nums) + rng.choice((-step, 0, 0, step))

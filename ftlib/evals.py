"""Scorers for the three tasks: pure functions that never raise on any model output.

- ViGGO: function, attribute types (as a set), their order, exact values (value lists as sets);
  every level needs a well-formed meaning representation (its parentheses and brackets closed).
- GSM8K: lm-evaluation-harness's two figures, `strict_match` (its "strict-match": the first number
  after `#### `) and `flexible_extract` ("flexible-extract": the last number in the text), compared
  as strings after its normalisation; the headline is strict_match, which does not credit an answer
  that never states one and happens to end on the gold number.
- SQL: execution match on databases chosen to tell each gold query from its near-miss mutants, any
  column order, row order only on the gold's ORDER BY keys (`ftlib.sql`).

Which scorer a task uses, and its metrics, are part of the task's declaration (`ftlib.tasks`);
`score_row` looks it up. `summarize` turns per-example scores into means with 95% intervals.
The `*_error_kind` functions give one word per failure for error analysis.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from decimal import Decimal, InvalidOperation

from ftlib.sql.match import audit_gold, audit_rows, compare, sql_error_kind, sql_execution_match, sql_gold_usable
from ftlib.sql.sandbox import extract_sql

__all__ = [
    "VIGGO_ATTRIBUTES", "VIGGO_FUNCTIONS", "audit_gold", "audit_rows", "extract_gsm8k_answer",
    "extract_sql", "gsm8k_correct", "gsm8k_error_kind", "gsm8k_lm_eval", "parse_viggo", "proportion_ci", "score_row",
    "score_viggo", "sql_error_kind", "sql_execution_match", "sql_gold_usable", "summarize",
    "viggo_error_kind",
]

VIGGO_FUNCTIONS = ("inform", "request", "give_opinion", "confirm", "verify_attribute", "suggest",
                   "request_explanation", "recommend", "request_attribute")
VIGGO_ATTRIBUTES = ("name", "exp_release_date", "release_year", "developer", "esrb", "rating",
                    "genres", "player_perspective", "has_multiplayer", "platforms",
                    "available_on_steam", "has_linux_release", "has_mac_release", "specifier")
_VIGGO_METRICS = ("function", "attribute_types", "attribute_order", "exact")
# Tried in turn: a known function opening an attribute (skips prose like "I inform (you)"), any
# known function, then any `name(attr[` so a made-up function still parses (and scores wrong).
_FUNCTION_PATTERNS = (
    re.compile(rf"\b({'|'.join(VIGGO_FUNCTIONS)})\s*\(\s*\w+\s*\["),
    re.compile(rf"\b({'|'.join(VIGGO_FUNCTIONS)})\s*\("),
    re.compile(r"\b([A-Za-z_]\w*)\s*\(\s*\w+\s*\["),
)
_ATTRIBUTE = re.compile(r"\s*,?\s*(\w+)\s*\[")


def _attributes(body: str) -> tuple[list[tuple[str, str]], bool]:
    """`name[value], ...` pairs of an MR body (a value runs to its matching `]` and may hold anything),
    and whether the MR is well formed: every `[` closed, then the function's `)` or the end of the text
    (a lone lost `)` is forgiven; a cut or a repeat until the token cap is not)."""
    pairs, pos = [], 0
    while m := _ATTRIBUTE.match(body, pos):
        depth, i = 1, m.end()
        while i < len(body) and depth:
            depth += {"[": 1, "]": -1}.get(body[i], 0)
            i += 1
        if depth:
            return pairs + [(m.group(1).lower(), body[m.end():].rstrip(" )"))], False
        pairs.append((m.group(1).lower(), body[m.end(): i - 1]))
        pos = i
    rest = body[pos:].strip()
    return pairs, rest == "" or rest.startswith(")")


def parse_viggo(text: str) -> tuple[str, list[tuple[str, str]]] | None:
    """The function and (attribute, value) pairs of a well-formed meaning representation, or None
    (also for one that never closes, as a model looping until its token cap writes).

    >>> parse_viggo("MR: inform(name[X], esrb[E 10+ (for Everyone 10 and Older)], genres[driving/racing, sport])")
    ('inform', [('name', 'X'), ('esrb', 'E 10+ (for Everyone 10 and Older)'), ('genres', 'driving/racing, sport')])
    >>> parse_viggo("verify_attribute(player_perspective[], rating[good], player_perspective[") is None
    True
    """
    if not isinstance(text, str):
        return None
    m = next((m for m in (p.search(text) for p in _FUNCTION_PATTERNS) if m), None)
    if m is None:
        return None
    start = text.index("(", m.start()) + 1
    pairs, closed = _attributes(text[start:])
    return (m.group(1).lower(), pairs) if closed else None


def _value_set(value: str) -> frozenset[str]:
    return frozenset(v.strip() for v in value.split(",") if v.strip())


def score_viggo(prediction: str, reference: str) -> dict[str, bool]:
    """Four nested checks: function; + attribute types as a set; + their order; + every value.

    >>> score_viggo("give_opinion(rating[good], name[X])", "give_opinion(name[X], rating[poor])")
    {'function': True, 'attribute_types': True, 'attribute_order': False, 'exact': False}
    """
    pred, ref = parse_viggo(prediction), parse_viggo(reference)
    out = dict.fromkeys(_VIGGO_METRICS, False)
    if pred is None or ref is None or pred[0] != ref[0]:
        return out
    out["function"] = True
    names_p, names_r = [a for a, _ in pred[1]], [a for a, _ in ref[1]]
    out["attribute_types"] = set(names_p) == set(names_r)
    out["attribute_order"] = out["attribute_types"] and names_p == names_r
    values_p = [(a, _value_set(v)) for a, v in pred[1]]
    out["exact"] = out["attribute_order"] and values_p == [(a, _value_set(v)) for a, v in ref[1]]
    return out


def viggo_error_kind(prediction: str, reference: str) -> str:
    """One word: correct, unparsable, wrong_function, missing_attribute, extra_attribute,
    wrong_attributes (both), wrong_order or wrong_value."""
    s = score_viggo(prediction, reference)
    if s["exact"]:
        return "correct"
    pred, ref = parse_viggo(prediction), parse_viggo(reference)
    if pred is None or ref is None:
        return "unparsable"
    if not s["function"]:
        return "wrong_function"
    if not s["attribute_types"]:
        missing = {a for a, _ in ref[1]} - {a for a, _ in pred[1]}
        extra = {a for a, _ in pred[1]} - {a for a, _ in ref[1]}
        return "wrong_attributes" if missing and extra else "missing_attribute" if missing else "extra_attribute"
    return "wrong_order" if not s["attribute_order"] else "wrong_value"


_NUMBER = re.compile(r"-?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def extract_gsm8k_answer(text: str) -> str | None:
    """The number after the last `####`, else the last number; commas and `$` removed.

    >>> extract_gsm8k_answer("She makes 9 * 2 = $18.\\n#### 1,018.")
    '1018'
    >>> extract_gsm8k_answer("about -3.5 apples") , extract_gsm8k_answer("none") is None
    ('-3.5', True)
    """
    if not isinstance(text, str):
        return None
    tail = text.rsplit("####", 1)[1] if "####" in text else ""
    m = _NUMBER.search(tail)
    numbers = [m] if m else list(_NUMBER.finditer(text))[-1:]
    if not numbers:
        return None
    return numbers[0].group(0).replace(",", "").replace("$", "").rstrip(".")


# lm-evaluation-harness, tasks/gsm8k/gsm8k.yaml: the two filters and exact_match's normalisation.
_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")


def lm_eval_gsm8k_answer(text: str, mode: str) -> str | None:
    """The answer lm-evaluation-harness's filter takes: mode "strict" is the first `#### <number>`,
    "flexible" the last number-like token; None where it finds none (its "[invalid]").

    >>> lm_eval_gsm8k_answer("2 + 3 = 5\\n#### 5.\\n#### 7", "strict"), lm_eval_gsm8k_answer("so $1,018.", "flexible")
    ('5.', '$1,018.')
    """
    if not isinstance(text, str):
        return None
    found = (_STRICT if mode == "strict" else _FLEXIBLE).findall(text)
    if not found:
        return None
    pick = found[0] if mode == "strict" else found[-1]
    if isinstance(pick, tuple):
        pick = next((g for g in pick if g), "")
    return pick.strip() or None


def _lm_eval_normal(text: str) -> str:
    """exact_match's normalisation of both sides: drop `,`, `$`, everything up to `#### `, a final `.`."""
    for pattern in _IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def gsm8k_lm_eval(prediction: str, reference: str) -> dict[str, bool]:
    """strict_match and flexible_extract as lm-evaluation-harness scores them (string equality).

    >>> gsm8k_lm_eval("... 18 eggs ... 18 ... 18", "... #### 18")
    {'strict_match': False, 'flexible_extract': True}
    """
    out = {}
    for key, mode in (("strict_match", "strict"), ("flexible_extract", "flexible")):
        answer = lm_eval_gsm8k_answer(prediction, mode)
        out[key] = answer is not None and _lm_eval_normal(answer) == _lm_eval_normal(str(reference))
    return out


def _number(text: str | None) -> Decimal | None:
    try:
        return Decimal(text) if text is not None else None
    except InvalidOperation:
        return None


def gsm8k_correct(prediction: str, reference: str) -> bool:
    """Whether the prediction's final number equals the reference's, numerically (18 == 18.0).

    >>> gsm8k_correct("so the answer is 18.0", "... #### 18")
    True
    """
    pred, ref = _number(extract_gsm8k_answer(prediction)), _number(extract_gsm8k_answer(reference))
    return pred is not None and ref is not None and pred == ref


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _arith(node: ast.AST) -> float:
    """Evaluate +, -, *, /, //, % over numbers only (no names, no calls, no powers: safe on model text)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.left), _arith(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_arith(node.operand))
    raise ValueError("not plain arithmetic")


def calculator_notes(text: str) -> list[tuple[str, str]]:
    """The (expression, result) of every GSM8K calculator note `<<expression=result>>` in a text.

    >>> calculator_notes("4*3=<<4*3=12>>12 and <<12/2=6>>6")
    [('4*3', '12'), ('12/2', '6')]
    """
    return re.findall(r"<<([^<>=]{1,200})=([^<>=]{1,50})>>", text if isinstance(text, str) else "")


_NOT_ARITHMETIC = (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError, RecursionError, MemoryError)


def arithmetic(expression: str) -> float | None:
    """The value of a calculator note's expression (+ - * / // % over numbers), None if it is not one.

    >>> arithmetic("1,200*3/4"), arithmetic("x+1")
    (900.0, None)
    """
    try:
        return _arith(ast.parse(expression.replace(",", "").replace("$", ""), mode="eval").body)
    except _NOT_ARITHMETIC:
        return None


def note_is_wrong(expression: str, result: str) -> bool:
    """Whether a calculator note `<<expression=result>>` is arithmetically wrong."""
    value = arithmetic(expression)
    try:
        stated = float(result.replace(",", "").replace("$", ""))
    except ValueError:
        return False  # not checkable: not counted as a slip
    return value is not None and not math.isclose(value, stated, rel_tol=1e-4, abs_tol=1e-2)


def calculator(text: str) -> str | None:
    """What a calculator appends to a text that has just opened a GSM8K note: `...<<48/2=` -> `24>>`.

    The notes in GSM8K's answers were written for this: a calculator computes what the model would
    otherwise have to (a 135M model gets about a quarter of them wrong).

    >>> calculator("She sold 48/2 = <<48/2="), calculator("<<7/2="), calculator("no note =")
    ('24>>', '3.5>>', None)
    """
    match = re.search(r"<<([^<>=]{1,200})=$", text)
    value = arithmetic(match.group(1)) if match else None
    if value is None or not math.isfinite(value):
        return None
    return f"{round(value, 6):g}>>" if abs(value) < 1e15 else None


def gsm8k_error_kind(prediction: str, reference: str) -> str:
    """One word by the headline (strict-match): correct, no_answer (no `#### <number>`),
    arithmetic_slip (a `<<a=b>>` annotation is wrong) or wrong_reasoning.

    >>> gsm8k_error_kind("3 + 4 = <<3+4=8>>8\\n#### 8", "#### 7")
    'arithmetic_slip'
    """
    if gsm8k_lm_eval(prediction, reference)["strict_match"]:
        return "correct"
    if lm_eval_gsm8k_answer(prediction, "strict") is None:
        return "no_answer"
    notes = calculator_notes(prediction)
    return "arithmetic_slip" if any(note_is_wrong(e, r) for e, r in notes) else "wrong_reasoning"


def score_sql(prediction: str, gold: str, context: str) -> dict[str, bool]:
    """execution_match, valid_sql (a query that runs), extracted (a query was found at all) and judged
    (the gold can judge: it selects something and its databases tell it from its mutants). Where it
    cannot, execution_match is left out, so the headline's n counts judged items only."""
    kind = compare(prediction, gold, context)
    out = {"execution_match": kind == "correct",
           "valid_sql": kind in ("correct", "wrong_columns", "wrong_rows"),
           "extracted": kind != "no_sql", "judged": kind != "unjudgeable"}
    if kind == "unjudgeable":
        del out["execution_match"], out["valid_sql"], out["extracted"]
    return out


def score_row(task: str, prediction: str, row: dict) -> dict:
    """Score one prediction against a row of the task (a spec of `ftlib.tasks.get`)."""
    from ftlib import tasks

    return tasks.get(task).score(prediction, row)


def proportion_ci(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes out of n (stays inside [0, 1], sane at 0 and n).

    >>> [round(x, 3) for x in proportion_ci(8, 10)]
    [0.49, 0.943]
    """
    if n <= 0:
        return (0.0, 1.0)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_ci(values: list[float], z: float = 1.96) -> tuple[float, float]:
    """Normal-approximation interval of a mean (for scores that are numbers, not pass/fail).

    >>> [round(x, 3) for x in mean_ci([0.5, 1.0, 0.75, 1.0])]
    [0.578, 1.047]
    """
    n = len(values)
    if n < 2:
        return (float("nan"), float("nan"))
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return (mean - z * sd / math.sqrt(n), mean + z * sd / math.sqrt(n))


def summarize(scores: list[dict]) -> dict[str, dict]:
    """Per metric (every key of the score dicts, in first-seen order): mean, ci_low, ci_high, n.

    Pass/fail metrics get a Wilson interval; metrics that are numbers (a share of slots, a length)
    a normal-approximation one.

    >>> summarize([{"correct": True}, {"correct": False}])["correct"]["mean"]
    0.5
    """
    keys = list(dict.fromkeys(k for s in scores for k in s))
    out = {}
    for key in keys:
        raw = [s[key] for s in scores if key in s]
        n = len(raw)
        if all(isinstance(v, bool) or v in (0, 1) for v in raw):
            k = sum(bool(v) for v in raw)
            lo, hi = proportion_ci(k, n)
            out[key] = {"mean": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi, "n": n}
        else:
            values = [float(v) for v in raw]
            lo, hi = mean_ci(values)
            out[key] = {"mean": sum(values) / n, "ci_low": lo, "ci_high": hi, "n": n}
    return out


def metric_means(task: str, scores: list[dict]) -> dict:
    """Each metric of a task as its mean over examples (0.0 for none), plus n.

    >>> metric_means("gsm8k", [{"strict_match": True, "flexible_extract": True}, {"strict_match": False}])
    {'strict_match': 0.5, 'flexible_extract': 1.0, 'n': 2}
    """
    from ftlib import tasks

    summary = summarize(scores)
    return {**{k: summary[k]["mean"] if k in summary else 0.0 for k in tasks.get(task).metrics}, "n": len(scores)}

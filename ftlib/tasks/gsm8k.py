"""GSM8K: grade-school math word problems, answered step by step, ending with `#### <number>`.

Data: the official test split; validation is the last 500 rows of the official train file.
Scoring: lm-evaluation-harness's two figures, `strict_match` (its "strict-match": the first number
after `#### `) and `flexible_extract` ("flexible-extract": the last number in the text), compared as
strings after its normalisation; the headline is strict_match, which does not credit an answer that
never states one and happens to end on the gold number. The calculator (`calculator`) is a decoding
tool for its `<<a=b>>` notes.

Program-of-thought (`as_program`): the same problems answered by a short Python program whose printed
number is the answer, run by `tasks/program.py`; it is scored as if the model had written `#### <number>`.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import operator
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

from ftlib import scorers
from ftlib.tasks import program
from ftlib.tasks.base import SPLITS, builtin, check_split, hub_rows, read_vendored

FIELDS = ("question", "answer")
VALIDATION_ROWS = 500
HUB_ID = "openai/gsm8k"


def _final_number(text: str) -> Decimal | None:
    """The first number after the last `####`, else the last number (`scorers.last_number`)."""
    if not isinstance(text, str):
        return None
    m = scorers.NUMBER.search(text.rsplit("####", 1)[1]) if "####" in text else None
    return scorers.as_number(m.group(0)) if m else scorers.last_number(text)


def extract_gsm8k_answer(text: str) -> str | None:
    """The number after the last `####`, else the last number; commas and `$` removed.

    >>> extract_gsm8k_answer("She makes 9 * 2 = $18.\\n#### 1,018.")
    '1018'
    >>> extract_gsm8k_answer("about -3.5 apples") , extract_gsm8k_answer("none") is None
    ('-3.5', True)
    """
    value = _final_number(text)
    return None if value is None else str(value)


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


def gsm8k_correct(prediction: str, reference: str) -> bool:
    """Whether the prediction's final number equals the reference's, numerically (18 == 18.0).

    >>> gsm8k_correct("so the answer is 18.0", "... #### 18")
    True
    """
    pred, ref = _final_number(prediction), _final_number(reference)
    return pred is not None and ref is not None and pred == ref


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


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


def gsm8k_failures(records: list[dict]) -> dict[str, int]:
    """Why GSM8K answers fail: no `####` line at all, the same line written 3+ times, and
    calculator notes `<<a=b>>` whose result is wrong (what a calculator would have fixed).

    >>> gsm8k_failures([{"prediction": "2*3=<<2*3=7>>7\\n#### 7"}])["wrong_notes"]
    1
    """
    out = Counter(items=len(records))
    for r in records:
        text = r["prediction"]
        lines = Counter(line.strip() for line in text.splitlines() if line.strip())
        notes = calculator_notes(text)
        out["no_answer_line"] += "####" not in text
        out["repeats_a_line_3x"] += max(lines.values(), default=0) >= 3
        out["notes"] += len(notes)
        out["wrong_notes"] += sum(note_is_wrong(e, v) for e, v in notes)
        out["answers_with_a_wrong_note"] += any(note_is_wrong(e, v) for e, v in notes)
    return dict(out)


def _split(split: str, rows: list[dict]) -> list[dict]:
    """The project's validation split: the last VALIDATION_ROWS rows of the official train file."""
    if split == "test":
        return rows
    cut = len(rows) - VALIDATION_ROWS
    return rows[:cut] if split == "train" else rows[cut:]


def load(split: str) -> list[dict]:
    """Rows of one split from the vendored files."""
    check_split("gsm8k", split, SPLITS)
    return _split(split, read_vendored(f"gsm8k/{'test' if split == 'test' else 'train'}.jsonl", FIELDS))


def hub(split: str) -> list[dict]:
    """One split from the hub (needs internet), split the same way."""
    check_split("gsm8k", split, SPLITS)
    return _split(split, hub_rows(HUB_ID, "test" if split == "test" else "train", "main"))


# Gold solutions are 287 tokens at the 99th percentile (415 at most) on the test set.
TASK = builtin(
    code=(Path(__file__),),
    name="gsm8k",
    load=load,
    hub=hub,
    fields=FIELDS,
    question=lambda r: f"Problem: {r['question']}",
    reference=lambda r: r["answer"],
    # lm-evaluation-harness's two figures; the headline is strict-match (the first `#### <number>`)
    score=lambda p, r: gsm8k_lm_eval(p, r["answer"]),
    metrics=("strict_match", "flexible_extract"),
    primary="strict_match",
    instruction="Solve this math problem step by step. End with '#### ' followed by the final number.",
    system="You solve grade-school math word problems. Reason step by step, then write the final "
    "answer as a number on its own line after '#### ', for example:\n#### 42",
    max_new_tokens=320,
    few_shot=3,
    answer_label="Solution:",
    text_stop=("\n\n", "\nProblem:"),  # a solution spans lines: it ends at a blank line or the next problem
    # worked examples without the calculator notes `<<4*2=8>>`, for readability
    shot_answer=lambda r: re.sub(r"<<[^>]*>>", "", r["answer"]),
    with_answer=lambda r, p: {**r, "answer": p.strip()},
    error_kind=lambda p, rec: gsm8k_error_kind(p, rec["reference"]),
    record_row=lambda rec: {"answer": rec["reference"]},
    title="GSM8K (strict-match: the number after ####)",
)


PROGRAM_SYSTEM = (
    "You solve grade-school math word problems by writing a short Python program. Compute every "
    "quantity in code, then print the final answer as a single number. Reply with the program "
    "only, in one ```python block."
)
PROGRAM_BUDGET = 512  # tokens: Qwen2.5-Coder's programs for GSM8K run 60-250


def program_text(answer: str) -> str:
    """The program in an answer: its first fenced block (```python or ```), else the whole text.

    >>> program_text("Here:\\n```python\\nx = 2\\nprint(x)\\n```\\nDone.")
    'x = 2\\nprint(x)'
    """
    m = re.search(r"```[ \t]*(?:python|py)?[ \t]*\n(.*?)(?:```|$)", answer, re.S)
    return (m.group(1) if m else answer).strip()


def program_answer(answer: str) -> tuple[str | None, str | None]:
    """(the number a program answer prints, normalised: 18.0 -> 18, or None; the sandbox's error)."""
    outcome = program.run(program_text(answer))
    value = scorers.last_number(outcome.value or "")
    if value is None:
        return None, outcome.error or f"printed no number: {outcome.value!r}"
    return format(value.normalize(), "f"), None


def gsm8k_program(prediction: str, reference: str) -> dict[str, bool]:
    """strict_match and flexible_extract of the program's printed number written as `#### <number>`,
    and `ran`: the program passed the sandbox's checks and printed a number.

    >>> gsm8k_program("```python\\nprint(36 / 2)\\n```", "... #### 18")
    {'strict_match': True, 'flexible_extract': True, 'ran': True}
    """
    value, error = program_answer(prediction)
    scores = {**gsm8k_lm_eval(f"#### {value}" if value is not None else "", reference), "ran": value is not None}
    return scores | ({"program_error": error} if error else {})  # the why, kept per item


def program_error_kind(prediction: str, reference: str) -> str:
    """correct, no_number (refused, failed, or printed no number) or wrong_result."""
    scores = gsm8k_program(prediction, reference)
    return "correct" if scores["strict_match"] else "wrong_result" if scores["ran"] else "no_number"


def as_program(task):
    """A GSM8K task asked for programs: the program-of-thought system prompt, budget and scorer (zero-shot:
    GSM8K's worked examples are prose, not programs)."""
    score = lambda p, r: gsm8k_program(p, r["answer"])  # noqa: E731 (its source is part of scorer_id)
    return dataclasses.replace(
        task,
        system=PROGRAM_SYSTEM,
        max_new_tokens=PROGRAM_BUDGET,
        score=score,
        metrics=("strict_match", "flexible_extract", "ran"),
        few_shot=0,
        error_kind=lambda p, rec: program_error_kind(p, rec["reference"]),
        scorer_id=scorers.code_id(score, (Path(__file__), Path(program.__file__))),
    )

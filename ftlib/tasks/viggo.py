"""ViGGO: a video-game sentence -> its meaning representation (MR), `inform(name[X], rating[good])`.

Data: the official splits (GEM format), plus GEM's `challenge_train_{1,2,5,10,20}_percent` subsets as
splits of the same name. Scoring: function, attribute types (as a set), their order, exact values
(value lists as sets); every level needs a well-formed MR (its parentheses and brackets closed).
Rounds corrupt its labels (`corrupt_viggo`: a wrong function or a swapped attribute type).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from ftlib.tasks.base import SPLITS, builtin, check_split, hub_rows, read_vendored

FIELDS = ("meaning_representation", "target")
CHALLENGE = {f"challenge_train_{p}_percent": p for p in (1, 2, 5, 10, 20)}
HUB_ID = "GEM/viggo"

VIGGO_FUNCTIONS = (
    "inform",
    "request",
    "give_opinion",
    "confirm",
    "verify_attribute",
    "suggest",
    "request_explanation",
    "recommend",
    "request_attribute",
)
VIGGO_ATTRIBUTES = (
    "name",
    "exp_release_date",
    "release_year",
    "developer",
    "esrb",
    "rating",
    "genres",
    "player_perspective",
    "has_multiplayer",
    "platforms",
    "available_on_steam",
    "has_linux_release",
    "has_mac_release",
    "specifier",
)
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
            return pairs + [(m.group(1).lower(), body[m.end() :].rstrip(" )"))], False
        pairs.append((m.group(1).lower(), body[m.end() : i - 1]))
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


def load(split: str) -> list[dict]:
    """Rows of one split from the vendored files (an official split or a GEM challenge subset)."""
    check_split("viggo", split, SPLITS + tuple(CHALLENGE))
    return read_vendored(f"viggo/challenge/{split}.jsonl" if split in CHALLENGE else f"viggo/{split}.jsonl", FIELDS)


def hub(split: str) -> list[dict]:
    """One split from the hub (needs internet), with the vendored files' fields."""
    check_split("viggo", split, SPLITS + tuple(CHALLENGE))
    return hub_rows(HUB_ID, split)


def corrupt_mr(mr: str, rng: random.Random) -> str:
    """One MR with a wrong function or one attribute type swapped for another (the value kept)."""
    func, pairs = parse_viggo(mr)
    if not pairs or rng.random() < 0.5:
        func = rng.choice([f for f in VIGGO_FUNCTIONS if f != func])
    else:
        i = rng.randrange(len(pairs))
        free = [a for a in VIGGO_ATTRIBUTES if a not in {p[0] for p in pairs}]
        pairs[i] = (rng.choice(free), pairs[i][1])
    return f"{func}({', '.join(f'{a}[{v}]' for a, v in pairs)})"


def corrupt_viggo(rows: list[dict], fraction: float, seed: int = 0) -> list[dict]:
    """Copies of ViGGO rows, round(fraction * len) of them (chosen by seed) with a corrupted MR.

    >>> [r["corrupted"] for r in corrupt_viggo([{"meaning_representation": "inform(name[X])"}], 1.0)]
    [True]
    """
    rng = random.Random(seed)
    chosen = set(rng.sample(range(len(rows)), round(fraction * len(rows))))
    out = []
    for i, row in enumerate(rows):
        mr = corrupt_mr(row["meaning_representation"], rng) if i in chosen else row["meaning_representation"]
        out.append({**row, "meaning_representation": mr, "corrupted": i in chosen})
    return out


def viggo_by_function(records: list[dict]) -> dict[str, tuple[int, int]]:
    """Per gold function, (correct function + attribute types, items)."""
    out: dict[str, list[int]] = {}
    for r in records:
        parsed = parse_viggo(r["reference"])
        fn = parsed[0] if parsed else "?"
        hit, n = out.setdefault(fn, [0, 0])
        out[fn] = [hit + bool(r["scores"]["attribute_types"]), n + 1]
    return {fn: (h, n) for fn, (h, n) in sorted(out.items())}


SYSTEM = (
    "Given a target sentence about video games, construct the underlying meaning representation "
    "of the input sentence as a single function with attributes and attribute values.\n"
    f"The function must be one of: {', '.join(VIGGO_FUNCTIONS)}.\n"
    f"The attributes must be one of: {', '.join(VIGGO_ATTRIBUTES)}.\n"
    "List the attributes in that order, each as attribute[value], and only those the sentence "
    "mentions. Answer with the meaning representation only, on one line, like "
    "request(has_multiplayer[yes], specifier[fast-paced])."
)


def viggo_shots(train_rows: list[dict]) -> list[dict]:
    """The first train row of each of the 9 functions, in the functions' listed order (as the case study)."""
    first: dict[str, dict] = {}
    for r in train_rows:
        first.setdefault(r["meaning_representation"].split("(", 1)[0].strip(), r)
    return [first[f] for f in VIGGO_FUNCTIONS]


# The recipe sweep's arms at a budget of 3,200 example-passes: what reached ~90 % on a CPU
# (docs/measurements.md); full fine-tuning over lr x (examples, epochs), then LoRA.
_SHAPES = ((800, 4), (1600, 2), (3200, 1))
SWEEP = tuple(("full", lr, n, e) for lr in (1e-4, 2e-4, 4e-4) for n, e in _SHAPES) + tuple(
    ("lora", lr, 1600, 2) for lr in (5e-4, 1e-3, 2e-3)
)

# Gold MRs are 73 tokens at the 99th percentile (80 at most) on the test set: 96 leaves room; longer
# outputs are almost always a model that never stops.
TASK = builtin(
    code=(Path(__file__),),
    name="viggo",
    load=load,
    hub=hub,
    fields=FIELDS,
    splits=SPLITS + tuple(CHALLENGE),
    question=lambda r: f"Sentence: {r['target']}",
    reference=lambda r: r["meaning_representation"],
    score=lambda p, r: score_viggo(p, r["meaning_representation"]),
    metrics=_VIGGO_METRICS,
    primary="attribute_types",
    instruction="Convert this video game sentence into a meaning representation.",
    system=SYSTEM,
    max_new_tokens=96,
    few_shot=viggo_shots,
    answer_label="Meaning representation:",
    strict="exact",
    with_answer=lambda r, p: {**r, "meaning_representation": p.strip()},
    error_kind=lambda p, rec: viggo_error_kind(p, rec["reference"]),
    record_row=lambda rec: {"meaning_representation": rec["reference"]},
    row_id=lambda r: r.get("gem_id"),
    title="ViGGO (function + attribute types)",
    corrupt=corrupt_viggo,
    rounds_metrics=("function",),  # the function alone moves long before function + attribute types do
    sweep_grid=SWEEP,
)

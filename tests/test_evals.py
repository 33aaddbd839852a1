"""Scorers: hand-checked cases, parametrized edge cases, gold-vs-itself on whole test sets, fuzzing."""

import random

import pytest

from ftlib import data, evals, tasks
from ftlib.tasks import gsm8k, viggo

# Hand-checked: the reference is test row 0 of ViGGO; the prediction reorders two attributes,
# writes one value list in another order and changes no value. By hand: function yes, attribute
# types yes (same set), order no, exact no (fails because order fails: each level implies the last).
VIGGO_REF = "verify_attribute(name[Little Big Adventure], rating[average], has_multiplayer[no], platforms[PlayStation])"
VIGGO_PRED = ("verify_attribute(name[Little Big Adventure], has_multiplayer[no], rating[average], "
              "platforms[PlayStation])")


def test_viggo_hand_checked():
    assert viggo.score_viggo(VIGGO_PRED, VIGGO_REF) == {
        "function": True, "attribute_types": True, "attribute_order": False, "exact": False}


@pytest.mark.parametrize("pred, ref, expected", [
    # values with commas, slashes and parentheses; list values as sets after trimming
    ("inform(name[X], esrb[E 10+ (for Everyone 10 and Older)], genres[sport,driving/racing ])",
     "inform(name[X], esrb[E 10+ (for Everyone 10 and Older)], genres[driving/racing, sport])", (1, 1, 1, 1)),
    # leading and trailing text around the MR
    ("Sure! The MR is: request(specifier[fast-paced], has_multiplayer[yes]) Hope it helps.",
     "request(specifier[fast-paced], has_multiplayer[yes])", (1, 1, 1, 1)),
    ("inform(name[X], rating[good])", "inform(name[X], rating[poor])", (1, 1, 1, 0)),
    ("inform(name[X])", "inform(name[X], rating[good])", (1, 0, 0, 0)),
    ("confirm(name[X], rating[good])", "inform(name[X], rating[good])", (0, 0, 0, 0)),
    ("made_up(name[X])", "inform(name[X])", (0, 0, 0, 0)),
    ("inform(name[X], rating[good]", "inform(name[X], rating[good])", (1, 1, 1, 1)),  # lost final ")"
    ("inform(name[X], rating[goo", "inform(name[X], rating[good])", (0, 0, 0, 0)),  # cut mid-value
    # looping until the token cap: never closes, so not even the function is credited
    ("verify_attribute(player_perspective[], " * 20 + "player_persp", "verify_attribute(player_perspective[])",
     (0, 0, 0, 0)),
    ("verify_attribute(player_perspective[], " * 20 + "player_perspective[",
     "verify_attribute(player_perspective[], rating[good])", (0, 0, 0, 0)),
    ("I can't help with that.", "inform(name[X])", (0, 0, 0, 0)),
    ("", "inform(name[X])", (0, 0, 0, 0)),
    ("request_attribute(player_perspective[])", "request_attribute(player_perspective[])", (1, 1, 1, 1)),
])
def test_viggo_levels(pred, ref, expected):
    got = viggo.score_viggo(pred, ref)
    assert tuple(int(got[k]) for k in tasks.VIGGO.metrics) == expected


@pytest.mark.parametrize("pred, kind", [
    (VIGGO_REF, "correct"), ("nothing", "unparsable"), ("inform(name[Little Big Adventure])", "wrong_function"),
    ("verify_attribute(name[Little Big Adventure], rating[average], platforms[PlayStation])", "missing_attribute"),
    (VIGGO_PRED, "wrong_order"), (VIGGO_REF.replace("average", "poor"), "wrong_value"),
])
def test_viggo_error_kind(pred, kind):
    assert viggo.viggo_error_kind(pred, VIGGO_REF) == kind


def test_every_viggo_gold_scores_fully_against_itself():
    rows = data.load_rows("viggo", "test")
    assert rows and all(all(viggo.score_viggo(r["meaning_representation"], r["meaning_representation"]).values())
                        for r in rows)
    functions = {viggo.parse_viggo(r["meaning_representation"])[0] for r in rows}
    assert functions == set(viggo.VIGGO_FUNCTIONS)


# Hand-checked: GSM8K test row 0 (Janet's ducks): 16 - 3 - 4 = 9 eggs, 9 * 2 = $18.
def test_gsm8k_hand_checked():
    ref = data.load_rows("gsm8k", "test")[0]["answer"]
    assert gsm8k.extract_gsm8k_answer(ref) == "18"
    assert gsm8k.gsm8k_correct("She sells 9 eggs for $2 each, so she makes $18.", ref)
    assert not gsm8k.gsm8k_correct("#### 16", ref)


@pytest.mark.parametrize("text, expected", [
    ("#### 18", "18"), ("The answer is $1,234.", "1234"), ("#### 18.0", "18.0"), ("x\n#### -7", "-7"),
    ("#### 5\nsome more 9", "5"), ("first 3 then 4", "4"), ("####\nso 12", "12"), ("#### $1,000,000", "1000000"),
    ("no number", None), ("", None), ("####", None), ("It costs $-5", "-5"),
])
def test_extract_gsm8k_answer(text, expected):
    assert gsm8k.extract_gsm8k_answer(text) == expected


# Hand-checked against lm-evaluation-harness's gsm8k.yaml: strict-match takes the first `#### <number>`,
# flexible-extract the last number-like token; both compare strings after dropping `,`, `$`, a final `.`.
@pytest.mark.parametrize("pred, strict, flexible", [
    ("9 * 2 = 18\n#### 18", True, True),
    ("She makes $18.", False, True),  # no `####`: only flexible finds it
    ("#### 18\n#### 16\n#### 16", True, False),  # loops on: strict keeps the first, flexible the last
    ("she makes 16 ... 16 ... 18", False, True),  # loops to the cap and ends on the gold number
    ("#### $18.", False, True),  # strict wants a digit right after "#### "
    ("#### 1,8", True, True),  # commas dropped whatever their place
    ("#### 18.0", False, False),  # string equality, not numeric: 18.0 is not 18
    ("#### 17\nso 18", False, True),
    ("#### -18", False, False), ("", False, False), ("####18", False, True),  # strict needs the space
])
def test_gsm8k_lm_eval_strict_and_flexible(pred, strict, flexible):
    ref = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18"
    assert gsm8k.gsm8k_lm_eval(pred, ref) == {"strict_match": strict, "flexible_extract": flexible}


@pytest.mark.parametrize("pred, ref, ok", [
    ("#### 18", "#### 18.0", True), ("#### 18.5", "#### 18", False), ("#### 1,000", "#### 1000", True),
    ("", "#### 1", False), ("#### 3", "no number", False),
])
def test_gsm8k_correct(pred, ref, ok):
    assert gsm8k.gsm8k_correct(pred, ref) is ok


@pytest.mark.parametrize("pred, kind", [
    ("#### 7", "correct"), ("I don't know", "no_answer"),
    ("3 + 4 = <<3+4=8>>8\n#### 8", "arithmetic_slip"), ("3 * 4 = <<3*4=12>>12\n#### 12", "wrong_reasoning"),
    ("<<2**99999=1>> <<1/0=1>> <<a=b>>\n#### 9", "wrong_reasoning"),  # uncheckable notes are not slips
])
def test_gsm8k_error_kind(pred, kind):
    assert gsm8k.gsm8k_error_kind(pred, "#### 7") == kind


def test_every_gsm8k_gold_is_correct_against_itself_and_has_no_slip():
    rows = data.load_rows("gsm8k", "test")
    assert all(gsm8k.gsm8k_correct(r["answer"], r["answer"]) for r in rows)
    assert not [r for r in rows if gsm8k.gsm8k_error_kind(r["answer"], "#### 0.5") == "arithmetic_slip"]


def test_each_task_scores_a_row_of_its_own():
    v = data.load_rows("viggo", "test")[0]
    s = data.load_rows("sql", "test")[0]
    g = data.load_rows("gsm8k", "test")[0]
    assert all(tasks.get("viggo").score(v["meaning_representation"], v).values())
    assert tasks.get("sql").score(f"<SQL>{s['answer']}</SQL>", s)["extracted"]
    assert tasks.get("gsm8k").score("#### 18", g) == {"strict_match": True, "flexible_extract": True}
    for task in tasks.BUILTIN:
        assert task.primary in task.metrics
        assert set(task.score("", {**v, **s, **g})) == set(task.metrics)
    with pytest.raises(ValueError):
        tasks.get("nope")


@pytest.mark.parametrize("k, n", [(0, 10), (10, 10), (5, 10), (1, 1000), (0, 0)])
def test_proportion_ci_brackets_the_mean(k, n):
    lo, hi = evals.proportion_ci(k, n)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo <= k / n <= hi and (hi - lo) < 1.0


def test_summarize():
    s = evals.summarize([{"a": True, "b": False}, {"a": True, "b": True}, {"a": False, "b": False}])
    assert s["a"]["n"] == 3 and s["a"]["mean"] == pytest.approx(2 / 3)
    assert s["b"]["ci_low"] < 1 / 3 < s["b"]["ci_high"]


def _fuzz_strings(count: int = 300) -> list[str]:
    rng = random.Random(0)
    alphabet = "()[],#$<>=/*-+.0123456789 \n\t`'\"abcxyzSELECTFROM_inform"
    out = ["", "(", ")", "[", "]", "inform(", "inform(name[", "#### ", "<<", "<<1=", "\x00", "é" * 10,
           "inform(" * 2000, "[" * 5000, "9" * 5000, "#### " + "1," * 3000, "<<" + "(" * 500 + "1=1>>"]
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200))) for _ in range(count)]
    return out


def test_scorers_never_raise_on_junk():
    ref_v = VIGGO_REF
    for text in _fuzz_strings():
        assert set(viggo.score_viggo(text, ref_v)) == set(tasks.VIGGO.metrics)
        assert isinstance(viggo.score_viggo(ref_v, text)["exact"], bool)
        viggo.viggo_error_kind(text, ref_v)
        gsm8k.extract_gsm8k_answer(text)
        assert isinstance(gsm8k.gsm8k_correct(text, "#### 3"), bool)
        gsm8k.gsm8k_error_kind(text, "#### 3")
    for bad in (None, 3, b"bytes"):
        assert not viggo.score_viggo(bad, ref_v)["function"]
        assert gsm8k.extract_gsm8k_answer(bad) is None

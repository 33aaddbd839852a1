"""SQL: extraction, synthetic databases, execution match, the sandbox's defences, the gold audit."""

import itertools
import os
import random
import sqlite3
import time
from collections import Counter

import pytest

from ftlib import data, evals
from ftlib.tasks.sql import match, sandbox, suite, synthetic
from ftlib.tasks.sql import task as sql_task

CTX = "CREATE TABLE head (name VARCHAR, born_state VARCHAR, age INTEGER)"
GOLD = "SELECT name FROM head WHERE born_state = 'California' AND age > 56"


def _image(context: str = CTX, gold: str = GOLD) -> bytes:
    return synthetic.database_image(context, gold, 0, 0)


# Hand-checked: `age >= 57` equals `age > 56` only on integers; the synthetic ages are integers
# near 56 (so both filters pick the same rows), while `age > 50` lets in ages 51..56 and must differ.
def test_execution_match_hand_checked():
    assert match.sql_execution_match(
        "<SQL>SELECT name FROM head WHERE age >= 57 AND born_state = 'California'</SQL>", GOLD, CTX)
    assert not match.sql_execution_match("SELECT name FROM head WHERE born_state = 'California' AND age > 50",
                                         GOLD, CTX)


@pytest.mark.parametrize("text, query", [
    ("<SQL>SELECT 1</SQL>", "SELECT 1"), ("<sql> SELECT 1; </sql>", "SELECT 1"),
    ("<SQL>SELECT 1", "SELECT 1"), ("```sql\nSELECT 1\n```", "SELECT 1"), ("```\nSELECT 2;\n```", "SELECT 2"),
    ("The query is SELECT a FROM t;\n\nIt counts rows.", "SELECT a FROM t"), ("no query", None), ("", None),
    ("<SQL></SQL>", None),
])
def test_extract_sql(text, query):
    assert sandbox.extract_sql(text) == query


@pytest.mark.parametrize("pred, kind", [
    (GOLD, "correct"), ("SELECT name FROM head WHERE born_state = 'California' AND 56 < age", "correct"),
    ("Sorry, I cannot.", "no_sql"), ("SELECT name FROM head WHERE", "syntax_error"),
    ("SELECT nme FROM head", "runtime_error"), ("SELECT name FROM heads", "runtime_error"),
    ("SELECT name, age FROM head WHERE born_state = 'California' AND age > 56", "wrong_columns"),
    ("SELECT name FROM head", "wrong_rows"), ("DELETE FROM head", "no_sql"),
    ("<SQL>DELETE FROM head</SQL>", "forbidden"), ("SELECT 1; SELECT 2", "forbidden"),
])
def test_sql_error_kind(pred, kind):
    assert match.sql_error_kind(pred, GOLD, CTX) == kind


def test_ordered_gold_compares_as_list_unordered_as_multiset():
    ctx = "CREATE TABLE t (name VARCHAR, age INTEGER)"
    desc = "SELECT name FROM t ORDER BY age DESC"
    assert match.sql_execution_match(desc, desc, ctx)
    assert not match.sql_execution_match("SELECT name FROM t ORDER BY age", "SELECT name FROM t ORDER BY age DESC", ctx)
    assert match.sql_execution_match("SELECT name FROM t ORDER BY age", "SELECT name FROM t", ctx)
    assert not match.sql_execution_match("SELECT DISTINCT name FROM t", "SELECT name FROM t", ctx)


def test_synthetic_rows_hold_gold_literals_and_numbers():
    img = _image()
    rows = sandbox.run_query(img, "SELECT born_state, age, typeof(age) FROM head").rows
    assert any(r[0] == "California" for r in rows)
    assert {r[2] for r in rows} == {"integer"} and any(r[1] > 56 for r in rows) and any(r[1] <= 56 for r in rows)
    # a VARCHAR column compared with a number behaves as a number
    ctx, gold = "CREATE TABLE p (x VARCHAR, y VARCHAR)", "SELECT x FROM p WHERE y > 10"
    types = sandbox.run_query(_image(ctx, gold), "SELECT DISTINCT typeof(y) FROM p").rows
    assert types == [("integer",)]


def test_case_duplicate_context_builds():
    ctx = "CREATE TABLE Track (GenreId VARCHAR); CREATE TABLE track (genreid VARCHAR, Name VARCHAR)"
    assert match.sql_execution_match("SELECT name FROM TRACK", "SELECT Name FROM track", ctx)
    report = match.audit_gold(ctx, "SELECT Name FROM track")
    assert report["case_duplicate"] and report["executes"]


ATTACKS = [
    "ATTACH DATABASE 'pwned.db' AS x", "DETACH DATABASE main", "PRAGMA query_only = 0", "PRAGMA writable_schema = 1",
    "DROP TABLE head", "DELETE FROM head", "INSERT INTO head VALUES ('a', 'b', 1)", "UPDATE head SET age = 0",
    "CREATE TABLE x (a)", "VACUUM INTO 'pwned.db'", "SELECT load_extension('libc')", "BEGIN",
    "SELECT 1; DROP TABLE head", "WITH x AS (SELECT 1) DELETE FROM head", "/* c */ SELECT 1; ATTACH 'pwned.db' AS y",
    "SELECT * FROM head; PRAGMA query_only = 0",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_sandbox_refuses_attack(attack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a file created by ATTACH / VACUUM INTO would land here
    result = sandbox.run_query(_image(), attack)
    assert result.error is not None and result.rows is None
    assert not os.listdir(tmp_path)
    assert not match.sql_execution_match(attack, GOLD, CTX)
    assert len(sandbox.run_query(_image(), "SELECT * FROM head").rows) > 0  # the cached image is intact


@pytest.mark.parametrize("attack", [
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
    "SELECT SUM(a.age * b.age) FROM head a, head b, head c, head d, head e, head f, head g, head h, head i",
    "SELECT length(zeroblob(2000000000))", "SELECT length(randomblob(100000000))",
    "SELECT replace(hex(zeroblob(1000)), '0', hex(zeroblob(1000)))",
])
def test_sandbox_budget_stops_runaway_queries(attack):
    start = time.perf_counter()
    assert not match.sql_execution_match(attack, GOLD, CTX)
    assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    assert sandbox.run_query(_image(), attack).error is not None
    assert time.perf_counter() - start < 1.0


# Every built-in scalar function of this SQLite, called at its largest arguments, as many times as
# one statement allows: one call is one VM instruction, which the step budget cannot interrupt, so
# only SQLite's limits on value and pattern length (sandbox.LIMITS) keep such a query short.
_L = sandbox.LIMITS[sqlite3.SQLITE_LIMIT_LENGTH]
_BIG = f"substr(replace(hex(zeroblob({_L // 2 - 10})), '0', 'a'), 1, {_L - 30})"  # the longest value
_ARGS = ("x", f"substr(x, 1, {_L // 2}) || 'b'", "'%' || substr(x, 1, 190) || 'b%'", "9999", "-9999", "'%0*d'")


def _builtin_calls() -> list[str]:
    """One call per built-in scalar function, arity and choice of the largest arguments."""
    found = sqlite3.connect(":memory:").execute("PRAGMA function_list").fetchall()
    arities = sorted({(name, n) for name, builtin, kind, _, narg, _ in found if kind == "s" and builtin
                      for n in ((narg,) if narg >= 0 else (1, 2, 3))})
    calls = []
    for name, n in arities:
        combos = itertools.product(_ARGS, repeat=n) if n <= 2 else [(a,) * n for a in _ARGS]
        calls += [f"{name}({', '.join(c)})" for c in combos]
    return calls


def test_no_builtin_function_call_outruns_the_budget():
    head = f"WITH b(x) AS (SELECT {_BIG}) SELECT "
    calls = _builtin_calls()
    assert len(calls) > 1000
    for call in calls:
        column = f"length({call})"
        k = min(150, (sandbox.MAX_SQL_CHARS - len(head) - 10) // (len(column) + 2))
        start = time.perf_counter()
        sandbox.run_query(_image(), head + ", ".join([column] * k) + " FROM b")
        assert time.perf_counter() - start < 1.0, call


@pytest.mark.parametrize("call", [f"instr(x, {_ARGS[1]})", f"x LIKE {_ARGS[2]}", f"replace(x, {_ARGS[1]}, 'c')",
                                  f"trim(x, {_ARGS[1]})", "printf('%0*d', 9999, 1)"])
def test_budget_stops_a_loop_of_expensive_calls(call):
    sql = (f"WITH RECURSIVE b(i, x) AS (SELECT 1, {_BIG} UNION ALL SELECT i + 1, x FROM b) "
           f"SELECT SUM(length({call})) FROM b")
    start = time.perf_counter()
    assert sandbox.run_query(_image(), sql).error is not None
    assert time.perf_counter() - start < 1.0


# One SQLite instruction that runs for seconds without returning to the progress handler: printf
# and format loop over a huge width even though the length limit turns their result into NULL.
# Only the worker's wall-clock kill bounds these; each must come back within that bound.
_ONE_STEP = ["printf('%.*c', 2000000000, 'x')", "format('%.*c', 2000000000, 'x')",
             "printf('%*d', 2000000000, 1)", "printf('%.*f', 2000000000, 1.5)", "printf('%0*s', 2000000000, 'y')"]
_BOUND = sandbox.KILL_SECONDS + 1.0  # the kill, plus starting a fresh worker for the next call


@pytest.mark.parametrize("call", _ONE_STEP)
@pytest.mark.parametrize("shape", ["SELECT {c}", "SELECT length({c}) FROM head a, head b",
                                   "SELECT name FROM head WHERE length({c}) > 0"])
def test_long_single_steps_are_killed_within_the_bound(call, shape):
    start = time.perf_counter()
    result = sandbox.run_query(_image(), shape.format(c=call))
    assert time.perf_counter() - start < _BOUND
    assert result.error is not None or all(v in (None, 0) for r in result.rows for v in r)  # NULL when quick
    start = time.perf_counter()
    assert match.sql_error_kind(f"<SQL>{shape.format(c=call)}</SQL>", GOLD, CTX) != "correct"
    assert time.perf_counter() - start < _BOUND
    assert sandbox.run_query(_image(), "SELECT COUNT(*) FROM head").rows  # the next call gets a fresh worker


def test_the_reported_printf_is_interrupted_not_finished():
    start = time.perf_counter()
    assert "interrupted" in sandbox.run_query(_image(), f"SELECT {_ONE_STEP[0]}").error
    assert time.perf_counter() - start < _BOUND


@pytest.mark.parametrize("unit", ["/**/ ", "/* a */", "-- c\n", "/*/**/ ", "/* ", "(", " /**/( "])
@pytest.mark.parametrize("tail", ["x", "SELECT 1", "DROP TABLE head"])
def test_statement_check_is_linear_in_repeated_comments(unit, tail):
    for reps in (28, 10_000):
        text = unit * reps + tail
        start = time.perf_counter()
        match.sql_error_kind(f"<SQL>{text}</SQL>", GOLD, CTX)
        sandbox.is_read_start(text)
        assert time.perf_counter() - start < 0.5, (unit, reps)
    assert not sandbox.is_read_start(unit * 28 + "DROP TABLE head")


def test_statement_check_reads_comments_as_sqlite_does():
    assert sandbox.is_read_start("-- note\n/* a */ ((SELECT 1))")
    assert sandbox.is_read_start("  with x as (select 1) select * from x")
    assert not sandbox.is_read_start("/* SELECT */ DELETE FROM head")
    assert not sandbox.is_read_start("-- SELECT 1")
    assert not sandbox.is_read_start("SELECTED")


def test_the_longest_value_is_allowed_and_one_byte_more_is_not():
    assert sandbox.run_query(_image(), f"SELECT length(zeroblob({_L}))").rows == [(_L,)]
    assert "too big" in sandbox.run_query(_image(), f"SELECT zeroblob({_L + 1})").error


def test_sandbox_never_raises_on_junk():
    rng = random.Random(0)
    junk = ["", ";", "\x00SELECT 1", "SELECT '" + "a" * 50_000 + "'", "SELECT CAST(x'ff' AS TEXT)", "SELECT 1e999",
            "SELECT 9223372036854775807 + 1", "SELECT char(0)"]
    junk += ["SELECT " + "".join(rng.choice("()*,'\"abc 123;<SQL>") for _ in range(rng.randint(0, 80)))
             for _ in range(200)]
    for text in junk:
        assert isinstance(match.sql_execution_match(text, GOLD, CTX), bool)
        assert isinstance(match.sql_error_kind(text, GOLD, CTX), str)


def test_audit_finds_missing_column_and_degenerate():
    ctx = "CREATE TABLE t (a VARCHAR, n INTEGER)"
    missing = match.audit_gold(ctx, "SELECT b FROM t")
    assert not missing["executes"] and missing["missing_column"] and "no such column" in missing["error"]
    assert match.audit_gold(ctx, "SELECT a FROM t WHERE n > 100000 AND n < 0")["degenerate"] == "empty"
    assert match.audit_gold(ctx, "SELECT a FROM t WHERE n = n")["degenerate"] == "every_row"
    assert match.audit_gold(ctx, "SELECT a FROM t WHERE n > 3")["degenerate"] is None
    assert not match.sql_gold_usable({"context": ctx, "answer": "SELECT b FROM t"})


@pytest.fixture(scope="module")
def sql_rows() -> dict[str, list[dict]]:
    return {split: data.load_rows("sql", split) for split in ("train", "validation", "test")}


def test_every_executable_gold_matches_itself(sql_rows):
    start = time.perf_counter()
    test = sql_rows["test"]
    usable = [r for r in test if match.sql_gold_usable(r)]
    kinds = Counter(match.sql_error_kind(r["answer"], r["answer"], r["context"]) for r in usable)
    assert set(kinds) <= {"correct", "unjudgeable"}
    assert kinds["unjudgeable"] <= 0.01 * len(usable)  # dense databases are built until the gold selects rows
    # `<SQL>` tags and a trailing semicolon change nothing
    assert all(match.sql_error_kind(f"<SQL>{r['answer']};</SQL>", r["answer"], r["context"])
               in ("correct", "unjudgeable") for r in usable[:100])
    print(f"\nSQL test split: {kinds['correct']} of {len(test)} gold queries execute and match themselves, "
          f"{kinds['unjudgeable']} cannot judge ({time.perf_counter() - start:.1f} s)")
    for split in ("train", "validation"):  # a sample: building every suite of train takes minutes
        rows = [r for r in sql_rows[split][:150] if match.sql_gold_usable(r)]
        kinds = {match.sql_error_kind(r["answer"], r["answer"], r["context"]) for r in rows}
        assert kinds <= {"correct", "unjudgeable"}


def test_defect_counts_are_in_expected_ranges(sql_rows):
    every = [r for rows in sql_rows.values() for r in rows]
    counts = {split: match.audit_rows(rows) for split, rows in sql_rows.items()}
    counts["all"] = match.audit_rows(every)
    for split, c in counts.items():
        print(f"\nSQL gold audit, {split}: {c}")
    total = counts["all"]
    assert total["n"] == 4000 and total["executes"] + total["non_executable"] == total["n"]
    assert 0.02 <= total["missing_column"] / total["n"] <= 0.10
    assert 0.9 <= total["missing_column"] / total["non_executable"]  # nearly all failures are that defect
    assert 1 <= total["case_duplicate"] <= 0.05 * total["n"]
    assert total["degenerate"] <= 0.10 * total["n"]


# The distilled test suite: on a small schema, each class of near-miss must be told from the gold.
SUITE_CTX = "CREATE TABLE head (name VARCHAR, city VARCHAR, age INTEGER)"
_AND = "SELECT name FROM head WHERE city = 'Paris' AND age > 40"


@pytest.mark.parametrize("gold, near_miss", [
    ("SELECT name FROM head WHERE age < 56", "SELECT name FROM head WHERE age <> 56"),  # operator flipped
    ("SELECT name FROM head WHERE age < 56", "SELECT name FROM head WHERE age <= 56"),
    ("SELECT name FROM head WHERE age >= 30", "SELECT name FROM head WHERE age > 30"),
    ("SELECT name FROM head WHERE city = 'Paris'", "SELECT name FROM head WHERE city != 'Paris'"),
    ("SELECT name FROM head WHERE city LIKE 'Par%'", "SELECT name FROM head WHERE city LIKE '%Par%'"),  # LIKE widened
    ("SELECT name FROM head WHERE city LIKE '%Par%'", "SELECT name FROM head WHERE city LIKE 'Par%'"),
    (_AND, "SELECT name FROM head WHERE city = 'Paris'"),  # a condition dropped
    (_AND, "SELECT name FROM head WHERE age > 40"),
    (_AND, "SELECT name FROM head WHERE city = 'Paris' OR age > 40"),
    ("SELECT city FROM head WHERE age > 40", "SELECT DISTINCT city FROM head WHERE age > 40"),  # DISTINCT toggled
    ("SELECT name FROM head ORDER BY age DESC LIMIT 1", "SELECT name FROM head ORDER BY age DESC"),  # LIMIT dropped
    ("SELECT name FROM head ORDER BY age DESC LIMIT 1", "SELECT name FROM head ORDER BY age ASC LIMIT 1"),
    ("SELECT name FROM head WHERE age > 40", "SELECT city FROM head WHERE age > 40"),  # column swapped
])
def test_suite_separates_each_mutant_class(gold, near_miss):
    judge = suite.build(SUITE_CTX, gold)
    assert judge.judgeable and 1 <= len(judge.images) <= suite.MAX_DATABASES
    assert match.sql_execution_match(f"<SQL>{gold}</SQL>", gold, SUITE_CTX)
    assert not match.sql_execution_match(f"<SQL>{near_miss}</SQL>", gold, SUITE_CTX), near_miss


def test_suite_is_deterministic():
    gold = "SELECT name FROM head WHERE city LIKE 'Par%' AND age < 30"
    suite.build.cache_clear()
    first = suite.build(SUITE_CTX, gold)
    suite.build.cache_clear()
    assert suite.build(SUITE_CTX, gold) == first


@pytest.mark.parametrize("gold, pred", [
    ("SELECT city, COUNT(*) FROM head GROUP BY city", "SELECT COUNT(*), city FROM head GROUP BY city"),
    ("SELECT name, age, city FROM head WHERE age > 30", "SELECT city, name, age FROM head WHERE 30 < age"),
    ("SELECT name, age FROM head ORDER BY age", "SELECT age, name FROM head ORDER BY age"),
    ("SELECT name, age FROM head ORDER BY age", "SELECT name, age FROM head ORDER BY age, name DESC"),  # ties broken
    ("SELECT city FROM head ORDER BY age DESC", "SELECT city FROM head ORDER BY age DESC, city"),
])
def test_column_order_and_tie_breaks_are_accepted(gold, pred):
    assert match.sql_execution_match(f"<SQL>{pred}</SQL>", gold, SUITE_CTX)


def test_order_is_still_compared_on_the_gold_keys():
    gold = "SELECT name, age FROM head ORDER BY age"
    assert not match.sql_execution_match("SELECT name, age FROM head ORDER BY age DESC", gold, SUITE_CTX)
    assert not match.sql_execution_match("SELECT name, age FROM head ORDER BY name", gold, SUITE_CTX)


def test_same_result_runs_of_ties():
    gold = [("a", 1), ("b", 1), ("c", 2)]
    keys = [(1,), (1,), (2,)]
    assert match.same_result(gold, [("b", 1), ("a", 1), ("c", 2)], True, keys)
    assert not match.same_result(gold, [("c", 2), ("a", 1), ("b", 1)], True, keys)
    assert not match.same_result(gold, [("b", 1), ("a", 1), ("c", 2)], True, None)


@pytest.mark.parametrize("gold", [
    "SELECT name FROM head GROUP BY name HAVING COUNT(*) > 500",  # selects nothing anywhere
    "SELECT COUNT(*) FROM head WHERE age > 50 AND age < 40",  # only 0
])
def test_a_gold_that_selects_nothing_is_left_out(gold):
    assert not suite.build(SUITE_CTX, gold).judgeable
    scores = sql_task.score_sql(f"<SQL>{gold}</SQL>", gold, SUITE_CTX)
    assert scores["judged"] is False and "execution_match" not in scores
    assert evals.summarize([scores, {"execution_match": True, "judged": True}])["execution_match"]["n"] == 1

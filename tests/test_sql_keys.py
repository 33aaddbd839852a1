"""SQL execution match that knows the schema's keys and the query's literals: the verdicts a careful
reader gives the committed answers, databases that keep the keys, the gold-error list, one wall-clock
budget per item."""

import importlib.util
import json
import shutil
import time
from collections import Counter

import pytest

from ftlib import paths
from ftlib.tasks import sql
from ftlib.tasks.sql import gold_errors, keys, match, sandbox, schema, synthetic

PREDICTIONS = paths.ROOT / "results" / "size" / "predictions"
TUNED, UNTUNED = "sql-qwen2.5-coder-0.5b-fine-tuned.jsonl", "sql-qwen2.5-coder-1.5b-few_shot.jsonl"


def _record(file: str, item: int) -> dict:
    for line in (PREDICTIONS / file).read_text().splitlines():
        record = json.loads(line)
        if record["id"] == item:
            return record
    raise KeyError(f"{file}: no item {item}")


# (item, model, verdict) as the issue gives them: rewrites a reader finds equivalent once keys hold
# (DISTINCT on a key, a join that cannot change a count, IN/= subqueries, joins from the other side,
# ties at LIMIT), and two near-misses the old databases let through.
EXAMPLES = [
    (1252, TUNED, True), (1252, UNTUNED, True),  # SELECT DISTINCT on the table's key
    (3154, TUNED, True),  # the join to products cannot change the count: every product_id exists
    (824, UNTUNED, True),  # the join from the other side; another of the tied students at LIMIT 1
    (242, TUNED, True), (285, TUNED, True),  # NOT IN (subquery) for EXCEPT over a key
    (909, TUNED, True), (909, UNTUNED, True), (3429, TUNED, True), (430, UNTUNED, True),  # ties at LIMIT 1
    (2735, TUNED, True),  # INTERSECT for a join through a link table
    (706, UNTUNED, True), (2883, UNTUNED, True), (2947, UNTUNED, True),  # IN (subquery) for a join
    (2972, TUNED, False), (2972, UNTUNED, False),  # LIKE '%the%' for LIKE '% the %'
    (3447, UNTUNED, False),  # a join on GameID = Gname
]


@pytest.mark.parametrize("item, file, verdict", EXAMPLES)
def test_the_issues_examples_get_the_readers_verdict(item, file, verdict):
    record = _record(file, item)
    row = sql.sql_row(record)
    kind = match.compare(record["prediction"], row["answer"], row["context"])
    assert (kind == "correct") is verdict, (item, kind, record["prediction"])


CTX_3154 = ("CREATE TABLE products (product_id VARCHAR); CREATE TABLE CHARACTERISTICS (characteristic_id VARCHAR, "
            "characteristic_name VARCHAR); CREATE TABLE product_characteristics (product_id VARCHAR, "
            "characteristic_id VARCHAR)")
GOLD_3154 = ("SELECT COUNT(*) FROM products AS t1 JOIN product_characteristics AS t2 ON t1.product_id = t2.product_id "
             "JOIN CHARACTERISTICS AS t3 ON t2.characteristic_id = t3.characteristic_id "
             "WHERE t3.characteristic_name = \"hot\"")


def test_keys_are_inferred_from_names_and_joins():
    found = keys.infer(schema.parse_context(CTX_3154))
    assert found.primary == {"products": "product_id", "characteristics": "characteristic_id"}
    assert found.foreign == {("product_characteristics", "product_id"): ("products", "product_id"),
                             ("product_characteristics", "characteristic_id"): ("characteristics", "characteristic_id")}
    assert found.unique == {"product_characteristics": ("product_id", "characteristic_id")}
    # a key named after the table only by the gold's join: match_season.Country -> country.Country_id
    ctx = "CREATE TABLE country (Country_id VARCHAR, Country_name VARCHAR); CREATE TABLE match_season (Country VARCHAR)"
    gold = "SELECT * FROM country AS T1 JOIN match_season AS T2 ON T1.Country_id = T2.Country"
    found = keys.infer(schema.parse_context(ctx), gold)
    assert found.foreign == {("match_season", "country"): ("country", "country_id")}
    # two tables claiming one column by a short stem: neither's key (Reviewer.rID, Rating.rID)
    ctx = "CREATE TABLE Reviewer (name VARCHAR, rID VARCHAR); CREATE TABLE Rating (rID VARCHAR)"
    assert keys.infer(schema.parse_context(ctx)).primary == {}


def _tables(image: bytes) -> dict[str, list[tuple]]:
    names = ("products", "CHARACTERISTICS", "product_characteristics")
    return {n: sandbox.run_trusted(image, f"SELECT * FROM {n}").rows for n in names}


@pytest.mark.parametrize("kind", ["plain", "rich", "dense"])
def test_databases_keep_the_keys(kind):
    for instance in range(5):
        t = _tables(synthetic.database_image(CTX_3154, GOLD_3154, 0, instance, kind))
        products, chars = [r[0] for r in t["products"]], [r[0] for r in t["CHARACTERISTICS"]]
        assert None not in products + chars and len(set(products)) == len(products) and len(set(chars)) == len(chars)
        links = t["product_characteristics"]
        assert all(p in products and c in chars for p, c in links)  # every foreign key points at a row
        assert max(Counter(links).values()) == 1  # a link table holds each pair once


def test_only_broken_databases_break_the_keys():
    t = _tables(synthetic.database_image(CTX_3154, GOLD_3154, 0, 0, "broken"))
    products = [r[0] for r in t["products"]]
    assert len(set(products)) < len(products) or any(p not in products for p, _ in t["product_characteristics"])
    with pytest.raises(ValueError, match="database kind"):
        synthetic.database_image(CTX_3154, GOLD_3154, 0, 0, "odd")


def test_string_literals_are_fuzzed_at_and_inside_word_boundaries():
    ctx, gold = "CREATE TABLE songs (title VARCHAR)", "SELECT title FROM songs WHERE title LIKE '% the %'"
    titles = {r[0] for i in range(18) for r in
              sandbox.run_trusted(synthetic.database_image(ctx, gold, 0, i, "rich"), "SELECT title FROM songs").rows}
    assert any(t and " the " in f" {t} " for t in titles) and any(t and "the" in t and " the " not in t for t in titles)
    assert any(t and "THE" in t for t in titles) and None in titles


def test_numbers_sit_at_just_above_and_just_below_each_literal():
    ctx, gold = "CREATE TABLE t (name VARCHAR, age INTEGER)", "SELECT name FROM t WHERE age > 56"
    ages = {r[0] for i in range(18) for r in
            sandbox.run_trusted(synthetic.database_image(ctx, gold, 0, i, "rich"), "SELECT age FROM t").rows}
    assert {55, 56, 57, None} <= ages


@pytest.mark.parametrize("gold", [
    "SELECT building FROM Faculty WHERE rank = \"Professor\" GROUP BY building HAVING COUNT(*) >= 10",
    "SELECT start_station_id FROM trip GROUP BY start_station_name HAVING COUNT(*) >= 200",
    "SELECT dept_name FROM instructor GROUP BY dept_name HAVING AVG(salary) > 42000",
])
def test_a_gold_with_a_high_threshold_selects_rows_somewhere(gold):
    ctx = ("CREATE TABLE Faculty (building VARCHAR, rank VARCHAR); CREATE TABLE trip (start_station_id VARCHAR, "
           "start_station_name VARCHAR); CREATE TABLE instructor (dept_name VARCHAR, salary INTEGER)")
    assert match.compare(gold, gold, ctx) == "correct"


def test_a_slow_answer_fails_its_item_within_one_budget(monkeypatch):
    """A correct answer plus a costly constant (one SQLite step: only the wall clock bounds it) ran
    1.5 s on each database before; now the item's databases share one budget."""
    ctx = "CREATE TABLE head (name VARCHAR, city VARCHAR, age INTEGER)"
    gold = "SELECT name FROM head WHERE age > 40"
    assert match.compare(gold, gold, ctx) == "correct"
    monkeypatch.setattr(match, "ITEM_SECONDS", 0.6, raising=False)
    image = synthetic.database_image(ctx, gold, 0, 0)
    sandbox.run_query(image, "SELECT 1")  # the worker started
    start = time.perf_counter()
    sandbox.run_query(image, "SELECT (SELECT printf('%.*c', 10000000, 'x')) IS NULL")
    per_step = (time.perf_counter() - start) / 1e7
    n = int(min(3e8, 0.48 / per_step))  # one database takes about 0.8 of the item's budget
    slow = f"SELECT name FROM head WHERE age > 40 AND (SELECT printf('%.*c', {n}, 'x')) IS NULL"
    start = time.perf_counter()
    assert match.compare(slow, gold, ctx) == "budget"
    assert time.perf_counter() - start < 0.6 + 1.0


def test_gold_errors_are_listed_with_reasons():
    errors = gold_errors.gold_errors()
    assert {3147, 2412, 3484, 567, 1866, 2112} <= set(errors) and all(len(r) > 20 for r in errors.values())
    assert sql.TASK.excluded({"row_index": 3147}) and not sql.TASK.excluded({"row_index": 1252})


def test_bad_gold_error_file_is_named(tmp_path):
    bad = tmp_path / "gold_errors.json"
    bad.write_text('[{"id": 1}]')
    with pytest.raises(ValueError, match="gold_errors.json"):
        gold_errors.gold_errors(bad)


def test_rescore_states_the_headline_without_gold_errors(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("rescore", paths.ROOT / "scripts" / "rescore.py")
    rescore = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rescore)
    monkeypatch.setattr(rescore, "ROOT", tmp_path / "results")
    folder = tmp_path / "results" / "x" / "predictions"
    folder.mkdir(parents=True)
    records = [_record(TUNED, i) for i in (1252, 3147, 3154)]
    for r in records:  # the gold of 3147 (sesame for cumin) answered as its question asks
        r["prediction"] = "<SQL>SELECT 1</SQL>" if r["id"] == 3147 else r["prediction"]
    (folder / "sql-x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = rescore.rescore_file(folder / "sql-x.jsonl")
    assert out["new"]["n"] == 3 and out["new"]["score"] == pytest.approx(2 / 3)
    assert out["extra"]["execution_match_clean"]["n"] == 2 and out["extra"]["execution_match_clean"]["score"] == 1.0
    shutil.rmtree(tmp_path / "results")


def test_the_committed_hand_reading_holds_the_current_scorers_verdicts():
    """results/size/sql_reading.csv: 100 answers of the two Qwen models read by hand; its scorer
    column must be what the scorer says today (rescore, reread the changed rows, then commit)."""
    import csv

    rows = list(csv.DictReader((paths.ROOT / "results" / "size" / "sql_reading.csv").open()))
    assert len(rows) >= 100 and {r["model"] for r in rows} == {TUNED[4:-6], UNTUNED[4:-6]}
    for r in rows:
        record = _record(f"sql-{r['model']}.jsonl", int(r["item"]))
        row = sql.sql_row(record)
        kind = match.compare(record["prediction"], row["answer"], row["context"])
        assert (r["scorer"], r["scorer_kind"]) == ("right" if kind == "correct" else "wrong", kind), r["item"]
    wrong_right = sum(r["scorer"] == "right" and r["reader"] == "wrong" for r in rows)
    assert wrong_right <= 0.01 * sum(r["scorer"] == "right" for r in rows)


def test_a_gold_that_fails_everywhere_is_a_gold_error_not_unjudgeable():
    assert match.compare("SELECT 1", "SELECT nope FROM t", "CREATE TABLE t (a INT)") == "gold_error"

"""Prepared splits (what training and scoring read) and the data-quality checks of notebook 01."""

import json

import pytest

from ftlib import io, prepare, quality, tasks
from ftlib.tasks.sql import match
from ftlib.tasks.sql import task as sql_task


@pytest.fixture(scope="module")
def sql_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    prepare.prepare("sql", root=root)
    return root


def test_sql_prepared_splits_drop_only_non_executable_gold(sql_root):
    stats = prepare.read_stats("sql", sql_root)
    for split in prepare.SPLITS:
        s = stats[split]
        assert s["kept"] == s["audit"]["executes"] == s["raw"] - s["audit"]["non_executable"]
    assert sum(stats[s]["raw"] for s in prepare.SPLITS) == 4000
    dropped = sum(stats[s]["audit"]["non_executable"] for s in prepare.SPLITS)
    assert 0.02 * 4000 < dropped < 0.10 * 4000  # ~5 % of gold queries name a missing column
    rows = prepare.load_split("sql", "test", root=sql_root)
    assert len(rows) == stats["test"]["kept"] and all(match.sql_gold_usable(r) for r in rows[:50])


def test_prepare_skips_a_prepared_task(sql_root):
    before = (sql_root / "sql" / "train.jsonl").stat().st_mtime_ns
    prepare.prepare("sql", root=sql_root)
    assert (sql_root / "sql" / "train.jsonl").stat().st_mtime_ns == before


def test_a_task_whose_code_changed_is_prepared_again(tmp_path):
    """The audit's counts come from the task's code (SQL's defect counts from its scorer): splits
    prepared by older code are not reused, so notebook 01 never shows an old scorer's counts."""
    import dataclasses

    t = tasks.get("gsm8k")
    prepare.prepared(t, tmp_path)
    before = (tmp_path / "gsm8k" / "stats.json").stat().st_mtime_ns
    prepare.prepared(t, tmp_path)
    assert (tmp_path / "gsm8k" / "stats.json").stat().st_mtime_ns == before  # same code: skipped
    prepare.prepared(dataclasses.replace(t, scorer_id="other code"), tmp_path)
    assert json.loads((tmp_path / "gsm8k" / "stats.json").read_text())["code"] == "other code"


def test_prepared_hash_is_recorded_and_reproducible(sql_root):
    rows = prepare.load_split("sql", "train", root=sql_root)
    assert io.rows_hash(rows)[:16] == prepare.read_stats("sql", sql_root)["train"]["sha256_16"]


def test_load_split_limit(tmp_path):
    rows = prepare.load_split("gsm8k", "test", root=tmp_path, limit=5)
    assert len(rows) == 5 and rows[0]["answer"].rstrip().split("####")[-1].strip() == "18"


@pytest.mark.parametrize("context,gold,expected", [
    ("CREATE TABLE t (age VARCHAR)", "SELECT * FROM t WHERE age > 30", True),
    ("CREATE TABLE t (age INTEGER)", "SELECT * FROM t WHERE age > 30", False),
    ("CREATE TABLE t (name VARCHAR)", "SELECT * FROM t WHERE name = '30'", False),
    ("CREATE TABLE t (a VARCHAR, b INT)", "SELECT a FROM t AS x WHERE x.a = 5", True),
])
def test_varchar_number_comparison(context, gold, expected):
    assert sql_task.varchar_number_comparison(context, gold) is expected


def test_duplicates_and_overlap_hand_checked():
    key = quality.key(tasks.GSM8K)
    train = [{"question": "A?"}, {"question": "a? "}, {"question": "B?"}]
    test = [{"question": "b?"}, {"question": "C?"}]
    assert quality.duplicates(train, key) == 1
    assert quality.overlap(train, test, key) == 1


def test_schema_overlap_counts_shared_table_names():
    train = [{"context": "CREATE TABLE a (x INT); CREATE TABLE b (y INT)"}]
    test = [{"context": "CREATE TABLE b (z INT); CREATE TABLE A (x INT)"}, {"context": "CREATE TABLE a (x INT)"},
            {"context": "CREATE TABLE c (x INT)"}]
    assert quality.schema_overlap(train, test) == {"test_rows": 3, "same_table_set": 1, "shares_a_table_name": 2}


def test_token_lengths_count_the_whole_chat_example():
    from ftlib import models

    tok = models.load_tokenizer()
    row = {"question": "What is 2+2?", "answer": "2+2=4\n#### 4"}
    (n,) = quality.token_lengths("gsm8k", [row], tok)
    assert n > len(tok("What is 2+2? 2+2=4 #### 4")["input_ids"]) + 10  # template and instruction add tokens
    ex = json.dumps(row)
    assert n < len(ex) * 4


@pytest.mark.parametrize("lengths,batch,expected", [
    ([2, 4], 2, 0.25), ([3, 3, 3], 2, 0.0), ([1, 9, 5], 1, 0.0), ([], 4, 0.0), ([1, 3, 2, 2], 2, 0.2),
])
def test_padding_waste(lengths, batch, expected):
    assert quality.padding_waste(lengths, batch) == pytest.approx(expected)

"""Data loading: row counts, checksums, bad-row errors, the deterministic SQL split."""

import json
import shutil

import pytest

from ftlib import data, paths, tasks
from ftlib.io import DataFormatError
from ftlib.tasks import gsm8k, sql

# Row counts from data/SHA256SUMS.txt (the official files) and our own split rules.
EXPECTED = {
    ("viggo", "train"): 5103,
    ("viggo", "validation"): 714,
    ("viggo", "test"): 1083,
    ("viggo", "challenge_train_1_percent"): 50,
    ("viggo", "challenge_train_20_percent"): 1021,
    ("gsm8k", "train"): 7473 - gsm8k.VALIDATION_ROWS,
    ("gsm8k", "validation"): gsm8k.VALIDATION_ROWS,
    ("gsm8k", "test"): 1319,
}


@pytest.mark.parametrize("task,split", sorted(EXPECTED))
def test_split_row_counts(task, split):
    rows = data.load_rows(task, split)
    assert len(rows) == EXPECTED[(task, split)]
    assert all(set(tasks.get(task).fields) <= set(r) for r in rows)


def test_row_counts_match_checksum_file():
    counts = {rel: n for _, n, rel in data.read_checksums()}
    assert counts["viggo/train.jsonl"] == 5103
    assert counts["gsm8k/test.jsonl"] == 1319
    assert counts["sql_create_context/train.jsonl"] == 4000


def test_checksums_verify():
    assert data.verify_checksums() == []


def test_checksum_detects_a_changed_byte(tmp_path):
    shutil.copytree(paths.data_dir(), tmp_path / "data")
    f = tmp_path / "data" / "gsm8k" / "test.jsonl"
    blob = bytearray(f.read_bytes())
    blob[100] = ord("X") if blob[100] != ord("X") else ord("Y")
    f.write_bytes(bytes(blob))
    problems = data.verify_checksums(tmp_path / "data")
    assert problems == ["gsm8k/test.jsonl: SHA-256 differs from SHA256SUMS.txt"]


def test_sql_split_is_deterministic_partition_with_disjoint_schemas():
    splits = {s: data.load_rows("sql", s) for s in ("train", "validation", "test")}
    idx = {s: {r["row_index"] for r in rows} for s, rows in splits.items()}
    assert sum(len(v) for v in idx.values()) == 4000
    assert not (idx["train"] & idx["test"]) and not (idx["train"] & idx["validation"])
    assert {r["row_index"] for r in data.load_rows("sql", "test")} == idx["test"]  # same again
    schemas = {s: {tuple(sql.sql_tables(r["context"])) for r in rows} for s, rows in splits.items()}
    assert not (schemas["train"] & schemas["test"])
    assert 0.70 < len(idx["train"]) / 4000 < 0.80


def test_sql_split_of_ignores_table_order_and_case():
    a = "CREATE TABLE Head (age INTEGER); CREATE TABLE dept (id INTEGER)"
    b = "CREATE TABLE dept (x VARCHAR); CREATE TABLE head (y VARCHAR)"
    assert sql.sql_split_of(a) == sql.sql_split_of(b)


def _write_task(tmp_path, monkeypatch, lines):
    d = tmp_path / "data" / "gsm8k"
    d.mkdir(parents=True)
    (d / "test.jsonl").write_text("".join(lines))
    monkeypatch.setenv("FTLIB_DATA", str(tmp_path / "data"))
    return d / "test.jsonl"


GOOD = json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n"


@pytest.mark.parametrize(
    "bad_line,expected",
    [
        ('{"question": "1+1?", "answer": "#### 2"', r"test.jsonl:2: expected one JSON object per line"),
        ('{"question": "1+1?"}\n', r"test.jsonl:2: missing field\(s\) \['answer'\]"),
        ('["question", "answer"]\n', r"test.jsonl:2: expected a JSON object, got list"),
        ('{"question": "", "answer": "#### 2"}\n', r"test.jsonl:2: field 'question' must be a non-empty string"),
    ],
    ids=["truncated", "missing-field", "not-an-object", "empty-field"],
)
def test_bad_rows_name_file_line_and_expectation(tmp_path, monkeypatch, bad_line, expected):
    _write_task(tmp_path, monkeypatch, [GOOD, bad_line])
    with pytest.raises(DataFormatError, match=expected):
        data.load_rows("gsm8k", "test")


def test_unknown_task_and_split_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task 'math'"):
        data.load_rows("math", "test")
    with pytest.raises(ValueError, match="unknown split 'dev' for task 'sql'"):
        data.load_rows("sql", "dev")

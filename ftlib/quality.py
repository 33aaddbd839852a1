"""Data-quality checks that notebook 01 shows: duplicates, overlap between splits, token lengths."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from ftlib import data, prepare, tasks


def key(task: str) -> Callable[[dict], str]:
    """What makes two rows the same example: the task's input, lower-cased (SQL: question + tables)."""
    t = tasks.get(task)
    return lambda r: t.question(r).strip().lower()


def duplicates(rows: list[dict], key: Callable[[dict], str]) -> int:
    """How many rows repeat an earlier row's key (a set of k equal rows counts k-1).

    >>> duplicates([{"q": "a"}, {"q": "a"}, {"q": "b"}], lambda r: r["q"])
    1
    """
    return sum(c - 1 for c in Counter(key(r) for r in rows).values())


def overlap(train: list[dict], test: list[dict], key: Callable[[dict], str]) -> int:
    """How many test rows have a key that also occurs in train (possible leakage)."""
    seen = {key(r) for r in train}
    return sum(key(r) in seen for r in test)


def schema_overlap(train: list[dict], test: list[dict]) -> dict[str, int]:
    """SQL: test rows whose exact table set, or any one table name, also occurs in train."""
    train_sets = {tuple(data.sql_tables(r["context"])) for r in train}
    train_names = {t for s in train_sets for t in s}
    sets = [tuple(data.sql_tables(r["context"])) for r in test]
    return {
        "test_rows": len(test),
        "same_table_set": sum(s in train_sets for s in sets),
        "shares_a_table_name": sum(any(t in train_names for t in s) for s in sets),
    }


def varchar_number_rows(rows: list[dict]) -> int:
    """SQL rows the case study's filter would drop (a VARCHAR column compared with a number)."""
    return sum(prepare.varchar_number_comparison(r["context"], r["answer"]) for r in rows)


def split_report(task: str, splits: dict[str, list[dict]]) -> dict[str, int]:
    """Duplicate and cross-split overlap counts for one task's prepared splits."""
    same = key(task)
    report = {f"duplicates_in_{s}": duplicates(rows, same) for s, rows in splits.items()}
    report["test_rows_also_in_train"] = overlap(splits["train"], splits["test"], same)
    report["validation_rows_also_in_train"] = overlap(splits["train"], splits["validation"], same)
    return report


def token_lengths(task: str, rows: list[dict], tokenizer) -> list[int]:
    """Tokens per training example (prompt + completion, chat template applied)."""
    from ftlib import prompts

    out = []
    for row in rows:
        ex = prompts.sft_example(task, row)
        text = (ex["prompt"] + ex["completion"] if isinstance(ex["prompt"], str)
                else tokenizer.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=False))
        out.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return out


def padding_waste(lengths: list[int], batch_size: int) -> float:
    """Fraction of a padded batch that is padding, batching rows in the given order.

    >>> padding_waste([2, 4], 2)  # one batch padded to 4: 2 pad tokens of 8
    0.25
    """
    total = padded = 0
    for i in range(0, len(lengths), batch_size):
        chunk = lengths[i:i + batch_size]
        total += sum(chunk)
        padded += max(chunk) * len(chunk)
    return 1 - total / padded if padded else 0.0

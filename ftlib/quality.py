"""Data-quality checks that notebook 01 shows: duplicates, overlap between splits, token lengths."""

from __future__ import annotations

from collections import Counter
from typing import Callable

from ftlib import tasks
from ftlib.tasks import sql


def key(task: tasks.Task) -> Callable[[dict], str]:
    """What makes two rows the same example: the task's input, lower-cased (SQL: question + tables)."""
    return lambda r: task.question(r).strip().lower()


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


schema_overlap = sql.schema_overlap  # notebook 01's name for the SQL task's check


def varchar_number_rows(rows: list[dict]) -> int:
    """SQL rows the case study's filter would drop (a VARCHAR column compared with a number)."""
    return sum(sql.TASK.flagged(r) for r in rows)


def split_report(task: str | tasks.Task, splits: dict[str, list[dict]]) -> dict[str, int]:
    """Duplicate and cross-split overlap counts for one task's prepared splits."""
    same = key(tasks.get(task))
    report = {f"duplicates_in_{s}": duplicates(rows, same) for s, rows in splits.items()}
    report["test_rows_also_in_train"] = overlap(splits["train"], splits["test"], same)
    report["validation_rows_also_in_train"] = overlap(splits["train"], splits["validation"], same)
    return report


def token_lengths(task: str | tasks.Task, rows: list[dict], tokenizer) -> list[int]:
    """Tokens per training example (prompt + completion, chat template applied)."""
    from ftlib import prompts

    t, out = tasks.get(task), []
    for row in rows:
        ex = prompts.sft_example(t, row)
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

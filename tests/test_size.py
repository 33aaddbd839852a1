"""The size comparison (ftlib.size): every column scored on the same items, from committed predictions."""

import json

import pytest

from ftlib import size


def write(root, col, task, oks):
    """A predictions file for a column: item ids 0..len-1, `oks` the primary metric per item."""
    path = size.predictions_path(col, task, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    metric = size.METRIC[task]
    path.write_text("".join(json.dumps({"id": i, "prediction": "", "reference": "", "scores": {metric: ok}}) + "\n"
                            for i, ok in enumerate(oks)))


def test_columns_are_scored_on_the_items_all_of_them_answered(tmp_path):
    tuned, untuned_big = size.COLUMNS[0], size.COLUMNS[-1]
    write(tmp_path, tuned, "sql", [True] * 8 + [False] * 2)  # every item: 8 of 10
    write(tmp_path, untuned_big, "sql", [False, True, True, True])  # only the first 4
    rows = {r["model"]: r for r in size.compare("sql", tmp_path)}
    assert set(rows) == {tuned.label, untuned_big.label}
    assert rows[tuned.label]["n"] == rows[untuned_big.label]["n"] == 4
    assert rows[tuned.label]["score"] == 1.0 and rows[untuned_big.label]["score"] == 0.75
    assert rows[untuned_big.label]["ci_low"] < 0.75 < rows[untuned_big.label]["ci_high"]
    assert rows[tuned.label]["tuned"] and not rows[untuned_big.label]["tuned"]
    assert rows[untuned_big.label]["style"] == size.STYLE["sql"]


def test_an_item_the_metric_cannot_judge_counts_for_no_column(tmp_path):
    """A SQL gold that cannot tell right from wrong carries no execution_match: left out of every column."""
    tuned, untuned_big = size.COLUMNS[0], size.COLUMNS[-1]
    write(tmp_path, tuned, "sql", [True, True, False])
    write(tmp_path, untuned_big, "sql", [False, True, True])
    path = size.predictions_path(untuned_big, "sql", tmp_path)
    lines = path.read_text().splitlines()
    lines[0] = json.dumps({"id": 0, "prediction": "", "reference": "", "scores": {"judged": False}})
    path.write_text("\n".join(lines) + "\n")
    rows = {r["model"]: r for r in size.compare("sql", tmp_path)}
    assert rows[tuned.label]["n"] == 2 and rows[tuned.label]["score"] == 0.5
    assert rows[untuned_big.label]["score"] == 1.0
    assert size.paired("sql", root=tmp_path)["items"] == 2


def test_paired_counts_items_only_one_model_gets(tmp_path):
    write(tmp_path, size.COLUMNS[0], "viggo", [True, True, True, False, True])
    write(tmp_path, size.COLUMNS[-1], "viggo", [False, False, True, True])
    p = size.paired("viggo", root=tmp_path)
    assert (p["items"], p["only_before"], p["only_after"], p["both"]) == (4, 1, 2, 1)
    assert size.paired("gsm8k", root=tmp_path) is None  # nothing to compare


def test_figure_has_a_panel_per_task_on_a_log_axis(tmp_path):
    for task in ("viggo", "sql"):
        write(tmp_path, size.COLUMNS[0], task, [True, False, True])
        write(tmp_path, size.COLUMNS[-1], task, [False, False, True])
    rows = size.compare("viggo", tmp_path) + size.compare("sql", tmp_path)
    fig = size.figure(rows)
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    assert "n = 3" in fig.axes[0].get_title()


def test_limits_are_checked_at_the_door():
    assert size._limits(["sql=10", "gsm8k=3"]) == {"sql": 10, "gsm8k": 3}
    for bad in (["sql"], ["sql=-5"], ["math=3"], ["sql=abc"]):
        with pytest.raises(SystemExit, match="TASK=N"):
            size._limits(bad)


def test_styles_table_scores_each_evaluation_on_its_own_items(tmp_path):
    for style, oks in (("few_shot", [True, True, False, False]), ("zero_shot", [True, False])):
        path = tmp_path / "size" / "predictions" / f"sql-qwen2.5-coder-1.5b-{style}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"id": i, "scores": {"execution_match": ok}}) + "\n"
                                for i, ok in enumerate(oks)))
    rows = {r["style"]: r for r in size.styles(tmp_path)}
    assert (rows["few_shot"]["n"], rows["few_shot"]["score"]) == (4, 0.5)
    assert (rows["zero_shot"]["n"], rows["zero_shot"]["score"]) == (2, 0.5)
    assert {r["model"] for r in rows.values()} == {"qwen2.5-coder-1.5b"}

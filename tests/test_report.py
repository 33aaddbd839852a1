"""Result files: the machine-readable scores and per-item predictions re-score the summary."""

import json

import pytest
from test_harness import FakeGenerator

from ftlib import harness, io, report
from ftlib.tasks import gsm8k


def test_exported_predictions_rescore_the_headline(tmp_path):
    out = tmp_path / "eval" / "fake-viggo"
    summary = harness.evaluate(FakeGenerator(), "viggo", "test", "few_shot", limit=7, out_dir=out)
    found = {("viggo", "fake"): out}
    [path] = report.export_predictions(found, tmp_path / "predictions")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 7 and set(rows[0]) == {"id", "prediction", "reference", "scores"}
    primary = summary["primary"]
    rescored = sum(bool(r["scores"][primary]) for r in rows) / len(rows)
    assert rescored == summary["metrics"][primary]["mean"] == 4 / 7  # the fake answers every other item

    [num] = report.numeric_rows(report.score_rows(found))
    assert num["score"] == round(4 / 7, 4) and num["n"] == 7 and num["ci_low"] < num["score"] < num["ci_high"]
    assert io.read_json(out / "summary.json")["n"] == 7
    ci = summary["metrics"][primary]
    assert report.score_text(report.score_rows(found)[0]) == (
        f"57.1 [{100 * ci['ci_low']:.1f}, {100 * ci['ci_high']:.1f}] (n=7)")


def test_score_text_writes_thousands_and_one_decimal():
    row = {"score": 0.96768, "ci_low": 0.9549, "ci_high": 0.97702, "n": 1083}
    assert report.score_text(row) == "96.8 [95.5, 97.7] (n=1,083)"
    assert report.score_text(None) == "not run"


def test_gsm8k_failures_hand_checked():
    records = [
        {"prediction": "2*3=<<2*3=6>>6\n#### 6"},  # fine
        {"prediction": "2*3=<<2*3=7>>7\n#### 7"},  # a wrong note
        {"prediction": "a\nb\na\na\n"},  # no answer line, a line three times
    ]
    f = gsm8k.gsm8k_failures(records)
    assert f == {"items": 3, "no_answer_line": 1, "repeats_a_line_3x": 1, "notes": 2, "wrong_notes": 1,
                 "answers_with_a_wrong_note": 1}


def test_paired_counts_the_items_that_differ_and_refuses_other_items():
    before = [{"id": i, "scores": {"correct": i in (0, 1, 2)}} for i in range(20)]
    after = [{"id": i, "scores": {"correct": i in (1, 2, *range(5, 15))}} for i in range(20)]
    out = report.paired(before, after, "correct")
    assert (out["both"], out["only_before"], out["only_after"]) == (2, 1, 10)
    assert out["p"] == round(2 * (1 + 11) / 2**11, 5)  # k <= 1 of n = 11: (C(11,0) + C(11,1)) / 2^11, twice
    with pytest.raises(ValueError, match="different items"):
        report.paired(before, after[:-1], "correct")

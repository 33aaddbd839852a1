"""The recipe sweep: equal budgets, validation split only, the winner picked from the table."""

import pytest

from ftlib import io, plots, presets
from ftlib.experiments import sweep


def test_viggo_full_arms_share_one_budget_and_names_are_unique():
    arms = sweep.grid("viggo")
    assert len({a.name for a in arms}) == len(arms)
    budgets = {a.n_train * a.epochs for a in arms if a.method == "full"}
    assert budgets == {3200}
    assert {a.method for a in arms} == {"full", "lora"}
    with pytest.raises(ValueError, match="no sweep grid"):
        sweep.grid("gsm8k")


def test_sql_arms_train_every_row_and_score_validation():
    arms = sweep.grid("sql")
    assert len({a.name for a in arms}) == len(arms) == 7
    assert all(a.n_train is None for a in arms) and all(a.name.split("-")[2].startswith("all") for a in arms)
    full_2e4 = sorted(a.epochs for a in arms if a.method == "full" and a.lr == 2e-4)
    assert full_2e4 == [1, 2, 3]
    cfg = sweep.config("sql", arms[5], "some-model", val_limit=300)
    got = (cfg.method, cfg.lora_r, cfg.n_train, cfg.eval_split, cfg.eval_limit)
    assert got == ("lora", 16, None, "validation", 300)
    assert cfg.name == "sql-lora-0.001-allx2" and cfg.experiment == "sweep"


def test_an_arm_takes_its_fixed_settings_from_the_presets():
    """Every arm trains with the sweep's preset and sizes (`presets.SWEEP`), not values of sweep.py's own."""
    full, lora = (next(a for a in sweep.grid("viggo") if a.method == m) for m in ("full", "lora"))
    cfg = sweep.config("viggo", full, "m", val_limit=5)
    assert (cfg.preset, cfg.batch_size, cfg.n_val, cfg.lr) == (presets.SWEEP.train_preset, 8, 100, full.lr)
    assert presets.SWEEP.lora == {"lora_r": 16} and sweep.config("viggo", lora, "m", val_limit=5).lora_r == 16


def test_arms_are_scored_on_validation_never_test(tiny_model_dir, runs_root):
    arms = [sweep.Arm("full", 1e-3, 8, 1), sweep.Arm("lora", 1e-3, 8, 1)]
    rows = sweep.run("viggo", arms, str(tiny_model_dir), val_limit=3, max_steps=2, n_val=4, bf16=False)
    assert [r["arm"] for r in rows] == [a.name for a in arms]
    for arm in arms:
        summary = io.read_json(runs_root / "sweep" / f"viggo-{arm.name}" / "eval" / "summary.json")
        assert summary["split"] == "validation" and summary["n"] == 3
    assert all(r["n"] == 3 and 0 <= r["score"] <= 1 for r in rows)
    written = sweep.export_predictions("viggo", runs_root / "out", arms, root=runs_root)
    assert sorted(w.name for w in written) == sorted(f"viggo-{a.name}.jsonl" for a in arms)
    first = next(io.iter_jsonl(written[0]))
    assert set(first) == {"id", "prediction", "reference", "scores", "truncated"}  # did it hit its budget
    pairs = sweep.paired_rows("viggo", rows, runs_root / "out")
    assert len(pairs) == 1 and pairs[0]["items"] == 3
    # A committed table (an arm measured elsewhere, a stale row of one finished here) is updated, not replaced.
    committed = {**rows[0], "arm": "full-0.0002-3200x1", "score": 0.95}
    plots.save_table([{**rows[1], "score": 0.123}, committed], "sweep_viggo", runs_root / "out")
    table = sweep.table_rows("viggo", runs_root / "out", arms, root=runs_root)
    assert [r["arm"] for r in table][0] == "full-0.0002-3200x1"  # the grid's arms first, in its order
    assert sorted(r["arm"] for r in table[1:]) == sorted(a.name for a in arms)
    score = {r["arm"]: r["score"] for r in table}
    assert score["full-0.0002-3200x1"] == 0.95 and score[arms[1].name] == rows[1]["score"] != 0.123


def test_best_prefers_score_then_lower_loss():
    rows = [{"arm": "a", "score": 0.9, "best_val_loss": 0.2}, {"arm": "b", "score": 0.9, "best_val_loss": 0.1},
            {"arm": "c", "score": 0.8, "best_val_loss": 0.01}]
    assert sweep.best(rows)["arm"] == "b"


def test_paired_rows_compare_every_arm_with_the_winner_item_by_item(tmp_path):
    hits = {"a": [1, 1, 1, 1, 1, 1, 0, 0], "b": [1, 1, 0, 0, 0, 0, 1, 0], "c": [1, 1, 1, 1, 1, 1, 0, 0]}
    for arm, h in hits.items():
        io.append_jsonl(tmp_path / f"sql-{arm}.jsonl", [{"id": i, "scores": {"em": bool(x)}} for i, x in enumerate(h)])
    rows = [{"arm": arm, "score": sum(h) / 8, "best_val_loss": loss, "metric": "em"}
            for (arm, h), loss in zip(hits.items(), (0.2, 0.3, 0.1))]
    got = sweep.paired_rows("sql", rows, tmp_path)
    assert [r["arm"] for r in got] == ["a", "b"] and {r["winner"] for r in got} == {"c"}  # c: same score, lower loss
    a, b = got
    assert (a["only_arm"], a["only_winner"], a["both"], a["p"]) == (0, 0, 6, 1.0)
    assert (b["only_arm"], b["only_winner"], b["both"]) == (1, 4, 2) and b["p"] == 0.375
    (tmp_path / "sql-b.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="sql-b.jsonl"):
        sweep.paired_rows("sql", rows, tmp_path)

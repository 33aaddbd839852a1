"""The size comparison (ftlib.experiments.size): every column scored on the same items, from committed predictions."""

import json

import pytest

from ftlib import presets
from ftlib.experiments import baselines, size, size_tuned

BIG = next(c for c in baselines.COLUMNS if c.label == baselines.LARGE_UNTUNED)


def write(root, col, task, oks):
    """A predictions file for a column: item ids 0..len-1, `oks` the primary metric per item."""
    path = baselines.predictions_path(col, task, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    metric = baselines.METRIC[task]
    path.write_text("".join(json.dumps({"id": i, "prediction": "", "reference": "", "scores": {metric: ok}}) + "\n"
                            for i, ok in enumerate(oks)))


def test_columns_are_scored_on_the_items_all_of_them_answered(tmp_path):
    tuned, untuned_big = baselines.COLUMNS[0], BIG
    write(tmp_path, tuned, "sql", [True] * 8 + [False] * 2)  # every item: 8 of 10
    write(tmp_path, untuned_big, "sql", [False, True, True, True])  # only the first 4
    rows = {r["model"]: r for r in size.compare("sql", tmp_path)}
    assert set(rows) == {tuned.label, untuned_big.label}
    assert rows[tuned.label]["n"] == rows[untuned_big.label]["n"] == 4
    assert rows[tuned.label]["score"] == 1.0 and rows[untuned_big.label]["score"] == 0.75
    assert rows[untuned_big.label]["ci_low"] < 0.75 < rows[untuned_big.label]["ci_high"]
    assert rows[tuned.label]["tuned"] and not rows[untuned_big.label]["tuned"]
    assert rows[untuned_big.label]["style"] == baselines.STYLE["sql"]


def test_an_item_the_metric_cannot_judge_counts_for_no_column(tmp_path):
    """A SQL gold that cannot tell right from wrong carries no execution_match: left out of every column."""
    tuned, untuned_big = baselines.COLUMNS[0], BIG
    write(tmp_path, tuned, "sql", [True, True, False])
    write(tmp_path, untuned_big, "sql", [False, True, True])
    path = baselines.predictions_path(untuned_big, "sql", tmp_path)
    lines = path.read_text().splitlines()
    lines[0] = json.dumps({"id": 0, "prediction": "", "reference": "", "scores": {"judged": False}})
    path.write_text("\n".join(lines) + "\n")
    rows = {r["model"]: r for r in size.compare("sql", tmp_path)}
    assert rows[tuned.label]["n"] == 2 and rows[tuned.label]["score"] == 0.5
    assert rows[untuned_big.label]["score"] == 1.0
    assert size.paired("sql", root=tmp_path)["items"] == 2


def test_paired_counts_items_only_one_model_gets(tmp_path):
    write(tmp_path, baselines.COLUMNS[0], "viggo", [True, True, True, False, True])
    write(tmp_path, BIG, "viggo", [False, False, True, True])
    p = size.paired("viggo", root=tmp_path)
    assert (p["items"], p["only_before"], p["only_after"], p["both"]) == (4, 1, 2, 1)
    assert size.paired("gsm8k", root=tmp_path) is None  # nothing to compare


def test_figure_has_a_panel_per_task_on_a_log_axis(tmp_path):
    for task in ("viggo", "sql"):
        write(tmp_path, baselines.COLUMNS[0], task, [True, False, True])
        write(tmp_path, BIG, task, [False, False, True])
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


def fake_run(folder, summary, config, eval_summary=None, env=None):
    """A finished-looking run folder with the files the size tables read."""
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "env.json").write_text(json.dumps(env or {"cpu_kind": "AMX", "matmul_gflops": 1800}))
    if eval_summary:
        (folder / "eval").mkdir()
        (folder / "eval" / "summary.json").write_text(json.dumps(eval_summary))


def test_lr_rows_read_each_finished_arm_and_skip_missing_ones(tmp_path):
    full_lr = next(lr for method, lr in presets.SIZE_ARMS["viggo"] if method == "full")
    lora_lr = next(lr for method, lr in presets.SIZE_ARMS["viggo"] if method == "lora")
    for method, lr, right in (("full", full_lr, 50), ("lora", lora_lr, 20)):
        metric = {"mean": right / 100, "ci_low": 0.1, "ci_high": 0.6, "n": 100}
        fake_run(tmp_path / "size-lr" / size_tuned.lr_name("viggo", lr, method), {"best_eval_loss": 0.10071},
                 {}, {"primary": "attribute_types", "metrics": {"attribute_types": metric}})
    rows = size_tuned.lr_rows(tmp_path)  # the other arms have no folder: left out
    assert [(r["method"], r["lr"], r["score"], r["n"]) for r in rows] == [("full", full_lr, 0.5, 100),
                                                                            ("lora", lora_lr, 0.2, 100)]
    assert size_tuned.lr_name("viggo", 2e-5) == f"viggo-0.5b-full-2e-5-{presets.SIZE_LR_CHECK['n_train']}x1"


def test_a_lora_arm_trains_an_adapter_with_the_sweeps_settings_at_its_own_lr():
    full = size_tuned.arm_config("viggo", "full", 2e-5)
    lora = size_tuned.arm_config("viggo", "lora", 1e-3)
    assert (full.method, full.lr, lora.method, lora.lr) == ("full", 2e-5, "lora", 1e-3)
    assert lora.lora_r == presets.SWEEP.lora["lora_r"] and lora.name == "viggo-0.5b-lora-1e-3-320x1"
    assert (lora.model, lora.eval_split, lora.n_train) == (presets.SIZE_TUNED_MODEL, "validation", 320)


def test_training_rows_report_cost_with_the_cpu_kind_and_its_matmul_rate(tmp_path):
    summary = {"global_step": 300, "tokens": 130000, "tokens_per_s": 150.2, "train_wall_seconds_all_sessions": 1860,
               "peak_rss_gib": 13.1, "sessions": 2, "best_eval_loss": 0.0512}
    config = {"model": presets.SIZE_TUNED_MODEL, "method": "full", "n_train": 2400, "epochs": 1, "lr": 2e-5}
    fake_run(size_tuned.tuned_dir("viggo", tmp_path), summary, config)
    segments = [{"from_step": 0, "to_step": 150, "step_seconds": 1000.0, "wall_seconds": 1100, "tokens": 150000},
                {"from_step": 150, "to_step": 300, "step_seconds": 600.0, "wall_seconds": 760, "tokens": 130000}]
    folder = size_tuned.tuned_dir("viggo", tmp_path)
    (folder / "segments.jsonl").write_text("".join(json.dumps(g) + "\n" for g in segments))
    (row,) = size_tuned.training_rows(tmp_path)
    assert (row["task"], row["train_minutes"], row["peak_rss_gib"], row["sessions"]) == ("viggo", 31.0, 13.1, 2)
    assert (row["cpu_kind"], row["matmul_gflops"]) == ("AMX", 1800)
    # a resumed run: tokens and tokens/s over both sessions, not the last one's (its summary says 130,000)
    assert (row["tokens"], row["tokens_per_s"]) == (280000, 175.0)


def test_export_takes_the_tuned_models_test_predictions(tmp_path):
    ev = size_tuned.tuned_dir("sql", tmp_path / "runs") / "eval"
    ev.mkdir(parents=True)
    (ev / "predictions.jsonl").write_text(json.dumps({"id": 3, "prediction": "SELECT 1", "reference": "SELECT 1",
                                                      "scores": {"execution_match": True}, "seconds": 0.5}) + "\n")
    (written,) = size.export(tmp_path / "runs", tmp_path / "out")
    assert written.name == f"sql-{presets.SIZE_TUNED_MODEL}-fine-tuned.jsonl"
    tuned = next(c for c in baselines.COLUMNS if c.label == baselines.LARGER_TUNED)
    assert baselines.predictions_path(tuned, "sql", tmp_path).name == written.name  # the column reads what export wrote
    assert json.loads(written.read_text())["scores"] == {"execution_match": True}


def test_a_partial_measurement_keeps_the_committed_rows(tmp_path):
    size_tuned.keep_measured([{"task": "viggo", "lr": 2e-5, "score": 0.5}, {"task": "sql", "lr": 2e-5, "score": 0.7}],
                       "lr_check", ("task", "lr"), tmp_path)
    size_tuned.keep_measured([{"task": "sql", "lr": 2e-5, "score": 0.8}], "lr_check", ("task", "lr"), tmp_path)
    from ftlib import plots

    rows = {(r["task"], r["lr"]): r["score"] for r in plots.read_table(tmp_path / "lr_check.csv")}
    assert rows == {("viggo", 2e-5): 0.5, ("sql", 2e-5): 0.8}


def test_latency_measures_each_condition_once_and_tabulates_it_with_the_cpu(tmp_path, monkeypatch):
    from ftlib import latency, plots

    calls = []

    def fake_measure(model, task, style, limit, latency_items, out):
        calls.append((model, task, style, limit, latency_items, out.name))
        return {"prompt_tokens": 700.0 if style == "few_shot" else 75.0, "new_tokens": 30.0, "latency_s": 1.5,
                "latency_ci_low": 1.0, "latency_ci_high": 2.0, "latency_items": latency_items,
                "answers_per_s": 3.0, "n": limit, "cpu_kind": "AMX", "device": "cpu", "matmul_gflops": 1900}

    monkeypatch.setattr(latency, "measure", fake_measure)
    conditions = size_tuned.latency_conditions("some/tuned-135m", tmp_path / "runs")
    assert conditions[baselines.SMALL_TUNED] == ("some/tuned-135m", "chat")
    tuned_05b = str(size_tuned.tuned_dir("viggo", tmp_path / "runs") / "model")
    assert conditions[baselines.LARGER_TUNED] == (tuned_05b, "chat")
    rows = size_tuned.latency(conditions, tmp_path / "runs", tmp_path / "out")
    assert [(c[0], c[2]) for c in calls] == list(conditions.values())
    assert all(c[1:2] + c[3:5] == ("viggo", 100, 30) for c in calls)  # the first 100 items, 30 timed singly
    assert [r["model"] for r in rows] == list(conditions)
    table = plots.read_table(tmp_path / "out" / "latency.csv")
    assert [(r["style"], r["cpu_kind"], r["matmul_gflops"]) for r in table][-1] == ("few_shot", "AMX", 1900)
    default = size_tuned.latency_conditions(runs_root=tmp_path / "runs")[baselines.SMALL_TUNED][0]
    assert default.startswith(str(tmp_path / "runs" / "full")) and default.endswith("model")


def test_the_size_modules_import_at_the_top_only():
    """An import inside a function hides a dependency (and once dodged a cycle): none in these modules."""
    import ast
    import inspect

    for module in (size, size_tuned, baselines):
        tree = ast.parse(inspect.getsource(module))
        inner = [f"{module.__name__}.{fn.name}" for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
                 for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert inner == [], inner

"""A results folder's figures can be redrawn from its committed tables alone."""

from ftlib import plots, redraw


def test_redraw_draws_scores_and_errors_from_the_tables(tmp_path):
    plots.save_table([{"task": "viggo", "label": "untuned-few_shot", "metric": "attribute_types", "score": 0.1,
                       "ci_low": 0.05, "ci_high": 0.2, "n": 100},
                      {"task": "viggo", "label": "fine-tuned", "metric": "attribute_types", "score": 0.9,
                       "ci_low": 0.85, "ci_high": 0.94, "n": 100}], "scores", tmp_path)
    plots.save_table([{"task": "viggo", "model": "fine-tuned", "counts": "correct=80, wrong_value=20"}],
                     "errors", tmp_path)
    written = redraw.redraw(tmp_path, "t")
    assert sorted(p.name for p in written) == ["errors_viggo.png", "scores.png"]
    assert all(p.stat().st_size > 5000 for p in written)


def test_nothing_to_draw_without_tables(tmp_path):
    assert redraw.redraw(tmp_path) == []


def test_redraw_draws_a_sweep_and_names_the_run_in_the_titles(tmp_path):
    folder = tmp_path / "full-h200"
    plots.save_table([{"task": "sql", "arm": "full-0.0002-allx2", "method": "full", "train_minutes": 50.0,
                       "tokens_per_s": 260.0, "metric": "execution_match", "score": 0.6, "ci_low": 0.55,
                       "ci_high": 0.65, "n": 294, "device": "AVX-512-BF16"}], "sweep_sql", folder)
    plots.save_table([{"task": "sql", "model": "fine-tuned", "counts": "correct=3, wrong_rows=2"}], "errors", folder)
    assert redraw.run_name(folder) == "full preset, H200 run"
    written = redraw.redraw(folder)
    assert sorted(p.name for p in written) == ["errors_sql.png", "sweep_sql.png"]

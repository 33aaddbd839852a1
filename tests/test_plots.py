"""Figures and tables are saved to disk (the README shows them) and carry what they claim."""

from ftlib import plots, tasks


def test_markdown_and_csv_tables(tmp_path):
    rows = [{"task": "viggo", "untuned": "0%"}, {"task": "sql", "untuned": "12%"}]
    md = plots.save_table(rows, "summary", tmp_path)
    assert md.read_text().splitlines()[3] == "| sql | 12% |"
    assert (tmp_path / "summary.csv").read_text().splitlines() == ["task,untuned", "viggo,0%", "sql,12%"]


def test_score_bars_draws_one_panel_per_task_with_ci_and_reference_marks(tmp_path):
    rows = [
        {"task": "viggo", "label": "untuned few-shot", "score": 0.1, "ci_low": 0.05, "ci_high": 0.2, "n": 100},
        {"task": "viggo", "label": "fine-tuned", "score": 0.9, "ci_low": 0.85, "ci_high": 0.94, "n": 100},
        {"task": "gsm8k", "label": "fine-tuned", "score": 0.02, "ci_low": 0.0, "ci_high": 0.05, "n": 50},
    ]
    fig = plots.score_bars(rows)
    axes = fig.axes
    assert [a.get_title().split("\n")[0] for a in axes] == [tasks.VIGGO.title, tasks.GSM8K.title]
    assert "n=100" in axes[0].get_title() and "n=50" in axes[1].get_title()
    labels = [t.get_text() for t in axes[0].texts]
    assert labels == ["10%", "90%"] and axes[0].texts[1].get_position()[1] > 94  # above the interval's top
    heights = [p.get_height() for p in axes[0].patches]
    assert heights == [10.0, 90.0]
    marks = sorted(line.get_ydata()[0] for line in axes[0].lines if len(set(line.get_ydata())) == 1)
    assert 58 in marks and 98 in marks  # the case study's 13B before/after
    path = plots.save_figure(fig, "scores", tmp_path)
    assert path.stat().st_size > 5000


def test_loss_curves_plot_train_and_validation():
    hist = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}, {"step": 2, "eval_loss": 1.7}]
    fig = plots.loss_curves({"run": hist})
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["training loss", "validation loss", "best: 1.7 (step 2)"]
    assert fig.axes[0].get_yscale() == "log"


def test_grouped_counts_one_bar_per_kind_and_group():
    fig = plots.grouped_counts({"a": {"x": 1, "y": 2}, "b": {"y": 5}}, "t")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [1, 2, 0, 5]


def test_labels_are_words_and_lengths_show_n_and_the_limit():
    fig = plots.grouped_counts({"untuned-few_shot": {"wrong_function": 3, "correct": 1}}, "viggo: outcomes")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["exactly right (values too)", "wrong function"]
    assert ax.get_legend().get_texts()[0].get_text() == "untuned, few-shot (n=4)"
    assert ax.get_title() == f"{tasks.VIGGO.title}: outcomes"
    fig = plots.histograms({"sql": [100, 200, 600]}, "tokens", "t")
    assert "n=3" in fig.axes[0].get_title() and any("1 over" in t.get_text() for t in fig.axes[0].texts)


def test_a_dollar_in_a_table_is_not_maths():
    assert "tex2jax_ignore" in plots.table([{"answer": "$80,000 and $50,000"}])._repr_html_()


def test_table_saves_and_returns_a_frame(tmp_path):
    frame = plots.table([{"task": "sql", "score": 0.5}], "t", tmp_path)
    assert list(frame.columns) == ["task", "score"] and frame.iloc[0]["score"] == 0.5
    assert (tmp_path / "t.md").exists() and (tmp_path / "t.csv").exists()
    assert "<table" in frame._repr_html_()  # what Jupyter shows


def _round(series, i, score, function):
    return {"series": series, "round": i, "metric": "attribute_types", "score": score, "score_ci_low": 0.0,
            "score_ci_high": score + 0.1, "function": function, "function_ci_low": function - 0.1,
            "function_ci_high": function + 0.1}


def test_rounds_figure_draws_the_function_panel_on_whole_round_numbers():
    rows = [_round("a", 0, 0.0, 0.2), _round("a", 1, 0.02, 0.5), _round("a", 2, 0.04, 0.8)]
    fig = plots.rounds(rows, "t", metrics=("function", "score"))
    fig.canvas.draw()
    function, score = fig.axes
    assert function.get_ylabel() == "function (%)" and score.get_ylabel() == "function + attribute types (%)"
    assert [round(float(v), 6) for v in function.lines[0].get_ydata()] == [20.0, 50.0, 80.0]  # in %
    ticks = [t for t in function.get_xticks() if -0.5 <= t <= 2.5]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_rounds_that_share_a_start_fan_out_from_it():
    rows = [{**_round("sql", r, score, score), "name": name, "start": start}
            for r, name, start, score in ((0, "base", "-", 0.0), (1, "gold", "base", 0.4), (2, "on", "gold", 0.5),
                                          (2, "off", "gold", 0.3), (2, "verified", "gold", 0.45))]
    fig = plots.rounds(rows, "t", x="name")
    fig.canvas.draw()
    ax = fig.axes[0]
    segments = [tuple(line.get_ydata()) for line in ax.lines if len(line.get_ydata()) == 2]
    # base -> gold, then gold -> each of the three: never on -> off or off -> verified
    assert sorted(segments) == sorted([(0.0, 40.0), (40.0, 50.0), (40.0, 30.0), (40.0, 45.0)])


def test_quality_figure_draws_each_seed_and_the_mean_per_level():
    rows = [{**_round("q", 3, score, score), "level": level, "seed": seed}
            for level, scores in (("corrupt-0", (0.7, 0.8)), ("corrupt-50", (0.3, 0.1)))
            for seed, score in enumerate(scores)]
    fig = plots.quality(rows, "t")
    score = fig.axes[0]
    assert [t.get_text() for t in score.get_xticklabels()] == ["0 % wrong labels", "50 % wrong labels"]
    assert [round(b.get_height(), 6) for b in score.patches] == [75.0, 20.0]  # the seeds' mean, in %
    dots = sorted(round(float(c.lines[0].get_ydata()[0]), 6) for c in score.containers if hasattr(c, "has_yerr"))
    assert dots == [10.0, 30.0, 70.0, 80.0]  # every seed drawn


def test_read_table_gives_back_what_save_table_wrote(tmp_path):
    rows = [{"arm": "full-0.0002-1600x2", "lr": 0.0002, "n": 300, "score": 0.88, "note": None}]
    plots.save_table(rows, "t", tmp_path)
    assert plots.read_table(tmp_path / "t.csv") == rows


def test_metric_bars_and_response_time_draw_every_condition():
    def summary(*means):
        return {"metrics": {m: {"mean": v, "ci_low": v / 2, "ci_high": min(1, v * 1.2), "n": 10}
                            for m, v in zip(("voice", "slots"), means)}}

    fig = plots.metric_bars({"untuned few-shot": summary(0.2, 0.5), "fine-tuned": summary(0.9, 0.95)},
                            ("voice", "slots"))
    assert [a.get_title().split("\n")[0] for a in fig.axes] == ["voice", "share of slots realized"]
    assert [p.get_height() for p in fig.axes[0].patches] == [20.0, 90.0]
    rows = [{"label": "few-shot", "prompt_tokens": 700, "latency_s": 2.0, "latency_ci_low": 1.5, "latency_ci_high": 2.5,
             "answers_per_s": 3.0}, {"label": "tuned", "prompt_tokens": 75, "latency_s": 0.5, "latency_ci_low": 0.4,
                                    "latency_ci_high": 0.6, "answers_per_s": 9.0}]
    left, right = plots.response_time(rows).axes
    assert [p.get_height() for p in left.patches] == [2.0, 0.5]
    assert [p.get_height() for p in right.patches] == [3.0, 9.0]
    assert "700 prompt tokens" in left.get_xticklabels()[0].get_text()

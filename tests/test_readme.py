"""The README's numbers are generated from the result files (ftlib.readme), and the tables under
results/ agree with the committed predictions they were built from."""

import json
import shutil

import pytest

from ftlib import evals, paths, plots, readme, tasks

RESULTS = paths.ROOT / "results"


def test_readme_numbers_are_the_result_files():
    """Stale: run `python -m ftlib.readme` after changing a result file."""
    assert readme.stale(paths.ROOT / "README.md") == []


def test_readme_has_the_generated_tables_and_values():
    text = (paths.ROOT / "README.md").read_text()
    assert {m["name"] for m in readme.BLOCK.finditer(text)} == set(readme.BLOCKS)
    assert len(readme.VALUE.findall(text)) >= 20


def test_a_changed_result_changes_the_readme(tmp_path):
    root = tmp_path / "results"
    shutil.copytree(RESULTS / "size", root / "size")
    shutil.copytree(RESULTS / "cpu", root / "cpu", ignore=shutil.ignore_patterns("*.ipynb", "*.png"))
    for preset in ("quick", "full"):
        shutil.copytree(RESULTS / preset, root / preset, ignore=shutil.ignore_patterns("*.png"))
    rows = plots.read_table(root / "size" / "size.csv")
    row = next(r for r in rows if r["task"] == "viggo" and r["model"] == readme.baselines.SMALL_TUNED)
    row["score"] = 0.5
    plots.save_table(rows, "size", root / "size")
    text = "t135: <!--n:viggo.t135-->96.1<!--/n-->\n<!-- numbers:size-table -->\nold\n<!-- /numbers -->\n"
    out = readme.render(text, root)
    assert "<!--n:viggo.t135-->50.0<!--/n-->" in out
    assert "**50.0 [94.8, 97.1]**" in out and "old" not in out


def test_no_line_starts_with_a_value_marker():
    """Markdown reads a line that starts with `<!--` as raw HTML: the sentence around it breaks apart."""
    lines = (paths.ROOT / "README.md").read_text().splitlines()
    assert [i + 1 for i, line in enumerate(lines) if line.lstrip().startswith("<!--n:")] == []


def test_an_unknown_name_is_an_error_with_its_line():
    with pytest.raises(KeyError, match=r"README.md:2: no value named 'viggo.nope'"):
        readme.render("x\n<!--n:viggo.nope-->1<!--/n-->\n")


def test_the_size_table_shows_both_gsm8k_metrics_and_the_training_minutes_match():
    table = readme.size_table(RESULTS)
    assert "GSM8K (last number" in table and "GSM8K (strict-match" in table
    training = {r["task"]: r for r in plots.read_table(RESULTS / "size" / "training.csv")}
    values = readme.values()
    assert values["train.sql.wall_min"] == f"{training['sql']['train_minutes']:.0f}"


FOLDERS = sorted(p.parent for p in RESULTS.glob("*/summary.csv") if (p.parent / "predictions").exists())


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_summary_and_errors_agree_with_the_committed_predictions(folder):
    """summary.md and errors.md carry the current scorers' numbers (as scores.md), not an older scorer's."""
    summary = {r["task"]: r for r in plots.read_table(folder / "summary.csv")}
    errors = {(r["task"], r["model"]): r["counts"] for r in plots.read_table(folder / "errors.csv")}
    for path in sorted((folder / "predictions").glob("*-fine-tuned.jsonl")):
        task = tasks.get(path.stem.split("-", 1)[0])
        scores = [json.loads(line)["scores"] for line in path.read_text().splitlines() if line.strip()]
        score = evals.Score.of(evals.summarize(scores)[task.primary])
        assert summary[task.name]["fine-tuned"] == score.text(), f"{folder.name}/summary.csv, {task.name}"
        if task.name == "viggo":  # its outcome "correct" is stricter than the headline (every value right)
            continue
        right = sum(bool(s.get(task.primary)) for s in scores)
        assert f"correct={right}" in errors[(task.name, "fine-tuned")], f"{folder.name}/errors.csv, {task.name}"

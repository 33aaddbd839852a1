"""Fair baselines: answers that hit their budget are found and continued, and each model's prompting is
chosen on validation."""

import json

import pytest

from ftlib import models, prepare, prompts, tasks
from ftlib.backends.local import LocalGenerator
from ftlib.experiments import baselines


def write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_hit_budget_counts_the_answers_tokens():
    tok = models.load_tokenizer()
    text = "one two three four five six"
    n = len(tok(text, add_special_tokens=False).input_ids)
    assert baselines.hit_budget(text, tok, n) and not baselines.hit_budget(text, tok, n + 1)


def test_mark_fills_only_missing_flags(tmp_path):
    tok = models.load_tokenizer()
    long, short = "word " * 40, "7"
    path = tmp_path / "p.jsonl"
    write(path, [{"id": 0, "prediction": long}, {"id": 1, "prediction": short},
                 {"id": 2, "prediction": long, "truncated": False}])
    limit = len(tok(long, add_special_tokens=False).input_ids)
    assert baselines.mark(path, "smollm2-135m-instruct", limit) == 1
    assert [r["truncated"] for r in read(path)] == [True, False, False]  # a flag already there is kept


def test_extending_a_cut_answer_equals_generating_with_the_larger_budget(tiny_model_dir, tmp_path, runs_root,
                                                                         one_thread):
    """Greedy decoding: an answer cut at 6 tokens, continued to 20, is the answer a budget of 20 gives."""
    model, tok = models.load(str(tiny_model_dir), dtype="float32")
    gen = LocalGenerator(model, tok)
    t = baselines.task_for("gsm8k", "zero_shot")
    items = prepare.evaluation_items(t, "test", 3)[0]
    texts = [prompts.render(t, row, "zero_shot", tok) for _, row in items]
    cut = gen.generate(texts, 6)
    assert all(gen.truncated)  # a random model does not stop within 6 tokens
    full = gen.generate(texts, 20)
    if any(tok(c, add_special_tokens=False).input_ids != tok(f, add_special_tokens=False).input_ids[:len(
            tok(c, add_special_tokens=False).input_ids)] for c, f in zip(cut, full)):
        pytest.skip("the random model's text does not tokenize back to the same tokens")
    path = tmp_path / "gsm8k-tiny-zero_shot.jsonl"
    write(path, [{"id": i, "prediction": c, "reference": row["answer"], "scores": {}, "truncated": True}
                 for (i, row), c in zip(items, cut)])
    counts = baselines.extend(path, str(tiny_model_dir), "gsm8k", "zero_shot", old=6, new=20, batch=2)
    after = read(path)
    assert [r["prediction"] for r in after] == full
    assert counts == {"continued": 3, "still_truncated": 3}
    assert all(r["budget"] == 20 and r["extended_from"] == 6 and "flexible_extract" in r["scores"] for r in after)
    assert baselines.extend(path, str(tiny_model_dir), "gsm8k", "zero_shot", old=6, new=20)["continued"] == 0


def test_the_better_prompting_on_validation_is_chosen(tmp_path):
    def scores(task, alias, p, rights):
        write(baselines.val_file(alias, p, task, tmp_path),
              [{"id": i, "prediction": "", "scores": {"flexible_extract": r}, "truncated": False}
               for i, r in enumerate(rights)])

    assert baselines.chosen("gsm8k", "m", "flexible_extract", "zero_shot", tmp_path) == "zero_shot"  # none measured
    scores("gsm8k", "m", "program", [1, 1, 1, 0])
    assert baselines.chosen("gsm8k", "m", "flexible_extract", "zero_shot", tmp_path) == "zero_shot"  # alone
    scores("gsm8k", "m", "zero_shot", [1, 0, 0, 0])
    scores("gsm8k", "m", "four_shot_text", [1, 1, 0, 0])
    assert baselines.chosen("gsm8k", "m", "flexible_extract", "zero_shot", tmp_path) == "program"
    (tmp_path / "size" / "validation" / "gsm8k-m-program.jsonl").unlink()
    assert baselines.chosen("gsm8k", "m", "flexible_extract", "zero_shot", tmp_path) == "four_shot_text"
    scores("gsm8k", "m", "zero_shot", [1, 1, 0, 0])  # a tie keeps the default
    assert baselines.chosen("gsm8k", "m", "flexible_extract", "zero_shot", tmp_path) == "zero_shot"
    assert baselines.val_scores("gsm8k", "m", "flexible_extract", tmp_path)["zero_shot"]["truncated"] == 0.0


def test_the_four_shot_protocol_shows_four_worked_examples():
    t = baselines.task_for("gsm8k", "four_shot_text")
    assert t.few_shot == 4 and t.max_new_tokens == baselines.BUDGET[("gsm8k", "four_shot_text")]
    text = prompts.text_prompt(t, tasks.get("gsm8k").load("test")[0])
    assert text.count(t.answer_label) == 5  # four answered examples, then the question's open label


def test_program_of_thought_asks_for_a_program_and_scores_what_it_prints():
    t, row = baselines.task_for("gsm8k", "program"), tasks.get("gsm8k").load("test")[0]
    gold = row["answer"].rsplit("#### ", 1)[1]
    msgs = prompts.messages(t, row, baselines.PROMPTINGS["program"].style)
    assert [m["role"] for m in msgs] == ["system", "user"] and "Python program" in msgs[0]["content"]
    assert t.max_new_tokens == baselines.BUDGET[("gsm8k", "program")] and t.scorer_id != tasks.get("gsm8k").scorer_id
    right = f"Sure.\n```python\nanswer = {gold} * 2 / 2\nprint(answer)\n```"  # prints e.g. 18.0: still 18
    assert t.score(right, row) == {"strict_match": True, "flexible_extract": True, "ran": True}
    assert t.score(f"```python\nprint({gold} + 1)\n```", row)["strict_match"] is False
    refused = t.score(f"```python\nimport os\nprint({gold})\n```", row)
    assert not any(refused[m] for m in t.metrics) and "import" in refused["program_error"]
    assert t.score(f"The answer is {gold}.", row)["ran"] is False  # prose is not a program
    assert t.error_kind(right, {"reference": row["answer"]}) == "correct"

"""Prompt formats: the SFT format, the special-token format and its tokenizer self-test, fair baselines."""

import pytest

from ftlib import data, models, prompts, tasks
from ftlib.backends import cut_at_stop
from ftlib.tasks import gsm8k, viggo

TASKS = ("viggo", "sql", "gsm8k")


@pytest.fixture(scope="module")
def tok():
    return models.load_tokenizer()


@pytest.fixture(scope="module")
def rows():
    return {t: data.load_rows(t, "test")[:5] for t in TASKS}


@pytest.mark.parametrize("task", TASKS)
def test_sft_example_is_conversational_and_ends_with_eos(task, rows, tok):
    ex = prompts.sft_example(task, rows[task][0])
    assert ex["prompt"][0]["role"] == "user" and ex["completion"][0]["role"] == "assistant"
    text = tok.apply_chat_template(ex["prompt"] + ex["completion"], tokenize=False)
    assert text.rstrip("\n").endswith(tasks.get(task).reference(rows[task][0]) + tok.eos_token)


@pytest.mark.parametrize("task", TASKS)
def test_special_token_does_not_change_tokenization(task, rows, tok):
    """The case study's self-test: a special token before text leaves the text's tokens unchanged."""
    tok = models.load_tokenizer()
    ids = prompts.add_special_tokens(tok)
    for row in rows[task]:
        for text in (tasks.get(task).question(row), tasks.get(task).reference(row)):
            plain = tok(text, add_special_tokens=False).input_ids
            for special in ids:
                marked = tok(tok.convert_ids_to_tokens(special) + text, add_special_tokens=False).input_ids
                assert marked == [special] + plain


def test_add_special_tokens_is_idempotent_and_resizes(tiny_model_dir):
    model, tok = models.load(str(tiny_model_dir))
    first = prompts.add_special_tokens(tok, model)
    assert prompts.add_special_tokens(tok, model) == first
    assert model.get_input_embeddings().num_embeddings >= len(tok) == max(first) + 1


def test_special_format(rows):
    row = rows["viggo"][0]
    ex = prompts.sft_example("viggo", row, fmt="special")
    assert ex["prompt"] == f"<START_Q>Sentence: {row['target']}<END_Q><START_A>"
    assert ex["completion"] == row["meaning_representation"] + "<END_A>"
    assert prompts.stop_strings(tasks.get("viggo"), "special") == ["<END_A>"]


def test_viggo_few_shot_has_one_train_example_per_function():
    shots = prompts.few_shot_rows(tasks.get("viggo"))
    train_mrs = {r["meaning_representation"] for r in data.load_rows("viggo", "train")}
    assert [viggo.parse_viggo(s["meaning_representation"])[0] for s in shots] == list(viggo.VIGGO_FUNCTIONS)
    assert all(s["meaning_representation"] in train_mrs for s in shots)
    system = prompts.messages(tasks.get("viggo"), shots[0], "zero_shot")[0]["content"]
    assert all(a in system for a in viggo.VIGGO_ATTRIBUTES) and "order" in system


@pytest.mark.parametrize("task", TASKS)
def test_few_shot_turns_alternate_and_end_with_the_question(task, rows):
    msgs = prompts.messages(tasks.get(task), rows[task][0], "few_shot")
    assert msgs[0]["role"] == "system"
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant"] * ((len(msgs) - 2) // 2) + ["user"]
    assert msgs[-1]["content"] == tasks.get(task).question(rows[task][0])


def test_gsm8k_shots_end_with_the_answer_line():
    for m in prompts.messages(tasks.get("gsm8k"), {"question": "q"}, "few_shot")[2::2]:
        assert gsm8k.extract_gsm8k_answer(m["content"]) is not None
        assert "####" in m["content"].splitlines()[-1] and "<<" not in m["content"]


def test_sql_prompts_ask_for_tags(rows):
    assert "<SQL>" in prompts.messages(tasks.get("sql"), rows["sql"][0], "zero_shot")[0]["content"]
    assert "<SQL>" in prompts.user_text(tasks.get("sql"), rows["sql"][0])


def test_render_ends_with_the_assistant_turn(rows, tok):
    text = prompts.render(tasks.get("viggo"), rows["viggo"][0], "zero_shot", tok)
    assert text.endswith("<|im_start|>assistant\n")
    assert prompts.render(tasks.get("viggo"), rows["viggo"][0], "special", tok).endswith("<START_A>")
    with pytest.raises(ValueError):
        prompts.messages(tasks.get("viggo"), rows["viggo"][0], "special")


def test_a_batch_is_messages_without_a_tokenizer_and_rendered_text_with_one(rows, tok):
    t = tasks.get("gsm8k")
    batch = rows["gsm8k"][:3]
    as_messages, stop = prompts.batch(t, batch, "few_shot")
    as_text, special_stop = prompts.batch(t, batch, "special", tok)
    assert as_messages == [prompts.messages(t, r, "few_shot") for r in batch] and stop == list(t.stop)
    assert as_text == [prompts.render(t, r, "special", tok) for r in batch] and special_stop == ["<END_A>"]
    assert all(isinstance(x, list) for x in as_messages) and all(x.endswith("<START_A>") for x in as_text)


@pytest.mark.parametrize("task", TASKS)
def test_few_shot_text_is_plain_and_its_stops_end_each_answer(task, rows, tok):
    row = rows[task][0]
    text = prompts.render(tasks.get(task), row, "few_shot_text", tok)
    assert prompts.default_bos(tok) == ""  # SmolLM2's tokenizer adds no BOS
    assert "<|im_start|>" not in text and text.startswith(tasks.get(task).system)
    assert text.endswith(f"{tasks.get(task).question(row)}\n{tasks.get(task).answer_label}")
    stops = prompts.stop_strings(tasks.get(task), "few_shot_text")
    for shot in prompts.few_shot_rows(tasks.get(task)):
        answer = prompts._shot_answer(tasks.get(task), shot)
        assert f"{tasks.get(task).answer_label} {answer}" in text
        # what a base model would write after the label: the answer, then the next example
        continuation = f" {answer}\n\n{tasks.get(task).question(row)}"
        assert cut_at_stop(continuation, stops) == f" {answer}"
    with pytest.raises(ValueError, match="local models"):
        prompts.messages(tasks.get(task), row, "few_shot_text")

"""Batched generation gives what one-at-a-time greedy generation gives, and stops where it should."""

import pytest
import torch

from ftlib import models
from ftlib.backends.local import LocalGenerator, common_prefix_len, shared_prefix_len

SHARED = "<|im_start|>system\nYou answer questions about video games, briefly and correctly.<|im_end|>\n"
QUESTIONS = ["Hi", "What is the best racing game ever made, in your opinion?", "Name a game.",
             "Is Minecraft on Steam? Answer with yes or no and one sentence on why."]


@pytest.fixture
def gen(tiny_model_dir, one_thread):
    model, tok = models.load(str(tiny_model_dir), dtype=torch.float32)
    return LocalGenerator(model, tok, batch_size=3)


def naive_ids(gen, prompt: str, max_new: int) -> list[int]:
    """The reference: model.generate on one unpadded prompt, greedy, stopping at the generator's EOS ids."""
    enc = gen.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = gen.model.generate(**enc, max_new_tokens=max_new, do_sample=False, eos_token_id=gen.eos_ids,
                             pad_token_id=gen.tokenizer.pad_token_id)
    return out[0, enc.input_ids.shape[1]:].tolist()


def naive(gen, prompt: str, max_new: int) -> str:
    """The reference's text, without its EOS."""
    new = naive_ids(gen, prompt, max_new)
    if new and new[-1] in gen.eos_ids:
        new = new[:-1]
    return gen.tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.parametrize("shared", ["", SHARED], ids=["no-shared-prefix", "shared-prefix"])
def test_batched_equals_one_at_a_time(gen, shared):
    prompts = [f"{shared}<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    batched = gen.generate(prompts, max_new_tokens=12)
    assert batched == [naive(gen, p, 12) for p in prompts]
    assert batched == [gen.generate([p], 12)[0] for p in prompts]


MIXED = [f"{SHARED}<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS] + [
    "<|im_start|>user\nok<|im_end|>\n<|im_start|>assistant\n",  # no shared prefix with the rest
    f"{SHARED}<|im_start|>user\n{' '.join(QUESTIONS * 3)}<|im_end|>\n<|im_start|>assistant\n",  # ~3x longer
]


@pytest.mark.parametrize("batch_size", [2, 6])
def test_harness_path_equals_one_at_a_time_with_rows_ending_at_different_steps(tiny_model_dir, one_thread,
                                                                                batch_size):
    """Mixed prompt lengths, a shared prefix in some batches, and rows that stop at different steps (so
    finished rows leave the batch and its cache mid-way): every output is what the prompt gives alone."""
    model, tok = models.load(str(tiny_model_dir), dtype=torch.float32)
    gen = LocalGenerator(model, tok, batch_size=batch_size)
    # Make tokens that two free runs emit early count as EOS, so rows end at different steps, not at the cap.
    free = [naive_ids(gen, p, 16) for p in MIXED]
    gen.eos_ids = sorted(set(gen.eos_ids) | {free[0][2], free[1][4], free[3][7]})
    lengths = {len(naive_ids(gen, p, 16)) for p in MIXED}
    assert len(lengths) > 2 and min(lengths) <= 6  # the rows really end at different steps
    want = [naive(gen, p, 16) for p in MIXED]
    assert gen.generate(MIXED, 16) == want
    assert gen.stats.new_tokens < len(MIXED) * 16


def test_truncated_flags_the_answers_that_hit_the_cap(gen):
    """An answer that hit max_new_tokens is flagged; one that ended (EOS) sooner is not, in the
    prompts' order, whatever the batch order."""
    prompts = [f"{SHARED}<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    gen.eos_ids = [naive_ids(gen, prompts[1], 6)[4]]  # a random model never says EOS: make one token end
    ended = [gen.eos_ids[0] in naive_ids(gen, p, 30) for p in prompts]
    assert any(ended) and not all(ended)  # both cases occur, or the test proves nothing
    gen.generate(prompts, max_new_tokens=30)
    assert gen.truncated == [not e for e in ended]


def test_stop_strings_cut_the_output(gen):
    prompt = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    full = gen.generate([prompt], 16)[0]
    stop = full[len(full) // 2: len(full) // 2 + 3]
    cut = gen.generate([prompt], 16, stop=[stop])[0]
    assert cut == full[: full.find(stop)]
    assert gen.generate([prompt], 16, stop=["never appears \x00"])[0] == full


def test_stats_count_tokens(gen):
    before = gen.stats.new_tokens
    gen.generate(["a b c", "d e"], 5)
    assert gen.stats.new_tokens - before <= 10 and gen.stats.tokens_per_s > 0


def test_common_prefix_len():
    assert common_prefix_len([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_len([[5], [6]]) == 0


def test_shared_prefix_len_leaves_every_row_a_token_and_skips_short_prefixes():
    long = list(range(40))
    assert shared_prefix_len([long + [1], long + [2, 3]]) == 40
    assert shared_prefix_len([long, long + [2, 3]]) == 39  # the shorter row keeps its last token
    assert shared_prefix_len([long[:10] + [1], long[:10] + [2]]) == 0  # < MIN_SHARED_PREFIX
    assert shared_prefix_len([long + [1]]) == 0  # one row: nothing to share


def test_a_tool_dictates_what_follows_and_decoding_goes_on(tiny_model_dir, one_thread):
    """The calculator's path: the tool's tokens are forced, then greedy decoding goes on from them,
    exactly as if they had been part of the prompt."""
    from ftlib import models
    from ftlib.backends.local import LocalGenerator

    model, tok = models.load(str(tiny_model_dir), dtype="float32")
    prompt = tok("<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False).input_ids
    plain = LocalGenerator(model, tok, batch_size=2)
    first = plain.model(input_ids=__import__("torch").tensor([prompt])).logits[0, -1].argmax().item()
    dictated = tok("42>>", add_special_tokens=False).input_ids
    gen = LocalGenerator(model, tok, batch_size=2, tool=lambda text: None)
    gen._tool_tokens = lambda new_ids: dictated if len(new_ids) == 1 else []  # after the first token
    out = gen._generate_batch([prompt, prompt], 10, [])[0]
    rest = plain._generate_batch([prompt + [first] + dictated], 10 - 1 - len(dictated), [])[0][0]
    assert out[0] == out[1] == tok.decode([first] + dictated) + rest
    assert "42>>" in out[0]


def test_harness_records_the_tool(tiny_model_dir, tmp_path, one_thread):
    from ftlib import harness

    s = harness.evaluate(str(tiny_model_dir), "gsm8k", "test", "chat", limit=2, out_dir=tmp_path / "e",
                         tool="calculator")
    assert s["tool"] == "calculator" and s["n"] == 2
    with pytest.raises(ValueError, match="unknown tool"):
        harness.evaluate(str(tiny_model_dir), "gsm8k", limit=2, out_dir=tmp_path / "f", tool="abacus")
    with pytest.raises(ValueError, match="holds an evaluation"):  # no mixing with tool-less answers
        harness.evaluate(str(tiny_model_dir), "gsm8k", "test", "chat", limit=2, out_dir=tmp_path / "e")

"""Batched generation gives what one-at-a-time greedy generation gives, and stops where it should."""

import pytest
import torch

from ftlib import models
from ftlib.backends.local import LocalGenerator, common_prefix_len

SHARED = "<|im_start|>system\nYou answer questions about video games, briefly and correctly.<|im_end|>\n"
QUESTIONS = ["Hi", "What is the best racing game ever made, in your opinion?", "Name a game.",
             "Is Minecraft on Steam? Answer with yes or no and one sentence on why."]


@pytest.fixture
def gen(tiny_model_dir, one_thread):
    model, tok = models.load(str(tiny_model_dir), dtype=torch.float32)
    return LocalGenerator(model, tok, batch_size=3)


def naive(gen, prompt: str, max_new: int) -> str:
    """The reference: model.generate on one unpadded prompt, greedy."""
    enc = gen.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = gen.model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                             pad_token_id=gen.tokenizer.pad_token_id)
    return gen.tokenizer.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True)


@pytest.mark.parametrize("shared", ["", SHARED], ids=["no-shared-prefix", "shared-prefix"])
def test_batched_equals_one_at_a_time(gen, shared):
    prompts = [f"{shared}<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n" for q in QUESTIONS]
    batched = gen.generate(prompts, max_new_tokens=12)
    assert batched == [naive(gen, p, 12) for p in prompts]
    assert batched == [gen.generate([p], 12)[0] for p in prompts]


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

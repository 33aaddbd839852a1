"""Shared fixtures."""

import pytest
import torch

from ftlib import models


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama (hidden 64) with the embedded model's tokenizer and chat template,
    saved as a checkpoint folder: loads and generates in well under a second. A context of 2048
    tokens: ViGGO's few-shot prompts (~830 tokens) fit."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = models.load_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    """Every run of a test goes to its own folder (prepared data included)."""
    monkeypatch.setenv("FTLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def one_thread():
    """Run torch on one thread: on a shared 2-core machine, two threads next to another busy
    process wait on each other at every op (measured: a tiny model's decode step ~40x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""The speed levers of ftlib.lean give TRL's numbers: same attention outputs, same loss, same gradients."""

import pytest
import torch

from ftlib import lean, presets, sft, train, train_config
from tests.test_train import smoke


@pytest.fixture(scope="module")
def gqa_model():
    """A random 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    return LlamaForCausalLM(cfg).eval()


def _packed(lengths, vocab=97):
    """A padding-free row of examples of the given lengths, as TRL's collator builds it."""
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, vocab, (n,), generator=g) for n in lengths]
    bounds = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    batch = {"input_ids": torch.cat(rows)[None],
             "position_ids": torch.cat([torch.arange(n) for n in lengths])[None],
             "cu_seq_lens_q": bounds, "cu_seq_lens_k": bounds,
             "max_length_q": max(lengths), "max_length_k": max(lengths)}
    return rows, batch


def test_varlen_attention_equals_sdpa_and_separate_rows(gqa_model):
    rows, batch = _packed([5, 9, 3])
    with torch.no_grad():
        gqa_model.set_attn_implementation("sdpa")
        # Training has no KV cache; only then does transformers turn packed position_ids into a mask
        masked = gqa_model(**batch, use_cache=False).logits
        alone = torch.cat([gqa_model(input_ids=r[None]).logits for r in rows], dim=1)
        assert lean.use_varlen(gqa_model)
        varlen = gqa_model(**batch, use_cache=False).logits
        lean.restore_sdpa(gqa_model)
    assert gqa_model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(varlen, masked, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(varlen, alone, atol=1e-5, rtol=1e-5)  # no attention across examples


def test_varlen_without_boundaries_is_plain_sdpa(gqa_model):
    """Generation and padded batches carry no cu_seq_lens: same outputs as SDPA, padding respected."""
    ids = torch.randint(0, 97, (2, 7), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    with torch.no_grad():
        plain = gqa_model(input_ids=ids, attention_mask=mask).logits
        lean.use_varlen(gqa_model)
        varlen = gqa_model(input_ids=ids, attention_mask=mask).logits
        lean.restore_sdpa(gqa_model)
    torch.testing.assert_close(varlen, plain)


@pytest.mark.parametrize("padding_free", [True, False])
def test_lean_loss_equals_trl_loss_and_gradients(tiny_model_dir, runs_root, padding_free):
    results = []
    for lean_loss in (False, True):
        cfg = smoke(tiny_model_dir, n_train=8, padding_free=padding_free, lean_loss=lean_loss)
        model, tok = sft.load_for_training(cfg, cfg.model)
        train_ds, val_ds, _ = sft.datasets_for(cfg, tok)
        trainer = sft.make_trainer(cfg, runs_root / str(lean_loss), model, tok, train_ds, val_ds)
        assert (type(trainer).__name__ == "LeanSFTTrainer") == lean_loss
        batch = next(iter(trainer.get_train_dataloader()))
        model.train()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.item(), grads, trainer._metrics["train"]["mean_token_accuracy"]))
    (l0, g0, acc0), (l1, g1, acc1) = results
    assert l1 == pytest.approx(l0, rel=1e-5)
    assert g0.keys() == g1.keys() and len(g0) > 0
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=1e-6, rtol=1e-4, msg=name)
    assert acc1 == pytest.approx(acc0)  # the token accuracy TRL logs, from the kept logits


def test_finished_run_saves_plain_sdpa(tiny_model_dir, runs_root):
    folder = train.run(smoke(tiny_model_dir, epochs=1, name="lean"))
    text = (folder / "model" / "config.json").read_text()
    assert lean.VARLEN not in text


def test_decoder_layers_is_the_stack_of_identical_layers(gqa_model):
    assert lean.decoder_layers(gqa_model) is gqa_model.model.layers
    assert lean.decoder_layers(torch.nn.Linear(2, 2)) is None
    assert not lean.compile_layers(torch.nn.Sequential(torch.nn.Linear(2, 2)))


@pytest.mark.slow
def test_compiled_layers_give_the_same_loss_and_gradients(tiny_model_dir, runs_root):
    """compile_layers through make_trainer: same loss and gradients as eager, checkpoint names unchanged."""
    results = []
    for compiled in (False, True):
        cfg = smoke(tiny_model_dir, n_train=8, compile_layers=compiled)
        model, tok = sft.load_for_training(cfg, cfg.model)
        names = list(model.state_dict())
        train_ds, val_ds, _ = sft.datasets_for(cfg, tok)
        trainer = sft.make_trainer(cfg, runs_root / str(compiled), model, tok, train_ds, val_ds)
        assert all((layer._compiled_call_impl is not None) == compiled for layer in model.model.layers)
        batches = iter(trainer.get_train_dataloader())
        model.train()
        for _ in range(2):  # two row lengths: the dynamic shape is reused, not recompiled wrongly
            model.zero_grad()
            loss = trainer.compute_loss(model, next(batches))
            loss.backward()
        assert list(model.state_dict()) == names  # nn.Module.compile wraps nothing: checkpoints load as before
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    (l0, g0), (l1, g1) = results
    assert l1 == pytest.approx(l0, rel=1e-5)
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], atol=1e-5, rtol=1e-3, msg=name)


def test_layers_compile_on_cpus_where_inductor_builds(monkeypatch):
    from ftlib import models

    size_run = train_config.preset("cpu", **presets.SIZE_SPEED)  # the larger model's runs: detect
    monkeypatch.setattr(lean, "can_compile", lambda: False)  # no C++ compiler: eager
    assert not sft.use_compile(size_run)
    monkeypatch.setattr(lean, "can_compile", lambda: True)
    assert sft.use_compile(size_run) == (models.pick_device().type == "cpu")
    assert not sft.use_compile(train_config.preset("smoke"))  # tests: compiling costs more than the run
    assert not sft.use_compile(train_config.preset("cpu"))  # the 135M presets: not measured there, off
    assert sft.use_compile(train_config.preset("cpu", compile_layers=True))  # explicit wins

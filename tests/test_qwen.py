"""The larger untuned models (Qwen2.5-Coder 0.5B/1.5B-Instruct), shipped as raw GGUF parts in many
PyPI packages: the join, its hash check and each way a part can be wrong, on small fake parts."""

import hashlib
import importlib
import importlib.util
import itertools
import re

import pytest

from ftlib import models, prompts, tasks

_ids = itertools.count()


def fake_parts(tmp_path, monkeypatch, chunks: list[bytes], names: list[str] | None = None):
    """Install fake part packages `<prefix>N/data/partNN.bin` on sys.path; return (alias, joined bytes)."""
    prefix = f"fakeparts{next(_ids)}_part"
    site = tmp_path / "site"
    for i, data in enumerate(chunks, 1):
        pkg = site / f"{prefix}{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / (names[i - 1] if names else f"part{i:02d}.bin")).write_bytes(data)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    whole = b"".join(chunks)
    parts = models.GGUFParts(prefix, "fake-part", "1.0", len(chunks), len(whole), hashlib.sha256(whole).hexdigest())
    alias = f"fake-{prefix}"
    info = models.EmbeddedModel(f"{prefix}1", "fake-part{1..3}==1.0", "fake.gguf", make_target="setup-qwen",
                                parts=parts)
    monkeypatch.setitem(models.EMBEDDED, alias, info)
    monkeypatch.setenv("FTLIB_CACHE", str(tmp_path / "cache"))
    return alias, whole


CHUNKS = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 17]


def test_parts_join_in_order_into_the_official_file(tmp_path, monkeypatch):
    alias, whole = fake_parts(tmp_path, monkeypatch, CHUNKS)
    path = models.embedded_gguf_path(alias)
    assert path.read_bytes() == whole and path.parent == tmp_path / "cache" / "gguf"
    assert not list(path.parent.glob("*.partial"))


def test_a_missing_part_names_the_package_and_the_make_target(tmp_path, monkeypatch):
    alias, _ = fake_parts(tmp_path, monkeypatch, CHUNKS)
    info = models.EMBEDDED[alias]
    missing = models.GGUFParts(info.parts.prefix, "fake-part", "1.0", 4, info.parts.size, info.parts.sha256)
    monkeypatch.setitem(models.EMBEDDED, alias, models.EmbeddedModel(
        info.package, info.pip_name, info.gguf_file, make_target="setup-qwen", parts=missing))
    with pytest.raises(models.ModelNotInstalled, match=r"part 4 of 4 .*fake-part4==1.0.*make setup-qwen"):
        models.embedded_gguf_path(alias)
    assert not (tmp_path / "cache" / "gguf" / "fake.gguf").exists()


def test_a_damaged_part_fails_the_hash_and_leaves_no_file(tmp_path, monkeypatch):
    alias, _ = fake_parts(tmp_path, monkeypatch, CHUNKS)
    info = models.EMBEDDED[alias]
    part2 = tmp_path / "site" / f"{info.parts.prefix}2" / "data" / "part02.bin"
    part2.write_bytes(b"B" + CHUNKS[1][1:])  # same size, one byte changed
    with pytest.raises(models.ModelNotInstalled, match=r"sha256 .* not the official .*--force-reinstall"):
        models.embedded_gguf_path(alias)
    assert not list((tmp_path / "cache" / "gguf").iterdir())  # neither the file nor a partial one


def test_a_part_out_of_order_is_named(tmp_path, monkeypatch):
    alias, _ = fake_parts(tmp_path, monkeypatch, CHUNKS, names=["part01.bin", "part03.bin", "part02.bin"])
    with pytest.raises(models.ModelNotInstalled, match=r"_part2 should hold data/part02.bin but holds part03.bin"):
        models.embedded_gguf_path(alias)


def test_qwen_aliases_pin_the_official_files():
    for alias, count, size in (("qwen2.5-coder-0.5b", 6, 491_400_064), ("qwen2.5-coder-1.5b", 22, 1_117_320_768)):
        info = models.EMBEDDED[alias]
        assert info.parts.count == count and info.parts.size == size and len(info.parts.sha256) == 64
        assert info.install_command() == "make setup-qwen"
        assert len(info.parts.pip_names()) == count and all("==" in n for n in info.parts.pip_names())


def test_makefile_installs_every_part_without_dependencies():
    from ftlib import paths

    text = (paths.ROOT / "Makefile").read_text()
    for alias in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        parts = models.EMBEDDED[alias].parts
        assert f"{parts.pip_prefix}$$i=={parts.version}" in text and f"seq 1 {parts.count}" in text
    assert "--no-deps" in text.split("setup-qwen:")[1].split("\n\n")[0]


QWEN = "qwen2.5-coder-0.5b"
QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
needs_qwen = pytest.mark.skipif(not models.is_installed(QWEN), reason="optional model not installed (make setup-qwen)")


@pytest.mark.slow
@needs_qwen
def test_qwen_template_renders_the_projects_chat_prompts():
    """Every chat style's messages come out in Qwen's turn format, our system turn replacing Qwen's default."""
    tok = models.load_tokenizer(QWEN)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    from ftlib import prepare

    row = prepare.items(tasks.SQL, "test", 1)[0][1]
    for style in ("chat", "zero_shot", "few_shot"):
        msgs = prompts.messages(tasks.SQL, row, style)
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        expected = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
        if msgs[0]["role"] != "system":  # no system turn of ours: Qwen's template puts in its default one
            expected = f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM}<|im_end|>\n" + expected
        assert text == expected + "<|im_start|>assistant\n", style


@pytest.mark.parametrize("damage", [lambda b: b[:10], lambda b: b"junk" * (len(b) // 4) + b"j" * (len(b) % 4)],
                         ids=["truncated", "junk of the same size"])
def test_a_damaged_joined_file_is_refused_with_what_to_delete(tmp_path, monkeypatch, damage):
    """Joined once, then damaged in the cache: the next use re-checks it and names the file and the fix."""
    alias, whole = fake_parts(tmp_path, monkeypatch, CHUNKS)
    path = models.embedded_gguf_path(alias)
    path.write_bytes(damage(whole))
    with pytest.raises(models.ModelNotInstalled, match=re.escape(str(path)) + ".*delete it and rerun  make setup-qwen"):
        models.embedded_gguf_path(alias)

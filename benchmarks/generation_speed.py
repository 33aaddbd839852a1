"""Generated tokens/s: the harness's LocalGenerator against a naive loop, same model, same run.

Naive loop: one prompt at a time, `model.generate`, fp32 (what a first notebook would write).
Harness: `ftlib.backends.local.LocalGenerator` in the fastest dtype for the machine (models.pick_dtype).
Prompts: ViGGO test sentences in the fine-tuning ("chat") format, greedy, up to --max-new tokens,
stopping at EOS. The naive loop runs the first --naive-prompts of the same prompt list (it is ~30x
slower); both rates are generated tokens per wall-clock second, prompt processing included.
Last line: `speedup <ratio>x tokens_per_s <harness figure>`.

    .venv/bin/python benchmarks/generation_speed.py   # ~3-5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import time

import torch

from ftlib import data, models, prompts
from ftlib.backends.local import LocalGenerator


def naive_rate(model, tok, texts: list[str], max_new: int) -> tuple[int, float]:
    """(generated tokens, seconds) for one-at-a-time model.generate."""
    n, start = 0, time.perf_counter()
    for t in texts:
        enc = tok(t, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        n += out.shape[1] - enc.input_ids.shape[1]
    return n, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run both, print one line each and the summary line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=models.DEFAULT_MODEL)
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--naive-prompts", type=int, default=8)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=48)
    args = ap.parse_args(argv)
    fp32, tok = models.load(args.model, dtype=torch.float32)
    texts = [prompts.render("viggo", r, "chat", tok) for r in data.load_rows("viggo", "test")[: args.prompts]]
    print(f"threads {torch.get_num_threads()}  dtype {models.pick_dtype()}  prompts {len(texts)}", flush=True)
    n0, s0 = naive_rate(fp32, tok, texts[: args.naive_prompts], args.max_new)
    print(f"naive   {args.naive_prompts} prompts  {n0} tokens  {s0:.1f} s  {n0 / s0:.1f} tokens/s", flush=True)
    fast = fp32 if models.pick_dtype() == torch.float32 else models.load(args.model)[0]
    gen = LocalGenerator(fast, tok, batch_size=args.batch_size)
    gen.generate(texts[:4], 4)  # warm-up: first-call allocations
    gen.stats = type(gen.stats)()
    gen.generate(texts, args.max_new)
    st = gen.stats
    print(f"harness {len(texts)} prompts  {st.new_tokens} tokens  {st.seconds:.1f} s  "
          f"{st.tokens_per_s:.1f} tokens/s  (batch {args.batch_size})", flush=True)
    print(f"speedup {st.tokens_per_s / (n0 / s0):.1f}x tokens_per_s {st.tokens_per_s:.0f}")


if __name__ == "__main__":
    main()

"""Does keeping Qwen2.5-Coder-1.5B's converted checkpoint in bf16 change its answers?

The GGUF file is dequantized to fp32, then saved in bf16 (half the disk: 3.5 GB instead of 7.1 GB).
This compares the fp32 dequantization with the saved bf16 checkpoint: how many weights differ, and the
greedy answers to the first N SQL few-shot prompts, computed in fp32 (what a CPU without bf16 runs)
and in bf16 (what a bf16 CPU runs; the weights are then bit for bit the same).

    python benchmarks/bf16_checkpoint.py --n 16
"""

from __future__ import annotations

import argparse
import time

import torch

from ftlib import data, models, paths, prompts


def answers(model, tok, texts: list[str], max_new: int) -> list[str]:
    out = []
    for text in texts:
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        out.append(tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="SQL test items to answer")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    alias = "qwen2.5-coder-1.5b"
    folder = models.resolve(alias)  # the saved bf16 checkpoint
    gguf = next((paths.cache_dir() / "gguf").glob("qwen2.5-coder-1.5b*.gguf"))
    tok = models.load_tokenizer(alias)
    rows = data.load_rows("sql", "test")[: args.n]
    texts = [prompts.render("sql", r, "few_shot", tok) for r in rows]
    max_new = prompts.max_new_tokens("sql")
    t = time.perf_counter()
    ref = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    print(f"loaded both in {time.perf_counter() - t:.0f} s")
    a, b = ref.state_dict(), saved.state_dict()
    total = sum(v.numel() for v in a.values())
    differ = sum((a[k] != b[k]).sum().item() for k in a)
    rel = max(((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-12)).item() for k in a)
    same_as_cast = all(torch.equal(a[k].to(torch.bfloat16), b[k].to(torch.bfloat16)) for k in a)
    print(f"weights: {differ:,} of {total:,} differ from the fp32 dequantization ({100 * differ / total:.1f} %), "
          f"largest difference {rel:.2e} of a tensor's largest weight; bf16 checkpoint == fp32 cast to bf16: "
          f"{same_as_cast}")
    for dtype in (torch.float32, torch.bfloat16):
        t = time.perf_counter()
        x = answers(ref.to(dtype), tok, texts, max_new)
        y = answers(saved.to(dtype), tok, texts, max_new)
        same = sum(p == q for p, q in zip(x, y))
        print(f"{str(dtype).removeprefix('torch.')} compute: {same} of {len(x)} greedy answers identical "
              f"({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()

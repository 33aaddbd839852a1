"""Does keeping Qwen2.5-Coder-1.5B's converted checkpoint in bf16 change what it answers?

The GGUF file is dequantized to fp32, then saved in bf16 (half the disk: 3.5 GB instead of 7.1 GB).
This compares the fp32 dequantization with the saved bf16 checkpoint: how many weights differ, and,
over the first N SQL few-shot prompts with their gold answer appended, how often the two models' next
token (the greedy choice) differs at an answer position, in fp32 compute (a CPU without bf16) and in
bf16 compute (a bf16 CPU, where the weights are bit for bit the same). One model in memory at a time.

    python benchmarks/bf16_checkpoint.py --n 16
"""

from __future__ import annotations

import argparse
import gc
import time

import torch

from ftlib import data, models, paths, prompts, tasks

ALIAS = "qwen2.5-coder-1.5b"


def next_tokens(load, batches, dtype) -> tuple[list[torch.Tensor], dict]:
    """The greedy next token at every answer position of each text, and the model's state dict."""
    model = load().to(dtype).eval()
    out = []
    with torch.no_grad():
        for ids, start in batches:
            logits = model(input_ids=ids).logits[0, start - 1:-1]
            out.append(logits.argmax(-1))
    state = {k: v.to(torch.float32) for k, v in model.state_dict().items()} if dtype == torch.float32 else None
    del model
    gc.collect()
    return out, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="SQL test items")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    folder = models.resolve(ALIAS)  # the saved bf16 checkpoint
    gguf = next((paths.cache_dir() / "gguf").glob("qwen2.5-coder-1.5b*.gguf"))
    tok = models.load_tokenizer(ALIAS)
    batches = []
    for row in data.load_rows("sql", "test")[: args.n]:
        prompt = tok(prompts.render(tasks.SQL, row, "few_shot", tok), add_special_tokens=False)["input_ids"]
        answer = tok(tasks.SQL.reference(row), add_special_tokens=False)["input_ids"]
        batches.append((torch.tensor([prompt + answer]), len(prompt)))
    positions = sum(ids.shape[1] - start for ids, start in batches)
    def fp32_ref():
        return AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    def saved():
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    for dtype in (torch.float32, torch.bfloat16):
        t = time.perf_counter()
        a, state_a = next_tokens(fp32_ref, batches, dtype)
        b, state_b = next_tokens(saved, batches, dtype)
        if state_a is not None:
            total = sum(v.numel() for v in state_a.values())
            differ = sum((state_a[k] != state_b[k]).sum().item() for k in state_a)
            same_cast = all(torch.equal(state_a[k].to(torch.bfloat16), state_b[k].to(torch.bfloat16)) for k in state_a)
            print(f"weights: {differ:,} of {total:,} differ ({100 * differ / total:.1f} %); the bf16 checkpoint "
                  f"is the fp32 dequantization cast to bf16: {same_cast}")
            del state_a, state_b
        changed = sum((x != y).sum().item() for x, y in zip(a, b))
        items = sum(bool((x != y).any()) for x, y in zip(a, b))
        print(f"{str(dtype).removeprefix('torch.')} compute: the greedy next token differs at {changed} of {positions} "
              f"answer positions, in {items} of {len(batches)} items ({time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()

"""GPU training speed of the `gpu` preset's code path, as model-FLOPs utilization (MFU).

A randomly initialized model with SmolLM2-1.7B's architecture (Llama: 24 layers, hidden 2048,
32 heads, MLP 8192, the embedded model's 49,152-token vocabulary; 1.7 B parameters) trains on
GSM8K batches through `ftlib.train` exactly as the `gpu` preset sets it up: bf16 autocast, gradient
checkpointing, padded batches of 64 drawn by similar length, TRL's own (fused) loss. The other arms
change one lever at a time: the case study's 16 examples per step, no gradient checkpointing (a
1.7B model's activations fit an 80+ GB card), batches of random lengths (more padding), and the
batch packed padding-free into one row (SDPA with transformers' block-diagonal mask on a GPU).
One optimizer step per batch (grad_accum 1). Prints, per arm, real (non-padding) tokens/s after a
warm-up and

    MFU = 6 x parameters x tokens/s / the card's dense bf16 peak

(6N per token counts the model's FLOPs only: checkpointing's recomputation is not useful work),
next to the 8192^3 bf16 matmul the card reaches in this run. Needs a CUDA GPU.

    python benchmarks/gpu_train_speed.py [--steps 30] [--arms study_b16 gpu_preset ...]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import torch

from ftlib import models, sft, train_config

# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s, from NVIDIA's data sheets (SXM parts).
PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}


# The arms: TrainConfig fields over the `gpu` preset (64 padded examples per step in batches of
# similar lengths, gradient checkpointing), the case study's 16 per step before it, one lever at a time.
B16 = dict(batch_size=16, group_by_length=False)
ARMS = {
    "study_b16": B16,  # the preset until the run that measured these arms
    "gpu_preset": {},
    "no_ckpt_b16": dict(B16, gradient_checkpointing=False),
    "no_ckpt_b16_grouped": dict(B16, gradient_checkpointing=False, group_by_length=True),
    "no_ckpt_b32": dict(gradient_checkpointing=False, batch_size=32, group_by_length=False),
    "no_ckpt_b64": dict(gradient_checkpointing=False, group_by_length=False),
    "no_ckpt_b64_grouped": dict(gradient_checkpointing=False),
    "no_ckpt_padding_free": dict(B16, gradient_checkpointing=False, padding_free=True, packed_attention=True),
}


def peak_tflops(name: str) -> float:
    """The data-sheet bf16 peak of a card, by its name."""
    for key, value in PEAK_TFLOPS.items():
        if key in name:
            return value
    raise ValueError(f"no bf16 peak on record for {name!r}; add it to PEAK_TFLOPS")


def matmul_tflops(n: int = 8192, reps: int = 10) -> float:
    """Achieved TFLOP/s of an n^3 bf16 matmul on the GPU."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def random_model(vocab: int, pad_id: int, eos_id: int):
    """SmolLM2-1.7B's architecture with random weights (fp32 master weights, on the GPU)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=8192,
                      rope_theta=130000, tie_word_embeddings=True, pad_token_id=pad_id, eos_token_id=eos_id)
    torch.manual_seed(0)
    with torch.device("cuda"):  # initialized on the GPU: seconds, where the CPU takes half a minute
        return LlamaForCausalLM(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--tokenizer", default=models.DEFAULT_MODEL)
    ap.add_argument("--arms", nargs="*", choices=list(ARMS), help="arms to run (default: all, in order)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    name = torch.cuda.get_device_name(0)
    peak = peak_tflops(name)
    print(f"{name}: data-sheet bf16 peak {peak:.0f} TFLOP/s, 8192^3 bf16 matmul {matmul_tflops():.0f} TFLOP/s",
          flush=True)
    tok = models.load_tokenizer(args.tokenizer)
    for arm in args.arms or ARMS:
        cfg = train_config.preset("gpu", task="gsm8k", n_val=16, max_steps=args.steps, eval_steps=10_000,
                                  warmup_steps=0, scheduler="constant", lr=1e-5, grad_accum=1, bf16=True, **ARMS[arm])
        cfg.n_train = cfg.batch_size * args.steps
        try:
            tps, n_params, losses = _measure(cfg, tok)
        except torch.OutOfMemoryError:
            print(f"{arm:22s} out of GPU memory", flush=True)
        except Exception as e:  # one broken arm must not cost the others their (leased) GPU time
            print(f"{arm:22s} failed: {type(e).__name__}: {e}", flush=True)
        else:
            mfu = 6 * n_params * tps / (peak * 1e12)
            print(f"{arm:22s} params {n_params / 1e9:.2f}B  tokens/s {tps:9.0f}  MFU {100 * mfu:5.1f}%  "
                  f"peak memory {torch.cuda.max_memory_allocated() / 2**30:5.1f} GiB  "
                  f"loss {losses[0]:.3f} -> {losses[-1]:.3f}", flush=True)
        gc.collect()  # an arm that ran out of memory leaves its model to the collector
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _measure(cfg: train_config.TrainConfig, tok) -> tuple[float, int, list[float]]:
    """Train one arm for cfg.max_steps steps; time the steps after a 5-step warm-up."""
    from sft_speed import StepTimer

    model = random_model(len(tok), tok.pad_token_id, tok.eos_token_id)
    n_params = sum(p.numel() for p in model.parameters())
    train_ds, val_ds, _ = sft.datasets_for(cfg, tok)
    timer = StepTimer(sync=torch.cuda.synchronize)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = sft.make_trainer(cfg, Path(tmp), model, tok, train_ds, val_ds, callbacks=[timer])
        trainer.train()
    timed = timer.steps[5:]
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    del trainer, model
    return sum(n for _, n in timed) / sum(s for s, _ in timed), n_params, losses


if __name__ == "__main__":
    main()

"""Training speed on this machine: TRL's defaults vs the `cpu` preset, same model, data and steps.

"TRL's defaults" = SFTConfig's own values for the speed levers: gradient checkpointing on, padded
batches, max_length 1024, TRL's fused LM head loss (every position scored, entropy and accuracy on
each step), fp32 (SFTConfig's bf16=True raises on a CPU unless use_cpu is set).
The `cpu` preset arm runs in fp32 (`cpu_preset_fp32`) and, where the CPU has native bf16
(AVX-512-BF16 or AMX), also with the preset's own choice, bf16 autocast (`cpu_preset`).
Every arm fine-tunes every weight with the same lr, seed and GSM8K batches, so the fp32 loss
curves must agree; only the levers differ (bf16 rounds: its losses differ by a few hundredths).
Prints the CPU kind and flags, tokens/s (real tokens, no padding, first step left out as
warm-up), the ratio, achieved GFLOP/s (6 x params x tokens/s) against a 2048^3 matmul measured here,
the ceiling that matmul puts on tokens/s, and last: `speedup <ratio>x tokens_per_s <preset figure>`.
`--ladder` adds one arm per lever, each on top of the previous one, to show which lever pays.

    .venv/bin/python benchmarks/sft_speed.py [--steps 6] [--ladder]

The last line is `speedup <ratio>x tokens_per_s <figure>` for what the `cpu` preset uses here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from ftlib import models, runs, train


class StepTimer(TrainerCallback):
    """Seconds and real tokens of each optimizer step (`sync`: wait for a GPU before reading the clock)."""

    def __init__(self, sync=lambda: None):
        self.steps: list[tuple[float, int]] = []
        self.sync = sync

    def on_step_begin(self, args, state, control, **kw):
        self.sync()
        self._t0, self._tok0 = time.perf_counter(), state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kw):
        self.sync()
        self.steps.append((time.perf_counter() - self._t0, state.num_input_tokens_seen - self._tok0))


def measure(cfg: train.TrainConfig) -> tuple[float, list[float], int]:
    """(tokens/s after the first step, per-step losses, parameter count) for one config."""
    model, tok = train.load_for_training(cfg, cfg.model)
    n_params = sum(p.numel() for p in model.parameters())
    train_ds, val_ds, _ = train.datasets_for(cfg, tok)
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = train.make_trainer(cfg, Path(tmp), model, tok, train_ds, val_ds, callbacks=[timer])
        trainer.train()
    timed = timer.steps[1:]
    tokens_per_s = sum(n for _, n in timed) / sum(s for s, _ in timed)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return tokens_per_s, losses, n_params


TRL_DEFAULTS = dict(gradient_checkpointing=True, padding_free=False, max_length=1024, bf16=False,
                    packed_attention=False, lean_loss=False)
# The cpu preset's levers, in the order the ladder switches them on
LEVERS = [("no_checkpointing", dict(gradient_checkpointing=False)),
          ("padding_free", dict(padding_free=True, max_length=512)),
          ("packed_attention", dict(packed_attention=True))]


def configs(steps: int, ladder: bool) -> dict[str, train.TrainConfig]:
    """The arms: identical but for the speed levers (TRL's defaults first, the cpu preset last)."""
    common = dict(task="gsm8k", n_train=8 * steps, n_val=8, max_steps=steps, eval_steps=10_000,
                  warmup_steps=0, scheduler="constant", lr=1e-5, batch_size=8, seed=0)
    arms = {"trl_defaults": train.preset("cpu", **common, **TRL_DEFAULTS)}
    if ladder:
        levers = dict(TRL_DEFAULTS)
        for name, change in LEVERS:
            levers.update(change)
            arms[f"+{name}"] = train.preset("cpu", **common, **levers)
    arms["cpu_preset_fp32"] = train.preset("cpu", **common, bf16=False)  # + lean_loss, the last lever
    if train.use_bf16(train.preset("cpu")):  # what the preset itself picks on this CPU
        arms["cpu_preset"] = train.preset("cpu", **common)
    return arms


def cpu_description() -> str:
    """The CPU kind and the flags that decide it, for the first line of the output."""
    from ftlib import runs

    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in wanted if f in models.cpu_flags()]
    return f"cpu kind {runs.cpu_kind()}  flags {' '.join(have) or 'none of ' + ' '.join(wanted)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--ladder", action="store_true", help="also time each lever on its own")
    args = ap.parse_args()
    print(cpu_description())
    peak = {"fp32": runs.matmul_gflops(torch.float32)}
    if models.cpu_has_fast_bf16():  # without native bf16 (AVX2 only) a bf16 matmul takes minutes
        peak["bf16"] = runs.matmul_gflops(torch.bfloat16)
    print(f"threads {torch.get_num_threads()}  matmul 2048^3: "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peak.items()))
    result = {}
    for name, cfg in configs(args.steps, args.ladder).items():
        tps, losses, n_params = measure(cfg)
        gflops = 6 * n_params * tps / 1e9
        result[name] = (tps, losses)
        print(f"{name:17s} tokens/s {tps:7.1f}  {gflops:6.1f} GFLOP/s "
              f"({', '.join(f'{100 * gflops / v:.0f}% of {k} matmul' for k, v in peak.items())})  "
              f"loss {' '.join(f'{x:.4f}' for x in losses)}")
    (base, l0), (_, l1) = result["trl_defaults"], result["cpu_preset_fp32"]
    print(f"max |loss difference| per step, fp32 arms {max(abs(a - b) for a, b in zip(l0, l1)):.4f}")
    fast, l2 = result.get("cpu_preset", result["cpu_preset_fp32"])
    if "cpu_preset" in result:
        print(f"max |loss difference| per step, bf16 vs fp32 {max(abs(a - b) for a, b in zip(l1, l2)):.4f}")
    best = max(peak.values())  # every FLOP at the matmul's rate: no training can beat this here
    ceiling = best * 1e9 / (6 * n_params)
    print(f"ceiling at {best:.0f} GFLOP/s: {ceiling:.0f} tokens/s = {ceiling / base:.2f}x TRL's defaults")
    print(f"speedup {fast / base:.2f}x tokens_per_s {fast:.1f}")


if __name__ == "__main__":
    main()

"""Training speed on this machine: the `cpu` preset's step as it was (`today`) against what it uses now.

    python benchmarks/sft_speed.py [--model qwen2.5-coder-0.5b] [--method lora] [--steps 3] [--repeats 2]
                                   [--ladder] [--profile] [--arms today,cpu_preset] [--layers 4 | --tiny]

The model: `--model` when it is installed (`make setup`, `make setup-qwen`), else a randomly
initialised model of the same architecture (`ARCHS`) with the embedded model's tokenizer, so anyone
can run it without the weights; `--layers N` keeps N of its layers (random weights: minutes, not hours,
on 2 cores), `--tiny` shrinks it to 2 layers of width 64 (CI). Every arm trains a
fresh copy (same seed) through `ftlib.sft.make_trainer`, TRL's SFTTrainer as a run uses it, on the
same ViGGO batches; the arms differ only in their TrainConfig speed levers. Arms are interleaved
(A B A B ...) so a neighbour's load hits all of them; each repeat's first step is left out (warm-up,
compilation).

Prints the CPU kind, the matmul rates measured here (fp32 at 2048^3; bf16 at 2048^3 where the CPU
has native bf16, at 256^3 elsewhere: an AVX2 CPU takes minutes for one 2048^3 bf16 product), one line
per arm (median tokens/s over repeats with their range, GFLOP/s as 6 x all parameters x tokens/s, that
as a share of the matmul rate of the dtype it trains in measured beside the arm, peak memory, losses),
and last
`speedup <ratio>x tokens_per_s <figure>`: the `cpu` preset with the levers the larger model's runs use
(`presets.SIZE_SPEED`) against `today` in this run.
`--ladder` adds one arm per lever, each on top of the previous one; `--profile` prints where one step's
time goes, grouped (matmuls, attention, ...), for the first and the last arm. 6 x all parameters
overstates the work a little (the LM head runs on the labelled positions only) and LoRA's by about a
third (no weight gradients): compare arms, not methods.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from ftlib import models, presets, runs, sft, train, train_config

# Qwen2Config of the models the size comparison trains (their config.json): random weights of this shape
ARCHS = {
    "qwen2.5-coder-0.5b": dict(
        hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864
    ),
    "qwen2.5-coder-1.5b": dict(
        hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, intermediate_size=8960
    ),
}
QWEN = dict(
    vocab_size=151_936,
    tie_word_embeddings=True,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    max_position_embeddings=32_768,
    attn_implementation="sdpa",
)
TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=128)


def random_model(spec: str, tiny: bool, tok, layers: int | None = None):
    """A randomly initialised fp32 model of spec's architecture (Qwen2), or the tiny one."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    shape = {**TINY, "vocab_size": len(tok)} if tiny else dict(ARCHS[spec])
    if layers:
        shape["num_hidden_layers"] = layers
    config = Qwen2Config(**{**QWEN, **shape}, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config).train()


def model_and_tokenizer(spec: str, tiny: bool, layers: int | None = None):
    """(model, tokenizer, 'real' or 'random weights'): the installed model, else (or with `layers`,
    fewer decoder layers than the real model) a random one."""
    if not tiny and not layers and models.is_installed(spec):
        cfg = train_config.TrainConfig(model=spec)
        return (*sft.load_for_training(cfg, spec), "real")
    if spec not in ARCHS and not tiny:  # e.g. the embedded 135M model before `make setup`
        raise SystemExit(
            f"--model {spec}: not installed, and no random architecture for it; "
            f"expected one of {sorted(ARCHS)} or an installed model"
        )
    tok = models.load_tokenizer(models.DEFAULT_MODEL)
    if not tiny and models.is_installed(spec):  # the real tokenizer where there is one
        tok = models.load_tokenizer(spec)
    return random_model(spec, tiny, tok, layers), tok, "random weights"


class StepTimer(TrainerCallback):
    """Seconds and real tokens of each optimizer step; profiles step `profile_step` when asked."""

    def __init__(self, profile_step: int | None = None):
        self.steps: list[tuple[float, int]] = []
        self.profile_step, self.profiler = profile_step, None

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step == self.profile_step:
            self.profiler = torch.profiler.profile(record_shapes=True)
            self.profiler.start()
        self._t0, self._tok0 = time.perf_counter(), state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kw):
        self.steps.append((time.perf_counter() - self._t0, state.num_input_tokens_seen - self._tok0))
        if self.profiler is not None and state.global_step == self.profile_step + 1:
            self.profiler.stop()


def reset_peak_memory() -> None:
    """Start a new peak resident-memory count (Linux: VmHWM); a no-op elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def measure(cfg: train_config.TrainConfig, shape: dict, profile: bool = False) -> dict:
    """One arm once: tokens/s after the first step, losses, parameters, peak GiB (and a profile);
    `shape`: model_and_tokenizer's tiny and layers."""
    matmul = runs.matmul_gflops(train_dtype(cfg))  # beside each arm: a neighbour's load moves it
    reset_peak_memory()
    threads = torch.get_num_threads()  # an arm may set its own (torch_threads): the next gets it back
    model, tok, weights = model_and_tokenizer(cfg.model, **shape)
    n_params = sum(p.numel() for p in model.parameters())
    train_ds, val_ds, _ = sft.datasets_for(cfg, tok)
    timer = StepTimer(profile_step=1 if profile else None)
    with tempfile.TemporaryDirectory() as tmp:
        args = sft.make_sft_config(cfg, Path(tmp))
        # Training steps only: no evaluation, checkpoint or best-model reload at the end
        args.eval_strategy = args.save_strategy = "no"
        args.load_best_model_at_end = False
        trainer = sft.make_trainer(cfg, Path(tmp), model, tok, train_ds, val_ds, callbacks=[timer], args=args)
        trainer.train()
    torch.set_num_threads(threads)
    timed = timer.steps[1:]
    out = {
        "tokens_per_s": sum(n for _, n in timed) / sum(s for s, _ in timed),
        "tokens_per_step": sum(n for _, n in timed) / len(timed),
        "params": n_params,
        "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "peak_gib": train.peak_rss_gib(),
        "weights": weights,
        "matmul_gflops": matmul,
    }
    if profile:
        out["profile"] = profile_groups(timer.profiler, timer.steps[1][0], model.config.vocab_size)
    return out


# Profile groups, by the name of the aten op that spent the time (self time: nothing counted twice)
GROUPS = [
    ("optimizer (AdamW, grad clipping)", ("adam", "_foreach", "clip")),
    ("attention", ("scaled_dot_product", "flash_attention", "repeat_interleave")),
    (
        "embedding / LM head and loss",
        ("embedding", "log_softmax", "nll_loss", "cross_entropy", "argmax", "index_select", "index_add", "index_put"),
    ),
    ("matmuls", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")),
    ("dtype casts and copies", ("aten::to", "aten::_to_copy", "aten::copy_", "aten::clone", "contiguous")),
]


# Inductor's fused kernels are no aten ops: with compiled layers their time is in the rest
REST = "compiled kernels, data, Python overhead"


def group_of(name: str, shapes, vocab: int) -> str:
    """The group an op belongs to; a matmul with the vocabulary in its shapes is the LM head."""
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            if group == "matmuls" and any(vocab in s for s in shapes if s):
                return "embedding / LM head and loss"
            return group
    return "norms, activations, other ops" if name.startswith("aten::") else "overhead"


def profile_groups(prof, wall: float, vocab: int) -> dict[str, float]:
    """Seconds of one step per group; what no aten op accounts for is REST."""
    seconds: dict[str, float] = {}
    for ev in prof.key_averages(group_by_input_shape=True):
        group = group_of(ev.key, ev.input_shapes or [], vocab)
        if group != "overhead":
            seconds[group] = seconds.get(group, 0.0) + ev.self_cpu_time_total / 1e6
    seconds[REST] = max(wall - sum(seconds.values()), 0.0)
    return seconds


def train_dtype(cfg: train_config.TrainConfig) -> torch.dtype:
    """The dtype an arm's matmuls run in: bf16 under autocast, else fp32."""
    return torch.bfloat16 if sft.use_bf16(cfg) else torch.float32


def cpu_description() -> str:
    """The CPU kind and the flags that decide it, for the first line of the output."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    have = [f for f in wanted if f in models.cpu_flags()]
    return f"cpu kind {runs.cpu_kind()}  flags {' '.join(have) or 'none of ' + ' '.join(wanted)}"


def matmul_rates() -> dict[str, float]:
    """GFLOP/s of fp32 and bf16 matmuls here (bf16 small where the CPU has no bf16 hardware)."""
    fast = models.cpu_has_fast_bf16()
    return {
        "fp32 2048^3": runs.matmul_gflops(torch.float32),
        f"bf16 {2048 if fast else 256}^3": runs.matmul_gflops(torch.bfloat16, n=2048 if fast else 256),
    }


# SFTConfig's own values for the speed levers (`--trl-defaults`): the baseline of the `cpu` preset's first levers
TRL_DEFAULTS = dict(
    gradient_checkpointing=True,
    padding_free=False,
    max_length=1024,
    packed_attention=False,
    lean_loss=False,
    compile_layers=False,
)
# What `today` switches off: the levers added since (each a TrainConfig field), in ladder order
TODAY: dict = dict(compile_layers=False)
LADDER: list[tuple[str, dict]] = [("compile_layers", dict(compile_layers=True)), ("one_thread", dict(torch_threads=1))]


def configs(
    model: str, method: str, steps: int, ladder: bool, tiny: bool, trl: bool = False
) -> dict[str, train_config.TrainConfig]:
    """The arms: (TRL's defaults,) `today`, the ladder's rungs, and the `cpu` preset as it is now."""
    common = dict(
        task="viggo",
        model=model,
        method=method,
        n_train=8 * (steps + 1),
        n_val=8,
        max_steps=steps + 1,
        eval_steps=10_000,
        warmup_steps=0,
        scheduler="constant",
        lr=1e-3 if tiny else 2e-5,
        batch_size=8,
        max_length=256,
        seed=0,
    )
    arms = {"trl_defaults": train_config.preset("cpu", **{**common, **TRL_DEFAULTS})} if trl else {}
    arms["today"] = train_config.preset("cpu", **common, **TODAY)
    levers = dict(TODAY)
    for name, change in LADDER if ladder else []:
        levers.update(change)
        arms[f"+{name}"] = train_config.preset("cpu", **common, **levers)
    arms["cpu_preset"] = train_config.preset("cpu", **common, **presets.SIZE_SPEED)  # as the larger model's runs train
    return arms


def run_arms(arms: dict, repeats: int, shape: dict, profile: bool) -> dict[str, list[dict]]:
    """Every arm `repeats` times, interleaved; the profile on the first repeat of the first and last arm."""
    results: dict[str, list[dict]] = {name: [] for name in arms}
    for r in range(repeats):
        for name, cfg in arms.items():
            want = profile and r == 0 and name in ("today", list(arms)[-1])  # before and after
            results[name].append(measure(cfg, shape, profile=want))
            print(f"  repeat {r + 1}/{repeats} {name}: {results[name][-1]['tokens_per_s']:.1f} tokens/s", flush=True)
    return results


def report(name: str, res: list[dict], dtype: str) -> float:
    """Print one arm's line; return its median tokens/s."""
    tps = [r["tokens_per_s"] for r in res]
    med = statistics.median(tps)
    gflops = 6 * res[0]["params"] * med / 1e9
    rate = statistics.median(r["matmul_gflops"] for r in res)
    print(
        f"{name:22s} tokens/s {med:7.1f} (range {min(tps):.1f}-{max(tps):.1f}, n={len(tps)}; "
        f"{res[0]['tokens_per_step']:.0f} a step)  "
        f"{gflops:6.1f} GFLOP/s = {100 * gflops / rate:.0f}% of {rate:.1f} ({dtype} 2048^3 matmul beside it)  "
        f"peak {max(r['peak_gib'] for r in res):.2f} GiB  loss {' '.join(f'{x:.4f}' for x in res[0]['losses'])}"
    )
    return med


def print_profile(results: dict[str, list[dict]]) -> None:
    """Seconds of one step per group, today's and the preset's side by side."""
    profiles = {n: r[0]["profile"] for n, r in results.items() if "profile" in r[0]}
    groups = [g for g, _ in GROUPS] + ["norms, activations, other ops", REST]
    print("profile of one step (s):  " + "  ".join(f"{n:>10s}" for n in profiles))
    for g in groups:
        print(f"  {g:38s}" + "  ".join(f"{p.get(g, 0.0):10.2f}" for p in profiles.values()))
    print(f"  {'total':38s}" + "  ".join(f"{sum(p.values()):10.2f}" for p in profiles.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--method", choices=["full", "lora"], default="full")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per repeat (after one warm-up step)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of every arm, interleaved")
    ap.add_argument("--ladder", action="store_true", help="also time each lever on top of the previous")
    ap.add_argument("--trl-defaults", action="store_true", help="also time SFTConfig's own speed settings")
    ap.add_argument("--profile", action="store_true", help="where one step's time goes, grouped")
    ap.add_argument("--arms", help="only these arms, comma-separated (e.g. today,cpu_preset)")
    ap.add_argument("--layers", type=int, help="random weights, this many decoder layers (less time and memory)")
    ap.add_argument("--tiny", action="store_true", help="2 layers of width 64, random weights (CI)")
    args = ap.parse_args()
    print(cpu_description())
    rates = matmul_rates()
    print(f"threads {torch.get_num_threads()}  matmul: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items()))
    arms = configs(args.model, args.method, args.steps, args.ladder, args.tiny, args.trl_defaults)
    bf16 = sft.use_bf16(arms["cpu_preset"])
    if args.arms:
        wanted = args.arms.split(",")
        if unknown := set(wanted) - set(arms):
            ap.error(f"--arms: unknown {sorted(unknown)}; expected some of {list(arms)} (ladder arms need --ladder)")
        arms = {k: v for k, v in arms.items() if k in wanted}
    results = run_arms(arms, args.repeats, dict(tiny=args.tiny, layers=args.layers), args.profile)
    first = next(iter(results.values()))[0]
    print(
        f"model {args.model} ({'tiny, ' if args.tiny else ''}{first['weights']}, {args.method}), "
        f"{first['params'] / 1e6:.1f} M parameters (all counted), batch 8, "
        f"{'bf16 autocast' if bf16 else 'fp32'}"
    )
    medians = {name: report(name, res, "bf16" if bf16 else "fp32") for name, res in results.items()}
    if args.profile:
        print_profile(results)
    fast, base = medians.get("cpu_preset"), medians.get("today")
    if fast and base:
        print(f"speedup {fast / base:.2f}x tokens_per_s {fast:.1f}")


if __name__ == "__main__":
    main()

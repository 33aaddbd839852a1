"""What each preset means, in one place: one block per preset (smoke, quick, cpu, full, gpu).

A preset is three things, each read by one module:

- `train`: overrides on the `TrainConfig` defaults; `ftlib.train.preset(name, **overrides)` builds a
  config from them (and `python -m ftlib.train --preset NAME`).
- `plan`: what the notebooks and `make reproduce` run (`ftlib.plan`): the tasks, the training preset
  (plus per-task overrides), how many test items every evaluation scores (the same items before and
  after training, so the comparison is paired), the untuned prompt styles and the notebooks.
- `rounds`: how big every experiment of notebook 03 is (`ftlib.strategies.sizes`); None where the
  preset has no rounds.

`quick` and `full` are plans over the `cpu` training preset: their `train` is cpu's own (so
`train.preset("quick")` gives the cpu defaults) and their plans' per-task overrides size each task.
The comments say why a value is what it is, and where a measured value was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_TASKS = ("viggo", "sql", "gsm8k")


@dataclass(frozen=True)
class Plan:
    """What the notebooks run under a preset; run and result folders: `ftlib.plan`."""

    name: str
    train_preset: str  # the preset whose TrainConfig defaults every task trains with
    tasks: tuple[str, ...] = ALL_TASKS
    eval_limit: dict[str, int] = field(default_factory=dict)  # test items per task (first n)
    baseline_styles: tuple[str, ...] = ("zero_shot", "few_shot")
    train_overrides: dict[str, dict] = field(default_factory=dict)  # per task, on top of the preset
    notebooks: tuple[str, ...] = ("01", "02", "03", "04")  # what `make reproduce` runs, by number


@dataclass(frozen=True)
class Sizes:
    """How big every rounds experiment is under one preset (rows, steps, test items)."""

    train_preset: str
    percents: tuple[int, ...]  # GEM ViGGO subsets for growing data; 100 = the whole train split
    cap: int | None  # at most this many rows of any subset (smoke)
    mix_n: int  # broad -> specific: rows of the mixed round (split over the three tasks)
    task_n: int  # ... and of the task-specific round
    gold_n: int  # self-training: gold rows
    prompts_n: int  # ... and training prompts the model answers
    quality_n: int  # rows of each corruption level
    quality_steps: int  # the same steps for every quality run
    small_clean_n: int  # the small clean set against quality_n rows at 30% noise
    fractions: tuple[float, ...]
    sql_n: int
    sql_steps: int
    eval_limit: int  # test items of every evaluation (the same items every round)
    train: dict = field(default_factory=dict)  # TrainConfig overrides for every round


@dataclass(frozen=True)
class Preset:
    """Everything one preset name means."""

    name: str
    train: dict  # overrides on the TrainConfig defaults (ftlib.train.preset)
    plan: Plan  # what the notebooks run (ftlib.plan)
    rounds: Sizes | None = None  # notebook 03's sizes (ftlib.strategies); None: no rounds


SMOKE = Preset(
    "smoke",
    # Seconds, for tests: a tiny model, a few dozen examples, a large lr so the loss visibly drops.
    train=dict(
        n_train=32, n_val=8, epochs=2, lr=1e-3, batch_size=4, warmup_steps=0, save_steps=4,
        max_length=256, eval_limit=0, scheduler="constant",
    ),
    # CI runs every notebook with a tiny random model and a handful of examples.
    plan=Plan("smoke", "smoke", eval_limit={"viggo": 4, "sql": 4, "gsm8k": 4}),
    # Seconds with the tiny test model: just enough rows for every code path.
    rounds=Sizes("smoke", (1, 2), cap=8, mix_n=6, task_n=8, gold_n=8, prompts_n=4, quality_n=8,
                 quality_steps=2, small_clean_n=4, fractions=(0.0, 0.5), sql_n=8, sql_steps=2,
                 eval_limit=2, train=dict(max_steps=2, n_val=4, epochs=1)),
)

CPU = Preset(
    "cpu",
    # Minutes on 2 CPU cores. Full fine-tuning: on this 135M model LoRA at the case study's
    # settings barely learned ViGGO (docs/measurements.md). No gradient checkpointing and
    # padding-free batches are the speed levers (benchmarks/sft_speed.py).
    train=dict(
        method="full", n_train=800, n_val=100, epochs=2, lr=1e-4, scheduler="cosine",
        warmup_steps=10, batch_size=8, grad_accum=1, max_length=512,
    ),
    # The reference run on a 2-core CPU, sized to finish in ~45 minutes on an AVX-512-BF16 CPU
    # (bf16; an AVX2 CPU trains in fp32 at about half the speed). ViGGO, the headline, gets most of
    # the budget. The recipe is the sweep's (results/sweep/): at a fixed budget, more examples once
    # beat fewer examples several times (3,200 x 1 epoch: 95 % on validation; 1,600 x 2: 88 %), and
    # lr 1e-4 to 4e-4 were within noise. Notebook 03 runs separately (`make rounds`).
    plan=Plan("cpu", "cpu", eval_limit={"viggo": 200, "sql": 150, "gsm8k": 60}, notebooks=("01", "02", "04"),
              train_overrides={
                  "viggo": dict(n_train=2400, epochs=1, batch_size=8, lr=2e-4, n_val=60),
                  "sql": dict(n_train=600, epochs=1, batch_size=8, lr=2e-4, n_val=60),
                  "gsm8k": dict(n_train=240, epochs=1, batch_size=8, lr=1e-4, n_val=24),
              }),
    # 64 minutes on 2 cores for the whole notebook, measured (~240 steps of batch 8 + 19 evaluations of 50
    # items): toy-sized, so expect wide CIs. GEM's 1, 2 and 5 % subsets only (10, 20 and 100 % would
    # take hours here). One epoch per round at the quick preset's lr (2e-4: few steps must count);
    # 2 warm-up steps since rounds are short.
    rounds=Sizes("cpu", (1, 2, 5), cap=None, mix_n=48, task_n=48, gold_n=48, prompts_n=48,
                 quality_n=96, quality_steps=16, small_clean_n=24, fractions=(0.0, 0.1, 0.3, 0.5),
                 sql_n=64, sql_steps=8, eval_limit=50,
                 train=dict(epochs=1, n_val=32, warmup_steps=2, lr=2e-4)),
)

QUICK = Preset(
    "quick",
    train=CPU.train,  # the cpu preset's defaults; the plan's override sizes ViGGO for the slot
    # A workshop slot (<= 10 minutes on a 2-core CPU): ViGGO only, the task where tuning changes
    # the most. Sized for bf16 on an AVX-512-BF16 CPU (~240 training tokens/s); an AVX2 CPU trains
    # in fp32 at ~110 tokens/s and takes about twice as long.
    plan=Plan("quick", "cpu", tasks=("viggo",), eval_limit={"viggo": 100},
              baseline_styles=("few_shot",), notebooks=("01", "02", "04"),
              train_overrides={"viggo": dict(n_train=400, epochs=1, batch_size=4, lr=2e-4, n_val=24)}),
    rounds=CPU.rounds,  # notebook 03 at the cpu sizes
)

FULL = Preset(
    "full",
    train=CPU.train,  # the cpu preset's defaults; the plan's overrides take every row
    # The case study's question at full scale: every usable training row, every test item, the
    # best checkpoint by validation loss (one per epoch; the second epoch still lowered it on
    # ViGGO and SQL in the reference run). GSM8K gets every training row that fits
    # 512 tokens (6,959 of 6,973) for one epoch: that is what a night allows on a 2-core AVX-512-BF16 CPU
    # (~1.7 M tokens at ~240 tokens/s: ~2 h of the plan's ~5-6 h there (estimated)). Minutes on a GPU.
    plan=Plan("full", "cpu", eval_limit={"viggo": 1083, "sql": 626, "gsm8k": 1319}, notebooks=("01", "02", "04"),
              train_overrides={
                  "viggo": dict(n_train=None, epochs=2, batch_size=8, lr=2e-4, n_val=200),
                  "sql": dict(n_train=None, epochs=2, batch_size=8, lr=2e-4, n_val=200),
                  "gsm8k": dict(n_train=None, epochs=1, batch_size=8, lr=1e-4, n_val=100),
              }),
    rounds=None,  # the rounds' scale-up is the gpu preset's
)

GPU = Preset(
    "gpu",
    # The case study's own settings (section 1): full fine-tuning, context 512, global batch 256
    # (16 per device x 16 steps on one GPU; divide grad_accum by the GPU count), lr 5e-6 linear,
    # 10 warm-up steps, wd 0, bf16, gradient checkpointing, up to 10 epochs with the best one kept.
    # For a 7B model run it under accelerate with configs/accelerate/fsdp.yaml or deepspeed_zero3.yaml.
    train=dict(
        method="full", n_train=None, n_val=500, epochs=10, lr=5e-6, scheduler="linear",
        warmup_steps=10, batch_size=16, grad_accum=16, max_length=512, gradient_checkpointing=True,
        padding_free=False, save_steps=200,
        lean_loss=False,  # TRL's fused, tiled LM head: it never holds the full logits in GPU memory
    ),
    # The case study's own training setting (above) on a GPU box: meant for 7B-class models; all
    # data, every test item.
    plan=Plan("gpu", "gpu", eval_limit={"viggo": 1083, "sql": 626, "gsm8k": 1319}),
    # A GPU box: every GEM subset and the full set, thousands of rows, the whole ViGGO test set.
    # Not run here: sizes are a starting point. One GPU: global batch 16 x 4.
    rounds=Sizes("gpu", (1, 2, 5, 10, 20, 100), cap=None, mix_n=3000, task_n=3000, gold_n=2000,
                 prompts_n=2000, quality_n=2000, quality_steps=250, small_clean_n=500,
                 fractions=(0.0, 0.1, 0.3, 0.5), sql_n=2000, sql_steps=250, eval_limit=1083,
                 train=dict(epochs=3, grad_accum=4, lr=1e-5, n_val=200)),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (SMOKE, QUICK, CPU, FULL, GPU)}


def get(name: str) -> Preset:
    """The preset of a name; a ValueError that names the choices.

    >>> get("quick").plan.tasks, get("quick").train is get("cpu").train
    (('viggo',), True)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PRESETS)}")
    return PRESETS[name]

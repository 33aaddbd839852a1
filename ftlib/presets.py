"""What each preset means, in one place: one block per preset (smoke, quick, cpu, full, gpu).

A preset is one frozen object, resolved once where its name enters (`get(name)`: the command line,
`make`, a notebook's first cell) and passed down. It holds three things:

- `train`: overrides on the `TrainConfig` defaults; `ftlib.train_config.from_preset(p, **overrides)` builds a
  config from them (`ftlib.train_config.preset(name)` and `python -m ftlib.train --preset NAME` from a name).
- `plan`: what the notebooks and `make reproduce` run: the tasks, the training preset (plus per-task
  overrides), how many test items every evaluation scores (the same items before and after training,
  so the comparison is paired), the untuned prompt styles and the notebooks; `ftlib.plan`'s functions
  of the preset give its folders and each task's config.
- `rounds`: how big every experiment of notebook 03 is (`ftlib.experiments.strategies.sizes(p)`); None
  where the preset has no rounds.

`quick` and `full` are plans over the `cpu` training preset: their `train` is cpu's own (so
`train_config.preset("quick")` gives the cpu defaults) and their plans' per-task overrides size each task.
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
    # Other untuned models scored on the same items where installed (notebook 02): (model spec,
    # prompt style). A base model takes the plain-text few-shot style.
    other_models: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Sizes:
    """How big every experiment of notebook 03 is under one preset (rows, rounds, seeds, test items).

    Every comparison is at equal optimizer steps (batch size from the train preset): a round of
    `round_n` rows x 1 epoch, a self-training round capped at the same steps, a quality round of
    `quality_n` rows against `quality_n // 2` clean rows x 2 epochs."""

    train_preset: str
    round_n: int  # new gold ViGGO rows per round of the iterative series (one epoch each)
    n_rounds: int  # rounds of that series
    scratch_at: tuple[int, ...]  # after these rounds, one run from the start model on all rows so far
    st_from: int  # the round of the series that self-training starts from
    st_rounds: int  # verified self-training rounds on ViGGO
    st_prompts: int  # training prompts the model answers per self-training round
    quality_from: int  # the round of the series the quality rounds start from
    quality_n: int  # rows of a quality round (clean, or with a fraction of corrupted MRs; rows no
    #                 other round uses, after the gold rounds' and the self-training prompts)
    fractions: tuple[float, ...]  # corrupted fractions
    seeds: tuple[int, ...]  # every quality round once per seed (which rows are corrupted, data order)
    sql_n: int  # SQL: gold rows (filtered) of the start model
    sql_round_n: int  # ... rows of each round after it (filter on / off, gold against verified)
    sql_prompts: int  # ... training prompts it answers for verified self-training
    eval_limit: int  # test items of every evaluation (the same items every round)
    mix_n: int = 0  # broad -> specific (strategies.broad_to_specific, not in make rounds): mixed rows
    task_n: int = 0  # ... and rows of the task round
    train: dict = field(default_factory=dict)  # TrainConfig overrides for every round


@dataclass(frozen=True)
class Preset:
    """Everything one preset name means."""

    name: str
    train: dict  # overrides on the TrainConfig defaults (ftlib.train_config.preset)
    plan: Plan  # what the notebooks run (ftlib.plan)
    rounds: Sizes | None = None  # notebook 03's sizes (ftlib.experiments.strategies); None: no rounds
    lora_lr: float | None = 1e-4  # method=lora without an explicit lr: the case study's LoRA lr (None:
    #                               the preset's own lr)


@dataclass(frozen=True)
class SweepSizes:
    """The recipe sweep's fixed settings (`ftlib.experiments.sweep`); each task's arms are its `Task.sweep_grid`."""

    train_preset: str  # the preset every arm trains with
    train: dict  # TrainConfig overrides of every arm
    lora: dict  # ... and of the LoRA arms


SMOKE = Preset(
    "smoke",
    # Seconds, for tests: a tiny model, a few dozen examples, a large lr so the loss visibly drops.
    train=dict(
        n_train=32, n_val=8, epochs=2, lr=1e-3, batch_size=4, warmup_steps=0,
        max_length=256, eval_limit=0, scheduler="constant",
        compile_layers=False,  # compiling takes minutes: more than a smoke run's whole training
    ),
    # CI runs every notebook with a tiny random model and a handful of examples.
    # Its other model is the embedded one, so the `other_models` path runs in CI (zero-shot: the
    # short prompt; seconds).
    plan=Plan("smoke", "smoke", eval_limit={"viggo": 4, "sql": 4, "gsm8k": 4},
              other_models=(("smollm2-135m-instruct", "zero_shot"),)),
    # Seconds with the tiny test model: just enough rows for every code path.
    rounds=Sizes("smoke", round_n=8, n_rounds=3, scratch_at=(2,), st_from=1, st_rounds=2, st_prompts=4,
                 quality_from=3, quality_n=8, fractions=(0.0, 0.5), seeds=(0, 1), sql_n=8, sql_round_n=8, sql_prompts=4,
                 eval_limit=2, mix_n=6, task_n=8, train=dict(max_steps=2, n_val=4, epochs=1)),
    lora_lr=None,  # the smoke lr is large on purpose, for LoRA too
)

CPU = Preset(
    "cpu",
    # Minutes on 2 CPU cores. Full fine-tuning: on this 135M model LoRA at the case study's
    # settings barely learned ViGGO (docs/measurements.md). No gradient checkpointing and
    # padding-free batches are the speed levers (benchmarks/sft_speed.py). Compiled decoder layers
    # paid on the 0.5B model (1.48-1.87x, AVX2, docs/measurements.md) but are not measured on this
    # 135M one, where compiling costs minutes of a run that takes few: off here, on for SIZE_SPEED.
    train=dict(
        method="full", n_train=800, n_val=100, epochs=2, lr=1e-4, scheduler="cosine",
        warmup_steps=10, batch_size=8, grad_accum=1, max_length=512, compile_layers=False,
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
    # Sized so that `make rounds` takes <= 2 h on a 2-core AVX-512-BF16 CPU (bf16; measured 99 min 57 s
    # from scratch, each round in its own process; docs/results.md) and every
    # comparison starts where ViGGO's headline is well above zero. Measured facts behind it (ViGGO,
    # lr 2e-4, batch 8, 1 epoch, validation): 800 rows ~54 %, 1,600 ~87 %, 2,400 ~94 %; ~110 tokens a
    # ViGGO example, ~150 a SQL one, ~280 training tokens/s. So: four rounds of 400 new rows (50
    # steps each); self-training starts from round 2 (~50 %) and takes round 3's 50 steps; the
    # quality rounds start from round 4 (64 % measured, so clean data is above 60 % from the start),
    # 240 new rows (30 steps) each, 5 kinds x 3 seeds; SQL starts from 800 filtered rows, then
    # 40-step rounds. 300 test items per evaluation (a 95 %
    # interval of about +-5.5 points at 50 %).
    rounds=Sizes("cpu", round_n=400, n_rounds=4, scratch_at=(2,), st_from=2, st_rounds=2, st_prompts=400,
                 quality_from=4, quality_n=240, fractions=(0.0, 0.1, 0.3, 0.5), seeds=(0, 1, 2),
                 sql_n=800, sql_round_n=320, sql_prompts=800, eval_limit=300, mix_n=48, task_n=48,
                 train=dict(epochs=1, n_val=32, warmup_steps=5, lr=2e-4)),
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
    rounds=None,  # notebook 03 has no workshop-sized rounds: refused (strategies.sizes), not run at cpu's
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
              other_models=(("gemma3-270m", "few_shot_text"),),  # after `make setup-gemma`
              # eval_steps: validation loss and a checkpoint every N steps (and at the last step)
              # rather than once an epoch, so a run interrupted on a CPU (a GSM8K epoch is ~2 h
              # there) resumes at most ~10-15 minutes back, and the best checkpoint is picked among more.
              train_overrides={
                  "viggo": dict(n_train=None, epochs=2, batch_size=8, lr=2e-4, n_val=200, eval_steps=160),
                  "sql": dict(n_train=None, epochs=2, batch_size=8, lr=2e-4, n_val=200, eval_steps=120),
                  "gsm8k": dict(n_train=None, epochs=1, batch_size=8, lr=1e-4, n_val=100, eval_steps=100),
              }),
    rounds=None,  # the rounds' scale-up is the gpu preset's
)

GPU = Preset(
    "gpu",
    # The case study's own settings (section 1): full fine-tuning, context 512, global batch 256
    # (64 per device x 4 steps on one GPU; divide grad_accum by the GPU count), lr 5e-6 linear,
    # 10 warm-up steps, wd 0, bf16, gradient checkpointing, up to 10 epochs with the best one kept.
    # 64 x 4 rather than the study's 16 x 16, in batches of similar lengths: 3.0x the tokens/s of
    # 16 x 16 with checkpointing kept, at 31 GiB for a 1.7B model (benchmarks/gpu_train_speed.py, H200).
    # For a 7B model run it under accelerate with configs/accelerate/fsdp.yaml or deepspeed_zero3.yaml.
    train=dict(
        method="full", n_train=None, n_val=500, epochs=10, lr=5e-6, scheduler="linear",
        warmup_steps=10, batch_size=64, grad_accum=4, group_by_length=True, max_length=512,
        gradient_checkpointing=True, padding_free=False,
        lean_loss=False,  # TRL's fused, tiled LM head: it never holds the full logits in GPU memory
    ),
    # The case study's own training setting (above) on a GPU box: meant for 7B-class models; all
    # data, every test item.
    plan=Plan("gpu", "gpu", eval_limit={"viggo": 1083, "sql": 626, "gsm8k": 1319}),
    # A GPU box: four rounds of 960 rows (with the self-training prompts, nearly all of ViGGO), the
    # whole ViGGO test set. Not run here: sizes are a starting point. One GPU: global batch 16 x 4,
    # so the row counts are multiples of 64 (equal steps need whole batches).
    rounds=Sizes("gpu", round_n=960, n_rounds=4, scratch_at=(2, 4), st_from=2, st_rounds=2, st_prompts=320,
                 quality_from=4, quality_n=512, fractions=(0.0, 0.1, 0.3, 0.5), seeds=(0, 1, 2),
                 sql_n=1024, sql_round_n=512, sql_prompts=960, eval_limit=1083, mix_n=3000, task_n=3000,
                 train=dict(epochs=3, batch_size=16, grad_accum=4, lr=1e-5, n_val=200)),
)

# The size comparison's fine-tuned larger model (notebook 07; `make size-tuned`, `python -m ftlib.experiments.size
# train`): Qwen2.5-Coder-0.5B-Instruct, full fine-tuning on the cpu preset's defaults with these
# per-task settings, then scored on the comparison's test items. The learning rate is this model's,
# not 135M's (2e-4): the arms below on ViGGO's validation split (results/size/lr_check.md: 320 rows x 1
# epoch, 100 items) gave full 7e-6 31 %, 2e-5 50 %, 6e-5 44 %, 2e-4 14 %, LoRA 1e-4 4 %, 1e-3 31 %: full
# fine-tuning at 2e-5 (23 items against LoRA's 4, p = 0.0003); SQL and GSM8K take ViGGO's rate
# (not checked on their own validation splits). The shape is the sweep's (more rows, seen once), sized
# to a session on a 2-core AMX CPU (measured there: 121-138 training tokens/s, peak 15-21 GiB; 28-34
# min a task, results/size/training.md): ViGGO the cpu plan's 2,400 rows, SQL 1,600 of its 2,729, GSM8K
# 1,200 of 6,973.
SIZE_TUNED_MODEL = "qwen2.5-coder-0.5b"
# The larger model's runs compile each decoder layer where the CPU's compiler allows (None: detect):
# 1.48-1.87x on the 0.5B model's step (AVX2, benchmarks/sft_speed.py, docs/measurements.md).
SIZE_SPEED = dict(compile_layers=None)
SIZE_LR_CHECK = dict(n_train=320, n_val=32, epochs=1, batch_size=8, warmup_steps=5, eval_split="validation",
                     eval_limit=100)
# The arms, (method, lr): full fine-tuning at four rates, and LoRA (the sweep's rank 16 on every
# linear layer) at the case study's LoRA rate and 10x it, so the validation split picks the method too.
SIZE_ARMS = {"viggo": (("full", 7e-6), ("full", 2e-5), ("full", 6e-5), ("full", 2e-4),
                       ("lora", 1e-4), ("lora", 1e-3))}
SIZE_TUNED = {
    "viggo": dict(n_train=2400, epochs=1, batch_size=8, lr=2e-5, n_val=100, eval_steps=60, eval_limit=1083),
    "sql": dict(n_train=1600, epochs=1, batch_size=8, lr=2e-5, n_val=100, eval_steps=50, eval_limit=592),
    "gsm8k": dict(n_train=1200, epochs=1, batch_size=8, lr=2e-5, n_val=50, eval_steps=50, eval_limit=500),
}

PRESETS: dict[str, Preset] = {p.name: p for p in (SMOKE, QUICK, CPU, FULL, GPU)}

# The sweep (results/sweep/): CPU arms at batch 8, 100 validation rows for the loss; LoRA at rank 16
# on all linear layers.
SWEEP = SweepSizes("cpu", train=dict(batch_size=8, n_val=100), lora=dict(lora_r=16))


def get(name: str) -> Preset:
    """The preset of a name; a ValueError that names the choices.

    >>> get("quick").plan.tasks, get("quick").train is get("cpu").train
    (('viggo',), True)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {list(PRESETS)}")
    return PRESETS[name]

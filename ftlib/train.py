"""Fine-tune a model on a task with TRL: presets, the SFTConfig/SFTTrainer call, run(), merge().

Every TRL and PEFT argument of the project lives in this module (they get renamed between releases:
docs/pitfalls.md); notebook 02 writes the SFTConfig call out and passes it to `run(cfg, args=...)`.
The calls, explicitly:

    cfg = train.preset("cpu", task="viggo")
    model, tok = models.load(cfg.model, for_training=True)
    trainer = train.make_trainer(cfg, run_dir, model, tok, train_ds, eval_ds)   # SFTConfig + SFTTrainer
    trainer.train()

or do it all in one call, into a run folder (`runs.py`): `run_dir = train.run(cfg)`.
Command line: `python -m ftlib.train --task viggo --preset cpu [--method lora] [--set lr=3e-4 ...]`,
also under `accelerate launch --config_file configs/accelerate/<config>.yaml -m ftlib.train ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ftlib import io, lean, models, paths, prepare, presets, progress, prompts, runs, tasks


@dataclass
class TrainConfig:
    """Everything that defines a fine-tuning run; saved, resolved, in its run folder."""

    task: str = "viggo"  # a built-in task or a user's task file (`ftlib.tasks.get`)
    model: str = models.DEFAULT_MODEL  # a models.load spec: alias, checkpoint folder or hub id
    method: str = "full"  # "full" (every weight) or "lora" (a peft adapter on a frozen base)
    preset: str = "cpu"
    experiment: str = "default"  # runs/<experiment>/<name>/
    name: str | None = None  # run folder name; None: built from task, method and preset
    init_from: str | None = None  # a finished run folder to start from (iterative rounds)
    train_file: str | None = None  # JSONL of prompt-completion examples to train on instead of the task's split
    n_train: int | None = 800  # training examples (first n of the split); None: all
    n_val: int = 100  # validation examples for the loss that picks the best checkpoint
    epochs: float = 2.0
    max_steps: int = -1  # >0 overrides epochs (tests, benchmarks)
    lr: float = 1e-4
    scheduler: str = "cosine"
    warmup_steps: int = 10
    weight_decay: float = 0.0
    batch_size: int = 8  # examples per device per micro-step
    grad_accum: int = 1
    max_length: int = 512  # tokens; longer examples are dropped, not truncated (a cut answer teaches nothing)
    # Validation loss and a checkpoint (what an interrupted run resumes from) every N steps and at the
    # last step; None: once an epoch.
    eval_steps: int | None = None
    seed: int = 0
    # bf16 autocast (fp32 master weights); None: where the hardware has native bf16, i.e. GPUs with
    # bf16 and CPUs with AVX-512-BF16/AMX (there 1.58x the cpu preset's fp32 tokens/s, measured in
    # benchmarks/sft_speed.py); fp32 elsewhere (AVX2 CPUs: bf16 matmul is ~10x slower than fp32).
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    padding_free: bool = True  # concatenate the batch into one row: no compute spent on padding
    # Padded batches only: draw batches of similar lengths (transformers' LengthGroupedSampler), so
    # less of each batch is padding (benchmarks/gpu_train_speed.py)
    group_by_length: bool = False
    # With padding_free and SDPA: attention per example inside the row, not over the whole row (lean.py)
    packed_attention: bool = True
    lean_loss: bool = True  # logits of the completion positions only, no per-step entropy (lean.py)
    # torch.compile each decoder layer (lean.compile_layers); None: on CPUs where inductor builds (a C++
    # compiler is there): measured faster there (benchmarks/sft_speed.py, docs/measurements.md)
    compile_layers: bool | None = None
    torch_threads: int | None = None  # None: torch's default (one per core)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"
    eval_limit: int | None = 200  # test items scored after training (if the harness is there); 0: none
    eval_split: str = "test"  # the split scored after training ("validation" for recipe sweeps)
    eval_style: str = "chat"  # the prompt style scored after training (prompts.STYLES)
    fmt: str = "chat"  # the style it is tuned in (prompts.TUNED_STYLES): "chat" (template, EOS = <|im_end|>)
    #                    or "special"

    def __post_init__(self):
        self.eval_style = prompts.RENAMED_STYLES.get(self.eval_style, self.eval_style)  # an older config.json
        check_ranges(self)

    def run_name(self) -> str:
        """The run folder's name: explicit, or task-method-preset."""
        return self.name or f"{tasks.name(self.task)}-{self.method}-{self.preset}"


# field -> (in range?, what is expected): values that would train nothing, or on the wrong data, and
# still write DONE (epochs=-1 saved the base model as the result) are refused when a config is made.
RANGES = {
    "experiment": (paths.is_component, paths.COMPONENT),  # folders: runs/<experiment>/<name>/
    "name": (lambda v: v is None or paths.is_component(v), paths.COMPONENT + ", or None"),
    "preset": (paths.is_component, paths.COMPONENT),  # part of the default name
    "method": (lambda v: v in ("full", "lora"), "'full' or 'lora'"),
    "epochs": (lambda v: v > 0, "> 0"),
    "max_steps": (lambda v: v == -1 or v > 0, "> 0, or -1 (use epochs)"),
    "n_train": (lambda v: v is None or v >= 1, ">= 1, or None (all)"),
    "n_val": (lambda v: v >= 1, ">= 1"),
    "lr": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "batch_size": (lambda v: v >= 1, ">= 1"),
    "grad_accum": (lambda v: v >= 1, ">= 1"),
    "max_length": (lambda v: v >= 16, ">= 16 (tokens of a prompt and its answer)"),
    "eval_steps": (lambda v: v is None or v >= 1, ">= 1, or None (once an epoch)"),
    "torch_threads": (lambda v: v is None or v >= 1, ">= 1, or None"),
    "lora_r": (lambda v: v >= 1, ">= 1"),
    "lora_alpha": (lambda v: v > 0, "> 0"),
    "lora_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "eval_limit": (lambda v: v is None or v >= 0, ">= 0, or None (all)"),
    "eval_style": (lambda v: v in prompts.STYLES, f"one of {prompts.STYLES}"),
    "fmt": (lambda v: v in prompts.TUNED_STYLES, f"one of {prompts.TUNED_STYLES}"),
}


def check_ranges(cfg: "TrainConfig") -> None:
    """A ValueError naming the first field whose value is not of its type, not finite, or out of its
    range (`RANGES`): a JSON config or `--set` can hold anything.

    >>> check_ranges(TrainConfig(epochs=-1))
    Traceback (most recent call last):
    ValueError: epochs=-1: expected > 0
    """
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        value, kinds = getattr(cfg, f.name), typing.get_args(hints[f.name]) or (hints[f.name],)
        if not any(_is_kind(value, k) for k in kinds):
            names = [_KIND_NAMES[k] for k in kinds if k is not type(None)]
            raise ValueError(f"{f.name}={value!r}: expected {names[0]}" + (", or None" if len(kinds) > 1 else ""))
        if isinstance(value, float) and not math.isfinite(value):  # inf once trained to NaN weights
            raise ValueError(f"{f.name}={value!r}: expected a finite number")
    for key, (ok, expected) in RANGES.items():
        if not ok(getattr(cfg, key)):
            raise ValueError(f"{key}={getattr(cfg, key)!r}: expected {expected}")


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _is_kind(value: object, kind: type) -> bool:
    """Whether a config value is of a field's type (an int is a float too; a bool is no number)."""
    if kind is type(None) or kind is bool or kind is str:
        return isinstance(value, kind) or (kind is type(None) and value is None)
    return isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)


def preset(preset_name: str, /, **overrides) -> TrainConfig:
    """A TrainConfig from a named preset's training defaults (ftlib/presets.py) plus overrides,
    e.g. `preset("cpu", task="sql")`: the command line's way in (`--preset NAME`)."""
    name = preset_name  # positional-only: `name` is also a TrainConfig field (the run's name)
    # presets.get: a ValueError naming the choices; `--set preset=...` may still override the field
    return from_preset(presets.get(name), **{"preset": name, **overrides})


def from_preset(p: presets.Preset, /, **overrides) -> TrainConfig:
    """A TrainConfig from a resolved preset's training defaults plus overrides; its `preset` field is
    the preset the plan trains with (cpu for quick and full) unless overridden."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}")
    values = {**p.train, "preset": p.plan.train_preset, **overrides}
    if values.get("method") == "lora" and "lr" not in overrides and p.lora_lr is not None:
        values["lr"] = p.lora_lr
    return TrainConfig(**values)


def use_bf16(cfg: TrainConfig) -> bool:
    """Resolve cfg.bf16: explicit, else bf16 wherever the device computes it natively.

    That is the test `models.pick_dtype` makes: CUDA GPUs with bf16, CPUs with AVX-512-BF16 or AMX.
    An AVX2-only CPU (or MPS) trains in fp32.
    """
    if cfg.bf16 is not None:
        return cfg.bf16
    return models.pick_dtype(models.pick_device()) == torch.bfloat16


def use_compile(cfg: TrainConfig) -> bool:
    """Resolve cfg.compile_layers: explicit, else on a CPU whose C++ compiler inductor finds.

    GPUs keep eager layers: compiled layers were measured on CPUs only.
    """
    if cfg.compile_layers is not None:
        return cfg.compile_layers
    return models.pick_device().type == "cpu" and lean.can_compile()


def sft_plumbing(cfg: TrainConfig, run_dir: Path | None = None) -> dict:
    """The SFTConfig arguments that are not the lesson: where checkpoints go, device, logging, seeds.

    Notebook 02 writes the rest of the SFTConfig call out, knob by knob, on top of these.
    """
    run_dir = run_dir or runs.run_dir(cfg.experiment, cfg.run_name())
    return dict(
        output_dir=str(Path(run_dir) / "checkpoints"),
        # CPU: transformers refuses bf16 on CPU unless told the CPU is the device on purpose.
        use_cpu=models.pick_device().type == "cpu",
        # Without reentrant checkpointing LoRA still gets gradients (docs/pitfalls.md).
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN loss must show, for runs.FiniteGuard to stop the run
        include_num_input_tokens_seen="non_padding",  # for tokens/s
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def make_sft_config(cfg: TrainConfig, run_dir: Path):
    """TRL's SFTConfig for a TrainConfig; checkpoints go to run_dir/checkpoints."""
    from trl import SFTConfig

    by_epoch = cfg.eval_steps is None
    return SFTConfig(
        **sft_plumbing(cfg, run_dir),
        bf16=use_bf16(cfg),
        # transformers 5.24 renamed gradient_checkpointing to activation_checkpointing.
        activation_checkpointing=cfg.gradient_checkpointing,
        padding_free=cfg.padding_free,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        # Padding-free does not enforce max_length: too-long rows are dropped beforehand (see runs).
        max_length=None if cfg.padding_free else cfg.max_length,
        completion_only_loss=True,  # loss on the answer (and its EOS) only, not on the prompt
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        eval_strategy="epoch" if by_epoch else "steps",
        eval_steps=None if by_epoch else cfg.eval_steps,
        # Saving must line up with evaluation for load_best_model_at_end; every N steps
        # as well, so an interrupted run loses little.
        save_strategy="epoch" if by_epoch else "steps",
        save_steps=None if by_epoch else cfg.eval_steps,
        load_best_model_at_end=True,  # the case study kept the lowest validation loss
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        save_total_limit=2,  # the best and the latest checkpoint
    )


def make_peft_config(cfg: TrainConfig, new_token_ids: list[int] | None = None):
    """peft's LoraConfig for method=lora (rank, alpha, targets from cfg), else None.

    `new_token_ids`: rows of the embedding added for fmt=special; LoRA must train and save them.
    """
    if cfg.method == "full":
        return None
    if cfg.method != "lora":
        raise ValueError(f"unknown method {cfg.method!r}; expected 'full' or 'lora'")
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_targets,
        trainable_token_indices=new_token_ids or None,
        task_type="CAUSAL_LM",
    )


def _new_token_ids(cfg: TrainConfig, tokenizer) -> list[int]:
    """Ids of the special tokens fmt=special added (none for chat)."""
    return tokenizer.convert_tokens_to_ids(list(prompts.SPECIAL_TOKENS)) if cfg.fmt == "special" else []


def make_trainer(cfg: TrainConfig, run_dir: Path, model, tokenizer, train_ds, eval_ds, callbacks=(), args=None):
    """TRL's SFTTrainer for the model and the prompt-completion datasets (prompts.sft_example);
    `args`: an SFTConfig built elsewhere (notebook 02's), else make_sft_config's."""
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    # Per-example attention pays on a CPU; on a GPU its per-example loop was measured slower than
    # the whole-row mask (benchmarks/gpu_train_speed.py, H200), so GPUs keep transformers' SDPA.
    if cfg.padding_free and cfg.packed_attention and models.pick_device().type == "cpu":
        lean.use_varlen(model)
    if use_compile(cfg):
        lean.compile_layers(model)
    SFTTrainer = lean.trainer_class(cfg.lean_loss)  # TRL's SFTTrainer, or it with the lean loss
    progress.quiet_tied_head(model)
    trainer = SFTTrainer(
        model=model,
        args=args or make_sft_config(cfg, run_dir),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=make_peft_config(cfg, _new_token_ids(cfg, tokenizer)),
        callbacks=list(callbacks),
    )
    progress.install(trainer)  # a progress bar and a compact loss table, not one dict per step
    return trainer


def example_length(example: dict, tokenizer) -> int:
    """Tokens of a prompt-completion example as TRL will render it (EOS included)."""
    if isinstance(example["prompt"], str):
        return len(tokenizer(example["prompt"] + example["completion"])["input_ids"]) + 1
    ids = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=True,
                                        return_dict=False)
    return len(ids)


def read_examples(path: str | Path) -> Iterator[dict]:
    """Prompt-completion examples from a JSONL file (what iterative rounds write)."""
    for i, ex in enumerate(io.iter_jsonl(path), 1):
        if not isinstance(ex, dict) or not {"prompt", "completion"} <= ex.keys():
            raise ValueError(f"{path}:{i}: expected an object with 'prompt' and 'completion'")
        yield ex


def build_examples(cfg: TrainConfig, split: str, n: int | None, tokenizer) -> list[dict]:
    """The first n examples of a prepared split (train: of cfg.train_file when set) that fit
    cfg.max_length (longer ones dropped)."""
    if split == "train" and cfg.train_file:
        examples = read_examples(cfg.train_file)
    else:
        task = tasks.get(cfg.task)  # the config's spec, resolved here
        examples = (prompts.sft_example(task, row, cfg.fmt) for row in prepare.split_rows(task, split))
    out = []
    for ex in examples:
        if example_length(ex, tokenizer) <= cfg.max_length:
            out.append(ex)
        if n is not None and len(out) >= n:
            break
    return out


def model_dir(folder: Path) -> Path:
    """A finished run's plain checkpoint: model/ for full fine-tuning, the merged adapter for LoRA."""
    folder = Path(folder)
    return folder / "model" if (folder / "model").is_dir() else merge(folder)


def start_spec(cfg: TrainConfig) -> str:
    """The model spec training starts from: cfg.model, or the result of the run in cfg.init_from."""
    if not cfg.init_from:
        return cfg.model
    if not runs.is_done(cfg.init_from):
        raise RuntimeError(f"init_from={cfg.init_from} is not a finished run (no DONE marker)")
    return str(model_dir(Path(cfg.init_from)))


def load_for_training(cfg: TrainConfig, spec: str):
    """(model, tokenizer) in fp32 master weights, with the special tokens added for fmt=special."""
    model, tok = models.load(spec, for_training=True)
    if cfg.fmt == "special":
        prompts.add_special_tokens(tok, model)
    return model, tok


def datasets_for(cfg: TrainConfig, tokenizer):
    """(train, validation) datasets of prompt-completion examples, and what data.json records."""
    import datasets

    train_ex = build_examples(cfg, "train", cfg.n_train, tokenizer)
    val_ex = build_examples(cfg, "validation", cfg.n_val, tokenizer)
    for split, ex in (("train", train_ex), ("validation", val_ex)):
        if not ex:
            raise ValueError(f"no {split} example of task {cfg.task!r} fits max_length={cfg.max_length} "
                             "tokens; raise max_length")
    info = {"task": cfg.task, "fmt": cfg.fmt, "n_train": len(train_ex), "n_val": len(val_ex),
            "train_sha256": io.rows_hash(train_ex), "val_sha256": io.rows_hash(val_ex)}
    return datasets.Dataset.from_list(train_ex), datasets.Dataset.from_list(val_ex), info


def _summary(trainer, logger: "runs.RunLogger", wall: float, resumed_from: Path | None) -> dict:
    """What summary.json records: time, speed, losses, the best checkpoint."""
    state = trainer.state
    train_losses = [h["loss"] for h in state.log_history if "loss" in h]
    return {
        "wall_seconds": round(wall, 1),
        **logger.speed(),
        "global_step": state.global_step,
        "epochs": state.epoch,
        "first_train_loss": train_losses[0] if train_losses else None,
        "last_train_loss": train_losses[-1] if train_losses else None,
        "eval_losses": [h["eval_loss"] for h in state.log_history if "eval_loss" in h],
        "best_eval_loss": state.best_metric,
        "best_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
        "resumed_from": resumed_from.name if resumed_from else None,
        "total_input_tokens": state.num_input_tokens_seen,
        "peak_rss_gib": peak_rss_gib(),
    }


def peak_rss_gib() -> float:
    """This process's peak resident memory so far, in GiB (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**30 if sys.platform == "darwin" else 2**20), 2)


def evaluate_run(cfg: TrainConfig, folder: Path) -> dict | None:
    """Score the trained model on the first cfg.eval_limit items of cfg.eval_split, into folder/eval
    (None when eval_limit is 0)."""
    from ftlib import harness

    if not cfg.eval_limit:
        return None
    return harness.evaluate(str(model_dir(folder)), cfg.task, cfg.eval_split, style=cfg.eval_style,
                            limit=cfg.eval_limit, out_dir=Path(folder) / "eval")


def save_result(trainer, tokenizer, cfg: TrainConfig, folder: Path) -> Path:
    """Save the (best) model or adapter and the tokenizer into the run folder."""
    out = Path(folder) / ("adapter" if cfg.method == "lora" else "model")
    lean.restore_sdpa(trainer.model)
    trainer.save_model(str(out))
    if runs.is_main_process():
        tokenizer.save_pretrained(out)
    return out


def brief(summary: dict) -> str:
    """The one line a finished run prints.

    >>> brief({"global_step": 300, "wall_seconds": 1062.0, "tokens_per_s": 259.1, "best_eval_loss": 0.01381,
    ...        "best_checkpoint": "checkpoint-300"})
    '300 steps in 17.7 min, 259 tokens/s; best validation loss 0.0138 (checkpoint-300)'
    """
    text = f"{summary['global_step']} steps in {summary['wall_seconds'] / 60:.1f} min"
    if summary.get("tokens_per_s"):
        text += f", {summary['tokens_per_s']:.0f} tokens/s"
    if summary.get("best_eval_loss") is not None:
        text += f"; best validation loss {summary['best_eval_loss']:.4f} ({summary.get('best_checkpoint')})"
    return text


def run(cfg: TrainConfig, callbacks=(), args=None) -> Path:
    """Train cfg into runs/<experiment>/<name>/ (resuming or skipping); return the finished folder.

    `args`: the SFTConfig to train with (notebook 02 writes its own), else make_sft_config(cfg).
    """
    folder = runs.run_dir(cfg.experiment, cfg.run_name())
    with runs.lock(folder):  # a second process on the same folder is refused, naming the holder
        if not _skip_finished(cfg, folder):
            _train(cfg, folder, callbacks, args)
    return folder


RENAMED = {"eval_style": prompts.RENAMED_STYLES}  # values a run folder may hold under an older name


def _defaults() -> dict:
    return {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _skip_finished(cfg: TrainConfig, folder: Path) -> bool:
    """True (and say so) if the folder holds this run finished; a finished run of another config
    is refused with the differences, as an unfinished one is."""
    if not runs.is_done(folder):
        return False
    runs.check_same_config(folder, dataclasses.asdict(cfg), _defaults(), RENAMED)
    print(f"[train] {paths.shown(folder)} is finished: skipped")
    return True


def _train(cfg: TrainConfig, folder: Path, callbacks, args) -> None:
    """Train, save, evaluate and finish one run folder (the caller holds its lock)."""
    spec = start_spec(cfg)
    model, tok = load_for_training(cfg, spec)
    train_ds, val_ds, info = datasets_for(cfg, tok)
    config = {**dataclasses.asdict(cfg), "start_spec": spec}
    runs.start(folder, config, info, bf16=use_bf16(cfg), defaults=_defaults(), renamed=RENAMED)
    resume = runs.last_checkpoint(folder)
    logger = runs.RunLogger(folder)
    trainer = make_trainer(cfg, folder, model, tok, train_ds, val_ds,
                           callbacks=[logger, runs.FiniteGuard(), *callbacks], args=args)
    t0 = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except (OSError, RuntimeError) as e:  # a full or read-only disk while saving a checkpoint: say so
        if not _while_saving_a_checkpoint(e) or io.write_problem(e) is None:
            raise
        ckpt = folder / "checkpoints" / f"checkpoint-{trainer.state.global_step}"  # the Trainer's naming
        raise io.cannot_write(paths.shown(ckpt), e, RESUME_AFTER_WRITE_ERROR) from e
    wall = time.perf_counter() - t0
    with io.writing(paths.shown(folder / ("adapter" if cfg.method == "lora" else "model"))):
        save_result(trainer, tok, cfg, folder)
    summary = _summary(trainer, logger, wall, resume)
    del trainer, model
    if runs.is_main_process():
        summary["eval"] = evaluate_run(cfg, folder)
    runs.finish(folder, summary)
    print(f"[train] {paths.shown(folder)}: {brief(summary)}")


RESUME_AFTER_WRITE_ERROR = ("Free space (or make the folder writable), then run the same command again: it "
                            "resumes from the newest complete checkpoint and sets this one aside")


def _while_saving_a_checkpoint(e: BaseException) -> bool:
    """Whether `e` was raised inside the Trainer's checkpoint save (its `_save_checkpoint`)."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "_save_checkpoint":
            return True
        tb = tb.tb_next
    return False


def run_in_fresh_process(cfg: TrainConfig) -> Path:
    """`run(cfg)` in a new Python process, its output streamed here; return the finished folder.

    The rounds train this way (`rounds.run_series`): every run starts from the same state and its
    memory goes when it ends (measured: docs/measurements.md). Its progress shows as text: a bar and
    a compact loss table (`progress.TextProgress`). Callbacks cannot cross processes: use `run` for them.
    """
    folder = runs.run_dir(cfg.experiment, cfg.run_name())
    if _skip_finished(cfg, folder):
        return folder
    runs.in_fresh_process("ftlib.train", "--config=" + json.dumps(dataclasses.asdict(cfg)),
                          f"training {paths.shown(folder)}", "Rerun to resume from its last checkpoint.")
    return folder


def merge(folder: Path) -> Path:
    """Merge a LoRA run's adapter into its base; save a plain checkpoint in folder/merged."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    out = folder / "merged"
    if (out / "config.json").exists():
        return out
    adapter = folder / "adapter"
    tok = AutoTokenizer.from_pretrained(adapter)
    config = runs.read_json(folder / "config.json")
    base = AutoModelForCausalLM.from_pretrained(models.resolve(config["start_spec"]), dtype=torch.float32)
    if len(tok) > base.get_input_embeddings().num_embeddings:
        base.resize_token_embeddings(len(tok))
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    if runs.is_main_process():  # into a temporary folder, renamed when whole: a cut save is never reused
        tmp = folder / f".merged.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            merged.save_pretrained(tmp)
            tok.save_pretrained(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(out, ignore_errors=True)  # a merged/ without config.json: an older cut save
        tmp.rename(out)
    return out


def _as(kind: type, text: str):
    """`text` as a value of one type (None when it does not read as one); NoneType gives (None,)."""
    low = text.strip().lower()
    if kind is type(None):
        return (None,) if low in ("none", "null") else None
    if kind is bool:
        return {"true": True, "false": False}.get(low)
    try:
        return kind(text)
    except ValueError:
        return None


def parse_setting(item: str) -> tuple[str, object]:
    """A `--set KEY=VALUE` as (field, value of the field's type); a ValueError that says what is expected.

    >>> parse_setting("n_train=None"), parse_setting("lr=3e-5"), parse_setting("epochs=2")
    (('n_train', None), ('lr', 3e-05), ('epochs', 2.0))
    """
    key, sep, text = item.partition("=")
    hints = typing.get_type_hints(TrainConfig)
    if not sep or key not in hints:
        raise ValueError(f"--set {item!r}: expected KEY=VALUE, KEY one of {', '.join(hints)}")
    kinds = typing.get_args(hints[key]) or (hints[key],)
    for kind in sorted(kinds, key=lambda k: k is str):  # a string field takes any text, so last
        value = _as(kind, text)
        if value is not None:
            return key, value[0] if kind is type(None) else value
    names = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
    raise ValueError(f"--set {key}={text}: expected {names}" + (" (None: all)" if key == "n_train" else ""))


def main(argv: list[str] | None = None) -> None:
    """`python -m ftlib.train --task viggo --preset cpu [--method full|lora] [--set key=value ...]`,
    or `--config JSON` (every TrainConfig field, as `run_in_fresh_process` passes them)."""
    ap = argparse.ArgumentParser(prog="python -m ftlib.train", description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="viggo")
    ap.add_argument("--preset", default="cpu", choices=list(presets.PRESETS))
    ap.add_argument("--method", choices=["full", "lora"])
    ap.add_argument("--model")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any TrainConfig field, e.g. --set n_train=200 --set lr=3e-5")
    ap.add_argument("--config", type=json.loads, metavar="JSON",
                    help="a whole TrainConfig as JSON; --set still overrides its fields")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        try:
            key, value = parse_setting(item)
        except ValueError as e:
            ap.error(str(e))
        overrides[key] = value
    if args.config is not None:
        if not isinstance(args.config, dict):
            ap.error(f"--config: expected a JSON object of TrainConfig fields, got {type(args.config).__name__}")
        fields = [f.name for f in dataclasses.fields(TrainConfig)]
        if unknown := sorted(set(args.config) - set(fields)):
            ap.error(f"--config: unknown field(s) {unknown}; expected fields of TrainConfig: {', '.join(fields)}")
    try:
        if args.config is not None:
            cfg = TrainConfig(**{**args.config, **overrides})
        else:
            named = {k: v for k, v in (("task", args.task), ("method", args.method), ("model", args.model)) if v}
            cfg = preset(args.preset, **{**named, **overrides})
    except ValueError as e:
        ap.error(str(e))
    try:
        print(run(cfg))
    except (io.FolderBusy, io.WriteError, runs.NonFinite) as e:  # another process holds the folder, a
        raise SystemExit(f"error: {e}") from None  # full disk, a blown-up loss: what to do, no traceback


if __name__ == "__main__":
    main()

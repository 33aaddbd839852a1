"""TRL and PEFT wiring: a `TrainConfig` -> SFTConfig, LoraConfig, SFTTrainer, the model to train and
its prompt-completion datasets.

Every TRL and PEFT argument of the project lives in this module (they get renamed between releases:
docs/pitfalls.md); notebook 02 writes the SFTConfig call out and passes it to `train.run(cfg, args=...)`.
The calls, explicitly:

    model, tok = sft.load_for_training(cfg, sft.start_spec(cfg))
    train_ds, eval_ds, info = sft.datasets_for(cfg, tok)
    trainer = sft.make_trainer(cfg, run_dir, model, tok, train_ds, eval_ds)   # SFTConfig + SFTTrainer
    trainer.train()
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import torch

from ftlib import io, lean, models, prepare, progress, prompts, runs, tasks
from ftlib.train_config import TrainConfig


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

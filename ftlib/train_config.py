"""What defines a fine-tuning run: `TrainConfig` (saved, resolved, in its run folder), the ranges its
fields must be in, a config from a preset, and the one override syntax (`--set key=value`).

    cfg = train_config.from_preset(presets.CPU, task="sql")   # a resolved preset (plan.train_config)
    cfg = train_config.preset("cpu", task="sql")              # a preset's name (the command line)

`ftlib.train` runs a config; `ftlib.sft` turns it into TRL's SFTConfig and SFTTrainer.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass

from ftlib import models, paths, presets, prompts, tasks


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

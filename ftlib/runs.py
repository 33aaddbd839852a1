"""Run folders: `runs/<experiment>/<run>/`, one per training run, readable without the code.

A run folder holds:
    config.json      the resolved TrainConfig
    env.json         library versions, git commit, device, threads
    data.json        how many examples, and a hash of exactly what was trained on
    metrics.jsonl    every logged training/validation step (loss, lr, tokens seen)
    segments.jsonl   one line per training session (a resumed run has several): when, on which CPU
                     kind, which steps, step seconds and tokens, updated at every checkpoint
    summary.json     timings, tokens/s, best validation loss and checkpoint
    model/           the trained model (full) or adapter/ (LoRA), with the tokenizer
    checkpoints/     trainer checkpoints while running (removed once DONE)
    eval/            evaluation results, when the harness ran
    DONE             written last: a finished run is skipped on rerun

Only the main process writes (under `accelerate launch` every process runs the same code).
"""

from __future__ import annotations

import codecs
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch
from transformers import TrainerCallback

from ftlib import paths
from ftlib.io import append_jsonl, folder_lock, iter_jsonl, read_json, write_json, write_text_atomic

LIBRARIES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")


def run_dir(experiment: str, name: str, root: Path | None = None) -> Path:
    """The folder of one run: `runs/<experiment>/<name>/`, each one path component (`paths.COMPONENT`)."""
    return (root or paths.runs_dir()) / paths.check_component(experiment, "experiment") / \
        paths.check_component(name, "name")


def is_main_process() -> bool:
    """True outside distributed training, and on rank 0 inside it."""
    from accelerate import PartialState

    return PartialState().is_main_process


def is_done(folder: Path) -> bool:
    """A run is finished when its DONE marker exists."""
    return (Path(folder) / "DONE").exists()


def safetensors_complete(path: Path) -> bool:
    """Whether a .safetensors file holds its whole header and every tensor its header lists
    (a save cut short leaves it shorter)."""
    size = path.stat().st_size
    if size < 8:
        return False
    with path.open("rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if 8 + n > size:
            return False
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return False
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return 8 + n + max(ends, default=0) == size


CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")  # besides the weights


def checkpoint_problems(ckpt: Path) -> list[str]:
    """What makes a trainer checkpoint unusable for resuming: missing files, or any file of it that
    does not load whole (weights, torch archives such as rng_state.pth, JSON such as config.json)."""
    problems = [f"{name} is missing" for name in CHECKPOINT_FILES if not (ckpt / name).exists()]
    weights = sorted(ckpt.glob("*.safetensors"))
    if not weights:
        problems.append("no weights (*.safetensors)")
    problems += [f"{w.name} is truncated ({w.stat().st_size} bytes)" for w in weights
                 if not safetensors_complete(w)]
    for f in sorted(ckpt.iterdir()):
        if f.suffix in (".pt", ".pth", ".bin") and not _archive_whole(f):
            problems.append(f"{f.name} is truncated ({f.stat().st_size} bytes)")
        elif f.suffix == ".json":
            try:
                read_json(f)
            except ValueError:
                problems.append(f"{f.name} is cut short")
    return problems


WHOLE_CHECK_BYTES = 64 * 2**20  # archives up to this size have every entry's checksum verified


def _archive_whole(path: Path) -> bool:
    """Whether a torch.save file (a zip archive) is whole: its directory reads, and for small files
    (rng_state.pth, scheduler.pt) every entry's checksum matches; a large optimizer.pt is not read
    through, its directory at the end is what a cut save loses."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return path.stat().st_size > WHOLE_CHECK_BYTES or z.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete trainer checkpoint of an unfinished run, to resume from (None: start
    afresh). Incomplete newer ones (a save killed or out of disk space) are moved to
    `checkpoints-incomplete/` and named; if every checkpoint is incomplete, a RuntimeError says
    which files and what to do."""
    ckpts = Path(folder) / "checkpoints"
    found = sorted((p for p in ckpts.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]), reverse=True) if ckpts.is_dir() else []
    for i, ckpt in enumerate(found):
        problems = checkpoint_problems(ckpt)
        if not problems:
            for bad in found[:i] if is_main_process() else ():
                _set_aside(bad)
            return ckpt
        print(f"[train] skipping {paths.shown(ckpt)}: {'; '.join(problems)} (its save was cut short)")
    if found:
        raise RuntimeError(f"no complete checkpoint to resume from in {ckpts}: "
                           + "; ".join(f"{c.name}: {', '.join(checkpoint_problems(c))}" for c in found)
                           + ". Delete the checkpoints folder to train from the start")
    return None


def _set_aside(ckpt: Path) -> None:
    """Move an incomplete checkpoint out of the trainer's sight (kept, not deleted), and say where."""
    dest = ckpt.parent.parent / "checkpoints-incomplete" / f"{ckpt.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    dest.parent.mkdir(exist_ok=True)
    ckpt.rename(dest)
    print(f"[train] resuming from an earlier checkpoint; the incomplete one is kept in {paths.shown(dest)}")


def lock(folder: Path):
    """One training process per run folder (`io.folder_lock`); under `accelerate launch` only the
    main process holds it (the others are its partners, not rivals)."""
    import contextlib

    return folder_lock(folder, "training") if is_main_process() else contextlib.nullcontext()


def git_commit() -> str | None:
    """The repository's HEAD commit, with '+dirty' when tracked files changed (None: not a repo)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=paths.ROOT, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        head = git("rev-parse", "HEAD")
        return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Library versions, git commit and hardware, recorded with every run."""
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": git_commit(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_kind": cpu_kind(),
        # The CPU's measured ceiling beside every speed figure (machines of one kind differ 2x):
        # a 2048^3 matmul in the dtype training computes in, measured when the run starts.
        **({} if torch.cuda.is_available() else cpu_matmul()),
    }


def cpu_matmul() -> dict:
    """{matmul_dtype, matmul_gflops}: the dtype a CPU trains in and its measured 2048^3 matmul rate."""
    from ftlib import models

    dtype = "bfloat16" if models.cpu_has_fast_bf16() else "float32"
    return {"matmul_dtype": dtype, "matmul_gflops": round(matmul_gflops(getattr(torch, dtype)))}


def matmul_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Achieved GFLOP/s of an n^3 matmul in dtype (the machine's ceiling for training), now."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def cpu_kind() -> str:
    """'AMX', 'AVX-512-BF16' or 'AVX2' (or 'other'): the CPU kind every speed figure must name.

    AMX CPUs (`amx_bf16`) also have AVX-512-BF16; their bf16 matmul is the fastest of the three."""
    from ftlib import models

    flags = models.cpu_flags()
    if models.cpu_has_fast_bf16():
        return "AMX" if "amx_bf16" in flags else "AVX-512-BF16"
    return "AVX2" if "avx2" in flags else "other"


def device_name() -> str:
    """What trains here, as a speed figure must name it: the GPU's name, or 'CPU <kind>'."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU {cpu_kind()}"


def config_change(old: dict, new: dict, defaults: dict, renamed: dict | None = None) -> dict[str, tuple]:
    """What differs between a run folder's config and the one asked for now, as {key: (old, new)}.

    A field the code gained since the folder was written counts only if it is set to something other
    than its default, a field the code dropped does not count (it can no longer change anything), and
    a value since renamed (`renamed`: {field: {old name: new name}}) is read as its new name: a code
    update alone never stops an interrupted run from resuming.

    >>> config_change({"lr": 1e-4, "gone": 1}, {"lr": 1e-4, "optim": "adamw"}, {"optim": "adamw"})
    {}
    >>> config_change({"lr": 1e-4}, {"lr": 2e-4, "optim": "sgd"}, {"optim": "adamw"})
    {'lr': (0.0001, 0.0002), 'optim': ('adamw (its default; the folder predates it)', 'sgd')}
    >>> config_change({"style": "finetuned"}, {"style": "chat"}, {}, {"style": {"finetuned": "chat"}})
    {}
    """
    old = {k: (renamed or {}).get(k, {}).get(v, v) if isinstance(v, str) else v for k, v in old.items()}
    changed = {k: (old[k], new[k]) for k in old.keys() & new.keys() if old[k] != new[k]}
    for k in new.keys() - old.keys():
        if k not in defaults or new[k] != defaults[k]:
            changed[k] = (f"{defaults.get(k)} (its default; the folder predates it)", new[k])
    return changed


def check_same_config(folder: Path, config: dict, defaults: dict | None = None, renamed: dict | None = None) -> None:
    """Refuse a folder (finished or not) whose config.json differs from `config` (`config_change`):
    a RuntimeError naming every difference."""
    old = Path(folder) / "config.json"
    if not old.exists():
        return
    changed = config_change(read_json(old), json.loads(json.dumps(config, default=str)),
                            json.loads(json.dumps(defaults or {}, default=str)), renamed)
    if changed:
        diff = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, a, b in sorted((k, *v) for k, v in changed.items()))
        state = "finished" if is_done(folder) else "unfinished"
        raise RuntimeError(f"{folder} holds a {state} run with another config ({diff}); pick a new run "
                           "name or delete the folder")


def start(folder: Path, config: dict, data_info: dict, bf16: bool | None = None,
          defaults: dict | None = None, renamed: dict | None = None) -> None:
    """Write config/env/data records; refuse to resume a folder that holds a different config
    (`config_change`; `defaults`: the config fields' defaults, for fields newer than the folder;
    `renamed`: values it may hold under an older name).

    `bf16`: the precision the run resolved (config.json keeps what was asked, often None = auto).
    """
    folder = Path(folder)
    old = folder / "config.json"
    check_same_config(folder, config, defaults, renamed)
    if not is_main_process():
        return
    write_json(old, config)
    write_json(folder / "env.json", {**environment(), "bf16": bf16})
    write_json(folder / "data.json", data_info)


def finish(folder: Path, summary: dict, keep_checkpoints: bool = False) -> None:
    """Write summary.json, drop the checkpoints (the model is saved apart), then the DONE marker."""
    if not is_main_process():
        return
    write_json(Path(folder) / "summary.json", summary)
    if not keep_checkpoints:
        shutil.rmtree(Path(folder) / "checkpoints", ignore_errors=True)
    write_text_atomic(Path(folder) / "DONE", time.strftime("%Y-%m-%dT%H:%M:%S\n"))


def read_metrics(folder: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl."""
    path = Path(folder) / "metrics.jsonl"
    return list(iter_jsonl(path)) if path.exists() else []


class RunLogger(TrainerCallback):
    """Appends every log to metrics.jsonl, times the optimizer steps (not eval or saving) and keeps
    one segments.jsonl line per training session, so a run resumed across sessions (and machines)
    still says how long its training took and where."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "metrics.jsonl"
        self.segments_path = Path(folder) / "segments.jsonl"
        self.step_seconds = 0.0
        self.tokens_at_start: int | None = None
        self.tokens_end = 0
        self.steps_timed = 0
        self.step_rates: list[float] = []  # tokens/s of each optimizer step, this session
        self.segment: dict | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        # A resumed run repeats the steps after its last checkpoint: drop their old log rows.
        if self.path.exists():
            rows = [r for r in read_metrics(self.path.parent) if r.get("step", 0) <= state.global_step]
            write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        # ... and their segment: a segment counts only the steps its last checkpoint kept.
        kept = [s for s in read_segments(self.path.parent) if s["from_step"] < state.global_step]
        self._wall0 = time.perf_counter()
        self.segment = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "device": device_name(),
                        "from_step": state.global_step,
                        "to_step": state.global_step, "step_seconds": 0.0, "wall_seconds": 0.0, "tokens": 0}
        self._write_segments(kept + [self.segment])

    def _write_segments(self, segments: list[dict]) -> None:
        write_text_atomic(self.segments_path, "".join(json.dumps(s) + "\n" for s in segments))

    def _update_segment(self, state) -> None:
        """Record this session's work up to now (called when a checkpoint is saved and at the end)."""
        if self.segment is None or not state.is_world_process_zero:
            return
        self.segment.update(to_step=state.global_step, step_seconds=round(self.step_seconds, 2),
                            wall_seconds=round(time.perf_counter() - self._wall0, 1),
                            tokens=int(self.tokens_end - (self.tokens_at_start or 0)))
        self._write_segments(read_segments(self.path.parent)[:-1] + [self.segment])

    def on_step_begin(self, args, state, control, **kwargs):
        if self.tokens_at_start is None:
            self.tokens_at_start = state.num_input_tokens_seen
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        seconds = time.perf_counter() - self._t0
        self.step_seconds += seconds
        self.steps_timed += 1
        if seconds > 0:
            self.step_rates.append((state.num_input_tokens_seen - max(self.tokens_end, self.tokens_at_start or 0))
                                   / seconds)
        self.tokens_end = state.num_input_tokens_seen

    def on_save(self, args, state, control, **kwargs):
        self._update_segment(state)

    def on_train_end(self, args, state, control, **kwargs):
        self._update_segment(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            append_jsonl(self.path, [{"step": state.global_step, "epoch": state.epoch, **logs}])

    def speed(self) -> dict:
        """Tokens (all processes, no padding) per second of optimizer-step time, this session; and,
        over every session of the run (segments.jsonl), the training time and which CPU kinds."""
        tokens = self.tokens_end - (self.tokens_at_start or 0)
        segments = read_segments(self.path.parent)
        return {"train_step_seconds": round(self.step_seconds, 2), "steps_timed": self.steps_timed,
                "tokens": int(tokens),
                "tokens_per_s": round(tokens / self.step_seconds, 1) if self.step_seconds else None,
                # the median step's rate: what the machine does when nothing else holds it up (a step
                # that waited on another process, or a paused job, moves the mean, not the median)
                "median_step_tokens_per_s": round(statistics.median(self.step_rates), 1) if self.step_rates else None,
                "sessions": len(segments),
                "train_step_seconds_all_sessions": round(sum(s["step_seconds"] for s in segments), 2),
                "train_wall_seconds_all_sessions": round(sum(s["wall_seconds"] for s in segments), 1),
                "devices": sorted({s["device"] for s in segments})}


class NonFinite(RuntimeError):
    """Training met a loss or a weight that is not a finite number."""


class FiniteGuard(TrainerCallback):
    """Stop training at the first loss (training or validation) that is not finite, and before a
    checkpoint holding a weight that is not: the checkpoints saved so far are the last good ones, and
    no DONE is written. Needs `logging_nan_inf_filter=False`, or the Trainer hides a NaN loss."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, float) and not math.isfinite(value):
                which = "training" if key == "loss" else "validation"
                raise NonFinite(self._stopped(args, state, f"the {which} loss is {value}, not a finite number"))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is None or not (control.should_save or control.should_evaluate or control.should_training_stop):
            return
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise NonFinite(self._stopped(args, state, f"the weight {name} holds a value that is not finite"))

    @staticmethod
    def _stopped(args, state, what: str) -> str:
        return (f"step {state.global_step}: {what}; training stopped before saving it (the checkpoints before it "
                f"are kept in {paths.shown(args.output_dir)}, no DONE). The learning rate {args.learning_rate:g} "
                "is likely too high: lower it and train under a new name, or delete the folder")


def training_seconds(summary: dict) -> float:
    """A finished run's training wall time over all its sessions (runs older than segments.jsonl:
    their one session's)."""
    return summary.get("train_wall_seconds_all_sessions", summary["wall_seconds"])


def read_segments(folder: Path) -> list[dict]:
    """The rows of a run's segments.jsonl: one per training session (`RunLogger`)."""
    path = Path(folder) / "segments.jsonl"
    return list(iter_jsonl(path)) if path.exists() else []


def in_fresh_process(module: str, arg: str, what: str, then: str = "") -> str:
    """Run `python -m module arg` in a new process, its output streamed here as it comes (progress
    bars included); return the last line it printed. A RuntimeError naming `what` (and `then`, what
    to do next) if it fails.
    Training (`train.run_in_fresh_process`) and response times (`latency.measure`) run this way."""
    proc = subprocess.Popen([sys.executable, "-m", module, arg], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    text, seen = codecs.getincrementaldecoder("utf-8")(errors="replace"), []
    while chunk := proc.stdout.read1(4096):
        seen.append(text.decode(chunk))
        sys.stdout.write(seen[-1])
        sys.stdout.flush()
    if proc.wait() != 0:
        raise RuntimeError(f"{what} failed in its own process (exit status {proc.returncode}); its output"
                           f" is above.{' ' + then if then else ''}")
    return [line for line in "".join(seen).replace("\r", "\n").splitlines() if line.strip()][-1]

"""Fine-tune a model on a task into a run folder: run() (resume, skip a finished run, save, evaluate,
record), run_in_fresh_process(), merge() and the command line.

The config is `ftlib.train_config`'s `TrainConfig`; the TRL wiring is `ftlib.sft`. In one call, into a
run folder (`runs.py`): `run_dir = train.run(cfg)`.
Command line: `python -m ftlib.train --task viggo --preset cpu [--method lora] [--set lr=3e-4 ...]`,
also under `accelerate launch --config_file configs/accelerate/<config>.yaml -m ftlib.train ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from ftlib import harness, io, lean, paths, presets, prompts, runs, sft
from ftlib.train_config import TrainConfig, parse_setting, preset


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
    if not cfg.eval_limit:
        return None
    return harness.evaluate(str(sft.model_dir(folder)), cfg.task, cfg.eval_split, style=cfg.eval_style,
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
    spec = sft.start_spec(cfg)
    model, tok = sft.load_for_training(cfg, spec)
    train_ds, val_ds, info = sft.datasets_for(cfg, tok)
    config = {**dataclasses.asdict(cfg), "start_spec": spec}
    runs.start(folder, config, info, bf16=sft.use_bf16(cfg), defaults=_defaults(), renamed=RENAMED)
    resume = runs.last_checkpoint(folder)
    logger = runs.RunLogger(folder)
    trainer = sft.make_trainer(cfg, folder, model, tok, train_ds, val_ds,
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

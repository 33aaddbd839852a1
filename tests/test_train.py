"""Training: presets, EOS in the loss, padding-free without cross-talk, LoRA/full runs, merge, 2 processes."""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ftlib import io, models, paths, presets, runs, sft, train, train_config


def smoke(tiny_model_dir, **kw):
    """The smoke preset on the tiny model, fp32 so results are bit-comparable."""
    return train_config.preset("smoke", model=str(tiny_model_dir), bf16=False, experiment="t", **kw)


def test_presets_and_overrides():
    cfg = train_config.preset("cpu", task="sql", epochs=1)
    assert (cfg.task, cfg.epochs, cfg.method) == ("sql", 1, "full")
    assert train_config.preset("gpu", method="lora").lr == presets.GPU.lora_lr == 1e-4
    assert train_config.preset("smoke", method="lora").lr == presets.SMOKE.train["lr"]  # smoke keeps its own lr
    with pytest.raises(ValueError):
        train_config.preset("cpu", no_such_field=1)
    with pytest.raises(ValueError):
        train_config.preset("laptop")


def test_one_style_vocabulary_and_older_names_read_as_new():
    """eval_style and fmt are prompt styles (prompts.STYLES, TUNED_STYLES); an older config.json's
    "finetuned" reads as "chat", so its finished folder is the same run."""
    assert train_config.TrainConfig().eval_style == "chat"
    assert train_config.TrainConfig(eval_style="finetuned").eval_style == "chat"
    for bad in (dict(eval_style="tuned"), dict(fmt="few_shot")):
        with pytest.raises(ValueError, match="expected one of"):
            train_config.TrainConfig(**bad)
    old = {**dataclasses.asdict(train_config.TrainConfig()), "eval_style": "finetuned"}
    assert runs.config_change(old, dataclasses.asdict(train_config.TrainConfig()), {}, train.RENAMED) == {}
    assert runs.config_change(old, dataclasses.asdict(train_config.TrainConfig()), {}) != {}


@pytest.mark.parametrize("flags,expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, True),  # native bf16: autocast
    ({"avx2", "amx_bf16", "amx_tile"}, True),
    ({"avx2", "fma"}, False),  # AVX2 only: bf16 matmul is ~10x slower than fp32 there
    (set(), False),  # no /proc/cpuinfo (macOS)
])
def test_bf16_follows_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(models, "pick_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(models, "cpu_flags", lambda: frozenset(flags))
    assert sft.use_bf16(train_config.preset("cpu")) is expected
    assert sft.make_sft_config(train_config.preset("cpu"), Path("x")).bf16 is expected
    assert sft.use_bf16(train_config.preset("cpu", bf16=not expected)) is (not expected)  # explicit wins


def test_cpu_flags_are_read_from_cpuinfo():
    flags = models.cpu_flags()
    if Path("/proc/cpuinfo").exists():
        assert flags and all(" " not in f for f in flags)
        assert models.cpu_has_fast_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_sft_config_holds_the_levers(tmp_path):
    cfg = train_config.preset("cpu", bf16=True)
    args = sft.make_sft_config(cfg, tmp_path)
    assert args.bf16 and not args.gradient_checkpointing and args.padding_free
    assert args.completion_only_loss and args.load_best_model_at_end
    assert args.metric_for_best_model == "eval_loss" and args.train_sampling_strategy == "random"
    gpu = sft.make_sft_config(train_config.preset("gpu", bf16=False), tmp_path)  # padded batches of similar lengths
    assert gpu.activation_checkpointing and not gpu.padding_free
    assert gpu.train_sampling_strategy == "group_by_length"
    assert gpu.per_device_train_batch_size * gpu.gradient_accumulation_steps == 256  # the case study's batch
    lora = sft.make_peft_config(train_config.preset("cpu", method="lora"))
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (8, 16, "all-linear")
    assert sft.make_peft_config(cfg) is None


@pytest.mark.parametrize("item, expected", [
    ("n_train=None", ("n_train", None)), ("n_train=null", ("n_train", None)), ("n_train=200", ("n_train", 200)),
    ("lr=3e-5", ("lr", 3e-5)), ("epochs=2", ("epochs", 2.0)), ("bf16=true", ("bf16", True)),
    ("bf16=None", ("bf16", None)), ("method=lora", ("method", "lora")), ("name=123", ("name", "123")),
    ("eval_steps=None", ("eval_steps", None)),
])
def test_set_values_take_the_field_type(item, expected):
    key, value = train_config.parse_setting(item)
    assert (key, value) == expected and type(value) is type(expected[1])


@pytest.mark.parametrize("item, message", [
    ("n_train=all", "n_train=all: expected int or None (None: all)"), ("lr=fast", "expected float"),
    ("n_val=None", "n_val=None: expected int"), ("bf16=yes", "expected bool or None"),
    ("no_such=1", "KEY one of task, model"), ("n_train", "expected KEY=VALUE"),
])
def test_bad_set_values_are_refused_at_the_door(item, message, capsys):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_config.parse_setting(item)
    with pytest.raises(SystemExit) as e:
        train.main(["--set", item])
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("item, message", [
    ("epochs=-1", "epochs=-1.0: expected > 0"), ("epochs=0", "epochs=0.0: expected > 0"),
    ("n_train=-5", "n_train=-5: expected >= 1, or None"), ("n_train=0", "n_train=0: expected >= 1"),
    ("max_length=0", "max_length=0: expected >= 16"), ("batch_size=0", "batch_size=0: expected >= 1"),
    ("lr=-1e-4", "lr=-0.0001: expected > 0"), ("max_steps=0", "max_steps=0: expected > 0, or -1"),
    ("eval_steps=0", "eval_steps=0: expected >= 1"), ("n_val=0", "n_val=0: expected >= 1"),
    # not a finite number: lr=inf once trained to NaN weights and wrote DONE; epochs=inf an OverflowError
    ("lr=inf", "lr=inf: expected a finite number"), ("epochs=inf", "epochs=inf: expected a finite number"),
    ("lr=nan", "lr=nan: expected a finite number"), ("weight_decay=-inf", "weight_decay=-inf: expected a finite"),
    ("lora_dropout=nan", "lora_dropout=nan: expected a finite number"),
    # a field that names a folder is one safe path component of at most 100 characters
    ("name=../../../x", "name='../../../x': expected one path component"),
    ("experiment=/abs/path", "experiment='/abs/path': expected one path component"),
    ("experiment=..", "experiment='..': expected one path component"),
    ("name=" + "a" * 300, f"name='{'a' * 300}': expected one path component"),
    ("preset=../up", "preset='../up': expected one path component"),
])
def test_out_of_range_values_are_refused_before_anything_runs(item, message, capsys, runs_root, monkeypatch):
    monkeypatch.setattr(train, "run", lambda cfg: pytest.fail(f"{item} was accepted"))
    with pytest.raises(SystemExit) as e:
        train.main(["--preset", "smoke", "--set", item])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not runs_root.exists()  # no folder made, so none blocks the name afterwards
    with pytest.raises(ValueError, match=message.split(":")[0]):
        train_config.TrainConfig(**dict([train_config.parse_setting(item)]))


@pytest.mark.parametrize("config, message", [
    ('{"bogus": 1}', "--config: unknown field(s) ['bogus']; expected fields of TrainConfig: task, model"),
    ('[1, 2]', "--config: expected a JSON object of TrainConfig fields, got list"),
    ('{"batch_size": 2.5}', "batch_size=2.5: expected an integer"),
    ('{"lr": "fast"}', "lr='fast': expected a number"),
    ('{"n_train": true}', "n_train=True: expected an integer"),
    ('{"lr": 1e999}', "lr=inf: expected a finite number"),
])
def test_a_bad_json_config_is_one_clear_line(config, message, capsys, runs_root, monkeypatch):
    monkeypatch.setattr(train, "run", lambda cfg: pytest.fail(f"{config} was accepted"))
    with pytest.raises(SystemExit) as e:
        train.main(["--config", config])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err
    assert not runs_root.exists()


def test_no_run_folder_is_made_outside_runs(runs_root, tmp_path):
    """The folder rule holds where a folder is made, whatever built the config."""
    with pytest.raises(ValueError, match=r"experiment='\.\./out': expected one path component"):
        runs.run_dir("../out", "x")
    with pytest.raises(ValueError, match="expected one path component"):
        runs.run_dir("t", "a" * 101)
    assert runs.run_dir("t", "a" * 100) == runs_root / "t" / ("a" * 100)


def test_a_max_length_no_example_fits_is_refused_by_name(tiny_model_dir, runs_root):
    cfg = smoke(tiny_model_dir, max_length=16)
    with pytest.raises(ValueError, match="no train example of task 'viggo' fits max_length=16"):
        train.run(cfg)
    assert not (runs.run_dir("t", cfg.run_name()) / "config.json").exists()  # the name stays free


def _collated(tiny_model_dir, runs_root, padding_free):
    cfg = smoke(tiny_model_dir, padding_free=padding_free, n_train=8)
    model, tok = sft.load_for_training(cfg, cfg.model)
    train_ds, val_ds, _ = sft.datasets_for(cfg, tok)
    trainer = sft.make_trainer(cfg, runs_root / "x", model, tok, train_ds, val_ds)
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer, tok, batch


def test_completion_ends_with_eos_and_eos_is_in_the_loss(tiny_model_dir, runs_root):
    _, tok, batch = _collated(tiny_model_dir, runs_root, padding_free=False)
    assert tok.pad_token_id != tok.eos_token_id
    for labels, mask in zip(batch["labels"], batch["attention_mask"]):
        real = labels[mask.bool()]
        trained = real[real != -100]
        assert trained[-1] == tok.eos_token_id or trained[-2] == tok.eos_token_id  # template adds "\n"
        assert (labels[~mask.bool()] == -100).all()  # padding is out of the loss
        assert (labels[:5] == -100).all()  # the prompt is out of the loss


def test_padding_free_batch_gives_the_padded_loss(tiny_model_dir, runs_root):
    """Packed rows must not attend to each other: the loss equals the padded batch's."""
    losses = []
    for pf in (False, True):
        trainer, _, batch = _collated(tiny_model_dir, runs_root / str(pf), padding_free=pf)
        assert ("attention_mask" in batch) != pf
        with torch.no_grad():
            losses.append(float(trainer.compute_loss(trainer.model, batch)))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_run_records_the_precision_it_chose(tiny_model_dir, runs_root):
    cfg = train_config.preset("smoke", model=str(tiny_model_dir), experiment="t", max_steps=1, n_train=4, n_val=2)
    folder = train.run(cfg)
    assert runs.read_json(folder / "config.json")["bf16"] is None  # asked: auto
    env = runs.read_json(folder / "env.json")
    assert env["bf16"] is sft.use_bf16(cfg)  # resolved, for this machine
    assert env["cpu_kind"] in ("AMX", "AVX-512-BF16", "AVX2", "other")
    assert env["matmul_gflops"] > 0 and env["matmul_dtype"] in ("bfloat16", "float32")  # measured here


@pytest.mark.parametrize("method", ["full", "lora"])
def test_run_finishes_learns_and_skips(tiny_model_dir, runs_root, method):
    cfg = smoke(tiny_model_dir, method=method)
    folder = train.run(cfg)
    for name in ("DONE", "config.json", "env.json", "data.json", "metrics.jsonl", "summary.json"):
        assert (folder / name).exists(), name
    assert (folder / ("adapter" if method == "lora" else "model")).is_dir()
    assert not (folder / "checkpoints").exists()
    summary = runs.read_json(folder / "summary.json")
    assert summary["eval_losses"][-1] < summary["eval_losses"][0]
    assert summary["last_train_loss"] < summary["first_train_loss"]
    assert summary["tokens_per_s"] > 0 and summary["median_step_tokens_per_s"] > 0
    assert 0.05 < summary["peak_rss_gib"] < 64  # a torch process holds at least ~50 MiB
    assert len(runs.read_json(folder / "data.json")["train_sha256"]) == 64
    mtime = (folder / "DONE").stat().st_mtime
    assert train.run(cfg) == folder and (folder / "DONE").stat().st_mtime == mtime  # skipped


def test_merge_gives_base_plus_adapter(tiny_model_dir, runs_root):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, PreTrainedModel

    folder = train.run(smoke(tiny_model_dir, method="lora", epochs=1))
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        want = PeftModel.from_pretrained(base, folder / "adapter").eval()(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(sft.merge(folder), dtype=torch.float32)
        got = merged.eval()(ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    # A merge cut short (killed, disk full) leaves no merged/ that a later call would take as whole.
    shutil.rmtree(folder / "merged")
    real = PreTrainedModel.save_pretrained

    def cut_short(self, out, *a, **k):
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "config.json").write_text("{}")
        raise OSError(28, "No space left on device")
    PreTrainedModel.save_pretrained = cut_short
    try:
        with pytest.raises(OSError, match="No space left"):
            sft.merge(folder)
    finally:
        PreTrainedModel.save_pretrained = real
    assert not (folder / "merged").exists() and not list(folder.glob(".merged.tmp-*"))
    assert (sft.merge(folder) / "model.safetensors").exists()


class StopAfter:
    """A callback that raises after step k, as a crash or a killed job would."""

    def __new__(cls, k):
        from transformers import TrainerCallback

        class _Stop(TrainerCallback):
            def on_save(self, args, state, control, **kw):
                if state.global_step >= k:
                    raise KeyboardInterrupt(f"stopped after step {state.global_step}")
        return _Stop()


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model" / "model.safetensors")


def test_interrupted_run_resumes_to_the_same_state(tiny_model_dir, runs_root):
    kw = dict(eval_steps=4, epochs=2)  # 16 steps; checkpoint and eval every 4
    straight = train.run(smoke(tiny_model_dir, name="straight", **kw))
    with pytest.raises(KeyboardInterrupt):
        train.run(smoke(tiny_model_dir, name="broken", **kw), callbacks=[StopAfter(8)])
    broken = runs.run_dir("t", "broken")
    assert not runs.is_done(broken) and runs.last_checkpoint(broken).name == "checkpoint-8"
    train.run(smoke(tiny_model_dir, name="broken", **kw))
    a, b = _weights(straight), _weights(broken)
    assert all(torch.equal(a[k], b[k]) for k in a)
    loss = [[r["loss"] for r in runs.read_metrics(f) if "loss" in r] for f in (straight, broken)]
    assert loss[0] == loss[1] and len(loss[0]) == 16
    summary = runs.read_json(broken / "summary.json")
    assert summary["resumed_from"] == "checkpoint-8"
    # Each session is a segment with the steps its checkpoints kept; the summary adds them up.
    segments = runs.read_segments(broken)
    assert [(s["from_step"], s["to_step"]) for s in segments] == [(0, 8), (8, 16)]
    assert summary["sessions"] == 2 and summary["devices"] == [runs.device_name()]
    assert summary["train_step_seconds_all_sessions"] == pytest.approx(
        sum(s["step_seconds"] for s in segments), abs=0.02)
    assert summary["train_step_seconds_all_sessions"] > summary["train_step_seconds"] > 0
    assert runs.training_seconds(summary) == summary["train_wall_seconds_all_sessions"] > summary["wall_seconds"]
    assert runs.training_seconds({"wall_seconds": 3.0}) == 3.0  # a run from before segments
    assert sum(s["tokens"] for s in segments) == runs.read_json(straight / "summary.json")["tokens"]
    assert [(s["from_step"], s["to_step"]) for s in runs.read_segments(straight)] == [(0, 16)]


def test_init_from_a_finished_run(tiny_model_dir, runs_root):
    first = train.run(smoke(tiny_model_dir, name="round1", epochs=1))
    cfg = smoke(tiny_model_dir, name="round2", epochs=1, init_from=str(first))
    assert sft.start_spec(cfg) == str(first / "model")
    assert runs.is_done(train.run(cfg))


def _launch_run(tiny_model_dir, runs_root, name, nproc, grad_accum):
    """Run the CLI in 1 process or under `accelerate launch` with 2 gloo processes."""
    sets = ["--set", f"model={tiny_model_dir}", "--set", "bf16=false", "--set", "experiment=t",
            "--set", f"name={name}", "--set", f"grad_accum={grad_accum}", "--set", "batch_size=2",
            "--set", "max_steps=6", "--set", "eval_steps=3", "--set", "torch_threads=1"]
    cmd = [sys.executable, "-m", "ftlib.train", "--task", "viggo", "--preset", "smoke", *sets]
    if nproc == 2:
        cfg = paths.ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg),
               "-m", "ftlib.train", *cmd[3:]]
    env = {**os.environ, "FTLIB_RUNS": str(runs_root), "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=paths.ROOT, env=env, check=True, capture_output=True, timeout=300)
    return [r["loss"] for r in runs.read_metrics(runs_root / "t" / name) if "loss" in r]


# Measured on the 2-core CI machine: max relative difference 1.2 % over the 6 logged steps (step 0
# included, before any update). The logged loss of 2 processes is the mean of per-process means,
# while 1 process with accumulation weights micro-batches by their completion tokens: the curves
# agree, the per-step numbers are not bit-identical (the loss moves ~0.15 per logged step here).
LOSS_RTOL_2PROC = 0.02


@pytest.mark.slow
def test_two_processes_match_one_with_twice_the_accumulation(tiny_model_dir, runs_root):
    one = _launch_run(tiny_model_dir, runs_root, "one", nproc=1, grad_accum=2)
    two = _launch_run(tiny_model_dir, runs_root, "two", nproc=2, grad_accum=1)
    assert len(one) == len(two) == 6
    assert two == pytest.approx(one, rel=LOSS_RTOL_2PROC)
    assert runs.is_done(runs_root / "t" / "two")


def test_train_file_replaces_the_training_split(tiny_model_dir, runs_root, tmp_path):
    tok = models.load_tokenizer(str(tiny_model_dir))
    good = {"prompt": [{"role": "user", "content": "2+2?"}],
            "completion": [{"role": "assistant", "content": "4"}]}
    path = tmp_path / "examples.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    cfg = smoke(tiny_model_dir, train_file=str(path))
    assert sft.build_examples(cfg, "train", None, tok) == [good, good]
    assert sft.build_examples(cfg, "train", 1, tok) == [good]
    assert sft.build_examples(cfg, "validation", 3, tok) != [good] * 3  # validation: the task's own
    path.write_text(json.dumps(good) + "\n" + json.dumps({"prompt": "no completion"}) + "\n")
    with pytest.raises(ValueError, match=r"examples\.jsonl:2: expected"):
        sft.build_examples(cfg, "train", None, tok)


def test_a_whole_config_comes_as_json_and_set_still_overrides_it(monkeypatch):
    seen = []
    monkeypatch.setattr(train, "run", seen.append)
    cfg = train_config.preset("cpu", task="sql", lr=1e-3, name="from-json")
    train.main(["--config", json.dumps(dataclasses.asdict(cfg)), "--set", "epochs=3"])
    assert seen == [dataclasses.replace(cfg, epochs=3.0)]


def test_a_folder_refuses_another_config_but_not_a_code_update(tmp_path):
    """Resuming: a changed setting is refused and named; a field the code gained (at its default)
    or dropped since the folder was written is not a change."""
    folder = tmp_path / "run"
    runs.start(folder, {"lr": 1e-4, "save_every": 50}, {}, defaults={})
    with pytest.raises(RuntimeError, match=r"lr: 0.0001 there, 0.0002 now"):
        runs.start(folder, {"lr": 2e-4, "save_every": 50}, {}, defaults={})
    defaults = {"lr": 1e-4, "optim": "adamw"}
    with pytest.raises(RuntimeError, match=r"optim: .*, 'sgd' now"):
        runs.start(folder, {"lr": 1e-4, "optim": "sgd"}, {}, defaults=defaults)
    runs.start(folder, {"lr": 1e-4, "optim": "adamw"}, {}, defaults=defaults)  # gained, dropped: resumes
    assert runs.read_json(folder / "config.json") == {"lr": 1e-4, "optim": "adamw"}


# ---- faults: a save cut short, a second process, a finished folder asked for another config -----

def _checkpoint(folder: Path, step: int) -> Path:
    """A small but complete trainer checkpoint folder (the files `runs.checkpoint_problems` reads)."""
    from safetensors.torch import save_file

    ckpt = folder / "checkpoints" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.arange(64, dtype=torch.float32)}, ckpt / "model.safetensors")
    torch.save({"state": {}}, ckpt / "optimizer.pt")
    torch.save({"last_epoch": step}, ckpt / "scheduler.pt")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    torch.save({"python": [1, 2, 3], "cpu": torch.zeros(8, dtype=torch.uint8)}, ckpt / "rng_state.pth")
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    return ckpt


def _cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("damage, named", [
    (lambda c: (_cut(c / "optimizer.pt", 0), (c / "trainer_state.json").unlink()),
     "trainer_state.json is missing; optimizer.pt is truncated (0 bytes)"),  # killed mid-save
    (lambda c: _cut(c / "model.safetensors", 200), "model.safetensors is truncated (200 bytes)"),  # disk full
    (lambda c: _cut(c / "optimizer.pt", 100), "optimizer.pt is truncated (100 bytes)"),
    (lambda c: (c / "optimizer.pt").unlink(), "optimizer.pt is missing"),  # removed by hand
    (lambda c: _cut(c / "trainer_state.json", 5), "trainer_state.json is cut short"),
    # every file of the checkpoint must load, not only the ones the trainer needs first
    (lambda c: _cut(c / "rng_state.pth", 40), "rng_state.pth is truncated (40 bytes)"),
    (lambda c: (c / "rng_state.pth").write_bytes(b"junk" * 50), "rng_state.pth is truncated (200 bytes)"),
    (lambda c: _cut(c / "config.json", 10), "config.json is cut short"),
])
def test_resume_takes_the_newest_complete_checkpoint_and_names_what_is_wrong(tmp_path, capsys, damage, named):
    assert runs.checkpoint_problems(_checkpoint(tmp_path, 8)) == []
    damage(_checkpoint(tmp_path, 12))
    assert runs.last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-8"
    out = capsys.readouterr().out
    assert f"skipping checkpoints/checkpoint-12: {named}" in out.replace(str(tmp_path) + "/", "")
    kept = list((tmp_path / "checkpoints-incomplete").iterdir())  # set aside, not deleted
    assert len(kept) == 1 and kept[0].name.startswith("checkpoint-12-")
    assert not (tmp_path / "checkpoints" / "checkpoint-12").exists()


def test_no_complete_checkpoint_is_refused_with_what_to_do(tmp_path):
    _cut(_checkpoint(tmp_path, 4) / "model.safetensors", 100)
    with pytest.raises(RuntimeError, match=r"checkpoint-4: model\.safetensors is truncated \(100 bytes\)\. "
                                           "Delete the checkpoints folder"):
        runs.last_checkpoint(tmp_path)


def test_a_run_killed_between_the_files_of_a_save_resumes_from_the_one_before(
        tiny_model_dir, runs_root, monkeypatch, capsys):
    """The fault lands after the weights and a 0-byte optimizer.pt, before trainer_state.json."""
    from transformers import Trainer

    kw = dict(eval_steps=2, max_steps=6)
    straight = train.run(smoke(tiny_model_dir, name="straight", **kw))
    real = Trainer._save_optimizer_and_scheduler

    def killed_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            (Path(output_dir) / "optimizer.pt").write_bytes(b"")
            raise KeyboardInterrupt("killed while saving checkpoint-4")
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", killed_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train.run(smoke(tiny_model_dir, name="broken", **kw))
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", real)
    broken = runs.run_dir("t", "broken")
    assert not (broken / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists()
    train.run(smoke(tiny_model_dir, name="broken", **kw))
    assert "skipping" in capsys.readouterr().out and runs.is_done(broken)
    assert runs.read_json(broken / "summary.json")["resumed_from"] == "checkpoint-2"
    loss = [[r["loss"] for r in runs.read_metrics(f) if "loss" in r] for f in (straight, broken)]
    assert loss[0] == loss[1] and len(loss[0]) == 6


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_disk_during_a_checkpoint_save_names_it_and_the_rerun_resumes(
        tiny_model_dir, runs_root, monkeypatch, capsys):
    """checkpoint-4's optimizer.pt meets a full disk (torch.save into /dev/full: its own error, which
    names no file): the error names the checkpoint and what to do; with space again, the same
    command resumes from checkpoint-2."""
    from transformers import Trainer

    real = Trainer._save_optimizer_and_scheduler

    def full_at_step_4(self, output_dir):
        if self.state.global_step == 4:
            (Path(output_dir) / "optimizer.pt").write_bytes(b"")  # what a full disk leaves
            torch.save(self.optimizer.state_dict(), "/dev/full")
        return real(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", full_at_step_4)
    cfg = smoke(tiny_model_dir, name="full", eval_steps=2, max_steps=6)
    with pytest.raises(SystemExit, match=r"error: cannot write \S*checkpoint-4: a write failed \(a full disk, or "
                                         r"no permission\) \(.*MB free there\)\. Free space .* it resumes from "
                                         "the newest complete checkpoint"):
        train.main(["--config", json.dumps(dataclasses.asdict(cfg))])
    monkeypatch.setattr(Trainer, "_save_optimizer_and_scheduler", real)
    train.run(cfg)
    folder = runs.run_dir("t", "full")
    assert "skipping" in capsys.readouterr().out and runs.is_done(folder)
    assert runs.read_json(folder / "summary.json")["resumed_from"] == "checkpoint-2"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_checkpoints_folder_is_named_with_what_to_do(tiny_model_dir, runs_root):
    from transformers import TrainerCallback

    class ReadOnlyAfterStep2(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            (Path(args.output_dir)).chmod(0o555)

    cfg = smoke(tiny_model_dir, name="read-only", eval_steps=2, max_steps=4)
    try:
        with pytest.raises(io.WriteError, match=r"cannot write \S*checkpoint-4: no permission to write there .* "
                                                "make the folder writable"):
            train.run(cfg, callbacks=[ReadOnlyAfterStep2()])
    finally:
        (runs.run_dir("t", "read-only") / "checkpoints").chmod(0o755)


def test_a_finished_folder_refuses_another_config(tiny_model_dir, runs_root):
    cfg = smoke(tiny_model_dir, name="done", max_steps=1, n_train=4, n_val=2)
    folder = train.run(cfg)
    with pytest.raises(RuntimeError, match=r"holds a finished run with another config \(lr: 0\.001 there, 0\.002"):
        train.run(dataclasses.replace(cfg, lr=2e-3))
    with pytest.raises(RuntimeError, match=r"finished run with another config \(task: 'viggo' there, 'sql' now"):
        train.run(dataclasses.replace(cfg, task="sql"))
    assert train.run(cfg) == folder  # the same config: skipped


def test_a_second_run_on_a_busy_folder_is_refused_naming_the_holder(tiny_model_dir, runs_root):
    """Two runs of one folder: the first (here, in a thread) holds it while the second, a real
    `python -m ftlib.train`, starts; the second exits naming the first's pid, and nothing is doubled."""
    import threading

    from transformers import TrainerCallback

    inside, release = threading.Event(), threading.Event()

    class Hold(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            inside.set()
            release.wait(120)

    cfg = smoke(tiny_model_dir, name="busy", max_steps=2, n_train=4, n_val=2, eval_steps=1)
    first = threading.Thread(target=train.run, args=(cfg,), kwargs={"callbacks": [Hold()]})
    first.start()
    try:
        assert inside.wait(120)
        cmd = [sys.executable, "-m", "ftlib.train", "--config", json.dumps(dataclasses.asdict(cfg))]
        env = {**os.environ, "FTLIB_RUNS": str(runs_root), "OMP_NUM_THREADS": "1"}
        second = subprocess.run(cmd, cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        release.set()
        first.join(120)
    assert second.returncode != 0
    assert f"is in use: training there is held by process {os.getpid()}" in second.stderr
    folder = runs.run_dir("t", "busy")
    steps = [r["step"] for r in runs.read_metrics(folder) if "loss" in r]
    assert runs.is_done(folder) and steps == [1, 2] and not (folder / "LOCK").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, capsys):
    from ftlib import io

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    (tmp_path / "LOCK").write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename}))
    with io.folder_lock(tmp_path):
        assert json.loads((tmp_path / "LOCK").read_text())["pid"] == os.getpid()
        with pytest.raises(io.FolderBusy, match=f"held by process {os.getpid()}"):
            with io.folder_lock(tmp_path):
                pass
    assert "which is gone: taking it over" in capsys.readouterr().out and not (tmp_path / "LOCK").exists()


def test_the_median_step_rate_ignores_a_step_that_waited(tmp_path, monkeypatch):
    """A step held up by another process (or a paused job) drags the mean rate, not the median one."""
    import types

    clock = iter([0.0, 1.0, 1.0, 31.0, 31.0, 32.0])  # three steps of 100 tokens: 1 s, 30 s, 1 s
    monkeypatch.setattr(runs.time, "perf_counter", lambda: next(clock, 32.0))
    logger = runs.RunLogger(tmp_path)
    state = types.SimpleNamespace(is_world_process_zero=True, global_step=0, num_input_tokens_seen=0)
    for _ in range(3):
        logger.on_step_begin(None, state, None)
        state.num_input_tokens_seen += 100
        state.global_step += 1
        logger.on_step_end(None, state, None)
    speed = logger.speed()
    assert speed["median_step_tokens_per_s"] == 100.0
    assert speed["tokens_per_s"] == round(300 / 32, 1)


class NanAt:
    """A callback that puts a NaN into the model's first weight at step k (a blow-up, on cue)."""

    def __new__(cls, k):
        from transformers import TrainerCallback

        class _Nan(TrainerCallback):
            def on_optimizer_step(self, args, state, control, model=None, **kw):  # step k's update
                if state.global_step == k - 1:
                    next(model.parameters()).data.view(-1)[0] = float("nan")
        return _Nan()


@pytest.mark.parametrize("lr, nan_at, good", [(1e30, None, 0), (1e-3, 3, 2)])
def test_a_loss_that_is_not_finite_stops_the_run_and_keeps_the_last_good_checkpoint(
        tiny_model_dir, runs_root, monkeypatch, lr, nan_at, good):
    """lr=1e30 (finite, so accepted) blows the weights up; a NaN weight at step 3 stands for a later
    blow-up. Training stops at the first loss or weight that is not finite, before saving it: no
    DONE, no model, the good checkpoints before it kept, and the command line exits non-zero with
    one line (lr=inf once trained to NaN weights, wrote DONE and exited 0)."""
    from safetensors.torch import load_file

    if nan_at:
        real = sft.make_trainer
        monkeypatch.setattr(sft, "make_trainer", lambda *a, callbacks=(), **k: real(
            *a, callbacks=[*callbacks, NanAt(nan_at)], **k))
    cfg = smoke(tiny_model_dir, name="blown", lr=lr, eval_steps=1, max_steps=6, warmup_steps=0)
    with pytest.raises(SystemExit) as e:
        train.main(["--config", json.dumps(dataclasses.asdict(cfg))])
    assert re.match(r"error: step \d: the (training loss|validation loss|weight \S+) (is nan, not a finite "
                    r"number|holds a value that is not finite); training stopped before saving it", str(e.value.code))
    folder = runs.run_dir("t", "blown")
    assert not runs.is_done(folder) and not (folder / "model").exists()
    kept = sorted((folder / "checkpoints").glob("checkpoint-*"))
    assert len(kept) == good and (not good or kept[-1].name == f"checkpoint-{nan_at - 1}")
    for ckpt in kept:
        assert all(torch.isfinite(w).all() for w in load_file(ckpt / "model.safetensors").values())
    if good:
        assert runs.last_checkpoint(folder) == kept[-1]

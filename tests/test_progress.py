"""Training shows a bar and a compact loss table, not one dict per step; the tied-head warning is dropped."""

import io
import logging
from types import SimpleNamespace

from ftlib import progress


def _state(step, max_steps=100):
    return SimpleNamespace(is_world_process_zero=True, global_step=step, max_steps=max_steps)


def test_text_progress_prints_about_ten_rows_and_every_evaluation():
    out = io.StringIO()
    cb = progress.TextProgress(file=out)
    cb.on_train_begin(None, _state(0), None)
    for step in range(1, 101):
        cb.on_log(None, _state(step), None, logs={"loss": 1.0 / step, "grad_norm": 3.0})
        cb.on_step_end(None, _state(step), None)
        if step % 50 == 0:
            cb.on_log(None, _state(step), None, logs={"eval_loss": 0.25})
    cb.on_train_end(None, _state(100), None)
    lines = [line.rsplit("\r", 1)[-1] for line in out.getvalue().splitlines()]
    rows = [line for line in lines if " min" in line and "/100" in line]
    assert len(rows) == 10 + 2  # a row every tenth, one per evaluation
    assert sum("0.2500" in r for r in rows) == 2
    assert "grad_norm" not in out.getvalue() and "{" not in out.getvalue()
    assert "100/100" in out.getvalue()  # the bar reached the end


def test_install_replaces_the_printer():
    from transformers.trainer_callback import PrinterCallback

    trainer = SimpleNamespace(cbs=[PrinterCallback()])
    trainer.remove_callback = lambda kind: trainer.cbs.__setitem__(
        slice(None), [c for c in trainer.cbs if not isinstance(c, kind)])
    trainer.add_callback = trainer.cbs.append
    progress.install(trainer)
    assert [type(c) for c in trainer.cbs] == [progress.TextProgress]  # not in a notebook here


def test_tied_head_warning_is_dropped_only_for_tied_models(caplog):
    log = logging.getLogger("transformers.trainer")
    log.filters = [f for f in log.filters if not isinstance(f, progress.TiedHeadFilter)]
    progress.quiet_tied_head(SimpleNamespace(config=SimpleNamespace(tie_word_embeddings=False)))
    assert not log.filters
    progress.quiet_tied_head(SimpleNamespace(config=SimpleNamespace(tie_word_embeddings=True)))
    progress.quiet_tied_head(SimpleNamespace(config=SimpleNamespace(tie_word_embeddings=True)))
    assert len(log.filters) == 1
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        log.warning("There were missing keys in the checkpoint model loaded: ['lm_head.weight'].")
        log.warning("There were missing keys in the checkpoint model loaded: ['model.norm.weight'].")
    assert [r.getMessage()[-22:] for r in caplog.records] == ["['model.norm.weight']."]
    log.filters = []


def test_a_training_run_prints_a_bar_and_a_table_not_dicts(tiny_model_dir, runs_root, capsys):
    from ftlib import train, train_config

    cfg = train_config.preset("smoke", model=str(tiny_model_dir), experiment="p", max_steps=20, n_train=16, n_val=2)
    train.run(cfg)
    out = capsys.readouterr().out
    assert progress.HEADER in out and "20/20" in out and " steps in " in out  # table, bar, summary line
    assert "'loss':" not in out and "grad_norm" not in out

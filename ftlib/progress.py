"""Training progress as a reader expects it: a progress bar and a compact loss table, not a log of dicts.

In a notebook kernel: transformers' own notebook callback (a live bar, and a table with one row per
evaluation). Elsewhere (a terminal, or a run in a child process whose output a notebook streams,
`train.run_in_fresh_process`): a text bar on stdout and about ten table rows. `sft.make_trainer`
installs one of them in place of the log printer that `disable_tqdm=True` would add.
"""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.utils import is_in_notebook
from transformers.utils.notebook import NotebookProgressCallback

ROWS = 10  # table rows between evaluations in text mode: enough to see the curve, one screen


def table_row(step: int, max_steps: int, train_loss: float | None, val_loss: float | None, minutes: float) -> str:
    """One row of the text loss table.

    >>> table_row(30, 300, 0.41234, None, 1.25)
    '    30/300       0.4123         —     1.2 min'
    """
    val = f"{val_loss:10.4f}" if val_loss is not None else f"{'—':>10}"
    train = f"{train_loss:10.4f}" if train_loss is not None else f"{'—':>10}"
    return f"{step:>6}/{max_steps:<6}{train}{val}{minutes:>8.1f} min"


HEADER = f"{'step':>6}/{'total':<6}{'train loss':>10}{'val loss':>10}{'elapsed':>12}"


class TextProgress(TrainerCallback):
    """A progress bar on stdout plus a compact loss table: a row every tenth of the run (the mean
    training loss since the last row) and one per evaluation (the validation loss)."""

    def __init__(self, rows: int = ROWS, file=None):
        self.rows, self.file = rows, file or sys.stdout
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.every = max(1, state.max_steps // self.rows)
        self.losses: list[float] = []
        self.t0 = time.perf_counter()
        print(HEADER, file=self.file, flush=True)
        self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", desc="training",
                        file=self.file, mininterval=2.0, ncols=90, leave=True)

    def _row(self, state, train_loss, val_loss) -> None:
        minutes = (time.perf_counter() - self.t0) / 60
        self.bar.write(table_row(state.global_step, state.max_steps, train_loss, val_loss, minutes), file=self.file)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        if "loss" in logs:
            self.losses.append(float(logs["loss"]))
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)
        if "eval_loss" in logs:
            self._row(state, None, float(logs["eval_loss"]))

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is None:
            return
        self.bar.update(state.global_step - self.bar.n)
        if state.global_step % self.every == 0 and self.losses:
            self._row(state, sum(self.losses) / len(self.losses), None)
            self.losses = []

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def callback() -> TrainerCallback:
    """The progress display for where this runs: the notebook's bar and table, else TextProgress."""
    return NotebookProgressCallback() if is_in_notebook() else TextProgress()


def install(trainer) -> None:
    """Replace the Trainer's own printer or bars with `callback()`."""
    for kind in (PrinterCallback, ProgressCallback, NotebookProgressCallback):
        trainer.remove_callback(kind)
    trainer.add_callback(callback())


class TiedHeadFilter(logging.Filter):
    """Drops the Trainer's warning that a checkpoint lacks `lm_head.weight` when the model ties its
    output layer to the input embeddings: the head is the embedding matrix, so nothing is missing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "missing keys in the checkpoint model loaded: ['lm_head.weight']" not in record.getMessage()


def quiet_tied_head(model) -> None:
    """Install TiedHeadFilter on the Trainer's logger when `model` ties its embeddings (once)."""
    config = getattr(model, "config", None)
    tied = getattr(config, "tie_word_embeddings", False) or getattr(
        getattr(config, "get_text_config", lambda: None)(), "tie_word_embeddings", False)
    log = logging.getLogger("transformers.trainer")
    if tied and not any(isinstance(f, TiedHeadFilter) for f in log.filters):
        log.addFilter(TiedHeadFilter())

"""How a training run shows in a notebook: the Trainer's progress bar, without its table of per-step losses.

In a notebook, Hugging Face's ``Trainer`` draws a progress bar and, under it, an HTML table with one row per
logged step (40 rows for notebook 03's default run). The table repeats what ``metrics.jsonl`` holds and what the
notebook's plots show better, so ``hide_trainer_log_table()`` swaps in a progress callback that keeps the bar
and drops the table. Trainers created after the call use it; outside a notebook nothing changes.
"""

from __future__ import annotations

import transformers.trainer
from transformers.utils.notebook import NotebookProgressCallback


class ProgressBarOnly(NotebookProgressCallback):
    """``NotebookProgressCallback`` without the table: no header, no line per logged step (evaluation lines stay)."""

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        self.training_tracker.inner_table = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        return None


def hide_trainer_log_table() -> type:
    """In a notebook, make Trainers created from now on show only their progress bar; return the progress
    callback they will use. Outside a notebook (plain tqdm bars, no table) nothing changes.

    >>> hide_trainer_log_table().__name__  # a doctest runs outside a notebook
    'ProgressCallback'
    """
    if issubclass(transformers.trainer.DEFAULT_PROGRESS_CALLBACK, NotebookProgressCallback):
        transformers.trainer.DEFAULT_PROGRESS_CALLBACK = ProgressBarOnly
    return transformers.trainer.DEFAULT_PROGRESS_CALLBACK

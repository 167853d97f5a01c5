"""Resuming a training run: the newest complete checkpoint and a ``metrics.jsonl`` cut back to it.

A checkpoint is the HF Trainer's own (``checkpoint-N/``): the model, ``optimizer.pt`` and ``scheduler.pt`` (or
DeepSpeed's ``global_stepN/``), the RNG state of every process (``rng_state*.pth``) and ``trainer_state.json``,
which the Trainer writes last; ``trainer.train(resume_from_checkpoint=...)`` restores all of it and skips the
batches already trained on. A checkpoint is *complete* when all of these are there and ``trainer_state.json``
reads back with ``global_step == N``; a kill while saving leaves an incomplete one, which is passed over.

``metrics.jsonl`` gets one line per logged step, appended as the run goes, so after a kill it holds the steps
since the last checkpoint too, maybe with a torn last line. Before resuming it is rewritten to the log the
checkpoint holds (``trainer_state.json``'s ``log_history``, the very records the lines were written from), so
the resumed run appends the later steps again exactly once.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
METRICS = "metrics.jsonl"


def checkpoints(out: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder in ``out``, oldest first."""
    out = Path(out)
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))] \
        if out.is_dir() else []
    return sorted(found)


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` cannot resume a run (None when it is complete)."""
    folder = Path(folder)
    match = CHECKPOINT.match(folder.name)
    if not any((folder / name).exists() for name in ("model.safetensors", "model.safetensors.index.json",
                                                      "adapter_model.safetensors", "pytorch_model.bin")):
        return "no model weights"
    if not (folder / "optimizer.pt").exists() and not any(folder.glob("global_step*")):
        return "no optimizer state (saved with save_only_model: true, which keeps the model only)"
    if not (folder / "scheduler.pt").exists() and not any(folder.glob("global_step*")):
        return "no scheduler state"
    if not any(folder.glob("rng_state*.pth")):
        return "no RNG state"
    try:
        state = json.loads((folder / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return f"no readable {TRAINER_STATE} (the save was interrupted)"
    if match and state.get("global_step") != int(match.group(1)):
        return f"{TRAINER_STATE} says step {state.get('global_step')}"
    return None


def newest_complete(out: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The newest complete checkpoint in ``out`` (None when there is none) and, for each newer or unusable
    one, why it was passed over."""
    passed = []
    for _, folder in reversed(checkpoints(out)):
        problem = checkpoint_problem(folder)
        if problem is None:
            return folder, passed
        passed.append(f"{folder.name}: {problem}")
    return None, passed


def restore_metrics(out: str | os.PathLike, checkpoint: str | os.PathLike | None) -> int:
    """Rewrite ``out/metrics.jsonl`` to the log held by ``checkpoint`` (empty without one), atomically and in
    the layout the trainer writes (one JSON object per line, keys sorted); returns the number of lines."""
    history = []
    if checkpoint is not None:
        history = json.loads((Path(checkpoint) / TRAINER_STATE).read_text())["log_history"]
    path = Path(out) / METRICS
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        for record in history:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(history)


def has_progress(out: str | os.PathLike) -> bool:
    """Whether a training folder holds any trained step: a metrics line or a checkpoint folder."""
    out = Path(out)
    metrics = out / METRICS
    return bool(checkpoints(out)) or (metrics.exists() and metrics.stat().st_size > 0)

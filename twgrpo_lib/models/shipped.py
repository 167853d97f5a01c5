"""The tiny Qwen2.5-VL checkpoint shipped with the kit: dense vision pre-training, then the binding stage.

It answers in the paper's format (``<think>...</think><answer>...</answer>``), so RL starts with a non-zero
format reward, and its answers depend on the video: on a fresh mini-CLEVRER seed it is right more often with
the question's own video than with another one, mostly through the descriptive questions (measured, per
question type, in ``twgrpo_lib/models/assets/README.md``).

``twgrpo_lib/models/assets/tiny-qwen2.5-vl-mini-clevrer/`` holds the model (safetensors), the processor and the
tokenizer; ``twgrpo_lib/models/assets/README.md`` gives the commands that rebuild it and its measured numbers.
It loads offline with the Auto classes, so anything that takes a model path takes ``shipped_path()``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_NAME = "tiny-qwen2.5-vl-mini-clevrer"


def shipped_path() -> Path:
    """Folder of the shipped checkpoint inside the installed package."""
    return Path(str(resources.files("twgrpo_lib.models") / "assets" / SHIPPED_NAME))


def shipped_checkpoint() -> Path | None:
    """The shipped checkpoint's folder when it holds a model, else None (a source tree without the weights)."""
    path = shipped_path()
    return path if (path / "model.safetensors").is_file() else None


def load_shipped(**options):
    """(model, processor) of the shipped checkpoint, offline, in eval mode (``qwen.load_model`` options)."""
    from twgrpo_lib.models.qwen import load_model  # torch and transformers: only when the model is loaded

    path = shipped_path()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: the shipped checkpoint is missing (see twgrpo_lib/models/assets/README.md)")
    return load_model(path, **options)

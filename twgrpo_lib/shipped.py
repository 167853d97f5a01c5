"""The tiny Qwen2.5-VL checkpoint shipped with the kit: dense vision pre-training, then the binding stage.

It answers in the paper's format (``<think>...</think><answer>...</answer>``), so RL starts with a non-zero
format reward, and its answers depend on the video (right-video accuracy above swapped-video accuracy on a
fresh mini-CLEVRER seed), mostly through the descriptive questions; over all question types it is not yet
above an informed guesser (measured in ``twgrpo_lib/assets/README.md``).

``twgrpo_lib/assets/tiny-qwen2.5-vl-mini-clevrer/`` holds the model (safetensors), the processor and the
tokenizer; ``twgrpo_lib/assets/README.md`` gives the commands that rebuild it and its measured numbers.
It loads offline with the Auto classes, so anything that takes a model path takes ``shipped_path()``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_NAME = "tiny-qwen2.5-vl-mini-clevrer"


def shipped_path() -> Path:
    """Folder of the shipped checkpoint inside the installed package."""
    return Path(str(resources.files("twgrpo_lib") / "assets" / SHIPPED_NAME))


def load_shipped(dtype=None):
    """(model, processor) of the shipped checkpoint, offline; the model in eval mode, float32 by default."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = shipped_path()
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: the shipped checkpoint is missing (see twgrpo_lib/assets/README.md)")
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype or torch.float32, local_files_only=True)
    return model.eval(), AutoProcessor.from_pretrained(path, local_files_only=True)

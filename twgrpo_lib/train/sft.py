"""Supervised warm start before RL: the answer format and templated reasoning of format-A items.

Each item (``video``, ``problem``, ``solution``, ``reasoning``) becomes the paper's training prompt
(``prompts.training_prompt``, template "mixed", no system prompt) with the video, and the target
``<think>reasoning</think><answer>letters</answer>`` (``grounding.item_example``). The loop is
``supervised.train``, the one shared with the visual pre-training: loss on the target tokens only.

Not in the paper: its Qwen2.5-VL-7B already answers in the format zero-shot, so RL starts with non-zero
reward; a tiny model trained here needs this step for the same start.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from twgrpo_lib.eval.grounding import item_example
from twgrpo_lib.train.supervised import (TrainConfig, EncodedVideoCache, VideoSettings, add_training_arguments, load_model,
                                   save_checkpoint, train, training_config)


def load_items(path: str | Path) -> list[dict]:
    """A format-A JSON list, checked: every item needs ``video``, ``problem`` and ``solution``."""
    path = Path(path)
    try:
        items = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of items, got {type(items).__name__}")
    for i, item in enumerate(items):
        for key in ("video", "problem", "solution"):
            if not isinstance(item, dict) or not isinstance(item.get(key), str):
                raise ValueError(f"{path}: item {i}: field {key!r} missing or not a string")
    return items


def run_sft(model_dir: str | Path, data: str | Path, out: str | Path, config: TrainConfig,
            settings: VideoSettings = VideoSettings(), video_root: str | Path | None = None,
            mode: str = "mixed") -> list[dict]:
    """Fine-tune the checkpoint in ``model_dir`` on the items of ``data``; save to ``out``; return the log."""
    items = load_items(data)
    root = Path(data).parent if video_root is None else Path(video_root)
    examples = [item_example(item, root, mode) for item in items]
    model, processor = load_model(model_dir)
    cache = EncodedVideoCache(processor, settings)
    records = train(model, processor, cache, examples, config)
    save_checkpoint(model, processor, out, records, {"stage": "sft", "data": str(data), "mode": mode,
                                                     "items": len(items), "videos": len(cache)}, config, settings)
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint folder (e.g. the output of twgrpo pretrain)")
    parser.add_argument("--data", required=True, help="format-A JSON list with reasoning targets")
    parser.add_argument("--video-root", default=None, help="folder the items' video paths are relative to "
                                                           "(default: the data file's folder)")
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--mode", default="mixed", choices=["mixed", "single", "multi"], help="training template")
    add_training_arguments(parser, steps=600, lr=1e-3)


def run(args: argparse.Namespace) -> int:
    config, settings = training_config(args)
    run_sft(args.model, args.data, args.out, config, settings, args.video_root, args.mode)
    print(f"checkpoint written to {args.out}")
    return 0

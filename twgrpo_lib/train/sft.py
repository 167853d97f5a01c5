"""Supervised warm start before RL: the answer format and templated reasoning of format-A items.

Each item (``video``, ``problem``, ``solution``, ``reasoning``) becomes the paper's training prompt
(``prompts.training_prompt``, template "mixed", no system prompt) with the video, and the target
``<think>reasoning</think><answer>letters</answer>`` (``data.examples.item_example``). The loop is
``supervised.train``, the one shared with the visual pre-training: loss on the target tokens only.

Not in the paper: its Qwen2.5-VL-7B already answers in the format zero-shot, so RL starts with non-zero
reward; a tiny model trained here needs this step for the same start.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from twgrpo_lib.core.prompts import TRAIN_TEMPLATES
from twgrpo_lib.data.examples import item_example
from twgrpo_lib.data.formats import load_items
from twgrpo_lib.data.video import VideoSettings
from twgrpo_lib.models.qwen import EncodedVideoCache, load_model
from twgrpo_lib.models.tiny import TINY_VIDEO
from twgrpo_lib.train.supervised import TrainConfig, add_training_arguments, save_checkpoint, train, training_config


def run_sft(model_dir: str | Path, data: str | Path, out: str | Path, config: TrainConfig,
            settings: VideoSettings = TINY_VIDEO, video_root: str | Path | None = None,
            template: str = "mixed") -> list[dict]:
    """Fine-tune the checkpoint in ``model_dir`` on the format-A items of ``data`` (video paths relative to
    ``video_root``, by default the data file's folder); save to ``out``; return the log."""
    root = Path(data).parent if video_root is None else Path(video_root)
    items = load_items(data, video_root=root, format="A")
    examples = [item_example(item, ".", template) for item in items]
    model, processor = load_model(model_dir, device="cpu", dtype=torch.float32)
    cache = EncodedVideoCache(processor, settings)
    records = train(model, processor, cache, examples, config)
    save_checkpoint(model, processor, out, records, {"stage": "sft", "data": str(data), "template": template,
                                                     "items": len(items), "videos": len(cache)}, config, settings)
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint folder (e.g. the output of twgrpo pretrain)")
    parser.add_argument("--data", required=True, help="format-A JSON list with reasoning targets")
    parser.add_argument("--video-root", default=None, help="folder the items' video paths are relative to "
                                                           "(default: the data file's folder)")
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--template", default="mixed", choices=sorted(TRAIN_TEMPLATES),
                        help="training prompt (docs/method.md §7): mixed, single or multi")
    add_training_arguments(parser, steps=600, lr=1e-3)


def run(args: argparse.Namespace) -> int:
    config, settings = training_config(args)
    run_sft(args.model, args.data, args.out, config, settings, args.video_root, args.template)
    print(f"checkpoint written to {args.out}")
    return 0

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
from twgrpo_lib.data.run_folder import claim, decide
from twgrpo_lib.data.video import VideoSettings, usable_items
from twgrpo_lib.models.qwen import EncodedVideoCache, checkpoint_path, load_model
from twgrpo_lib.models.tiny import TINY_VIDEO
from twgrpo_lib.train.supervised import (
    TrainConfig,
    add_training_arguments,
    check_settings,
    finished_log,
    run_identity,
    save_checkpoint,
    train,
    training_config,
)


def run_sft(model_dir: str | Path, data: str | Path, out: str | Path, config: TrainConfig,
            settings: VideoSettings = TINY_VIDEO, video_root: str | Path | None = None,
            template: str = "mixed", *, force: bool = False, skip_bad_videos: bool = False) -> list[dict]:
    """Fine-tune the checkpoint in ``model_dir`` on the format-A items of ``data`` (video paths relative to
    ``video_root``, by default the data file's folder); save to ``out``; return the log.

    Checked first: the settings, the model path, the data, every video (``skip_bad_videos`` trains without the
    bad ones instead of refusing) and ``out`` (another run there is refused unless ``force``)."""
    check_settings(config, settings)
    model_dir = checkpoint_path(model_dir)
    root = Path(data).parent if video_root is None else Path(video_root)
    items = load_items(data, video_root=root, format="A")
    identity = run_identity(model_dir, [data], config, settings, template=template)
    if decide(Path(out), "sft", identity, force=force) == "same" and (log := finished_log(out)) is not None:
        print(f"{out} holds this run, finished; nothing to train (--force moves it aside and trains again)")
        return log
    items, report = usable_items(items, str(data), skip_bad=skip_bad_videos)
    if report.bad:
        print(f"skipping {report.bad} of {report.total} items with an unusable video (--skip-bad-videos)")
    examples = [item_example(item, ".", template) for item in items]
    with claim(out, "sft", identity, force=force):
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
    run_sft(args.model, args.data, args.out, config, settings, args.video_root, args.template, force=args.force,
            skip_bad_videos=args.skip_bad_videos)
    print(f"checkpoint written to {args.out}")
    return 0

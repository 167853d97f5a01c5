"""Supervised next-token training of a Qwen2.5-VL model on (video, prompt, target) examples.

One loop serves both the visual pre-training curriculum (``pretrain.py``) and the supervised warm start
(``sft.py``): they differ only in how they build their ``Example`` lists (``data.examples``).

- Each video is decoded and preprocessed once (``models.qwen.EncodedVideoCache``): the processor's pixel
  patches, grid and seconds per temporal patch are kept in memory and reused by every example and epoch.
- The loss covers the target tokens only (the assistant's reply and its end-of-turn token).
- AdamW with linear warm-up and cosine decay; batches of several videos.
- A curriculum is a ``stage`` per example: stage s joins the pool of sampled examples after the share
  ``s / n_stages`` of the steps, earlier stages stay in the pool (easy first, never forgotten).
- Before any work: the settings are checked (``BOUNDS``, also when the flags are parsed), every video is
  checked (``video.usable_items``), and the output folder belongs to one run (``data.run_folder``: another
  model, data content or setting there is refused unless ``--force``; the same run is trained again). The
  loop does not resume: a killed run is started again.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from twgrpo_lib.data.arguments import above, at_least, check
from twgrpo_lib.data.examples import Example
from twgrpo_lib.data.run_folder import file_sha256, model_identity
from twgrpo_lib.data.video import VIDEO_MIN_FRAMES, VideoSettings
from twgrpo_lib.models.qwen import EncodedVideoCache, build_batch, per_example_loss
from twgrpo_lib.models.tiny import TINY_VIDEO


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` then cosine decay to 10% of it.

    >>> cosine_lr(0, 100, 1.0, 10), cosine_lr(10, 100, 1.0, 10), round(cosine_lr(100, 100, 1.0, 10), 3)
    (0.1, 1.0, 0.1)
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    questions_per_video: int = 4  # a batch holds batch_size / questions_per_video videos, each encoded once
    lr: float = 2e-3
    warmup: int = 50
    weight_decay: float = 0.01
    seed: int = 0
    log_every: int = 50
    max_minutes: float | None = None  # stop early (the schedule is not stretched) when the wall clock runs out
    train_vision: bool = False  # False: the vision tower (and merger) stays frozen, as in the paper's runs
    vision_lr_scale: float = 0.1  # when trained: the vision tower's learning rate relative to ``lr``


# Settings that cannot work, refused when the flags are parsed and before a model is loaded.
BOUNDS = {"steps": at_least(1), "batch_size": at_least(1), "questions_per_video": at_least(1), "lr": above(0),
          "warmup": at_least(0), "log_every": at_least(1), "max_minutes": above(0),
          "vision_lr_scale": at_least(0, float), "fps": above(0), "max_frames": at_least(VIDEO_MIN_FRAMES),
          "max_pixels": at_least(28 * 28)}


def check_settings(config: TrainConfig, settings: VideoSettings) -> None:
    check(config, BOUNDS)
    check(settings, BOUNDS)


def run_identity(model: str, data_files: Sequence[str | Path], config: TrainConfig, settings: VideoSettings,
                 **extra) -> dict:
    """What makes a supervised run (``OUT/run.json``): the model, the data files' content, the settings."""
    return {"model": model_identity(model), "data_sha256": {Path(f).name: file_sha256(f) for f in data_files},
            "train": {k: v for k, v in asdict(config).items() if k != "log_every"}, "video": asdict(settings),
            **extra}


def train(model, processor, cache: EncodedVideoCache, examples: Sequence[Example], config: TrainConfig,
          log: Callable[[dict], None] = print) -> list[dict]:
    """Train ``model`` in place on ``examples``; returns the logged records (step, loss, lr, seconds)."""
    if not examples:
        raise ValueError("no training examples")
    rng = random.Random(config.seed)
    n_stages = max(e.stage for e in examples) + 1
    by_stage = []  # per stage: video -> the examples of that video open at this stage
    for s in range(n_stages):
        pool: dict[str, list[Example]] = {}
        for e in examples:
            if e.stage <= s:
                pool.setdefault(e.video, []).append(e)
        by_stage.append(pool)
    n_videos = max(1, config.batch_size // config.questions_per_video)
    visual = {id(p) for p in model.model.visual.parameters()}
    for p in model.model.visual.parameters():
        p.requires_grad_(config.train_vision)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = []
    for is_visual, scale in ((False, 1.0), (True, config.vision_lr_scale)):
        for decays in (True, False):
            chosen = [p for p in params if (id(p) in visual) == is_visual and (p.dim() >= 2) == decays]
            if chosen:
                groups.append({"params": chosen, "weight_decay": config.weight_decay if decays else 0.0,
                               "lr_scale": scale})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.95))
    model.train()
    records, running, start = [], [], time.time()
    for step in range(config.steps):
        stage = min(n_stages - 1, step * n_stages // config.steps)
        pool = by_stage[stage]
        batch_examples = [e for v in rng.sample(sorted(pool), min(n_videos, len(pool)))
                          for e in rng.sample(pool[v], min(config.questions_per_video, len(pool[v])))]
        lr = cosine_lr(step, config.steps, config.lr, config.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        loss = per_example_loss(model, build_batch(processor, cache, batch_examples)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running.append(loss.item())
        elapsed = time.time() - start
        out_of_time = config.max_minutes is not None and elapsed > 60 * config.max_minutes
        if (step + 1) % config.log_every == 0 or step == config.steps - 1 or out_of_time:
            record = {"step": step + 1, "stage": stage, "loss": sum(running) / len(running), "lr": lr,
                      "seconds": round(elapsed, 1)}
            records.append(record)
            log(record)
            running = []
        if out_of_time:
            break
    model.eval()
    return records


def save_checkpoint(model, processor, out: str | Path, records: list[dict], info: dict, config: TrainConfig,
                    settings: VideoSettings) -> Path:
    """Model (safetensors), processor and ``training.json`` (settings, info and the loss log) in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    log = {**info, "train": asdict(config), "video": asdict(settings), "log": records}
    (out / "training.json").write_text(json.dumps(log, indent=1) + "\n")
    return out


def finished_log(out: str | Path) -> list[dict] | None:
    """The loss log of the finished run in ``out`` (``save_checkpoint`` writes ``training.json`` last), else None."""
    path = Path(out) / "training.json"
    return json.loads(path.read_text())["log"] if path.is_file() else None


def add_training_arguments(parser: argparse.ArgumentParser, *, steps: int, lr: float) -> None:
    """The loop's options, shared by ``twgrpo pretrain`` and ``twgrpo sft``."""
    d, v = TrainConfig(), TINY_VIDEO
    parser.add_argument("--steps", type=BOUNDS["steps"], default=steps, help=f"optimizer steps (default {steps})")
    parser.add_argument("--batch-size", type=BOUNDS["batch_size"], default=d.batch_size,
                        help=f"examples per step (default {d.batch_size})")
    parser.add_argument("--lr", type=BOUNDS["lr"], default=lr, help=f"peak learning rate, AdamW (default {lr})")
    parser.add_argument("--questions-per-video", type=BOUNDS["questions_per_video"], default=d.questions_per_video,
                        help="examples per video in a batch; the video is encoded once "
                             f"(default {d.questions_per_video})")
    parser.add_argument("--warmup", type=BOUNDS["warmup"], default=d.warmup, help=f"warm-up steps (default {d.warmup})")
    parser.add_argument("--seed", type=int, default=d.seed, help="sampling seed")
    parser.add_argument("--max-minutes", type=BOUNDS["max_minutes"], default=None,
                        help="stop after this wall-clock time")
    parser.add_argument("--log-every", type=BOUNDS["log_every"], default=d.log_every, help="steps between log lines")
    parser.add_argument("--train-vision", action="store_true",
                        help="also train the vision tower and merger (default: frozen; trained from scratch on CPU "
                             "it collapses to a near-constant output)")
    parser.add_argument("--fps", type=BOUNDS["fps"], default=v.fps, help=f"frames sampled per second (default {v.fps})")
    parser.add_argument("--max-frames", type=BOUNDS["max_frames"], default=v.max_frames, help=f"default {v.max_frames}")
    parser.add_argument("--max-pixels", type=BOUNDS["max_pixels"], default=v.max_pixels,
                        help=f"per frame (default {v.max_pixels})")
    parser.add_argument("--skip-bad-videos", action="store_true",
                        help="train without the examples whose video is missing, undecodable or too short "
                             "(default: refuse and list them)")
    parser.add_argument("--force", action="store_true",
                        help="train over another run in OUT: move it aside to OUT.old-<time> first")


def training_config(args: argparse.Namespace) -> tuple[TrainConfig, VideoSettings]:
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, questions_per_video=args.questions_per_video,
                         lr=args.lr, warmup=args.warmup,
                         seed=args.seed, log_every=args.log_every, max_minutes=args.max_minutes,
                         train_vision=args.train_vision)
    settings = VideoSettings(fps=args.fps, max_frames=args.max_frames, max_pixels=args.max_pixels)
    check_settings(config, settings)
    return config, settings

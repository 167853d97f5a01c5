"""Supervised next-token training of a Qwen2.5-VL model on (video, prompt, target) examples.

One loop serves both the visual pre-training curriculum (``pretrain.py``) and the supervised warm start
(``sft.py``): they differ only in how they build their ``Example`` lists.

- Each video is decoded and preprocessed once (``EncodedVideoCache``): the processor's pixel patches, grid and
  seconds per temporal patch are kept in memory and reused by every example and epoch.
- The loss covers the target tokens only (the assistant's reply and its end-of-turn token).
- AdamW with linear warm-up and cosine decay; batches of several videos.
- A curriculum is a ``stage`` per example: stage s joins the pool of sampled examples after the share
  ``s / n_stages`` of the steps, earlier stages stay in the pool (easy first, never forgotten).
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

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One supervised example: the video file, the user's text and the assistant's target text."""

    video: str
    prompt: str
    target: str
    stage: int = 0


@dataclass(frozen=True)
class VideoSettings:
    """How frames are sampled and sized before the processor sees them (Qwen2.5-VL: 2 fps, 16 frames)."""

    fps: float = 2.0
    max_frames: int = 16
    max_pixels: int = 112 * 112


class EncodedVideoCache:
    """Decoded and preprocessed videos, keyed by path: each file is read once per process.

    ``get(path)`` returns ``pixel_values_videos`` (patches, C*2*14*14), ``video_grid_thw`` (1, 3) and
    ``second_per_grid_ts`` (1,): exactly what a Qwen2.5-VL forward needs for one video.
    """

    def __init__(self, processor, settings: VideoSettings = VideoSettings()):
        self.processor = processor
        self.settings = settings
        self._store: dict[str, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._store)

    def get(self, path: str) -> dict[str, torch.Tensor]:
        if path not in self._store:
            self._store[path] = encode_video(self.processor, path, self.settings)
        return self._store[path]


def encode_video(processor, path: str, settings: VideoSettings) -> dict[str, torch.Tensor]:
    """Decode ``path`` with true timestamps (``twgrpo_lib.data.video``) and run the processor's video half on it."""
    from twgrpo_lib.data.video import load_video, processor_video_kwargs

    clip = load_video(path, fps=settings.fps, max_frames=settings.max_frames, max_pixels=settings.max_pixels)
    out = processor.video_processor(**processor_video_kwargs([clip]), return_tensors="pt")
    seconds = processor.video_processor.temporal_patch_size / clip.sample_fps  # = the processor's own value
    return {
        "pixel_values_videos": out["pixel_values_videos"].to(torch.float16),  # halves the cache; cast back per batch
        "video_grid_thw": out["video_grid_thw"],
        "second_per_grid_ts": torch.tensor([seconds], dtype=torch.float32),
    }


def chat_prompt(processor, prompt: str, system: str | None = None) -> str:
    """The chat-formatted text of a user turn holding one video then ``prompt``, ready for the reply."""
    messages = [] if system is None else [{"role": "system", "content": [{"type": "text", "text": system}]}]
    messages.append({"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt}]})
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def end_of_turn(processor) -> str:
    """The token that closes an assistant turn in the chat template (``<|im_end|>`` for Qwen)."""
    return "<|im_end|>"


def pad_token_id(processor) -> int:
    tok = processor.tokenizer
    return tok.pad_token_id if tok.pad_token_id is not None else tok.convert_tokens_to_ids(end_of_turn(processor))


def encode_text(processor, chat_text: str, grid_thw: torch.Tensor) -> list[int]:
    """Token ids of ``chat_text`` with its one ``<|video_pad|>`` expanded to the video's merged-token count."""
    merge = processor.video_processor.merge_size
    n_tokens = int(grid_thw.prod()) // (merge * merge)
    pad = processor.video_token
    if chat_text.count(pad) != 1:
        raise ValueError(f"expected exactly one {pad} in the chat text, found {chat_text.count(pad)}")
    return processor.tokenizer(chat_text.replace(pad, pad * n_tokens), add_special_tokens=False)["input_ids"]


def build_batch(processor, cache: EncodedVideoCache, examples: Sequence[Example], *,
                videos: Sequence[str] | None = None, system: str | None = None,
                with_targets: bool = True) -> dict[str, torch.Tensor]:
    """Model inputs for ``examples``; ``videos`` (default: each example's own) picks the video shown.

    With targets: right padding and ``labels`` (-100 outside the target tokens). Without: left padding,
    prompt only, ready for ``generate``. Pixel inputs hold each distinct video once; ``row_video`` maps
    rows to them (``forward_logits`` encodes a video once however many questions share it).
    """
    videos = [e.video for e in examples] if videos is None else list(videos)
    tok = processor.tokenizer
    pad_id = pad_token_id(processor)
    unique = list(dict.fromkeys(videos))
    rows, labels = [], []
    for example, video in zip(examples, videos, strict=True):
        grid = cache.get(video)["video_grid_thw"][0]
        prompt_ids = encode_text(processor, chat_prompt(processor, example.prompt, system), grid)
        target = example.target + end_of_turn(processor)
        target_ids = tok(target, add_special_tokens=False)["input_ids"] if with_targets else []
        rows.append(prompt_ids + target_ids)
        labels.append([IGNORE] * len(prompt_ids) + target_ids)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)                  # (B, L)
    mask = torch.zeros((len(rows), width), dtype=torch.long)                       # (B, L)
    lab = torch.full((len(rows), width), IGNORE, dtype=torch.long)                 # (B, L)
    for i, (row, lrow) in enumerate(zip(rows, labels)):
        sl = slice(0, len(row)) if with_targets else slice(width - len(row), width)
        ids[i, sl] = torch.tensor(row)
        mask[i, sl] = 1
        lab[i, sl] = torch.tensor(lrow)
    encoded = [cache.get(v) for v in unique]
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": (ids == processor.video_token_id).long() * 2 * mask,  # 0 text, 2 video
        "pixel_values_videos": torch.cat([v["pixel_values_videos"].float() for v in encoded]),  # (patches, C*2*14*14)
        "video_grid_thw": torch.cat([v["video_grid_thw"] for v in encoded]),                   # (U, 3)
        "second_per_grid_ts": torch.cat([v["second_per_grid_ts"] for v in encoded]),           # (U,)
        "row_video": torch.tensor([unique.index(v) for v in videos]),                          # (B,)
    }
    if with_targets:
        batch["labels"] = lab
    return batch


def model_inputs(model, batch: dict[str, torch.Tensor]) -> dict:
    """Keyword arguments of ``model(...)`` / ``model.generate(...)``: each distinct video encoded once."""
    rows = batch["row_video"]
    encoded = model.model.get_video_features(batch["pixel_values_videos"], batch["video_grid_thw"], return_dict=True)
    encoded.pooler_output = tuple(encoded.pooler_output[j] for j in rows.tolist())  # one (tokens, H) per row
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "mm_token_type_ids": batch["mm_token_type_ids"],
        "video_grid_thw": batch["video_grid_thw"][rows],                           # (B, 3)
        "second_per_grid_ts": batch["second_per_grid_ts"][rows],                   # (B,)
        "mm_encoder_outputs": {"video": encoded},
    }


def per_example_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token loss over each example's target tokens, shape (B,)."""
    logits = model(**model_inputs(model, batch)).logits[:, :-1].float()           # (B, L-1, V)
    labels = batch["labels"][:, 1:]                                                # (B, L-1)
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    counts = (labels != IGNORE).sum(1).clamp(min=1)                                # (B,)
    return nll.sum(1) / counts


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


@torch.no_grad()
def mean_loss(model, processor, cache: EncodedVideoCache, examples: Sequence[Example], *,
              videos: Sequence[str] | None = None, batch_size: int = 16) -> float:
    """Mean per-example target loss; ``videos`` replaces each example's video (the swapped control)."""
    videos = [e.video for e in examples] if videos is None else list(videos)
    losses = []
    for i in range(0, len(examples), batch_size):
        batch = build_batch(processor, cache, examples[i:i + batch_size], videos=videos[i:i + batch_size])
        losses.append(per_example_loss(model, batch))
    return torch.cat(losses).mean().item()


@torch.no_grad()
def generate(model, processor, cache: EncodedVideoCache, examples: Sequence[Example], *,
             videos: Sequence[str] | None = None, max_new_tokens: int = 64, batch_size: int = 16,
             system: str | None = None) -> list[str]:
    """Greedy completions (text after the prompt, special tokens removed) for ``examples``."""
    videos = [e.video for e in examples] if videos is None else list(videos)
    end_id = processor.tokenizer.convert_tokens_to_ids(end_of_turn(processor))
    texts = []
    for i in range(0, len(examples), batch_size):
        batch = build_batch(processor, cache, examples[i:i + batch_size], videos=videos[i:i + batch_size],
                            system=system, with_targets=False)
        out = model.generate(**model_inputs(model, batch), max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=end_id,
                             pad_token_id=pad_token_id(processor))
        new = out[:, batch["input_ids"].shape[1]:]
        texts += processor.tokenizer.batch_decode(new, skip_special_tokens=True)
    return texts


def load_model(path: str | Path):
    """(model, processor) of a Qwen2.5-VL checkpoint folder, in float32 for CPU training, offline."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32, local_files_only=True)
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    return model.eval(), processor


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


def add_training_arguments(parser: argparse.ArgumentParser, *, steps: int, lr: float) -> None:
    """The loop's options, shared by ``twgrpo pretrain`` and ``twgrpo sft``."""
    d, v = TrainConfig(), VideoSettings()
    parser.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size,
                        help=f"examples per step (default {d.batch_size})")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate, AdamW (default {lr})")
    parser.add_argument("--questions-per-video", type=int, default=d.questions_per_video,
                        help="examples per video in a batch; the video is encoded once "
                             f"(default {d.questions_per_video})")
    parser.add_argument("--warmup", type=int, default=d.warmup, help=f"warm-up steps (default {d.warmup})")
    parser.add_argument("--seed", type=int, default=d.seed, help="sampling seed")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop after this wall-clock time")
    parser.add_argument("--log-every", type=int, default=d.log_every, help="steps between log lines")
    parser.add_argument("--train-vision", action="store_true",
                        help="also train the vision tower and merger (default: frozen; trained from scratch on CPU "
                             "it collapses to a near-constant output)")
    parser.add_argument("--fps", type=float, default=v.fps, help=f"frames sampled per second (default {v.fps})")
    parser.add_argument("--max-frames", type=int, default=v.max_frames, help=f"default {v.max_frames}")
    parser.add_argument("--max-pixels", type=int, default=v.max_pixels, help=f"per frame (default {v.max_pixels})")


def training_config(args: argparse.Namespace) -> tuple[TrainConfig, VideoSettings]:
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, questions_per_video=args.questions_per_video,
                         lr=args.lr, warmup=args.warmup,
                         seed=args.seed, log_every=args.log_every, max_minutes=args.max_minutes,
                         train_vision=args.train_vision)
    return config, VideoSettings(fps=args.fps, max_frames=args.max_frames, max_pixels=args.max_pixels)

"""Dense vision pre-training: the vision tower and merger learn to say what is where, from the simulator.

Every merged video token gets the labels of ``synthetic.token_labels`` (colours, shapes, materials, motion,
objects, centres, collisions, entries and exits at the token's place and time) and the masked regression of
centre offset and velocity. A linear head on the merger's output is trained with the tower and merger:
binary cross-entropy on the labels plus mean squared error on the regression where an object's centre is in
the cell. No language model is involved; the head is dropped afterwards, the tower and merger stay.

Why: trained only through the language model's loss, the tiny tower collapses to a near-constant output or
stays at its seeded initialisation, whose tokens a linear probe reads poorly
(``twgrpo_lib/models/assets/README.md``). With the
simulator's exact per-token ground truth a few CPU minutes give tokens that name colours, motion and events.

The report (``training.json``: ``probe``) scores the head on validation videos never trained on: per label
F1 over tokens, and video-level presence accuracy (a label is present in a video when any token has it).

>>> import torch
>>> logits = torch.zeros(2, len(LABELS) + len(REGRESSION))
>>> labels, targets, mask = torch.zeros(2, len(LABELS)), torch.zeros(2, len(REGRESSION)), torch.tensor([True, False])
>>> round(dense_loss(logits, labels, targets, mask).item(), 4)  # log 2, no regression error
0.6931
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from twgrpo_lib.data.arguments import above, at_least, check
from twgrpo_lib.data.run_folder import claim, decide, file_sha256, model_identity
from twgrpo_lib.data.synthetic.token_labels import EVENTS, LABELS, REGRESSION, sampled_times, token_labels
from twgrpo_lib.data.video import VideoSettings
from twgrpo_lib.models.qwen import EncodedVideoCache, checkpoint_path, load_model
from twgrpo_lib.models.tiny import TINY_VIDEO
from twgrpo_lib.train.pretrain import split_scenes, usable_scenes
from twgrpo_lib.train.supervised import BOUNDS, cosine_lr, finished_log


def dense_loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
               pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """BCE over all labels (positives of label k weighted ``pos_weight[k]``) plus MSE on the regression
    targets of masked tokens.

    logits (N, L + R), labels (N, L) in {0, 1}, targets (N, R), mask (N,) bool, pos_weight (L,).
    """
    n_labels = labels.shape[1]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, :n_labels], labels.float(),
                                                               pos_weight=pos_weight)
    err = (logits[:, n_labels:] - targets) ** 2 * mask[:, None]                  # (N, R)
    return bce + err.sum() / (mask.sum() * targets.shape[1]).clamp(min=1)


def f1_scores(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """F1 per column of two (N, L) 0/1 tensors (0 where a column has no positive at all).

    >>> [round(x, 4) for x in f1_scores(torch.tensor([[1, 0], [1, 0]]), torch.tensor([[1, 0], [0, 0]])).tolist()]
    [0.6667, 0.0]
    """
    pred, truth = pred.bool(), truth.bool()
    tp = (pred & truth).sum(0).float()
    denom = (pred.sum(0) + truth.sum(0)).float()
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))


def labelled_videos(scenes: list[tuple[str, object]], settings: VideoSettings) -> list[dict]:
    """Per full video (``pretrain.split_scenes``): ``video`` path and its token ``labels``, ``targets`` and
    ``mask`` tensors."""
    out = []
    for video, sim in scenes:
        preset = sim.scene.preset
        times = sampled_times(preset.frames, preset.fps, settings.fps, settings.max_frames)
        labels, targets, mask = token_labels(sim, times)
        out.append({"video": video, "labels": torch.from_numpy(labels), "targets": torch.from_numpy(targets),
                    "mask": torch.from_numpy(mask)})
    return out


def video_tokens(model, cache: EncodedVideoCache, videos: list[str]) -> torch.Tensor:
    """Merged video tokens of ``videos``, concatenated in order, shape (sum of tokens, hidden)."""
    encoded = [cache.get(v) for v in videos]
    pixels = torch.cat([e["pixel_values_videos"].float() for e in encoded])
    grid = torch.cat([e["video_grid_thw"] for e in encoded])
    return torch.cat(model.model.get_video_features(pixels, grid, return_dict=True).pooler_output)


def _stack(records: list[dict], key: str) -> torch.Tensor:
    return torch.cat([r[key] for r in records])


def _check_sizes(tokens: torch.Tensor, records: list[dict]) -> None:
    n = sum(len(r["labels"]) for r in records)
    if tokens.shape[0] != n:
        raise ValueError(f"{records[0]['video']}: {tokens.shape[0]} video tokens but {n} token labels; "
                         "dense labels need 112x112 frames (--max-pixels 12544)")


@torch.no_grad()
def probe_report(model, head: torch.nn.Linear, cache: EncodedVideoCache, records: list[dict],
                 batch: int = 16) -> dict:
    """Token F1 per label and video-level presence accuracy per label group on ``records``."""
    preds, truths, video_pred, video_truth = [], [], [], []
    for k in range(0, len(records), batch):
        chunk = records[k:k + batch]
        logits = head(video_tokens(model, cache, [r["video"] for r in chunk]))[:, :len(LABELS)]
        pred = (logits > 0).long()
        preds.append(pred)
        truths.append(_stack(chunk, "labels").long())
        start = 0
        for r in chunk:
            n = len(r["labels"])
            video_pred.append(pred[start:start + n].amax(0))
            video_truth.append(r["labels"].long().amax(0))
            start += n
    f1 = f1_scores(torch.cat(preds), torch.cat(truths))
    right = (torch.stack(video_pred) == torch.stack(video_truth)).float().mean(0)
    report = {"videos": len(records), "token_f1": {name: round(f1[k].item(), 3) for k, name in enumerate(LABELS)}}
    for group in ("colour", "shape", "material"):
        cols = [k for k, name in enumerate(LABELS) if name.startswith(group + ":")]
        report[f"video_{group}_accuracy"] = round(right[cols].mean().item(), 3)
    for name in ("moving", "collision", "enter", "exit"):
        report[f"video_{name}_accuracy"] = round(right[LABELS.index(name)].item(), 3)
    return report


def train_vision(model, cache: EncodedVideoCache, records: list[dict], *, steps: int = 800, videos_per_step: int = 16,
                 lr: float = 2e-3, warmup: int = 50, seed: int = 0, log_every: int = 50, event_weight: float = 1.0,
                 log=print):
    """Train the vision tower, merger and a new linear head on ``records``; returns (head, log records).

    ``event_weight`` weights the positives of the rare event labels (collision, enter, exit) in the BCE.
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    hidden = model.config.vision_config.out_hidden_size
    head = torch.nn.Linear(hidden, len(LABELS) + len(REGRESSION))
    for p in model.parameters():
        p.requires_grad_(False)
    visual = list(model.model.visual.parameters())
    for p in visual:
        p.requires_grad_(True)
    params = visual + list(head.parameters())
    pos_weight = torch.tensor([event_weight if name in EVENTS else 1.0 for name in LABELS])
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    model.train()
    log_records, running, start = [], [], time.time()
    for step in range(steps):
        chunk = rng.sample(records, min(videos_per_step, len(records)))
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        tokens = video_tokens(model, cache, [r["video"] for r in chunk])          # (N, hidden)
        _check_sizes(tokens, chunk)
        loss = dense_loss(head(tokens), _stack(chunk, "labels"), _stack(chunk, "targets"), _stack(chunk, "mask"),
                          pos_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        running.append(loss.item())
        if (step + 1) % log_every == 0 or step == steps - 1:
            record = {"step": step + 1, "loss": sum(running) / len(running), "seconds": round(time.time() - start, 1)}
            log_records.append(record)
            log(record)
            running = []
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return head, log_records


# Settings of the stage and their valid ranges (also checked when the flags are parsed).
STAGE_BOUNDS = {"steps": at_least(1), "videos_per_step": at_least(1), "lr": above(0), "warmup": at_least(0),
                "log_every": at_least(1), "event_weight": above(0)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    v = TINY_VIDEO
    parser.add_argument("--data", required=True,
                        help="a `twgrpo make-data` directory (train videos; val videos for the probe)")
    parser.add_argument("--model", required=True, help="checkpoint folder to start from (e.g. `twgrpo build-tiny`)")
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--steps", type=STAGE_BOUNDS["steps"], default=800, help="optimizer steps (default 800)")
    parser.add_argument("--videos-per-step", type=STAGE_BOUNDS["videos_per_step"], default=16,
                        help="videos per step (default 16)")
    parser.add_argument("--lr", type=STAGE_BOUNDS["lr"], default=2e-3,
                        help="peak learning rate, AdamW (0.9, 0.95) (default 2e-3)")
    parser.add_argument("--warmup", type=STAGE_BOUNDS["warmup"], default=50, help="warm-up steps (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--log-every", type=STAGE_BOUNDS["log_every"], default=50, help="steps between log lines")
    parser.add_argument("--event-weight", type=STAGE_BOUNDS["event_weight"], default=1.0,
                        help="BCE weight of the positives of the rare event labels (default 1)")
    parser.add_argument("--fps", type=BOUNDS["fps"], default=v.fps, help=f"frames sampled per second (default {v.fps})")
    parser.add_argument("--max-frames", type=BOUNDS["max_frames"], default=v.max_frames, help=f"default {v.max_frames}")
    parser.add_argument("--max-pixels", type=BOUNDS["max_pixels"], default=v.max_pixels,
                        help="per frame; the labels need 112x112 (the default)")
    parser.add_argument("--skip-bad-videos", action="store_true",
                        help="train without the videos that are missing, undecodable or too short "
                             "(default: refuse and list them)")
    parser.add_argument("--force", action="store_true",
                        help="train over another run in OUT: move it aside to OUT.old-<time> first")


def run(args: argparse.Namespace) -> int:
    stage = {name: getattr(args, name) for name in STAGE_BOUNDS} | {"seed": args.seed}
    check(stage, STAGE_BOUNDS)
    settings = VideoSettings(fps=args.fps, max_frames=args.max_frames, max_pixels=args.max_pixels)
    check(settings, BOUNDS)
    model_dir = checkpoint_path(args.model)
    data = Path(args.data)
    identity = {"model": model_identity(model_dir),
                "data_sha256": {f: file_sha256(data / f) for f in ("manifest.json", "train.json", "val.json",
                                                                    "scenes.json")},
                "train": {k: v for k, v in stage.items() if k != "log_every"},
                "video": {"fps": settings.fps, "max_frames": settings.max_frames, "max_pixels": settings.max_pixels}}
    if decide(Path(args.out), "pretrain-vision", identity, force=args.force) == "same" and finished_log(args.out):
        print(f"{args.out} holds this run, finished; nothing to train (--force moves it aside and trains again)")
        return 0
    train_scenes = usable_scenes(split_scenes(data, "train"), str(data / "train.json"), args.skip_bad_videos)
    val_scenes = usable_scenes(split_scenes(data, "val"), str(data / "val.json"), args.skip_bad_videos)
    with claim(args.out, "pretrain-vision", identity, force=args.force):
        model, processor = load_model(model_dir, device="cpu", dtype=torch.float32)
        cache = EncodedVideoCache(processor, settings)
        train_records = labelled_videos(train_scenes, settings)
        head, log = train_vision(model, cache, train_records, steps=args.steps,
                                 videos_per_step=args.videos_per_step, lr=args.lr, warmup=args.warmup,
                                 seed=args.seed, log_every=args.log_every, event_weight=args.event_weight)
        val_records = labelled_videos(val_scenes, settings)
        probe = probe_report(model, head, cache, val_records) if val_records else None
        out = Path(args.out)
        model.save_pretrained(out, safe_serialization=True)
        processor.save_pretrained(out)
        info = {"stage": "pretrain-vision", "labels": list(LABELS), "regression": list(REGRESSION),
                "train_videos": len(train_records), "train": stage, "video": identity["video"], "probe": probe,
                "log": log}
        (out / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    print("probe on val videos:", "no val videos" if probe is None else json.dumps(probe))
    print(f"checkpoint written to {out}")
    return 0

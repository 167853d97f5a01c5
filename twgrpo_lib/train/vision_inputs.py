"""Video prompts for the trainer: decode each video once, encode each distinct prompt once, slice per row.

A GRPO generation batch holds every prompt G times. Rows are encoded here as one dict each (token ids,
``pixel_values_videos`` rows, ``video_grid_thw``, ``second_per_grid_ts``) so that any subset of rows, in any
order, can be put back together with :func:`collate_video_rows` for a forward pass; the G copies of a prompt
share the same tensors (no copy).

>>> import torch
>>> mm_token_type_ids(torch.tensor([[5, 7, 7, 9]]), image_token_id=8, video_token_id=7).tolist()
[[0, 2, 2, 0]]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from twgrpo_lib.core.prompts import video_chat
from twgrpo_lib.data.video import VideoCache, VideoClip, processor_video_kwargs, resolve_video_path


def as_video_prompt(prompt: Any) -> list[dict]:
    """A conversational prompt with one video part: a plain string becomes a user turn ``[video, text]``.

    >>> as_video_prompt("Which?")[0]["content"][0]
    {'type': 'video'}
    """
    return video_chat(prompt) if isinstance(prompt, str) else prompt


def clip_from_row(row: dict, index: int, cache: VideoCache, *, fps: float, max_frames: int, max_pixels: int,
                  video_root: str | None = None) -> VideoClip:
    """The clip of one dataset row: ``row["video"]`` is a path (decoded through ``cache``) or (T, H, W, 3) frames.

    Frames given directly are taken as sampled at ``row.get("video_fps", fps)``; H and W must be multiples of 28.
    """
    if "video" not in row or row["video"] is None:
        raise ValueError(f"row {index}: no 'video' field (keys: {sorted(row)})")
    video = row["video"]
    if isinstance(video, str):
        path = resolve_video_path(video, video_root)
        return cache.load(path, fps=fps, max_frames=max_frames, max_pixels=max_pixels)
    frames = np.asarray(video, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"row {index}: field 'video' must be a path or (T, H, W, 3) frames, got shape {frames.shape}")
    rate = float(row.get("video_fps") or fps)
    count = len(frames)
    return VideoClip(frames=frames, timestamps=[i / rate for i in range(count)], sample_fps=rate,
                     source_fps=rate, source_frames=count, path=f"<frames of row {index}>",
                     frame_indices=list(range(count)), window_frames=count)


def clips_for_rows(rows: Sequence[dict], cache: VideoCache, **settings) -> list[VideoClip]:
    """One clip per row; rows holding the same video (path or identical frames) share one decoded clip."""
    clips: dict[Any, VideoClip] = {}
    out = []
    for index, row in enumerate(rows):
        video = row.get("video")
        if isinstance(video, str):
            key = video
        else:
            frames = np.ascontiguousarray(np.asarray(video, dtype=np.uint8)) if video is not None else None
            key = None if frames is None else (frames.shape, hashlib.sha1(frames.tobytes()).hexdigest(),
                                               row.get("video_fps"))
        if key is None or key not in clips:
            clips[key] = clip_from_row(row, index, cache, **settings)
        out.append(clips[key])
    return out


def encode_video_prompts(processor, texts: Sequence[str], clips: Sequence[VideoClip]) -> list[dict]:
    """Run the processor once per distinct (text, clip) pair and return one dict per row.

    Each dict: ``input_ids`` (list[int]), ``pixel_values_videos`` (N_i, D), ``video_grid_thw`` (1, 3),
    ``second_per_grid_ts`` (1,). Rows with the same text and the same clip object share tensors.
    """
    encoded: dict[tuple[str, int], dict] = {}
    rows = []
    for text, clip in zip(texts, clips, strict=True):
        key = (text, id(clip))
        if key not in encoded:
            out = processor(text=[text], **processor_video_kwargs([clip]), return_tensors="pt")
            encoded[key] = {
                "input_ids": out["input_ids"][0].tolist(),
                "pixel_values_videos": out["pixel_values_videos"],
                "video_grid_thw": out["video_grid_thw"],
                "second_per_grid_ts": torch.as_tensor(out["second_per_grid_ts"], dtype=torch.float32).reshape(1),
            }
        rows.append(encoded[key])
    return rows


def mm_token_type_ids(input_ids: torch.Tensor, image_token_id: int, video_token_id: int) -> torch.Tensor:
    """Qwen2.5-VL's modality mask: 1 at image placeholders, 2 at video placeholders, 0 elsewhere."""
    types = torch.zeros_like(input_ids)  # (B, L)
    types[input_ids == image_token_id] = 1
    types[input_ids == video_token_id] = 2
    return types


def collate_video_rows(rows: Sequence[dict], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Model keyword arguments for the rows of one forward pass, in row order (patches concatenated)."""
    return {
        "pixel_values_videos": torch.cat([r["pixel_values_videos"] for r in rows]).to(device),  # (sum N_i, D)
        "video_grid_thw": torch.cat([r["video_grid_thw"] for r in rows]).to(device),  # (B, 3)
        "second_per_grid_ts": torch.cat([r["second_per_grid_ts"] for r in rows]).to(device),  # (B,)
    }

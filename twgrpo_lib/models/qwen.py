"""Qwen2.5-VL plumbing shared by training, evaluation and the notebooks.

- ``load_model``: a checkpoint and its processor, offline; CUDA + bf16 when available, else CPU float32.
- ``cpu_threads``: torch's thread count for a block of work on a CPU.
- ``chat_text``: the chat-formatted prompt of one video question (the messages come from ``prompts.video_chat``).
- ``SPECIAL_TOKENS`` / ``VISION_TOKENS``: Qwen2.5-VL's special tokens; vision ones must never be sampled.
- Supervised batches: ``EncodedVideoCache`` decodes and preprocesses each video once per process;
  ``build_batch`` pads (video, prompt, target) examples and holds each distinct video once; ``model_inputs``
  encodes each distinct video once per forward; ``per_example_loss``, ``mean_loss`` and ``generate`` on top.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from twgrpo_lib.core.prompts import video_chat
from twgrpo_lib.data.examples import Example
from twgrpo_lib.data.video import VideoSettings, load_video, processor_video_kwargs

IGNORE = -100  # label of positions the loss skips

# Qwen2.5-VL special tokens, in Qwen's order.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]
# Tokens that mark or carry vision input: a policy must never sample them.
VISION_TOKENS = [
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
]


@contextlib.contextmanager
def cpu_threads(threads: int | None, device: str | torch.device = "cpu"):
    """Torch uses ``threads`` threads inside the block on a CPU (restored after); on a GPU or with None, no
    change. On a 2-core machine shared with other jobs one thread is several times faster (benchmarks/).

    >>> before = torch.get_num_threads()
    >>> with cpu_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    before = torch.get_num_threads()
    if threads and torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def looks_local(name: str) -> bool:
    """Whether a model name is meant as a local folder rather than a hub id ("org/name").

    >>> looks_local("./runs/tw-grpo"), looks_local("/models/qwen"), looks_local("Qwen/Qwen2.5-VL-7B-Instruct")
    (True, True, False)
    """
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        return True
    return Path(name.split("/")[0]).is_dir()  # "runs/tw-grpoo" with a local runs/ folder: a mistyped path


def checkpoint_path(name: str | os.PathLike) -> str:
    """``name`` as given when it is an existing folder or a hub id; a local-looking path that does not exist
    is an error naming it (never a hub request)."""
    name = os.fspath(name)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if looks_local(name):
        raise FileNotFoundError(f"{name}: no such checkpoint folder")
    return name


def load_model(path: str | os.PathLike, *, device: str | None = None, dtype: torch.dtype | None = None,
               padding_side: str | None = None):
    """(model, processor) of a Qwen2.5-VL checkpoint, the model in eval mode on ``device``.

    ``device``: CUDA when available, else CPU; ``dtype``: bfloat16 on CUDA, float32 on CPU. A local folder is
    read offline; a hub id goes through the Hugging Face cache (offline when ``HF_HUB_OFFLINE=1``).
    ``padding_side="left"`` prepares the tokenizer for batched generation.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor  # heavy: only when a model is loaded

    name = checkpoint_path(path)
    local = Path(name).is_dir()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    model = AutoModelForImageTextToText.from_pretrained(name, dtype=dtype, local_files_only=local,
                                                        use_safetensors=True)
    processor = AutoProcessor.from_pretrained(name, local_files_only=local)
    if padding_side is not None:
        processor.tokenizer.padding_side = padding_side
    return model.to(device).eval(), processor


class EncodedVideoCache:
    """Decoded and preprocessed videos, keyed by path: each file is read once per process.

    ``get(path)`` returns ``pixel_values_videos`` (patches, C*2*14*14), ``video_grid_thw`` (1, 3) and
    ``second_per_grid_ts`` (1,): exactly what a Qwen2.5-VL forward needs for one video.
    """

    def __init__(self, processor, settings: VideoSettings):
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

    clip = load_video(path, fps=settings.fps, max_frames=settings.max_frames, max_pixels=settings.max_pixels)
    out = processor.video_processor(**processor_video_kwargs([clip]), return_tensors="pt")
    seconds = processor.video_processor.temporal_patch_size / clip.sample_fps  # = the processor's own value
    return {
        "pixel_values_videos": out["pixel_values_videos"].to(torch.float16),  # halves the cache; cast back per batch
        "video_grid_thw": out["video_grid_thw"],
        "second_per_grid_ts": torch.tensor([seconds], dtype=torch.float32),
    }


def chat_text(processor, text: str, system: str | None = None) -> str:
    """The chat-formatted prompt of one video question (``prompts.video_chat``), ready for the reply."""
    return processor.apply_chat_template(video_chat(text, system), tokenize=False, add_generation_prompt=True)


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
        prompt_ids = encode_text(processor, chat_text(processor, example.prompt, system), grid)
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


def target_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token loss over each example's target tokens, shape (B,), from a forward's ``logits``
    (B, L, V) and the batch's ``labels`` (B, L; IGNORE outside the targets)."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]                       # (B, L-1, V), (B, L-1)
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    counts = (labels != IGNORE).sum(1).clamp(min=1)                                # (B,)
    return nll.sum(1) / counts


def per_example_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token loss over each example's target tokens, shape (B,)."""
    return target_loss(model(**model_inputs(model, batch)).logits, batch["labels"])


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

"""Training inputs built from items (docs/formats.md §A): TRL rows for GRPO and examples for supervised training.

- ``training_rows`` / ``build_training_dataset``: one row per item for ``TWGRPOTrainer``: the paper's training
  prompt (docs/method.md §5, no system prompt) as a chat with one video part, plus the reward's columns.
- ``Example`` / ``item_example``: one (video, user text, target text) triple for the supervised loop
  (``train.supervised``): the training prompt and the completion ``<think>...</think><answer>...</answer>``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from twgrpo_lib.core.answers import answer_set, extract_answer, solution_letters
from twgrpo_lib.core.prompts import TRAIN_TEMPLATES, training_prompt, video_chat
from twgrpo_lib.data.video import resolve_video_path, verify_videos


@dataclass(frozen=True)
class Example:
    """One supervised example: the video file, the user's text and the assistant's target text."""

    video: str
    prompt: str
    target: str
    stage: int = 0  # curriculum stage (``train.supervised.train``)


def item_example(item: dict, video_root: str | os.PathLike = ".", template: str = "mixed") -> Example:
    """A format-A item as an ``Example``: the training prompt and the target completion.

    The target is the item's ``reasoning`` when it already holds the answer tags, else
    ``<think>{reasoning}</think><answer>{letters}</answer>`` built from ``reasoning`` and ``solution``.

    >>> e = item_example({"video": "v.mp4", "problem": "Q?\\nA. x\\nB. y", "solution": "<answer>B,A</answer>"}, "d")
    >>> e.video, e.target
    ('d/v.mp4', '<think></think><answer>A,B</answer>')
    """
    target = item.get("reasoning") or ""
    if "<answer>" not in target:
        letters = ",".join(sorted(answer_set(extract_answer(item["solution"]))))
        target = f"<think>{target}</think><answer>{letters}</answer>"
    return Example(str(Path(video_root) / item["video"]), training_prompt(item["problem"], template), target)


def training_rows(items: list[dict], template: str = "mixed") -> list[dict]:
    """One row per item: the chat prompt of docs/method.md §5 (no system prompt) and the reward's columns.

    The prompt's video part is ``{"type": "video"}`` with the path in the ``video`` column, the layout TRL
    uses for images: a path inside the content part would make Arrow add ``"video": None`` to the text part,
    which Qwen's chat template (it tests ``'video' in content``) renders as a second video.

    >>> row = training_rows([{"problem": "Which?\\nA. x\\nB. y", "solution": "<answer>A</answer>",
    ...                       "video": "v.mp4", "id": "1"}])[0]
    >>> row["prompt"][0]["content"][1]["text"].startswith("Which?\\nA. x\\nB. y  Output the thinking")
    True
    """
    if template not in TRAIN_TEMPLATES:
        raise ValueError(f"unknown template {template!r}; one of {sorted(TRAIN_TEMPLATES)}")
    rows = []
    for index, item in enumerate(items):
        missing = [name for name in ("problem", "solution", "video") if not item.get(name)]
        if missing:
            raise ValueError(f"item {index} (id {item.get('id', index)}): missing field(s) {missing}")
        text = training_prompt(item["problem"], template)
        rows.append({
            "prompt": video_chat(text),
            "solution": item["solution"], "video": item["video"], "problem": item["problem"],
            "id": str(item.get("id", index)), "question_type": str(item.get("question_type") or ""),
            "num_correct": len(solution_letters(item["solution"])),
        })
    return rows


def build_training_dataset(items: list[dict], *, template: str = "mixed",
                           video_root: str | os.PathLike | None = None, verify: bool = False):
    """A ``datasets.Dataset`` of :func:`training_rows`; columns prompt, solution, video, problem, id,
    question_type, num_correct.

    ``video_root`` re-roots the items' video paths (for items that were loaded without one). With
    ``verify`` every video is opened first and a bad one raises ``ValueError`` with the full report;
    frame sampling itself (fps, frames, pixels) is the trainer's setting, applied when a batch is decoded.
    """
    import datasets  # Arrow: only needed here

    if video_root is not None:
        items = [dict(item, video=resolve_video_path(item.get("video_original", item["video"]), video_root))
                 for item in items]
    if verify:
        report = verify_videos(items)
        if report.bad:
            raise ValueError("videos not usable for training:\n" + report.summary())
    return datasets.Dataset.from_list(training_rows(items, template))

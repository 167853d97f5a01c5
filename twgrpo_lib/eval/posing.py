"""How ``twgrpo evaluate`` poses a benchmark item: which prompt, which chat messages, which questions a run asks.

Prompts are the paper's, verbatim (``prompts``, docs/method.md §7): CLEVRER-style items (formats A and D) get
the CLEVRER system prompt and template; general benchmarks (formats B and C) get Video-R1's template plus the
multiple-choice suffix and no system message of their own. ``train`` asks with the training prompt instead.

>>> messages = build_messages({"source_format": "B", "question": "Why?", "options": ["A. x"]}, "general")
>>> [part["type"] for part in messages[0]["content"]], messages[0]["content"][1]["text"].startswith("Why?Options:")
(['video', 'text'], True)
"""

from __future__ import annotations

from twgrpo_lib.core import prompts

CLEVRER_STYLE_FORMATS = {"A", "D"}  # source formats that get the CLEVRER system prompt and template
PROMPT_MODES = ("clevrer", "general", "train")


def prompt_mode(item: dict, requested: str = "auto") -> str:
    """``clevrer`` for CLEVRER-style items (formats A, D), ``general`` for the others, unless overridden
    (``clevrer``, ``general`` or ``train``: the training prompt).

    >>> prompt_mode({"source_format": "D"}), prompt_mode({"source_format": "B"}), prompt_mode({}, "train")
    ('clevrer', 'general', 'train')
    """
    if requested != "auto":
        if requested not in PROMPT_MODES:
            raise ValueError(f"unknown prompt {requested!r}; use one of {PROMPT_MODES} or auto")
        return requested
    return "clevrer" if str(item.get("source_format", "")).upper() in CLEVRER_STYLE_FORMATS else "general"


def prompt_template(mode: str) -> dict[str, str | None]:
    """The template of a prompt mode as recorded in the summary: system prompt and user template."""
    if mode == "clevrer":
        return {"name": "clevrer", "system": prompts.CLEVRER_SYSTEM_PROMPT, "user": prompts.CLEVRER_EVAL_TEMPLATE}
    if mode == "train":
        return {"name": "train", "system": None, "user": prompts.TRAIN_TEMPLATES["mixed"]}
    suffix = prompts.GENERAL_TYPE_SUFFIX["multiple choice"]
    return {"name": "general", "system": None, "user": prompts.GENERAL_EVAL_TEMPLATE + suffix}


def user_text(item: dict, mode: str) -> str:
    """The user text of one item: the paper's template filled with its question."""
    if mode == "clevrer":
        return prompts.clevrer_eval_prompt(item["problem"])
    if mode == "train":
        return prompts.training_prompt(item["problem"])
    question = prompts.general_question(item["question"], list(item["options"]))
    return prompts.general_eval_prompt(question, item.get("problem_type") or "multiple choice")


def build_messages(item: dict, mode: str) -> list[dict]:
    """Chat messages for one item: video first, then the text (as the paper's scripts)."""
    return prompts.video_chat(user_text(item, mode), prompts.CLEVRER_SYSTEM_PROMPT if mode == "clevrer" else None)


def select_questions(items: list[dict], errors: list[dict], settings) -> tuple[list[dict], list[dict]]:
    """The items and the unposable records (``formats.read_items(..., on_error="record")``) this run evaluates:
    ``--question-type`` keeps those of the given types, ``--limit N`` the first N items and the unposable
    records among the file's first N records."""
    if settings.question_type:
        wanted = {t.strip() for t in settings.question_type.split(",")}
        items = [item for item in items if item.get("question_type") in wanted]
        errors = [e for e in errors if isinstance(e["record"], dict)
                  and e["record"].get("question_type", e["record"].get("type")) in wanted]
        if not items and not errors:
            raise ValueError(f"{settings.data}: no question of type {sorted(wanted)}")
    if settings.limit is not None:
        items, errors = items[: settings.limit], [e for e in errors if e["index"] < settings.limit]
    return items, errors


def show_swapped_videos(items: list[dict], seed: int) -> list[dict]:
    """The items, each with ``shown_video``: the video of another question, by ``grounding.swapped_videos``
    over these items' distinct videos (the same for a question whatever part of a run is left to do).

    >>> [item["shown_video"] for item in show_swapped_videos([{"video": "a"}, {"video": "b"}, {"video": "a"}], 0)]
    ['b', 'a', 'b']
    """
    from twgrpo_lib.eval.grounding import swapped_videos  # torch: only for a swapped-video run

    shown = swapped_videos([item["video"] for item in items], seed)
    return [dict(item, shown_video=video) for item, video in zip(items, shown)]

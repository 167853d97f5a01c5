"""Does the model look at the video? Right-video versus swapped-video control on format-A items.

For each item the model answers twice, greedily: once with its own video and once with the video of
another question (a seeded derangement over the distinct videos, so every item sees a different scene).
Both answers are scored against the item's own solution with the kit's one parser
(``rewards.soft_accuracy``); strict accuracy = share of items with soft accuracy 1 (docs/method.md §3).
A model that ignores the video scores the same in both columns; the gap is the grounding.

Chance level (``informed_chance``): the expected strict accuracy of a guesser who knows how many options
are correct (k of n) and picks k letters uniformly at random, i.e. the mean of 1 / C(n, k). It is the
stronger of the two usual definitions (a guesser that picks any non-empty subset scores the mean of
1 / (2^n - 1), reported as ``uniform_chance``).

The target loss is the mean next-token loss on the item's full target completion (reasoning and answer),
with the right and with the swapped video.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path

from twgrpo_lib.core.answers import option_letters, solution_letters
from twgrpo_lib.core.rewards import format_reward_score, soft_accuracy
from twgrpo_lib.data.examples import Example, item_example
from twgrpo_lib.models.qwen import EncodedVideoCache, generate, mean_loss


def swapped_videos(videos: Sequence[str], seed: int = 0) -> list[str]:
    """For each entry, a video of another question: a seeded derangement over the distinct videos.

    >>> v = ["a", "b", "a", "c"]
    >>> s = swapped_videos(v)
    >>> all(x != y for x, y in zip(v, s)) and set(s) == set(v)
    True
    """
    unique = sorted(set(videos))
    if len(unique) < 2:
        raise ValueError("the swapped-video control needs items from at least two videos")
    order = unique[:]
    random.Random(seed).shuffle(order)
    successor = {order[i]: order[(i + 1) % len(order)] for i in range(len(order))}  # a cycle: no fixed point
    return [successor[v] for v in videos]


def informed_chance(n_options: int, n_correct: int) -> float:
    """Strict accuracy of picking ``n_correct`` of ``n_options`` letters uniformly at random.

    >>> informed_chance(4, 1), round(informed_chance(4, 2), 4)
    (0.25, 0.1667)
    """
    return 1.0 / math.comb(n_options, n_correct)


def grounding_report(model, processor, cache: EncodedVideoCache, items: Sequence[dict], *, video_root: str | Path = ".",
                     seed: int = 0, max_new_tokens: int = 96, batch_size: int = 16,
                     return_outputs: bool = False) -> dict:
    """Strict accuracy, format reward and target loss with the right and with a swapped video, plus chance.

    Returns a flat dict: ``n``, ``strict_right``, ``strict_swapped``, ``partial_right``, ``format_right``,
    ``loss_right``, ``loss_swapped``, ``informed_chance``, ``uniform_chance`` and, per item ``type`` when
    the items carry one, ``strict_right/<type>``, ``strict_swapped/<type>``, ``informed_chance/<type>``,
    ``format_right/<type>`` and ``n/<type>``.
    """
    for i, item in enumerate(items):
        for key in ("video", "problem", "solution"):
            if key not in item:
                raise ValueError(f"item {i}: missing field {key!r}")
    examples = [item_example(item, video_root) for item in items]
    swapped = swapped_videos([e.video for e in examples], seed)
    right_out = generate(model, processor, cache, examples, max_new_tokens=max_new_tokens, batch_size=batch_size)
    swap_out = generate(model, processor, cache, examples, videos=swapped, max_new_tokens=max_new_tokens,
                        batch_size=batch_size)
    strict_right = [soft_accuracy(o, it["solution"]) == 1.0 for o, it in zip(right_out, items)]
    strict_swap = [soft_accuracy(o, it["solution"]) == 1.0 for o, it in zip(swap_out, items)]
    sizes = [(len(option_letters(it["problem"])), len(solution_letters(it["solution"]))) for it in items]
    report = {
        "n": len(items),
        "strict_right": _mean(strict_right),
        "strict_swapped": _mean(strict_swap),
        "partial_right": _mean([soft_accuracy(o, it["solution"]) for o, it in zip(right_out, items)]),
        "format_right": _mean([format_reward_score(o) for o in right_out]),
        "format_swapped": _mean([format_reward_score(o) for o in swap_out]),
        "loss_right": mean_loss(model, processor, cache, examples, batch_size=batch_size),
        "loss_swapped": mean_loss(model, processor, cache, examples, videos=swapped, batch_size=batch_size),
        "informed_chance": _mean([informed_chance(n, k) for n, k in sizes]),
        "uniform_chance": _mean([1.0 / (2 ** n - 1) for n, _ in sizes]),
    }
    types = sorted({str(it["type"]) for it in items if "type" in it})
    for t in types:
        idx = [i for i, it in enumerate(items) if str(it.get("type")) == t]
        report[f"strict_right/{t}"] = _mean([strict_right[i] for i in idx])
        report[f"strict_swapped/{t}"] = _mean([strict_swap[i] for i in idx])
        report[f"informed_chance/{t}"] = _mean([informed_chance(*sizes[i]) for i in idx])
        report[f"format_right/{t}"] = _mean([format_reward_score(right_out[i]) for i in idx])
        report[f"n/{t}"] = len(idx)
    if return_outputs:
        report["outputs_right"], report["outputs_swapped"] = right_out, swap_out
    return report


def _mean(values) -> float:
    values = list(values)
    return float(sum(values)) / len(values) if values else float("nan")


def task_report(model, processor, cache: EncodedVideoCache, examples: Sequence[Example], *, seed: int = 0,
                max_new_tokens: int = 24, batch_size: int = 16) -> dict:
    """The same control on short-answer examples (e.g. the pre-training curriculum), per ``stage``.

    Exact-match accuracy of the greedy answer and mean target loss, with the right and a swapped video:
    ``exact_right/<stage>``, ``exact_swapped/<stage>``, ``loss_right/<stage>``, ``loss_swapped/<stage>``.
    """
    swapped = swapped_videos([e.video for e in examples], seed)
    report: dict = {"n": len(examples)}
    for stage in sorted({e.stage for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.stage == stage]
        sub, sub_swapped = [examples[i] for i in idx], [swapped[i] for i in idx]
        for name, videos in (("right", None), ("swapped", sub_swapped)):
            outs = generate(model, processor, cache, sub, videos=videos, max_new_tokens=max_new_tokens,
                            batch_size=batch_size)
            report[f"exact_{name}/{stage}"] = _mean([o.strip() == e.target.strip() for o, e in zip(outs, sub)])
            report[f"loss_{name}/{stage}"] = mean_loss(model, processor, cache, sub, videos=videos,
                                                       batch_size=batch_size)
    return report

"""Rewards of docs/method.md §3: soft / binary / IoU accuracy and the format reward.

P is the prediction's letter set and S the solution's (``answers.answer_set``):

- soft (the paper's TW-GRPO reward):  |P| / |S| if P is a subset of S, else 0
- binary (the paper's GRPO baseline): 1 if P == S, else 0
- IoU (an option of this kit):        |P & S| / |P | S|

so binary <= soft <= IoU, and all three are 1 exactly when P == S.

>>> soft_accuracy("<think>...</think><answer>A</answer>", "<answer>A,C</answer>")
0.5
>>> binary_accuracy("<think>...</think><answer>A</answer>", "<answer>A,C</answer>")
0.0
>>> iou_accuracy("<answer>A,B</answer>", "<answer>A,C</answer>")
0.3333333333333333
>>> format_reward_score("<think>The cube moves.</think>\\n<answer>A</answer>")
1.0

The functions ending in ``_reward`` follow TRL's reward-function protocol: ``f(completions, solution,
**kwargs) -> list[float]``, where a completion is a string or a chat message list
(``[{"role": "assistant", "content": ...}]``, content a string or a list of ``{"type": "text", ...}`` parts).
None of them raises on any string, and every score lies in [0, 1].

Differences from the reference code (longmalongma/TW-GRPO, ``src/open_r1/grpo.py``):

1. No ``math_verify`` symbolic check before the string rule (see ``answers``, difference 1).
2. ``rule="whole"`` (default) is the specification's answer rule and format check (the training script's);
   ``rule="phrase"`` reproduces the reference's general evaluation script, whose answer extraction without
   tags (``answers``) and format check differ: its format check wants the text to start with ``<think>`` and
   to end right after ``</answer>`` (no trailing "!").
3. The reference reads only ``completion[0]["content"]`` and fails on content given as a list of parts; here
   the text parts of every message are joined.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from twgrpo_lib.core.answers import DEFAULT_RULE, RULES, answer_set, extract_answer

# The specification's (and training script's) format rule, searched in the stripped text (text before <think> allowed).
_SPEC_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>[\s!]*$", re.DOTALL)
# The general evaluation script's format rule ("phrase"), matched from the start of the stripped text.
_PHRASE_FORMAT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>$", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the text of every message of a chat message list.

    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "<answer>A</answer>"}]}])
    '<answer>A</answer>'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, (list, tuple)):
        texts = []
        for message in completion:
            content = message.get("content", "") if isinstance(message, dict) else message
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, (list, tuple)):
                texts.extend(part.get("text") or "" for part in content
                             if isinstance(part, dict) and part.get("type", "text") == "text")
        return "".join(t if isinstance(t, str) else str(t) for t in texts)
    return "" if completion is None else str(completion)


def _sets(completion: Any, solution: Any, rule: str, lenient: bool) -> tuple[frozenset, frozenset]:
    predicted = answer_set(extract_answer(completion_text(completion), rule=rule), lenient=lenient)
    # The solution is always read by the default rule: a bare "A,C" is the answer itself.
    truth = answer_set(extract_answer(completion_text(solution)), lenient=lenient)
    return predicted, truth


def soft_score(predicted: frozenset, truth: frozenset) -> float:
    """|P| / |S| if P is a subset of S, else 0, on letter sets.

    >>> soft_score(frozenset("A"), frozenset("AC")), soft_score(frozenset("AB"), frozenset("AC"))
    (0.5, 0.0)
    """
    return len(predicted) / len(truth) if predicted <= truth else 0.0


def soft_accuracy(completion: Any, solution: Any, rule: str = DEFAULT_RULE, lenient: bool = False) -> float:
    """|P| / |S| if P is a subset of S, else 0 (the paper's soft multi-choice reward).

    >>> soft_accuracy("<answer>A, C</answer>", "<answer>A,C</answer>"), soft_accuracy("<answer>A,B</answer>", "A,C")
    (1.0, 0.0)
    """
    return soft_score(*_sets(completion, solution, rule, lenient))


def binary_accuracy(completion: Any, solution: Any, rule: str = DEFAULT_RULE, lenient: bool = False) -> float:
    """1 if P == S else 0 (the paper's GRPO baseline reward).

    >>> binary_accuracy("<answer>C,A</answer>", "<answer>A,C</answer>")
    1.0
    """
    predicted, truth = _sets(completion, solution, rule, lenient)
    return float(predicted == truth)


def iou_accuracy(completion: Any, solution: Any, rule: str = DEFAULT_RULE, lenient: bool = False) -> float:
    """|P & S| / |P | S| (Jaccard): partial credit that, unlike soft accuracy, survives a wrong letter.

    >>> iou_accuracy("<answer>A,B,C</answer>", "<answer>A,C</answer>")
    0.6666666666666666
    """
    predicted, truth = _sets(completion, solution, rule, lenient)
    return len(predicted & truth) / len(predicted | truth)


def format_reward_score(completion: Any, rule: str = DEFAULT_RULE) -> float:
    """1.0 if the completion is ``<think>...</think>`` then ``<answer>...</answer>`` at the end, else 0.0.

    At most one ``<think>`` and one ``<answer>`` (opening tags). ``rule="whole"`` (docs/method.md §3): text
    before ``<think>`` and whitespace or "!" after ``</answer>`` are allowed; ``rule="phrase"``: neither.

    >>> text = "Sure. <think>x</think> <answer>B</answer>!"
    >>> format_reward_score(text), format_reward_score(text, "phrase")
    (1.0, 0.0)
    >>> format_reward_score("<think>x</think><think>y</think><answer>B</answer>")
    0.0
    """
    if rule not in RULES:
        raise ValueError(f"answer rule must be one of {RULES}, got {rule!r}")
    text = completion_text(completion).strip()
    if text.count("<think>") > 1 or text.count("<answer>") > 1:
        return 0.0
    if rule == "whole":
        return float(_SPEC_FORMAT.search(text) is not None)
    return float(_PHRASE_FORMAT.match(text) is not None)


def _batch(score: Callable[[Any, Any], float], completions: list, solution: list) -> list[float]:
    if len(completions) != len(solution):
        raise ValueError(f"got {len(completions)} completions but {len(solution)} solutions")
    return [score(c, s) for c, s in zip(completions, solution)]


def accuracy_reward(completions: list, solution: list, **kwargs) -> list[float]:
    """TRL reward: soft accuracy of each completion against its solution.

    >>> accuracy_reward([[{"role": "assistant", "content": "<answer>A</answer>"}], "<answer>B</answer>"],
    ...                 solution=["<answer>A,C</answer>", "<answer>A,C</answer>"])
    [0.5, 0.0]
    """
    return _batch(soft_accuracy, completions, solution)


def binary_accuracy_reward(completions: list, solution: list, **kwargs) -> list[float]:
    """TRL reward: 1 for the exact letter set, else 0.

    >>> binary_accuracy_reward(["<answer>A</answer>", "<answer>A,C</answer>"], solution=["<answer>A,C</answer>"] * 2)
    [0.0, 1.0]
    """
    return _batch(binary_accuracy, completions, solution)


def iou_accuracy_reward(completions: list, solution: list, **kwargs) -> list[float]:
    """TRL reward: IoU of the letter sets.

    >>> iou_accuracy_reward(["<answer>A,B</answer>"], solution=["<answer>A</answer>"])
    [0.5]
    """
    return _batch(iou_accuracy, completions, solution)


def format_reward(completions: list, **kwargs) -> list[float]:
    """TRL reward: the format rule of docs/method.md §3.

    >>> format_reward(["<think>x</think><answer>A</answer>", "<answer>A</answer>"])
    [1.0, 0.0]
    """
    return [format_reward_score(c) for c in completions]


REWARD_FUNCTIONS: dict[str, Callable[..., list[float]]] = {
    "soft": accuracy_reward,
    "binary": binary_accuracy_reward,
    "iou": iou_accuracy_reward,
}


def get_reward_functions(kind: str = "soft") -> list[Callable[..., list[float]]]:
    """[accuracy reward of the given kind, format reward], the reward list of the paper's runs.

    TRL logs each under its ``__name__`` (``rewards/accuracy_reward/mean``, ...); rewards add up, so the
    total lies in [0, 2].

    >>> [f.__name__ for f in get_reward_functions("binary")]
    ['binary_accuracy_reward', 'format_reward']
    """
    if kind not in REWARD_FUNCTIONS:
        raise ValueError(f"reward kind must be one of {sorted(REWARD_FUNCTIONS)}, got {kind!r}")
    return [REWARD_FUNCTIONS[kind], format_reward]

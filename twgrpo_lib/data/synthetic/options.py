"""Multiple-choice questions of mini-CLEVRER: the ``Question`` record, choosing options, judging them in text.

Shared by ``questions`` (the four CLEVRER types) and ``descriptive`` (CLEVRER-style descriptive questions).

>>> q = make_question("descriptive", "Which?", ["red", "blue"], [False, True], "Look." + verdicts(["red", "blue"],
...                   [False, True], "yes", "no"))
>>> print(q.problem)
Which?
A. red
B. blue
>>> q.solution, q.completion
('<answer>B</answer>', '<think>Look.\\nA. red: no.\\nB. blue: yes.</think><answer>B</answer>')
"""

from __future__ import annotations

from dataclasses import dataclass

LETTERS = "ABCDEFGH"


@dataclass
class Question:
    question_type: str
    question: str
    options: list[str]  # option texts, without letters
    answer: list[int]  # indices of the correct options, sorted
    thinking: str  # worked reasoning derived from the event log
    cut_frame: int | None = None  # predictive: frames of the video shown
    removed: int | None = None  # counterfactual: the object taken away

    @property
    def lettered_options(self) -> list[str]:
        return [f"{LETTERS[k]}. {text}" for k, text in enumerate(self.options)]

    @property
    def problem(self) -> str:
        return "\n".join([self.question, *self.lettered_options])

    @property
    def solution(self) -> str:
        return "<answer>" + ",".join(LETTERS[k] for k in self.answer) + "</answer>"

    @property
    def completion(self) -> str:
        """A full target completion: "<think>...</think><answer>A,C</answer>"."""
        return f"<think>{self.thinking}</think>{self.solution}"


def mixed(rng, groups: list[list]) -> list:
    """Items of each group shuffled, groups kept in priority order."""
    out = []
    for group in groups:
        out += [group[k] for k in rng.permutation(len(group))]
    return out


def assemble(rng, true_groups, false_groups, n_options: int = 4, max_true: int = 3):
    """Pick 1..max_true true and the rest false options (3 or 4 in all); None if impossible.

    Returns (options, truths) shuffled, each option the item given in the groups.
    """
    true, false = mixed(rng, true_groups), mixed(rng, false_groups)
    total = min(n_options, len(true) + len(false))
    lo, hi = max(1, total - len(false)), min(max_true, len(true), total - 1)
    if total < 3 or lo > hi:
        return None
    k = int(rng.integers(lo, hi + 1))
    chosen = [(item, True) for item in true[:k]] + [(item, False) for item in false[: total - k]]
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    return [c[0] for c in chosen], [c[1] for c in chosen]


def option_lines(options: list[str], verdicts: list[str]) -> str:
    """One line per option, written as the prompt writes it ("\\nA. text") and then judged.

    The same letter and text tokens as in the prompt let a small model copy the option it judges.

    >>> option_lines(["blue", "red"], ["yes", "no"])
    '\\nA. blue: yes.\\nB. red: no.'
    """
    return "".join(f"\n{LETTERS[k]}. {text}: {why}." for k, (text, why) in enumerate(zip(options, verdicts)))


def verdicts(options: list[str], truths: list[bool], yes: str, no: str) -> str:
    """``option_lines`` with ``yes`` for the true options and ``no`` for the others."""
    return option_lines(options, [yes if ok else no for ok in truths])


def make_question(kind, text, options, truths, thinking, cut_frame=None, removed=None) -> Question:
    """A ``Question`` whose answer is the indices of the true options."""
    answer = [k for k, ok in enumerate(truths) if ok]
    return Question(kind, text, options, answer, thinking, cut_frame, removed)

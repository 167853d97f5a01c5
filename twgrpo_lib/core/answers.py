"""The one answer parser, shared by the training rewards (``rewards``) and benchmark scoring (``metrics``).

An answer is the text inside the first ``<answer>...</answer>``; its letter set comes from removing spaces,
splitting on "," and stripping each piece (docs/method.md §3). The rule is strict on purpose: "(A)", "A."
and "a" are not "A". ``answer_set(..., lenient=True)`` maps such forms to letters for analysis; nothing
uses it by default.

>>> extract_answer("<think>the cube hits it</think>\\n<answer> A, C </answer>")
'A, C'
>>> sorted(answer_set("A, C"))
['A', 'C']
>>> sorted(answer_set("(a), C."))
['(a)', 'C.']
>>> sorted(answer_set("(a), C.", lenient=True))
['A', 'C']

Without a complete tag pair, ``rule`` decides (docs/method.md §3):

- ``rule="whole"`` (default, everywhere: training rewards, ``twgrpo evaluate``, ``twgrpo rescore``): the whole
  completion, stripped, is the answer, so a bare "B" is the answer "B". This is the specification's rule.
  The paper's zero-shot rows rest on it: those completions are mostly a bare letter, and the authors'
  per-question logs record the completion "B" with extracted answer "B" and score 1.
- ``rule="phrase"`` (a named option, for analysis): the first "answer: A, C" phrase (the word
  answer/Answer/ANSWER, then colons or whitespace, then capital letters separated by commas); without one,
  the empty string, which never matches, so a bare "B" scores 0.

Both agree on everything else: the first tag pair wins (a second one is ignored), an unclosed tag is no tag,
only the space character is removed before splitting while the pieces are then stripped of all whitespace
("A,\\nC" is {A, C} but "A\\nC" is one wrong piece), duplicates collapse ("A,A" is {A}), an empty answer or
a trailing comma leaves an empty piece "" that matches no option, and case matters.

Differences from the reference code:

1. The training script first tries ``math_verify`` (symbolic equality of the whole completion and the
   solution) and gives 1.0 when it succeeds, before the string rule. That can only raise a score; for
   letter answers it essentially never fires. It is not reproduced (no ``math_verify`` dependency).
2. The evaluation scripts first delete every "system...assistant\\n" span from the decoded text (their
   decoding kept the prompt). The stored ``model_output`` of their logs is already cleaned, so scoring it
   again needs no such step; here a completion is never edited.
3. The reference scores benchmarks with two scripts that disagree: ``src/eval/eval_general_zeroshot.py``
   (the zero-shot rows) scores the whole completion without looking for tags (a tagged answer scores 0
   there); ``src/eval/eval_general_videor1.py`` (the trained checkpoints) takes the tags, else the
   "phrase" rule. ``rule="whole"`` agrees with the first on every untagged completion and with the second
   on every tagged one; ``rule="phrase"`` reproduces the second.
4. The first tag pair is found with ``str.find`` instead of a lazy regular expression: same result, but a
   100k-character completion full of unclosed tags takes microseconds instead of seconds.
"""

from __future__ import annotations

import re
from typing import Any

RULES = ("whole", "phrase")  # answer rules without tags; the first is the default
DEFAULT_RULE = RULES[0]

OPEN_TAG, CLOSE_TAG = "<answer>", "</answer>"
# The "phrase" rule without tags: "Answer: A, C" -> "A, C".
_ANSWER_PHRASE = re.compile(r"(?:answer|Answer|ANSWER)[:\s]+([A-Z](?:\s*,\s*[A-Z])*)")
# Lenient letter forms: "a", "(A)", "[A]", "A.", "A)", "A:", "A. the cube ...", "Option A", "option (b)".
_LENIENT_LETTER = re.compile(r"^(?:option\s*)?[(\[]?([A-Za-z])[)\]]?(?:[.:)]|\s|$)", re.IGNORECASE)
# An option line of a problem text: "A. text", "(B) text", "C) text", "D: text", "E text".
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])(?:[.):]|\)?\s)")


def tagged_answer(text: str) -> str | None:
    """Text inside the first ``<answer>...</answer>`` (not stripped), or None without a complete pair.

    >>> tagged_answer("<answer>A</answer><answer>B</answer>"), tagged_answer("<answer>A")
    ('A', None)
    """
    start = text.find(OPEN_TAG)
    if start < 0:
        return None
    end = text.find(CLOSE_TAG, start + len(OPEN_TAG))
    if end < 0:  # a later <answer> cannot have a closing tag after it either
        return None
    return text[start + len(OPEN_TAG):end]


def extract_answer(text: str, rule: str = DEFAULT_RULE) -> str:
    """The answer string of a completion (or of a solution such as "<answer>A,C</answer>"), stripped.

    Without tags: ``rule="whole"`` the whole text, ``rule="phrase"`` an "Answer: X" phrase or "" (see the
    module docstring). Never raises on a string.

    >>> extract_answer("<think>...</think><answer>\\nB\\n</answer> done")
    'B'
    >>> extract_answer("  B "), extract_answer("  B ", rule="phrase")
    ('B', '')
    >>> extract_answer("so the Answer: A, C", rule="phrase")
    'A, C'
    """
    if rule not in RULES:
        raise ValueError(f"answer rule must be one of {RULES}, got {rule!r}")
    inside = tagged_answer(text)
    if inside is not None:
        return inside.strip()
    if rule == "whole":
        return text.strip()
    phrase = _ANSWER_PHRASE.search(text)
    return phrase.group(1).strip() if phrase else ""


def _lenient_piece(piece: str) -> str:
    match = _LENIENT_LETTER.match(piece.strip())
    return match.group(1).upper() if match else piece.replace(" ", "").strip()


def answer_set(answer: str, lenient: bool = False) -> frozenset[str]:
    """Set of pieces of an extracted answer: remove spaces, split on ",", strip each piece.

    Strict by default ("a" is not "A"). ``lenient=True`` maps each piece that starts with a letter form
    ("a", "(A)", "A.", "A) the cube ...", "Option A") to the capital letter and leaves other pieces as the
    strict rule would; it is for analysis only and never reproduces the paper's numbers.

    >>> sorted(answer_set("A,A, C")), sorted(answer_set("A,")), answer_set("")
    (['A', 'C'], ['', 'A'], frozenset({''}))
    >>> sorted(answer_set("(A) the red cube, option c", lenient=True))
    ['A', 'C']
    """
    if lenient:
        return frozenset(_lenient_piece(piece) for piece in answer.split(","))
    return frozenset(piece.strip() for piece in answer.replace(" ", "").split(","))


def solution_letters(solution: str) -> list[str]:
    """The letters of a ground-truth solution such as ``"<answer>A,C</answer>"``, sorted; [] without the tags.

    The one parser of solutions in data files (loaders, QA inversion, training rows); pieces are not checked
    against the options here.

    >>> solution_letters("<answer>C, A,A</answer>"), solution_letters("A"), solution_letters("<answer></answer>")
    (['A', 'C'], [], [])
    """
    inside = tagged_answer(str(solution))
    return [] if inside is None else sorted(answer_set(inside) - {""})


def option_letters(item_or_problem: Any) -> tuple[str, ...]:
    """Letters of a question's options, in order; () when they cannot be found.

    Accepts an item with an ``options`` list ("A. x", "(B) y", ...), an item with a ``problem`` (or
    ``question``) text that ends in option lines, or such a text itself. In a text, the option lines are the
    last run of consecutive lines lettered A, B, C, ... (at least two), so a question line that happens to
    start with "A " is not taken for an option.

    >>> option_letters({"options": ["(A) to leave", "(B) to eat", "(C) to run"]})
    ('A', 'B', 'C')
    >>> option_letters("A ball rolls. What next?\\nA. it stops\\nB. it falls")
    ('A', 'B')
    >>> option_letters("no options here")
    ()
    """
    if isinstance(item_or_problem, dict):
        options = item_or_problem.get("options")
        if isinstance(options, list) and options:
            letters = [m.group(1) if (m := _OPTION_LINE.match(str(o))) else None for o in options]
            if None not in letters and len(set(letters)) == len(letters):
                return tuple(letters)
            return tuple(chr(ord("A") + i) for i in range(len(options)))  # unlabelled options: A, B, ...
        for key in ("problem", "question"):
            if isinstance(item_or_problem.get(key), str):
                found = option_letters(item_or_problem[key])
                if found:
                    return found
        return ()
    if not isinstance(item_or_problem, str):
        return ()
    best: list[str] = []
    run: list[str] = []
    for line in item_or_problem.splitlines():
        match = _OPTION_LINE.match(line)
        letter = match.group(1) if match else None
        if letter is not None and letter == chr(ord("A") + len(run)):
            run.append(letter)
        elif letter == "A":
            run = ["A"]
        elif line.strip():
            run = []
        if len(run) >= 2:
            best = list(run)
    return tuple(best)

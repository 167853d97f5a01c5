"""Question-answer inversion (QAI, docs/method.md §4): single-answer items -> multi-answer items.

A single-answer question "why did the boy ...?" with correct option c becomes "why didn't the boy ...?";
c is then the only wrong option and every kept distractor is correct. Random drop keeps k of the n-1
distractors, k uniform in {1..n-1}, so the number of correct letters gives nothing away.

Input: a JSON list in format C (NExT-GQA: ``question``, ``options`` "(A) text", ``answer`` "(C)") or
format A (``problem`` ending in lettered option lines, ``solution`` "<answer>B</answer>"), see docs/formats.md.
Output: format-A items with ``question``, ``options``, ``problem``, ``solution`` and ``is_negated``; every
other field (id, video, glue, ...) is kept. Format-C items also get ``answer`` rewritten ("(A),(C)").

>>> negate_question("why did the boy pick up the present")
"why didn't the boy pick up the present"
>>> negate_question("What happened to the cup?", style="star")
"What didn't happen to the cup?"
>>> print(negate_question("how many people are in the video"))
None

Differences from the reference scripts (longmalongma/TW-GRPO, ``data/question_answer_inverse/``):

1. An item whose question no rule can negate is never inverted. The reference inverts its answer anyway;
   50 of the 3,358 NExT-GQA validation questions (1.5%) have no rule, so about that share of its negated
   items keep a positive question with an inverted answer set (wrong labels). Here they stay single-answer
   and are counted in ``InversionStats.skipped_no_rule``.
2. The question keeps its casing and punctuation; the reference lower-cases every negated question.
3. ``problem`` lists options as "A. text" (docs/formats.md §A, as in the CLEVRER training data); the
   reference's NExT-GQA output writes "A text" without the dot.
4. Leading-phrase rules match whole words: the reference's ``startswith("did")`` also fires on "didn't ..."
   and would produce "didn'tn't".
5. Randomness comes from ``random.Random(seed)`` (one sub-seed per item), so a run is reproducible and an
   item's fate depends only on the seed and its position; the reference uses the unseeded global generator.
6. The reference also rewrites video paths to ``/NExTQA/videos/<id>.mp4``; here ``video`` is left as is
   (re-rooting belongs to the loader that knows the user's ``video_root``).
7. Malformed records (answer not among the options, unlabelled options, ...) raise an error naming the
   record's index and field instead of producing a silently wrong item.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field

from twgrpo_lib.core.answers import solution_letters

STYLES = ("nextgqa", "star")

# NExT-GQA rule: the second word is an auxiliary -> its negation ("why did ..." -> "why didn't ...").
NEXTGQA_SECOND_WORD = {
    "did": "didn't", "does": "doesn't", "do": "don't", "is": "isn't",
    "are": "aren't", "was": "wasn't", "were": "weren't",
}
# STAR rules (reference convert_star.py): a leading phrase first, else the second word.
STAR_LEADING = {
    "what will": "what won't", "what happened": "what didn't happen",
    "did": "didn't", "was": "wasn't", "would": "wouldn't", "able": "unable",
}
STAR_SECOND_WORD = {"did": "didn't", "was": "wasn't", "would": "wouldn't", "able": "unable"}

_SECOND_WORD = re.compile(r"^(\s*\S+\s+)([A-Za-z]+)\b(?!')")
_LEADING = re.compile(
    r"^(\s*)(" + "|".join(p.replace(" ", r"\s+") for p in STAR_LEADING) + r")\b(?!')", re.IGNORECASE
)
_C_OPTION = re.compile(r"^\(([A-Z])\)\s?(.*)$", re.DOTALL)
_C_ANSWER = re.compile(r"^\s*\(([A-Z])\)\s*$")  # one letter of "(A)" or "(A),(C)"
_A_OPTION = re.compile(r"^([A-Z])(?:[.):]\s*|\s+)(.*)$")


def _match_case(replacement: str, original: str) -> str:
    """Give ``replacement`` the casing of ``original`` (lower, Capitalised or UPPER)."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    return replacement[0].upper() + replacement[1:] if original[:1].isupper() else replacement


def negate_question(question: str, style: str = "nextgqa") -> str | None:
    """The negated question, or None when no rule of ``style`` ("nextgqa" or "star") applies.

    >>> negate_question("Why Is the dog barking?")
    "Why Isn't the dog barking?"
    >>> negate_question("Did the man leave?", style="star")
    "Didn't the man leave?"
    >>> print(negate_question("why didn't the boy run"))  # already negative: no rule
    None
    """
    if style not in STYLES:
        raise ValueError(f"unknown negation style {style!r}; choose one of {STYLES}")
    if style == "star":
        lead = _LEADING.match(question)
        if lead:
            phrase = " ".join(lead.group(2).lower().split())
            return lead.group(1) + _match_case(STAR_LEADING[phrase], lead.group(2)) + question[lead.end():]
    table = NEXTGQA_SECOND_WORD if style == "nextgqa" else STAR_SECOND_WORD
    second = _SECOND_WORD.match(question)
    if second and second.group(2).lower() in table:
        word = second.group(2)
        return second.group(1) + _match_case(table[word.lower()], word) + question[second.end():]
    return None


@dataclass
class MultipleChoice:
    """One parsed item: question text, option texts (without labels), indices of the correct options."""

    question: str
    options: list[str]
    answers: list[int]
    source_format: str  # "A" or "C"


def _letters(n: int) -> str:
    return "".join(chr(ord("A") + i) for i in range(n))


def parse_item(record: dict, index: int = 0, source: str = "input") -> MultipleChoice:
    """Read a format-C or format-A record; a malformed one raises ValueError naming index and field.

    >>> parse_item({"question": "why did he go", "options": ["(A) x", "(B) y"], "answer": "(B)"}).answers
    [1]
    >>> parse_item({"problem": "Which?\\nA. x\\nB. y\\nC. z", "solution": "<answer>A,C</answer>"}).answers
    [0, 2]
    """
    where = f"{source}: record {index}"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "answer" in record and "options" in record and "question" in record:
        options = record["options"]
        if not isinstance(options, list) or len(options) < 2:
            raise ValueError(f"{where}: field 'options' must be a list of at least 2 options, got {options!r}")
        texts = []
        for i, option in enumerate(options):
            m = _C_OPTION.match(option) if isinstance(option, str) else None
            if not m or m.group(1) != chr(ord("A") + i):
                raise ValueError(f"{where}: field 'options'[{i}] should look like '({chr(ord('A') + i)}) text', "
                                 f"got {option!r}")
            texts.append(m.group(2))
        answer = record["answer"]
        parts = [_C_ANSWER.match(a) for a in answer.split(",")] if isinstance(answer, str) else [None]
        if not all(parts) or any(ord(m.group(1)) - ord("A") >= len(texts) for m in parts):
            raise ValueError(f"{where}: field 'answer' {answer!r} is not one of the options "
                             f"(A)-({_letters(len(texts))[-1]})")
        return MultipleChoice(str(record["question"]), texts, sorted({ord(m.group(1)) - ord("A") for m in parts}), "C")
    if "problem" in record and "solution" in record:
        lines = str(record["problem"]).rstrip("\n").split("\n")
        # the options are the trailing run of lines labelled A, B, C, ... in order
        start = len(lines)
        while start > 0 and (m := _A_OPTION.match(lines[start - 1].strip())) is not None:
            start -= 1
            if m.group(1) == "A":
                break
        labelled = [_A_OPTION.match(line.strip()) for line in lines[start:]]
        if len(labelled) < 2 or "".join(m.group(1) for m in labelled) != _letters(len(labelled)):
            raise ValueError(f"{where}: field 'problem' does not end with option lines 'A. text', 'B. text', ...")
        letters = solution_letters(record["solution"])
        if not letters or any(len(c) != 1 or c not in _letters(len(labelled)) for c in letters):
            raise ValueError(f"{where}: field 'solution' {record['solution']!r} is not a set of option letters "
                             f"among A-{_letters(len(labelled))[-1]}")
        question = "\n".join(lines[:start]).strip()
        answers = sorted({ord(c) - ord("A") for c in letters})
        return MultipleChoice(question, [m.group(2) for m in labelled], answers, "A")
    raise ValueError(f"{where}: neither format C (question, options, answer) nor format A (problem, solution); "
                     f"fields present: {sorted(record)}")


def to_record(original: dict, item: MultipleChoice, is_negated: bool) -> dict:
    """Output record: the original's fields plus question/options/problem/solution/is_negated.

    >>> r = to_record({"id": "7"}, MultipleChoice("why not", ["x", "y", "z"], [0, 2], "C"), True)
    >>> r["problem"], r["solution"], r["options"], r["answer"]
    ('why not\\nA. x\\nB. y\\nC. z', '<answer>A,C</answer>', ['(A) x', '(B) y', '(C) z'], '(A),(C)')
    """
    letters = _letters(len(item.options))
    record = dict(original)
    record["question"] = item.question
    if item.source_format == "C":
        record["options"] = [f"({letter}) {text}" for letter, text in zip(letters, item.options)]
        record["answer"] = ",".join(f"({letters[i]})" for i in item.answers)
    else:
        record["options"] = [f"{letter}. {text}" for letter, text in zip(letters, item.options)]
    record["problem"] = item.question + "\n" + "\n".join(f"{a}. {text}" for a, text in zip(letters, item.options))
    record["solution"] = "<answer>" + ",".join(letters[i] for i in item.answers) + "</answer>"
    record["is_negated"] = is_negated
    return record


def invert_choices(item: MultipleChoice, question: str, rng: random.Random, random_drop: bool = True) -> MultipleChoice:
    """Invert a single-answer item: the correct option becomes the only wrong one.

    Keeps k of the n-1 distractors (k uniform in {1..n-1} with ``random_drop``, else all), shuffles them with
    the old answer, and marks every option except the old answer correct.

    >>> out = invert_choices(MultipleChoice("q", ["a", "b", "c"], [1], "C"), "not q", random.Random(0), False)
    >>> sorted(out.options), [out.options[i] for i in out.answers]
    (['a', 'b', 'c'], ['a', 'c'])
    """
    if len(item.answers) != 1:
        raise ValueError(f"only single-answer items can be inverted, this one has answers {item.answers}")
    correct = item.answers[0]
    distractors = [text for i, text in enumerate(item.options) if i != correct]
    keep = rng.randint(1, len(distractors)) if random_drop else len(distractors)
    order = rng.sample(range(len(distractors)), keep) + [-1]  # -1 stands for the old answer
    rng.shuffle(order)
    options = [item.options[correct] if i < 0 else distractors[i] for i in order]
    answers = [pos for pos, i in enumerate(order) if i >= 0]
    return MultipleChoice(question, options, answers, item.source_format)


def invert_item(record: dict, rng: random.Random, style: str = "nextgqa", random_drop: bool = True,
                index: int = 0, source: str = "input") -> dict | None:
    """The negated, answer-inverted output record, or None if it cannot be inverted.

    None when no negation rule applies or the item already has several answers: such items are never
    inverted.

    >>> rec = {"id": "1", "question": "why did he go", "options": ["(A) x", "(B) y", "(C) z"], "answer": "(B)"}
    >>> out = invert_item(rec, random.Random(0), random_drop=False)
    >>> out["question"], out["is_negated"], sorted(option[4:] for option in out["options"])
    ("why didn't he go", True, ['x', 'y', 'z'])
    >>> sorted(out["options"][ord(a[1]) - 65][4:] for a in out["answer"].split(","))  # the old distractors
    ['x', 'z']
    >>> print(invert_item({**rec, "question": "how many people"}, random.Random(0)))
    None
    """
    item = parse_item(record, index, source)
    question = negate_question(item.question, style)
    if question is None or len(item.answers) != 1:
        return None
    return to_record(record, invert_choices(item, question, rng, random_drop), is_negated=True)


@dataclass
class InversionStats:
    """What ``invert_dataset`` did: counts, the answer-count distribution and a few skipped questions."""

    total: int = 0
    negated: int = 0
    skipped_no_rule: int = 0  # drawn for negation, but no rule applies: left unchanged
    no_rule_total: int = 0  # items no rule applies to, drawn or not
    multi_answer: int = 0  # already multi-answer: passed through
    answer_counts: Counter = field(default_factory=Counter)  # number of correct letters -> items
    skipped_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(self.answer_counts.items()))
        lines = [
            f"items: {self.total}   negated: {self.negated} ({self.negated / max(self.total, 1):.1%})",
            f"no negation rule: {self.no_rule_total} items, of which {self.skipped_no_rule} were drawn for "
            f"negation and left unchanged",
            f"already multi-answer (passed through): {self.multi_answer}",
            f"correct letters per item -> items: {counts}",
        ]
        lines += [f"  e.g. no rule: {q!r}" for q in self.skipped_examples]
        return "\n".join(lines)


def invert_dataset(items: list[dict], p: float = 0.5, seed: int = 0, style: str = "nextgqa",
                   random_drop: bool = True, source: str = "input",
                   max_examples: int = 5) -> tuple[list[dict], InversionStats]:
    """Negate each single-answer item with probability ``p``; return the output records and statistics.

    Item i draws from ``random.Random(s_i)``, s_i the i-th draw of ``random.Random(seed)``: the same seed
    gives the same output, and changing one item does not reshuffle the others.

    >>> recs = [{"question": "why did he go", "options": ["(A) x", "(B) y"], "answer": "(A)"},
    ...         {"question": "how many dogs", "options": ["(A) 1", "(B) 2"], "answer": "(B)"}]
    >>> out, stats = invert_dataset(recs, p=1.0)
    >>> [r["is_negated"] for r in out], out[0]["question"], out[0]["options"][ord(out[0]["answer"][1]) - 65][4:]
    ([True, False], "why didn't he go", 'y')
    >>> stats.negated, stats.skipped_no_rule, stats.skipped_examples
    (1, 1, ['how many dogs'])
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    if style not in STYLES:
        raise ValueError(f"unknown negation style {style!r}; choose one of {STYLES}")
    master = random.Random(seed)
    stats = InversionStats(total=len(items))
    output = []
    for index, record in enumerate(items):
        rng = random.Random(master.getrandbits(64))
        item = parse_item(record, index, source)
        question = negate_question(item.question, style)
        draw = rng.random() < p
        if question is None:
            stats.no_rule_total += 1
        if len(item.answers) > 1:  # already multi-answer: pass through
            stats.multi_answer += 1
            if item.source_format == "C":
                out = to_record(record, item, is_negated=False)
            else:  # keep problem and solution verbatim
                letters = _letters(len(item.options))
                out = {"question": item.question, "options": [f"{a}. {t}" for a, t in zip(letters, item.options)],
                       **record, "is_negated": False}
            n_answers = len(item.answers)
        elif draw and question is not None:
            inverted = invert_choices(item, question, rng, random_drop)
            out, n_answers = to_record(record, inverted, is_negated=True), len(inverted.answers)
            stats.negated += 1
        else:
            if draw:
                stats.skipped_no_rule += 1
                if len(stats.skipped_examples) < max_examples:
                    stats.skipped_examples.append(item.question)
            out, n_answers = to_record(record, item, is_negated=False), 1
        stats.answer_counts[n_answers] += 1
        output.append(out)
    return output, stats


def negatable_share(items: list[dict], style: str = "nextgqa") -> float:
    """Share of records whose question some rule of ``style`` can negate.

    >>> negatable_share([{"question": "why did he go", "options": ["(A) x", "(B) y"], "answer": "(A)"}])
    1.0
    """
    parsed = [parse_item(record, i) for i, record in enumerate(items)]
    return sum(negate_question(item.question, style) is not None for item in parsed) / max(len(parsed), 1)


def render(record: dict) -> str:
    """A record as text, one option per line, the correct ones marked with a check.

    >>> print(render({"problem": "why did he go\\nA. x\\nB. y", "solution": "<answer>B</answer>"}))
    why did he go
      A. x
      B. y  \u2713
    """
    item = parse_item(record)
    lines = [item.question]
    for i, (letter, text) in enumerate(zip(_letters(len(item.options)), item.options)):
        lines.append(f"  {letter}. {text}" + ("  \u2713" if i in item.answers else ""))
    return "\n".join(lines)


def preview(question: str, options: list[str], answer: str, style: str = "nextgqa", seed: int = 0,
            random_drop: bool = True) -> str:
    """Before/after text of one inversion (the notebook's form): option texts without labels, answer letter.

    >>> print(preview("why did he go", ["x", "y", "z"], "B", random_drop=False).splitlines()[-4])
    why didn't he go
    """
    record = {"question": question, "options": [f"({chr(ord('A') + i)}) {t}" for i, t in enumerate(options)],
              "answer": f"({answer.strip().upper()})"}
    inverted = invert_item(record, random.Random(seed), style=style, random_drop=random_drop)
    after = render(inverted) if inverted else f"no {style} rule negates this question: the item is not inverted"
    return "before:\n" + render(record) + "\n\nafter:\n" + after

"""Benchmark scoring: strict / partial accuracy, single- and multi-answer splits, per-option accuracy.

Every record is scored again from its model output and ground truth with the one parser (``answers``,
``rewards``); scores stored in the record are only compared, never trusted.

- strict accuracy  = share of questions with soft accuracy 1 (the paper's headline number), percent
- partial accuracy = mean soft accuracy, percent
- split by the size of the ground-truth letter set: ``single`` (one letter) and ``multi`` (several)
- per-option accuracy (CLEVRER's own metric): every option of every question is one judgement, right when
  "chosen" equals "correct"; needs the option letters (``answers.option_letters``)
- ``by_<field>`` for the categorical fields of ``CATEGORY_FIELDS`` that take at least two values (string
  or boolean values only, so NExT-GQA's duration in seconds is not a category; "(none)" collects the rest)
- records with an ``error`` (for example a missing video) are counted in ``errors`` and left out of every
  accuracy; a question answered again after an error counts once, as answered
- duplicates (same ``id``; without one or with ``"id": null``, same question item and ground truth) count
  once, the first one kept, with a warning; ``duplicates`` says how many records were dropped

>>> rows = [{"question": {"problem": "Q\\nA. x\\nB. y\\nC. z"}, "ground_truth": "<answer>A,C</answer>",
...          "model_output": "<think>...</think><answer>A</answer>"},
...         {"question": {"problem": "Q2\\nA. x\\nB. y"}, "ground_truth": "<answer>B</answer>",
...          "model_output": "<think>...</think><answer>B</answer>"}]
>>> s = summarize(rows)
>>> s["overall"]["strict_accuracy"], s["overall"]["partial_accuracy"], s["multi"]["count"]
(50.0, 75.0, 1)
>>> round(s["per_option_accuracy"], 1)   # A right, B right, C missed; A right, B right
80.0

Differences from the reference evaluation scripts (longmalongma/TW-GRPO, ``src/eval/``):

1. The default ``rule="whole"`` is the specification's answer rule (docs/method.md §3): an untagged
   completion is its own answer, as in the zero-shot script that produced the paper's zero-shot rows;
   ``rule="phrase"`` reproduces the general script's extraction and format check (``answers``).
2. Their CLEVRER metrics file computes "overall" over the last batch only (its published file says 50.0 over
   6 records); the paper's 50.4 is the count-weighted mean of its single (60.9, 3,945) and multi (42.5,
   5,293) rows, which is what ``overall`` is here.
3. They split single/multi by a "," in the ground-truth text; here by the size of the letter set (the same
   for well-formed files).
4. Their resume logic can append a run twice to the same log; duplicates are counted once here.
5. With no record in a group they report 0.0; here the accuracies of an empty group are None.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

from twgrpo_lib.core.answers import DEFAULT_RULE, answer_set, extract_answer, option_letters
from twgrpo_lib.core.rewards import completion_text, format_reward_score, soft_score

OUTPUT_FIELDS = ("model_output", "output", "response", "prediction", "completion")
TRUTH_FIELDS = ("ground_truth", "solution", "answer")
# question type (mini-CLEVRER, CLEVRER, NExT-GQA), MVBench task, Video-MME duration/domain, QAI negation
CATEGORY_FIELDS = ("question_type", "type", "task", "task_type", "duration", "domain", "sub_category",
                   "is_negated")


@dataclass
class Scored:
    """One question's score; ``option_right`` / ``option_total`` are 0 when the options are unknown."""

    key: str | None  # identity of the question (``record_key``); None when the record carries none
    soft: float
    format: float
    multi: bool
    option_right: int = 0
    option_total: int = 0
    categories: dict[str, str] = field(default_factory=dict)
    stored_score: float | None = None


def _first(record: dict, names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if name in record:
            return name, record[name]
    return None, None


def _truth(record: dict) -> tuple[str | None, Any]:
    name, truth = _first(record, TRUTH_FIELDS)
    item = record.get("question")
    if truth is None and isinstance(item, dict) and "solution" in item:
        return "question.solution", item["solution"]
    return name, truth


ID_FIELDS = ("id", "problem_id", "question_id")  # the kit's, Video-R1's and other tools' question ids


def record_key(record: dict) -> str | None:
    """Identity of a question for duplicate detection: its id (``id``, ``problem_id`` or ``question_id``), else
    (no id, or ``null``) its question item and ground truth, else None: such a record is its own question
    (records that share only a ground truth and an output are never taken for one).

    >>> record_key({"id": 7, "model_output": "A"}), record_key({"problem_id": 7, "model_output": "A"})
    ('id:7', 'id:7')
    >>> record_key({"id": None, "question": "Q?", "solution": "A"})
    'item:["Q?", "A"]'
    >>> print(record_key({"ground_truth": "A", "model_output": "B"}))
    None
    """
    for name in ID_FIELDS:
        if record.get(name) is not None:
            return f"id:{record[name]}"
    if record.get("question") is not None:
        return "item:" + json.dumps([record.get("question"), _truth(record)[1]], sort_keys=True,
                                    ensure_ascii=False, default=str)
    return None


def _categories(record: dict, item: Any) -> dict[str, str]:
    found = {}
    for source in (item, record):
        if not isinstance(source, dict):
            continue
        for name in CATEGORY_FIELDS:
            value = source.get(name)
            if name not in found and isinstance(value, (str, bool)) and str(value).strip():
                found[name] = str(value).lower() if isinstance(value, bool) else value.strip()
    return found


def score_record(record: Any, where: str = "record 0", rule: str = DEFAULT_RULE, lenient: bool = False) -> Scored:
    """Score one prediction record (docs/formats.md §E, or another tool's field names); raises on bad input.

    >>> r = score_record({"id": "q1", "ground_truth": "A,C", "output": "<answer>C</answer>"})
    >>> r.soft, r.multi, r.key
    (0.5, True, 'id:q1')
    """
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
    item = record.get("question")
    out_name, output = _first(record, OUTPUT_FIELDS)
    if out_name is None or output is None:
        raise ValueError(f"{where}: no model output (expected one of the fields {', '.join(OUTPUT_FIELDS)})")
    truth_name, truth = _truth(record)
    if not isinstance(truth, str):
        raise ValueError(f"{where}: no ground truth (expected a string in one of the fields "
                         f"{', '.join(TRUTH_FIELDS)}, or question.solution)")
    truth_set = answer_set(extract_answer(truth), lenient=lenient)
    if truth_set == {""}:
        raise ValueError(f"{where}: field {truth_name!r} holds no answer: {truth!r}")
    text = completion_text(output)
    chosen = answer_set(extract_answer(text, rule=rule), lenient=lenient)
    letters = option_letters(item) or option_letters(record)
    stored = record.get("accuracy_score")
    return Scored(
        key=record_key(record),
        soft=soft_score(chosen, truth_set),
        format=format_reward_score(text, rule=rule),
        multi=len(truth_set) > 1,
        option_right=sum((letter in chosen) == (letter in truth_set) for letter in letters),
        option_total=len(letters),
        categories=_categories(record, item),
        stored_score=float(stored) if isinstance(stored, (int, float)) else None,
    )


def group_metrics(scored: list[Scored]) -> dict[str, Any]:
    """count, strict / partial accuracy and format rate (percent; None for an empty group).

    >>> group_metrics([Scored("a", 1.0, 1.0, False), Scored("b", 0.5, 0.0, True)])
    {'count': 2, 'strict_accuracy': 50.0, 'partial_accuracy': 75.0, 'format_rate': 50.0}
    """
    n = len(scored)
    if n == 0:
        return {"count": 0, "strict_accuracy": None, "partial_accuracy": None, "format_rate": None}
    return {
        "count": n,
        "strict_accuracy": 100.0 * sum(s.soft == 1.0 for s in scored) / n,
        "partial_accuracy": 100.0 * sum(s.soft for s in scored) / n,
        "format_rate": 100.0 * sum(s.format for s in scored) / n,
    }


def summarize(records: list, source: str = "records", lines: list[int] | None = None,
              rule: str = DEFAULT_RULE, lenient: bool = False) -> dict[str, Any]:
    """Summary dict (JSON-able) of prediction records; see the module docstring for every entry.

    ``source`` and ``lines`` (the line number of each record in its file) only name the place of bad input.
    """
    kept: dict[str, Scored] = {}
    failed: set[str] = set()
    for index, record in enumerate(records):
        where = f"{source}, line {lines[index]}" if lines else f"{source}, record {index}"
        if isinstance(record, dict) and record.get("error"):
            failed.add(record_key(record) or f"record {index}")
            continue
        scored = score_record(record, where, rule=rule, lenient=lenient)
        kept.setdefault(scored.key or f"record {index}", scored)
    errors = len(failed - kept.keys())
    duplicates = len(records) - len(kept) - errors
    if duplicates:
        warnings.warn(f"{source}: {duplicates} duplicate record(s) of the same question counted once "
                      "(the first one kept)", stacklevel=2)
    scored = list(kept.values())
    summary: dict[str, Any] = {
        "answer_rule": rule,
        "lenient": lenient,
        "records": len(records),
        "overall": group_metrics(scored),
        "single": group_metrics([s for s in scored if not s.multi]),
        "multi": group_metrics([s for s in scored if s.multi]),
    }
    with_options = [s for s in scored if s.option_total]
    option_total = sum(s.option_total for s in with_options)
    summary["per_option_accuracy"] = (100.0 * sum(s.option_right for s in with_options) / option_total
                                      if option_total else None)
    summary["per_option_count"] = option_total
    summary["per_option_questions"] = len(with_options)
    for name in CATEGORY_FIELDS:
        values = sorted({s.categories[name] for s in scored if name in s.categories})
        if len(values) >= 2:
            summary[f"by_{name}"] = {
                value: group_metrics([s for s in scored if s.categories.get(name, "(none)") == value])
                for value in values + (["(none)"] if any(name not in s.categories for s in scored) else [])
            }
    summary["errors"] = errors
    summary["duplicates"] = duplicates
    summary["stored_score_mismatches"] = sum(
        s.stored_score is not None and abs(s.stored_score - s.soft) > 1e-9 for s in scored)
    return summary


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(summary: dict[str, Any]) -> str:
    """A readable text table of a summary.

    >>> records = [{"ground_truth": "B", "model_output": "<answer>B</answer>"}]
    >>> print(format_table(summarize(records)))  # doctest: +ELLIPSIS
    group          count  strict %  partial %  format %
    overall            1    100.00     100.00      0.00
    ...
    """
    rows = [("overall", summary["overall"]), ("single-answer", summary["single"]),
            ("multi-answer", summary["multi"])]
    for key, groups in summary.items():
        if key.startswith("by_"):
            rows += [(f"{key[3:]}={value}", metrics) for value, metrics in groups.items()]
    width = max(14, max(len(name) for name, _ in rows))
    lines = [f"{'group':<{width}} {'count':>5}  {'strict %':>8}  {'partial %':>9}  {'format %':>8}"]
    for name, m in rows:
        lines.append(f"{name:<{width}} {m['count']:>5}  {_pct(m['strict_accuracy']):>8}  "
                     f"{_pct(m['partial_accuracy']):>9}  {_pct(m['format_rate']):>8}")
    if summary["per_option_accuracy"] is None:
        lines.append("per-option accuracy: - (option letters unknown)")
    else:
        lines.append(f"per-option accuracy: {_pct(summary['per_option_accuracy'])} % over "
                     f"{summary['per_option_count']} options of {summary['per_option_questions']} questions")
    lines.append(f"records read: {summary['records']}; errors (left out): {summary['errors']}; "
                 f"duplicates (counted once): {summary['duplicates']}; stored scores that differ: "
                 f"{summary['stored_score_mismatches']}")
    lines.append(f"answer rule: {summary['answer_rule']}, {'lenient' if summary['lenient'] else 'strict'} letters")
    return "\n".join(lines)

"""The answer rule of docs/method.md §3 on literal records: training reward, ``twgrpo evaluate`` and
``twgrpo rescore`` score the same text the same way, and untagged completions are their own answer."""

import json
from pathlib import Path

import pytest

from twgrpo_lib.cli import main
from twgrpo_lib.core.rewards import accuracy_reward
from twgrpo_lib.eval.evaluation import make_record
from twgrpo_lib.eval.metrics import score_record, summarize

EXCERPT = Path(__file__).parent / "data" / "published_log_excerpt_mmvu_zeroshot.jsonl"

# (model_output, ground-truth letters, score by default ("whole"), score by "phrase", why)
LITERAL = [
    ("B", "B", 1.0, 0.0, "no tags: the whole completion is the answer, the letter B"),
    ("B.", "B", 0.0, 0.0, "the piece 'B.' is not the letter B (strict letters; --lenient would map it)"),
    (" B ", "B", 1.0, 0.0, "surrounding whitespace is stripped: the letter B"),
    ("A, C", "A,C", 1.0, 0.0, "spaces removed, split on ',': the set {A, C}"),
    ("A, C", "A,B,C", 2 / 3, 0.0, "{A, C} is a subset of {A, B, C}: soft credit 2/3"),
    ("A, C", "A", 0.0, 0.0, "C is wrong: soft accuracy gives 0 for any wrong letter"),
    ("The gas reacts with the solution, so the answer is B.", "B", 0.0, 0.0,
     "untagged paragraph: its pieces are sentences, not letters; 'answer is' is no phrase"),
    ("Looking at the video closely.\nAnswer: B", "B", 0.0, 1.0,
     "untagged paragraph: no piece is a letter; only the phrase rule reads 'Answer: B'"),
    ("<think>The pressure rises.</think>\n<answer>B</answer>", "B", 1.0, 1.0,
     "tagged: the text inside the first <answer> tags, under both rules"),
]


def _record(index: int, output: str, truth: str) -> dict:
    options = [f"{letter}. option {letter}" for letter in "ABCDE"]
    return {"id": f"q{index}", "question": {"problem": "Which?", "options": options},
            "ground_truth": f"<answer>{truth}</answer>", "model_output": output}


@pytest.mark.parametrize("index", range(len(LITERAL)))
def test_literal_records_score_the_same_in_training_evaluation_and_rescoring(index):
    output, truth, whole, phrase, why = LITERAL[index]
    record = _record(index, output, truth)
    assert score_record(record).soft == pytest.approx(whole), why
    assert score_record(record, rule="phrase").soft == pytest.approx(phrase), why
    reward = accuracy_reward([[{"role": "assistant", "content": output}]], solution=[record["ground_truth"]])
    assert reward == [pytest.approx(whole)], why
    written = make_record({"id": record["id"], "solution": record["ground_truth"]}, output)
    assert written["accuracy_score"] == pytest.approx(whole), why


def test_rescore_defaults_to_the_specification_rule(tmp_path, capsys):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(_record(i, row[0], row[1])) + "\n" for i, row in enumerate(LITERAL)))
    assert main(["rescore", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["answer_rule"] == "whole"
    expected = sum(row[2] == 1.0 for row in LITERAL) / len(LITERAL) * 100
    assert summary["overall"]["strict_accuracy"] == pytest.approx(expected)
    assert main(["rescore", str(path), "--json", "--answer-rule", "phrase"]) == 0
    phrase = json.loads(capsys.readouterr().out)
    assert phrase["overall"]["strict_accuracy"] == pytest.approx(sum(r[3] == 1.0 for r in LITERAL) / len(LITERAL) * 100)


def test_published_log_records_are_rescored_as_the_authors_stored_them():
    """Four verbatim records of the authors' zero-shot MMVU log (tests/data/README.md): bare letters, stored
    with extracted answer = the completion and score 1 when it is the right letter."""
    records = [json.loads(line) for line in EXCERPT.read_text(encoding="utf-8").splitlines()]
    assert all(len(r["model_output"]) == 1 for r in records)
    summary = summarize(records)
    assert summary["stored_score_mismatches"] == 0
    assert summary["overall"]["strict_accuracy"] == pytest.approx(
        100 * sum(r["accuracy_score"] == 1.0 for r in records) / len(records))
    assert summarize(records, rule="phrase")["overall"]["strict_accuracy"] == 0.0  # the old default's reading
    for r in records:
        assert score_record(r).soft == r["accuracy_score"]

"""Benchmark scoring and ``twgrpo rescore``: hand-made cases with answers worked out by hand."""

import json
import warnings

import pytest

from twgrpo_lib.cli import main
from twgrpo_lib.core.rewards import soft_accuracy
from twgrpo_lib.data.formats import read_records
from twgrpo_lib.eval.metrics import format_table, score_record, summarize


def record(rid, problem_or_options, truth, output, **extra):
    item = ({"options": problem_or_options} if isinstance(problem_or_options, list)
            else {"problem": problem_or_options})
    item.update(extra)
    return {"id": rid, "question": item, "ground_truth": f"<answer>{truth}</answer>",
            "model_output": f"<think>...</think>\n<answer>{output}</answer>"}


# By hand (strict letters):                  soft  per-option right/total
HAND = [
    record("q1", "Q1?\nA. a\nB. b\nC. c\nD. d", "A,C", "A"),           # 0.5   A B D right, C missed: 3/4
    record("q2", ["A. x", "B. y", "C. z"], "B", "B"),                   # 1     3/3
    record("q3", ["(A) p", "(B) q", "(C) r", "(D) s", "(E) t"], "D", "(D)"),  # 0 (strict) 4/5; lenient 1, 5/5
    record("q4", "Q4?\nA. a\nB. b\nC. c", "A,B", "A,B,C"),              # 0     A B right, C wrong: 2/3
]


def test_hand_made_summary():
    s = summarize(HAND)
    assert s["overall"] == {"count": 4, "strict_accuracy": 25.0, "partial_accuracy": 37.5, "format_rate": 100.0}
    assert (s["single"]["count"], s["single"]["strict_accuracy"], s["single"]["partial_accuracy"]) == (2, 50.0, 50.0)
    assert (s["multi"]["count"], s["multi"]["strict_accuracy"], s["multi"]["partial_accuracy"]) == (2, 0.0, 25.0)
    assert s["per_option_accuracy"] == pytest.approx(100 * 12 / 15)
    assert (s["per_option_count"], s["per_option_questions"]) == (15, 4)
    assert (s["errors"], s["duplicates"], s["records"]) == (0, 0, 4)
    json.dumps(s)  # JSON-able
    for row in HAND:  # the same parser and rule as the training reward
        for lenient in (False, True):
            expected = soft_accuracy(row["model_output"], row["ground_truth"], lenient=lenient)
            assert score_record(row, lenient=lenient).soft == expected

    lenient = summarize(HAND, lenient=True)
    assert lenient["overall"]["strict_accuracy"] == 50.0
    assert lenient["per_option_accuracy"] == pytest.approx(100 * 13 / 15)


def test_always_rescored_and_stored_scores_compared():
    stale = dict(HAND[0], accuracy_score=1.0, extracted_answer="A,C")  # the stored values are wrong
    right = dict(HAND[1], accuracy_score=1.0)
    s = summarize([stale, right])
    assert s["overall"]["partial_accuracy"] == 75.0
    assert s["stored_score_mismatches"] == 1


def test_answer_rules_without_tags():
    rows = [{"ground_truth": "<answer>B</answer>", "model_output": "Answer: B"},
            {"ground_truth": "<answer>C</answer>", "model_output": "C"}]
    assert summarize(rows)["overall"]["strict_accuracy"] == 50.0  # default "whole": "Answer: B" scores 0
    assert score_record(rows[1]).soft == 1.0                       # ... and the bare "C" scores 1
    assert summarize(rows, rule="phrase")["overall"]["strict_accuracy"] == 50.0  # the other way round
    assert score_record(rows[1], rule="phrase").soft == 0.0


def test_duplicates_count_once_with_a_warning():
    again = dict(HAND[1], model_output="<answer>A</answer>")  # same id, different answer: first kept
    with pytest.warns(UserWarning, match="1 duplicate"):
        s = summarize([HAND[1], again, HAND[0]])
    assert s["overall"]["count"] == 2 and s["duplicates"] == 1
    assert s["single"]["strict_accuracy"] == 100.0

    no_id = [{k: v for k, v in r.items() if k != "id"} for r in (HAND[1], HAND[1], HAND[0])]
    with pytest.warns(UserWarning):
        assert summarize(no_id)["overall"]["count"] == 2
    other_truth = dict(no_id[1], ground_truth="<answer>C</answer>")  # same question, other answer: distinct
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert summarize([no_id[0], other_truth])["overall"]["count"] == 2


def test_error_records_are_counted_apart():
    failed = {"id": "q9", "question": {"problem": "Q"}, "ground_truth": "<answer>A</answer>",
              "model_output": None, "error": "video not found: /data/v9.mp4"}
    s = summarize(HAND + [failed])
    assert s["errors"] == 1 and s["overall"]["count"] == 4 and s["overall"]["strict_accuracy"] == 25.0
    retried = dict(HAND[1], id="q9")  # answered on a later attempt: counts once, as answered
    with pytest.warns(UserWarning):
        s = summarize([dict(failed), retried])
    assert (s["errors"], s["overall"]["count"], s["duplicates"]) == (0, 1, 1)


def test_categories_with_two_or_more_values_get_their_own_table():
    rows = [
        record("m1", ["A. x", "B. y"], "A", "A", duration="short", domain="Sports", problem_type="multiple choice"),
        record("m2", ["A. x", "B. y"], "A", "B", duration="long", domain="Sports", problem_type="multiple choice"),
        record("m3", ["A. x", "B. y"], "B", "B", duration="long", domain="Music", problem_type="multiple choice"),
        record("m4", ["A. x", "B. y"], "B", "B", is_negated=True),
    ]
    s = summarize(rows)
    assert s["by_duration"]["long"]["count"] == 2 and s["by_duration"]["long"]["strict_accuracy"] == 50.0
    assert s["by_duration"]["short"]["strict_accuracy"] == 100.0
    assert s["by_duration"]["(none)"]["count"] == 1
    assert set(s["by_domain"]) == {"Music", "Sports", "(none)"}
    assert "by_is_negated" not in s and "by_problem_type" not in s   # one value only
    table = format_table(s)
    assert "duration=long" in table and "domain=Music" in table


def test_other_tools_field_names_and_chat_outputs():
    rows = [
        {"question": "Which?\nA. x\nB. y", "solution": "B", "output": "<answer>B</answer>"},
        {"question": {"problem": "Q\nA. x\nB. y", "solution": "<answer>A</answer>"},
         "response": [{"role": "assistant", "content": [{"type": "text", "text": "<answer>A</answer>"}]}]},
        {"id": 3, "answer": "A,B", "prediction": "<answer>A</answer>"},
        {"id": 4, "ground_truth": "A", "completion": "<answer>A</answer>"},
    ]
    s = summarize(rows)
    assert s["overall"]["count"] == 4 and s["overall"]["partial_accuracy"] == 87.5
    assert s["per_option_questions"] == 2


@pytest.mark.parametrize("bad,message", [
    ({"id": 1, "ground_truth": "<answer>A</answer>"}, "no model output"),
    ({"id": 1, "model_output": "<answer>A</answer>"}, "no ground truth"),
    ({"id": 1, "ground_truth": "<answer> </answer>", "model_output": "A"}, "'ground_truth' holds no answer"),
    (["not", "an", "object"], "expected a JSON object"),
])
def test_bad_records_name_place_and_field(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        summarize(HAND + [bad], source="preds.jsonl")
    assert "preds.jsonl, record 4" in str(err.value)
    with pytest.raises(ValueError, match="preds.jsonl, line 9"):
        summarize([bad], source="preds.jsonl", lines=[9])


# The layout of the evaluation logs published with the paper: JSON lines in a file named *.json, the input
# item under "question", no top-level id; scores stored as the evaluation script computed them.
PUBLISHED_LAYOUT = [
    {"question": {"problem_id": 1, "problem": "How many grams?", "data_type": "video",
                  "problem_type": "multiple choice", "options": ["A. 10.0", "B. 5.0", "C. 12.0"],
                  "solution": "<answer>A</answer>", "video": "/MMVU/videos/Chemistry/0.mp4"},
     "ground_truth": "<answer>A</answer>", "model_output": "<think>\nmoles\n</think>\n\n<answer>A</answer>",
     "extracted_answer": "A", "think_content": "moles", "accuracy_score": 1.0, "format_score": 1.0,
     "think_confidence": 0.69, "answer_confidence": 0.91},
    {"question": {"problem_id": 2, "problem": "Which process?", "data_type": "video",
                  "problem_type": "multiple choice", "options": ["A. Isothermal", "B. Adiabatic"],
                  "solution": "<answer>B</answer>", "video": "/MMVU/videos/Thermo/0.mp4"},
     "ground_truth": "<answer>B</answer>", "model_output": "The process is adiabatic. B",
     "extracted_answer": "", "think_content": "", "accuracy_score": 0.0, "format_score": 0.0,
     "think_confidence": 0.0, "answer_confidence": 0.0},
]


def write_jsonl(path, rows, blank_lines=False):
    sep = "\n\n" if blank_lines else "\n"
    path.write_text(sep.join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


def test_json_list_and_json_lines_read_the_same(tmp_path):
    as_list = tmp_path / "preds_list.json"
    as_list.write_text(json.dumps(PUBLISHED_LAYOUT, indent=2), encoding="utf-8")
    as_lines = write_jsonl(tmp_path / "checkpoint-500_eval_mmvu_eval.json", PUBLISHED_LAYOUT, blank_lines=True)
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"results": PUBLISHED_LAYOUT}, indent=1), encoding="utf-8")
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_text("\ufeff" + as_lines.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_records(as_list, with_lines=True) == (PUBLISHED_LAYOUT, [])
    assert read_records(as_lines, with_lines=True) == (PUBLISHED_LAYOUT, [1, 3])
    assert read_records(wrapped, with_lines=True)[0] == read_records(with_bom, with_lines=True)[0] == PUBLISHED_LAYOUT
    s = summarize(read_records(as_lines, with_lines=True)[0])
    assert s["overall"]["strict_accuracy"] == 50.0 and s["stored_score_mismatches"] == 0
    assert s["overall"]["format_rate"] == 50.0


def test_malformed_inputs_name_file_and_line(tmp_path):
    lines = tmp_path / "broken.jsonl"
    lines.write_text(json.dumps(PUBLISHED_LAYOUT[0]) + "\n\n{\"question\": oops}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl: line 3: not valid JSON"):
        read_records(lines, with_lines=True)
    listed = tmp_path / "broken.json"
    listed.write_text('[\n  {"a": 1},\n  {"a": 2,}\n]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json: line 3"):
        read_records(listed, with_lines=True)
    single = tmp_path / "one.json"
    single.write_text('{\n  "a": 1\n}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="single JSON object"):
        read_records(single, with_lines=True)


def test_cli_rescore_json_and_table(tmp_path, capsys):
    path = write_jsonl(tmp_path / "preds.jsonl", HAND + [HAND[0]])
    assert main(["rescore", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["file"] == str(path) and summary["overall"]["strict_accuracy"] == 25.0
    assert summary["duplicates"] == 1 and "duplicate" in captured.err

    assert main(["rescore", str(path), "--lenient", "--answer-rule", "phrase"]) == 0
    out = capsys.readouterr().out
    assert "overall" in out and "50.00" in out and "answer rule: phrase, lenient letters" in out


def test_cli_rescore_reports_bad_files(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "ground_truth": "A", "model_output": "A"}\nnot json\n', encoding="utf-8")
    assert main(["rescore", str(path)]) == 2
    assert "bad.jsonl: line 2: not valid JSON" in capsys.readouterr().err
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"id": 1, "model_output": "A"}\n', encoding="utf-8")
    assert main(["rescore", str(missing)]) == 2
    assert "missing.jsonl, line 1: no ground truth" in capsys.readouterr().err


def test_records_without_an_id_are_not_merged_by_their_ground_truth():
    """A log reduced to ground truth and output (no id, no question item) keeps every record; a top-level
    problem_id (Video-R1's id) identifies the question like ``id``."""
    bare = [{"ground_truth": "<answer>A</answer>", "model_output": out} for out in ("A", "B", "A", "C")]
    assert summarize(bare)["overall"]["count"] == 4
    assert summarize(bare)["overall"]["strict_accuracy"] == 50.0
    numbered = [{"problem_id": n, **r} for n, r in zip((1, 2, 3, 3), bare)]
    with pytest.warns(UserWarning, match="1 duplicate"):
        assert summarize(numbered)["overall"]["count"] == 3

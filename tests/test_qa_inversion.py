"""Question-answer inversion: negation rules, answer inversion, random drop, reproducibility, CLI, data card."""

import hashlib
import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from twgrpo_lib import cli
from twgrpo_lib.core.qa_inversion import (
    invert_dataset,
    invert_item,
    negatable_share,
    negate_question,
    parse_item,
    preview,
    render,
)
from twgrpo_lib.data import sample_path
from twgrpo_lib.data.formats import read_records as load_items

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PATH = sample_path("nextgqa_val_sample.json")
FIXTURE = REPO.parent / "shared" / "fixtures" / "nextgqa_val.json"  # a copy of shared/ beside the clone (CI); optional
CARD = REPO / "data_cards" / "nextgqa.md"

# three real NExT-GQA validation records (format C), copied from the fixture
RECORDS = [
    {"id": "4882821564_1", "video": "1104/4882821564.mp4",
     "question": "why did the boy pick up one present from the group of them and move to the sofa",
     "options": ["(A) share with the girl", "(B) approach lady sitting there", "(C) unwrap it",
                 "(D) playing with toy train", "(E) gesture something"],
     "duration": 90, "glue": [[13.8, 29.8]], "type": "CW", "answer": "(C)"},
    {"id": "2435100235_7", "video": "0063/2435100235.mp4",
     "question": "how does the man cycling try to sell the watch to the man in the trishaw",
     "options": ["(A) give him catalogue", "(B) show him a video", "(C) show him the watch",
                 "(D) dismount his bicycle", "(E) give him the watch strap"],
     "duration": 64, "glue": [[20.9, 22.7]], "type": "CH", "answer": "(C)"},
    {"id": "no_rule", "video": "x.mp4", "question": "how many people are in the video",
     "options": ["(A) one", "(B) two", "(C) three", "(D) four", "(E) five"],
     "duration": 10, "glue": [[0.0, 1.0]], "type": "DC", "answer": "(B)"},
]


@pytest.fixture(scope="module")
def sample():
    return load_items(SAMPLE_PATH)


# --- rules -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("style, question, expected", [
    ("nextgqa", "why did the boy run", "why didn't the boy run"),
    ("nextgqa", "what does the dog do", "what doesn't the dog do"),
    ("nextgqa", "why do the men wave", "why don't the men wave"),
    ("nextgqa", "why is the girl smiling", "why isn't the girl smiling"),
    ("nextgqa", "why are they clapping", "why aren't they clapping"),
    ("nextgqa", "where was the cat", "where wasn't the cat"),
    ("nextgqa", "why were the kids running?", "why weren't the kids running?"),
    ("nextgqa", "How Did the man react?", "How Didn't the man react?"),
    ("nextgqa", "WHY DID HE GO", "WHY DIDN'T HE GO"),
    ("nextgqa", "how many people are in the video", None),
    ("nextgqa", "what happened to the dog", None),
    ("nextgqa", "why deos the man walk", None),  # a typo is not an auxiliary
    ("nextgqa", "why didn't the boy run", None),  # already negative
    ("nextgqa", "did the boy fall", None),
    ("nextgqa", "why", None),
    ("nextgqa", "", None),
    ("star", "what will the person do next", "what won't the person do next"),
    ("star", "What happened to the cup?", "What didn't happen to the cup?"),
    ("star", "did the boy fall", "didn't the boy fall"),
    ("star", "Was the door open?", "Wasn't the door open?"),
    ("star", "would the ball hit the cube", "wouldn't the ball hit the cube"),
    ("star", "able to reach the shelf", "unable to reach the shelf"),
    ("star", "what did the person do with the clothes", "what didn't the person do with the clothes"),
    ("star", "what was the person holding", "what wasn't the person holding"),
    ("star", "who would win the race", "who wouldn't win the race"),
    ("star", "which object was the person able to take", None),  # rules look at the second word only
    ("star", "what is the person doing", None),  # STAR's rule set has no 'is'
    ("star", "didn't the boy fall", None),  # whole words only: no "didn'tn't"
    ("star", "washed the cup", None),
])
def test_negation_rules(style, question, expected):
    assert negate_question(question, style) == expected


def test_unknown_style_is_an_error():
    with pytest.raises(ValueError, match="unknown negation style"):
        negate_question("why did he go", style="clevrer")


# --- inversion -----------------------------------------------------------------------------------------

def check_inversion(original: dict, inverted: dict):
    """The new answer set is exactly the kept options other than the originally correct one."""
    before, after = parse_item(original), parse_item(inverted)
    correct_text = before.options[before.answers[0]]
    wrong = [text for i, text in enumerate(after.options) if i not in after.answers]
    assert wrong == [correct_text]
    assert not Counter(after.options) - Counter(before.options), "option texts must be preserved"
    assert 1 <= len(after.answers) == len(after.options) - 1 <= len(before.options) - 1
    assert inverted["solution"] == "<answer>" + ",".join(chr(65 + i) for i in after.answers) + "</answer>"
    assert inverted["problem"].split("\n")[1:] == [f"{chr(65 + i)}. {t}" for i, t in enumerate(after.options)]
    assert inverted["question"] == negate_question(original["question"]) and inverted["is_negated"] is True
    for key in ("id", "video", "duration", "glue", "type"):
        assert inverted[key] == original[key]


def test_invert_item_correctness_over_many_draws():
    for seed in range(200):
        inverted = invert_item(RECORDS[0], random.Random(seed))
        check_inversion(RECORDS[0], inverted)
    full = invert_item(RECORDS[0], random.Random(0), random_drop=False)
    assert sorted(o[4:] for o in full["options"]) == sorted(o[4:] for o in RECORDS[0]["options"])
    orders = {tuple(invert_item(RECORDS[0], random.Random(s), random_drop=False)["options"]) for s in range(20)}
    assert len(orders) > 5, "kept options and the old answer are shuffled"


def test_invert_item_refuses_items_without_rule_and_multi_answer_items():
    assert invert_item(RECORDS[2], random.Random(0)) is None
    multi = {"problem": "Why did it stop?\nA. x\nB. y\nC. z", "solution": "<answer>A,C</answer>"}
    assert invert_item(multi, random.Random(0)) is None


def test_every_negated_sample_item_is_a_correct_inversion(sample):
    output, stats = invert_dataset(sample, p=1.0, seed=1)
    for original, inverted in zip(sample, output):
        if inverted["is_negated"]:
            check_inversion(original, inverted)
    assert stats.negated == sum(negate_question(r["question"]) is not None for r in sample)


def test_random_drop_spreads_answer_counts(sample):
    output, dropped = invert_dataset(sample, p=1.0, seed=0)
    counts = Counter(len(parse_item(r).answers) for r in output if r["is_negated"])
    assert set(counts) == {1, 2, 3, 4}
    for count in (1, 2, 3, 4):  # k uniform in {1..4}: each holds about a quarter of the negated items
        assert 0.15 < counts[count] / dropped.negated < 0.35, counts
    assert sum(dropped.answer_counts.values()) == len(sample)
    _, kept = invert_dataset(sample, p=1.0, seed=0, random_drop=False)
    assert kept.answer_counts == Counter({4: kept.negated, 1: kept.total - kept.negated})


def test_same_seed_same_output_independent_of_key_order(sample):
    first, _ = invert_dataset(sample, seed=7)
    again, _ = invert_dataset(sample, seed=7)
    reordered, _ = invert_dataset([dict(reversed(list(r.items()))) for r in sample], seed=7)
    other, _ = invert_dataset(sample, seed=8)
    assert first == again
    assert json.dumps(first, sort_keys=True) == json.dumps(reordered, sort_keys=True)
    assert first != other
    # an item's fate depends on the seed and its position only
    edited, _ = invert_dataset([{**sample[0], "question": "how many people are there"}] + sample[1:], seed=7)
    assert edited[1:] == first[1:]


def test_items_without_rule_are_never_negated(sample):
    no_rule = [r for r in sample if negate_question(r["question"]) is None]
    assert no_rule, "the sample should contain questions no rule negates"
    output, stats = invert_dataset(no_rule + RECORDS[2:], p=1.0, seed=0)
    assert not any(r["is_negated"] for r in output)
    assert [r["question"] for r in output] == [r["question"] for r in no_rule + RECORDS[2:]]
    assert all(r["answer"] == o["answer"] for r, o in zip(output, no_rule + RECORDS[2:]))
    assert stats.skipped_no_rule == len(output) and stats.skipped_examples[0] == no_rule[0]["question"]


def test_p_zero_and_p_one(sample):
    none, stats0 = invert_dataset(sample, p=0.0)
    assert stats0.negated == 0 and stats0.answer_counts == Counter({1: len(sample)})
    for original, out in zip(sample, none):
        assert out["question"] == original["question"] and out["options"] == original["options"]
        assert out["solution"] == f"<answer>{original['answer'][1]}</answer>"
    _, stats1 = invert_dataset(sample, p=1.0)
    assert stats1.negated == len(sample) - stats1.skipped_no_rule == round(negatable_share(sample) * len(sample))
    _, half = invert_dataset(sample, p=0.5)
    assert 0.4 < half.negated / len(sample) < 0.6
    with pytest.raises(ValueError, match="p must lie"):
        invert_dataset(sample, p=1.5)


def test_format_a_input():
    single = {"id": "a1", "video": "v.mp4", "problem": "Why did the cube move?\nA. hit by a ball\nB. pushed\nC. rolled",
              "solution": "<answer>B</answer>"}
    multi = {"id": "a2", "problem": "Which of the following will happen?\nA. x\nB. y\nC. z",
             "solution": "<answer>A,C</answer>"}
    output, stats = invert_dataset([single, multi], p=1.0, seed=3, random_drop=False)
    negated = output[0]
    assert negated["question"] == "Why didn't the cube move?" and negated["is_negated"]
    after = parse_item(negated)
    assert [after.options[i] for i in range(3) if i not in after.answers] == ["pushed"]
    assert negated["options"] == [f"{chr(65 + i)}. {t}" for i, t in enumerate(after.options)]
    assert output[1] == {**multi, "is_negated": False, "question": "Which of the following will happen?",
                         "options": ["A. x", "B. y", "C. z"]}
    assert stats.multi_answer == 1 and stats.answer_counts == Counter({2: 2})


@pytest.mark.parametrize("record, field", [
    ({**RECORDS[0], "answer": "(F)"}, "'answer'"),
    ({**RECORDS[0], "answer": "C"}, "'answer'"),
    ({**RECORDS[0], "options": ["share with the girl", "(B) approach"]}, "'options'[0]"),
    ({"problem": "Why?\nA. x\nB. y", "solution": "<answer>C</answer>"}, "'solution'"),
    ({"problem": "Why did it stop, no options", "solution": "<answer>A</answer>"}, "'problem'"),
    ({"question": "why did he go"}, "neither format"),
])
def test_malformed_records_name_index_and_field(record, field):
    with pytest.raises(ValueError, match=re.escape("data.json: record 1: ") + ".*" + re.escape(field)):
        invert_dataset([RECORDS[1], record], source="data.json")


def test_render_and_preview_mark_the_answers():
    assert render(RECORDS[1]).splitlines()[3] == "  C. show him the watch  \u2713"
    text = preview("why did he go", ["x", "y", "z"], "b", random_drop=False)
    after = text.split("after:\n")[1].splitlines()
    assert after[0] == "why didn't he go" and len(after) == 4
    unmarked = [line for line in after[1:] if "\u2713" not in line]
    assert len(unmarked) == 1 and unmarked[0].endswith(". y")
    assert "not inverted" in preview("how many dogs", ["1", "2"], "A")


# --- command line ----------------------------------------------------------------------------------------

def test_cli_end_to_end(tmp_path, capsys):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(RECORDS))
    out_a, out_b = tmp_path / "a.json", tmp_path / "b" / "b.json"
    assert cli.main(["invert", str(source), str(out_a), "--seed", "3", "--p", "1"]) == 0
    printed = capsys.readouterr().out
    assert "negated: 2" in printed and "how many people are in the video" in printed
    assert cli.main(["invert", str(source), str(out_b), "--seed", "3", "--p", "1"]) == 0
    assert out_a.read_text() == out_b.read_text()
    written = json.loads(out_a.read_text())
    assert [r["is_negated"] for r in written] == [True, True, False]
    check_inversion(RECORDS[0], written[0])
    assert cli.main(["invert", str(source), str(out_a), "--seed", "3", "--p", "1"]) == 0  # the same output again
    before = out_a.read_text()
    assert cli.main(["invert", str(source), str(out_a), "--p", "1", "--no-random-drop"]) == 2  # other content
    assert "exists with other content" in capsys.readouterr().err and out_a.read_text() == before
    assert cli.main(["invert", str(source), str(out_a), "--p", "1", "--no-random-drop", "--force"]) == 0
    assert [len(parse_item(r).answers) for r in json.loads(out_a.read_text())] == [4, 4, 1]
    assert [p.read_text() for p in tmp_path.glob("a.old-*.json")] == [before]  # moved aside, not deleted


def test_cli_reports_bad_input_and_does_not_import_torch(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([RECORDS[0], {**RECORDS[1], "answer": "(Z)"}]))
    assert cli.main(["invert", str(bad), str(tmp_path / "o.json")]) == 2
    assert f"{bad}: record 1: field 'answer'" in capsys.readouterr().err
    assert cli.main(["invert", str(tmp_path / "missing.json"), str(tmp_path / "o.json")]) == 2
    assert "missing.json" in capsys.readouterr().err and not (tmp_path / "o.json").exists()
    code = ("import sys; from twgrpo_lib import cli; "
            f"cli.main(['invert', {str(SAMPLE_PATH)!r}, {str(tmp_path / 'o.json')!r}]); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# --- shipped sample and its data card ---------------------------------------------------------------

def card_table() -> dict[str, list[str]]:
    """Rows of the card's measured-facts table: first cell -> remaining cells."""
    rows = {}
    for line in CARD.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3:
            rows[cells[0]] = cells[1:]
    return rows


def measured_facts(path: Path) -> dict[str, str]:
    items = load_items(path)
    types = Counter(r["type"] for r in items)
    facts = {"records": f"{len(items):,}", "sha256": f"`{hashlib.sha256(path.read_bytes()).hexdigest()}`",
             "question types": ", ".join(f"{t} {n:,}" for t, n in types.most_common())}
    for style in ("nextgqa", "star"):
        share = negatable_share(items, style)
        facts[f"negatable ({style} rules)"] = f"{round(share * len(items)):,} ({share:.1%})"
    return facts


@pytest.mark.parametrize("column, path", [(1, SAMPLE_PATH), (0, FIXTURE)], ids=["sample", "fixture"])
def test_data_card_counts_are_current(column, path):
    if not path.exists():
        pytest.skip(f"{path} is not on this machine")
    table = card_table()
    for key, value in measured_facts(path).items():
        assert table[key][column] == value, f"data_cards/nextgqa.md, row {key!r}: card says {table[key][column]}"


def test_data_card_front_matter_and_literal_record(sample):
    text = CARD.read_text()
    front = text.split("---\n")[1]
    for key in ("license:", "source_datasets:", "task_categories:", "size_categories:"):
        assert key in front
    literal = json.loads(re.search(r"```json\n(.*?)\n```", text, re.DOTALL).group(1))
    assert literal == sample[0]
    assert SAMPLE_PATH.stat().st_size < 200_000

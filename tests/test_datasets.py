"""Loaders for formats A-D, validation errors, video re-rooting and the training dataset."""

import json
import re
from pathlib import Path

import pytest

from twgrpo_lib.core.prompts import training_prompt
from twgrpo_lib.data.examples import build_training_dataset, training_rows
from twgrpo_lib.data.formats import DatasetFormatError, detect_format, load_items, read_items
from twgrpo_lib.data.video import verify_videos

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "twgrpo_lib" / "data" / "samples"
TESTS = Path(__file__).resolve().parent / "data"
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"  # a copy of shared/ beside the clone (CI); absent elsewhere
MMVU_SAMPLE = DATA / "mmvu_mc_val_sample.json"
NEXTGQA_SAMPLE = DATA / "nextgqa_val_sample.json"
CLEVRER = TESTS / "clevrer_validation_illustrative.json"
FORMAT_A = TESTS / "format_a_illustrative.json"
OPTION = re.compile(r"^[A-Z]\. ")


def letters(solution: str) -> list[str]:
    return re.fullmatch(r"<answer>(.*)</answer>", solution).group(1).split(",")


def check_item(item: dict) -> None:
    """The normalised layout every loader promises."""
    for name in ("id", "video", "video_original", "problem", "question", "options", "solution", "source_format"):
        assert name in item, name
    assert all(OPTION.match(o) for o in item["options"])
    assert [o[0] for o in item["options"]] == [chr(65 + i) for i in range(len(item["options"]))]
    assert set(letters(item["solution"])) <= {o[0] for o in item["options"]}
    assert item["problem"].startswith(item["question"].strip())


def test_mmvu_sample_format_b():
    raw = json.loads(MMVU_SAMPLE.read_text())
    items = load_items(MMVU_SAMPLE, video_root="/data/MMVU")
    assert len(items) == len(raw) > 0
    for record, item in zip(raw, items):
        check_item(item)
        assert item["source_format"] == "B"
        assert item["id"] == str(record["problem_id"])
        assert item["question"] == record["problem"] and item["options"] == record["options"]
        assert item["problem"] == record["problem"] + "\n" + "\n".join(record["options"])
        assert item["solution"] == record["solution"]
        assert item["video_original"] == record["video"]
        assert item["data_source"] == record["data_source"]  # extra fields kept
        # /MMVU/videos/<subject>/<n>.mp4 -> root/videos/<subject>/<n>.mp4 when nothing exists on disk
        assert item["video"] == "/data/MMVU" + record["video"][len("/MMVU"):]


def test_nextgqa_sample_format_c():
    raw = json.loads(NEXTGQA_SAMPLE.read_text())
    items = load_items(NEXTGQA_SAMPLE, video_root="/data/nextqa/videos")
    assert len(items) == len(raw) > 0
    for record, item in zip(raw, items):
        check_item(item)
        assert item["source_format"] == "C" and item["question_type"] == record["type"]
        assert [o[3:] for o in item["options"]] == [o[4:] for o in record["options"]]
        assert letters(item["solution"]) == [record["answer"][1]]
        assert item["glue"] == record["glue"] and item["answer"] == record["answer"]
        assert item["video"] == "/data/nextqa/videos/" + record["video"]


def test_clevrer_format_d_converts_and_counts_skips():
    result = read_items(CLEVRER, video_root="/data/clevrer")
    assert result.format == "D"
    assert result.records == 5
    assert result.skipped == {"descriptive (open-ended) questions": 1,
                              "multiple-choice questions without a correct choice": 1}
    assert [item["id"] for item in result.items] == ["10000-1", "10000-2", "10001-1"]
    for item in result.items:
        check_item(item)
    first, second, third = result.items
    assert first["solution"] == "<answer>A,B</answer>" and first["question_type"] == "explanatory"
    assert second["problem"] == ("Without the gray sphere, which of the following will happen?\n"
                                 "A. The cube collides with the cylinder\nB. The red cube exits the scene")
    assert second["solution"] == "<answer>B</answer>"
    assert third["solution"] == "<answer>A,D</answer>" and len(third["options"]) == 4
    assert first["video"] == "/data/clevrer/video_10000.mp4"
    assert "skipped 1 descriptive" in result.summary()


def test_clevrer_videos_in_the_official_folders_are_found(tmp_path):
    (tmp_path / "video_10000-11000").mkdir()
    (tmp_path / "video_10000-11000" / "video_10001.mp4").write_bytes(b"")
    items = load_items(CLEVRER, video_root=tmp_path)
    assert items[-1]["video"] == str(tmp_path / "video_10000-11000" / "video_10001.mp4")
    assert items[0]["video"] == str(tmp_path / "video_10000.mp4")  # not there: the plain layout


def test_format_a_verbatim_problem_and_reference_qai_layout():
    items = load_items(FORMAT_A)
    assert [item["source_format"] for item in items] == ["A"] * 3
    raw = json.loads(FORMAT_A.read_text())
    for record, item in zip(raw, items):
        check_item(item)
        assert item["problem"] == record["problem"]  # what the model sees is never rewritten
    assert items[0]["solution"] == "<answer>A,C</answer>" and items[0]["id"] == "format_a_illustrative-0"
    assert items[1]["question_type"] == "predictive"
    # reference QAI output: options "A text" in the problem, "(A) text" in options, answer "(B),(C)"
    assert items[2]["options"] == ["A. unwrap it", "B. gesture something", "C. share with the girl"]
    assert items[2]["question"].startswith("why didn't") and items[2]["is_negated"] is True
    assert items[2]["solution"] == "<answer>B,C</answer>"


def test_detection_and_explicit_format(tmp_path):
    assert detect_format({"foo": 1}) is None
    path = tmp_path / "odd.json"
    path.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(DatasetFormatError, match=r"odd\.json.*cannot tell the format.*foo"):
        load_items(path)
    with pytest.raises(DatasetFormatError, match="unknown format 'Z'"):
        load_items(path, format="Z")
    # a C file read as A fails on the first record, naming the field
    with pytest.raises(DatasetFormatError, match=r"record 0: field 'problem'"):
        load_items(NEXTGQA_SAMPLE, format="A")


def write(tmp_path, records, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def good_b(i):
    return {"problem_id": i, "problem": "What is poured?", "problem_type": "multiple choice",
            "options": ["A. Milk", "B. Water"], "solution": "<answer>B</answer>", "video": f"/B/v/{i}.mp4"}


@pytest.mark.parametrize("change, field", [
    ({"problem": None}, "problem"),
    ({"options": ["A. Milk", "Water"]}, "options"),
    ({"options": ["A. Milk", "C. Water"]}, "options"),
    ({"solution": "<answer></answer>"}, "solution"),
    ({"solution": "<answer>C</answer>"}, "solution"),
    ({"solution": "B"}, "solution"),
    ({"video": ""}, "video"),
])
def test_malformed_b_record_names_file_index_and_field(tmp_path, change, field):
    records = [good_b(0), good_b(1), dict(good_b(2), **change), good_b(3)]
    with pytest.raises(DatasetFormatError) as info:
        load_items(write(tmp_path, records))
    assert info.value.index == 2 and info.value.field == field
    assert f"bad.json: record 2: field '{field}'" in str(info.value)


@pytest.mark.parametrize("change, field", [
    ({"options": ["(A) x", "B) y", "(C) z"]}, "options"),
    ({"answer": "(D)"}, "answer"),
    ({"answer": "C"}, "answer"),
])
def test_malformed_c_record(tmp_path, change, field):
    good = {"id": "1", "video": "1/1.mp4", "question": "why did he go", "options": ["(A) x", "(B) y", "(C) z"],
            "answer": "(B)"}
    with pytest.raises(DatasetFormatError) as info:
        load_items(write(tmp_path, [dict(good, id="0"), dict(good, **change)]))
    assert info.value.index == 1 and info.value.field == field


def test_malformed_a_and_d_records(tmp_path):
    a = [{"video": "v.mp4", "problem": "Which?\nA. x\nB. y", "solution": "<answer>A</answer>"},
         {"video": "w.mp4", "problem": "Which? no options here", "solution": "<answer>A</answer>"}]
    with pytest.raises(DatasetFormatError, match=r"record 1: field 'problem'"):
        load_items(write(tmp_path, a))
    d = json.loads(CLEVRER.read_text())
    del d[1]["questions"][1]["choices"][2]["answer"]  # the test split has no answers
    with pytest.raises(DatasetFormatError, match=r"record 1: field 'questions\[1\]'.*choice 2"):
        load_items(write(tmp_path, d))


def test_duplicate_ids_and_non_objects_are_errors(tmp_path):
    with pytest.raises(DatasetFormatError, match="ids occur more than once"):
        load_items(write(tmp_path, [good_b(0), good_b(0)]))
    with pytest.raises(DatasetFormatError, match="record 1: expected a JSON object"):
        load_items(write(tmp_path, [good_b(0), "oops"]))


def test_video_r1_training_layout_names_the_video_path(tmp_path):
    record = good_b(0)
    record["path"] = record.pop("video")
    (item,) = load_items(write(tmp_path, [record]), video_root="/r")
    assert item["video"] == "/r/v/0.mp4" and item["video_original"] == "/B/v/0.mp4"


def test_non_multiple_choice_b_items_are_skipped_and_counted(tmp_path):
    free = {"problem_id": 9, "problem": "Describe it.", "problem_type": "free-form", "solution": "<answer>x</answer>",
            "video": "/B/v/9.mp4"}
    result = read_items(write(tmp_path, [good_b(0), free, good_b(1)]))
    assert [item["id"] for item in result.items] == ["0", "1"]
    assert result.skipped == {"problem_type 'free-form' (not multiple choice)": 1}


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"problem": "x",\n "solution": }\n]')
    with pytest.raises(DatasetFormatError, match=r"broken\.json: line 3: not valid JSON"):
        load_items(path)
    lines = tmp_path / "items.jsonl"
    lines.write_text(json.dumps(good_b(0)) + "\n" + json.dumps(good_b(1)) + "\n{oops\n")
    with pytest.raises(DatasetFormatError, match=r"items\.jsonl: line 3: not valid JSON"):
        load_items(lines)
    lines.write_text(json.dumps(good_b(0)) + "\n\n" + json.dumps(good_b(1)) + "\n")
    assert [item["id"] for item in load_items(lines)] == ["0", "1"]
    with pytest.raises(DatasetFormatError, match="expected a JSON list"):
        load_items(write(tmp_path, {"data": []}))


def test_missing_videos_are_reported_not_fatal(tmp_path):
    items = load_items(MMVU_SAMPLE, video_root=tmp_path)  # loading never opens videos
    report = verify_videos(items)
    assert report.total == len(items) and report.ok == 0 and len(report.missing) == len(items)
    assert report.missing[0][1] == items[0]["id"]


def test_training_rows_and_dataset():
    items = load_items(CLEVRER, video_root="/data/clevrer")
    rows = training_rows(items, template="mixed")
    for item, row in zip(items, rows):
        (turn,) = row["prompt"]
        assert turn["role"] == "user"  # no system prompt in training
        video_part, text_part = turn["content"]
        assert video_part == {"type": "video"}
        assert text_part == {"type": "text", "text": training_prompt(item["problem"], "mixed")}
        assert (row["solution"], row["video"], row["problem"]) == (item["solution"], item["video"], item["problem"])
        assert row["num_correct"] == len(letters(item["solution"]))
    single = training_rows(items, template="single")[0]["prompt"][0]["content"][1]["text"]
    assert "(select one letter)" in single
    with pytest.raises(ValueError, match="unknown template"):
        training_rows(items, template="nope")
    dataset = build_training_dataset(items, video_root="/elsewhere")
    assert len(dataset) == len(items)
    assert dataset[0]["video"] == "/elsewhere/video_10000.mp4"
    assert {"prompt", "solution", "video", "problem", "id", "question_type"} <= set(dataset.column_names)
    # after the Arrow round trip the video part gains text=None but no part gains a "video" key
    content = dataset[1]["prompt"][0]["content"]
    assert [part["type"] for part in content] == ["video", "text"]
    assert all("video" not in part for part in content)
    assert content[1]["text"] == rows[1]["prompt"][0]["content"][1]["text"]


def test_training_dataset_renders_one_video_in_qwen_chat_template():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from twgrpo_lib.models.tiny import CHAT_TEMPLATE

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, "[UNK]")))
    dataset = build_training_dataset(load_items(FORMAT_A))
    text = tokenizer.apply_chat_template(dataset[0]["prompt"], chat_template=CHAT_TEMPLATE, tokenize=False,
                                         add_generation_prompt=True)
    assert text.count("<|video_pad|>") == 1
    assert training_prompt(dataset[0]["problem"]) in text


def test_verify_before_training(tmp_path):
    with pytest.raises(ValueError, match="0/3 videos usable"):
        build_training_dataset(load_items(FORMAT_A, video_root=tmp_path), verify=True)


def test_full_shared_fixtures_load_with_their_counts():
    """Runs where a copy of shared/ sits beside the repository (CI); elsewhere there is nothing to load."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"{SHARED_FIXTURES} absent: the full annotation files are not part of the repository")
    mmvu = read_items(SHARED_FIXTURES / "video_r1_eval_mmvu.json")
    nextgqa = read_items(SHARED_FIXTURES / "nextgqa_val.json")
    assert (mmvu.format, len(mmvu.items), dict(mmvu.skipped)) == ("B", 625, {})
    assert (nextgqa.format, len(nextgqa.items), dict(nextgqa.skipped)) == ("C", 3358, {})
    for item in mmvu.items + nextgqa.items:
        check_item(item)
    # the shipped samples are every 10th record of these files, unchanged
    assert json.loads(MMVU_SAMPLE.read_text()) == json.loads(
        (SHARED_FIXTURES / "video_r1_eval_mmvu.json").read_text())[::10]

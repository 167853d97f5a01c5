"""Real benchmark files load: a single-option question is posed as it is, a record the kit cannot pose is
that question's error record (never an abort of the file), and the count is reported."""

import json
from pathlib import Path

import numpy as np
import pytest

from twgrpo_lib.cli import main
from twgrpo_lib.data.formats import DatasetFormatError, read_items
from twgrpo_lib.data.predictions import read_records
from twgrpo_lib.eval import evaluation as ev

# Video-R1's eval_mvbench.json (the paper's MVBench file), record index 1281, verbatim: one option.
MVBENCH_1281 = {
    "ori_video": "video_10978.mp4", "question": "Without the purple object, which event will happen?",
    "options": ["A. The cube collides with the gray cylinder"],
    "answer": "The cube collides with the gray cylinder",
    "problem": "Without the purple object, which event will happen?", "data_type": "video",
    "problem_type": "multiple choice", "original_question_type": "", "solution": "<answer>A</answer>",
    "video": "/MVBench/clevrer/video_validation/video_10978.mp4", "subtitle": "", "problem_id": 1282,
}


def records() -> list[dict]:
    """Five format-B records: two the kit can pose (one of them single-option), three it cannot."""
    two = dict(MVBENCH_1281, problem_id=1, options=["A. The cube moves", "B. Nothing moves"],
               solution="<answer>B</answer>")
    unlettered = dict(MVBENCH_1281, problem_id=2, options=["(A) The cube moves", "(B) Nothing moves"])
    bad_letter = dict(MVBENCH_1281, problem_id=3, solution="<answer>C</answer>")
    no_options = {k: v for k, v in MVBENCH_1281.items() if k != "options"} | {"problem_id": 4}
    return [two, unlettered, MVBENCH_1281, bad_letter, no_options]


@pytest.fixture()
def mvbench(tmp_path) -> Path:
    from twgrpo_lib.data.synthetic.render import write_mp4

    folder = tmp_path / "MVBench" / "clevrer" / "video_validation"
    folder.mkdir(parents=True)
    frames = np.random.default_rng(0).integers(0, 255, (8, 56, 56, 3), dtype=np.uint8)
    write_mp4(frames, folder / "video_10978.mp4", fps=4)
    path = tmp_path / "eval_mvbench.json"
    path.write_text(json.dumps(records(), indent=1))
    return path


def test_loader_reads_a_single_option_question_and_collects_what_it_cannot_pose(mvbench):
    with pytest.raises(DatasetFormatError, match=r"eval_mvbench.json: record 1: field 'options'"):
        read_items(mvbench)  # the default still stops at the first bad record, naming it
    result = read_items(mvbench, on_error="record")
    assert [item["id"] for item in result.items] == ["1", "1282"]
    single = result.items[1]
    assert single["options"] == MVBENCH_1281["options"] and single["solution"] == "<answer>A</answer>"
    assert [(e["index"], e["id"]) for e in result.errors] == [(1, "2"), (3, "3"), (4, "4")]
    fields = [e["error"].split("field ")[1].split(":")[0] for e in result.errors]
    assert fields == ["'options'", "'solution'", "'options'"]
    assert all(e["error"].startswith(f"{mvbench}: record {e['index']}: ") for e in result.errors)
    assert "3 records that cannot be posed" in result.summary()


def test_evaluate_runs_the_file_end_to_end_with_error_records(mvbench, tmp_path, capsys):
    from twgrpo_lib.models.tiny import TinyConfig, build_tiny

    cfg = TinyConfig(hidden_size=64, intermediate_size=128, num_layers=1, num_heads=2, num_kv_heads=1,
                     mrope_section=[4, 6, 6], vision_hidden_size=32, vision_intermediate_size=64)
    model = build_tiny(tmp_path / "tiny", cfg)
    out = tmp_path / "out"
    argv = ["evaluate", "--model", str(model), "--data", str(mvbench), "--video-root", str(tmp_path),
            "--out", str(out), "--max-new-tokens", "4", "--greedy", "--max-pixels", str(56 * 56), "--quiet"]
    assert main(argv) == 0
    assert "3 records could not be posed" in capsys.readouterr().err
    written = read_records(out / ev.PREDICTIONS)
    assert sorted(r["id"] for r in written) == ["1", "1282", "2", "3", "4"]
    errors = {r["id"]: r["error"] for r in written if r.get("error")}
    assert sorted(errors) == ["2", "3", "4"] and all(e.startswith("not posed: ") for e in errors.values())
    summary = json.loads((out / ev.SUMMARY).read_text())
    assert summary["run"]["not_posed"] == 3 and summary["errors"] == 3
    assert summary["overall"]["count"] == 2 and summary["run"]["questions"] == 5
    single = next(r for r in written if r["id"] == "1282")
    assert single["accuracy_score"] is not None  # posed and scored as it is
    text = ev.user_text(single["question"], "general")
    assert "Options:\nA. The cube collides with the gray cylinder\n" in text
    assert main(argv) == 0  # resumes: nothing is asked or written twice
    assert len(read_records(out / ev.PREDICTIONS)) == 5

"""Evaluation: exact resume after SIGKILL, recorded video errors, the paper's prompts, recorded settings."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from twgrpo_lib.core import prompts
from twgrpo_lib.data.predictions import read_records
from twgrpo_lib.eval import evaluation as ev

# A real format-B record (MMVU, shared fixtures), copied here so the test does not depend on that folder.
MMVU_RECORD = {
    "problem_id": 2, "problem": "Which process is shown in the animation?", "data_type": "video",
    "problem_type": "multiple choice", "original_question_type": "multiple-choice",
    "options": ["A. Isothermal compression", "B. Adiabatic compression", "C. Isobaric compression",
                "D. Adiabatic expansion", "E. Isothermal expansion"],
    "process": "", "solution": "<answer>B</answer>", "video": "/MMVU/videos/Thermodynamics/0.mp4",
    "data_source": "https://www.youtube.com/watch?v=M6XQi8eYYNs",
}
QUESTIONS = ["Which object enters the scene first?", "Which of the following will happen?",
             "What collides with the cube?", "Without the sphere, what will happen?"]


def write_format_a(folder: Path, n: int, n_videos: int = 3, missing: tuple[int, ...] = ()) -> Path:
    """n format-A questions over n_videos small synthetic videos (relative paths); ``missing``: questions
    whose video file does not exist."""
    from twgrpo_lib.data.synthetic.render import write_mp4

    rng = np.random.default_rng(0)
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    for v in range(n_videos):
        write_mp4(rng.integers(0, 255, (8, 56, 56, 3), dtype=np.uint8), folder / "videos" / f"video_{v}.mp4", fps=4)
    items = []
    for i in range(n):
        letters = "ABC" if i % 3 == 0 else "ABC"[: 2 + i % 2]
        problem = QUESTIONS[i % 4] + "".join(f"\n{c}. option {c.lower()}{i}" for c in letters)
        video = f"videos/absent_{i}.mp4" if i in missing else f"videos/video_{i % n_videos}.mp4"
        items.append({"id": f"q{i}", "video": video, "problem": problem,
                      "solution": "<answer>A,C</answer>" if i % 3 == 0 else "<answer>B</answer>"})
    path = folder / "data.json"
    path.write_text(json.dumps(items, indent=1))
    return path


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from twgrpo_lib.models.tiny import TinyConfig, build_tiny

    cfg = TinyConfig(hidden_size=64, intermediate_size=128, num_layers=1, num_heads=2, num_kv_heads=1,
                     mrope_section=[4, 6, 6], vision_hidden_size=32, vision_intermediate_size=64)
    return str(build_tiny(tmp_path_factory.mktemp("tiny"), cfg))


@pytest.fixture(scope="module")
def finished_run(tiny_model, tmp_path_factory):
    """One complete greedy run over 6 questions, question 4's video missing."""
    folder = tmp_path_factory.mktemp("run")
    data = write_format_a(folder, 6, missing=(4,))
    settings = ev.EvalSettings(model=tiny_model, data=str(data), out=str(folder / "out"), video_root=str(folder),
                               batch_size=4, max_new_tokens=12, greedy=True, max_pixels=56 * 56, seed=3)
    summary = ev.run_evaluation(settings, progress=False)
    return settings, summary, folder / "out"


# --- resume store ------------------------------------------------------------------------------------
def test_kill_and_resume_gives_one_identical_record_per_question(tiny_model, tmp_path):
    n = 16
    data = write_format_a(tmp_path, n, n_videos=4)
    options = dict(video_root=str(tmp_path), batch_size=1, max_new_tokens=8, greedy=True, max_pixels=56 * 56)
    ev.run_evaluation(ev.EvalSettings(model=tiny_model, data=str(data), out=str(tmp_path / "reference"), **options),
                      progress=False)
    reference = {json.loads(line)["id"]: line for line in lines(tmp_path / "reference" / ev.PREDICTIONS)}
    assert len(reference) == n

    command = [sys.executable, "-m", "twgrpo_lib.cli", "evaluate", "--model", tiny_model, "--data", str(data),
               "--video-root", str(tmp_path), "--batch-size", "1", "--max-new-tokens", "8", "--greedy",
               "--max-pixels", str(56 * 56), "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "killed"
    predictions = out / ev.PREDICTIONS
    process = subprocess.Popen(command + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if predictions.exists() and predictions.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    before = lines(predictions)
    assert 2 <= len(before) < n
    with open(predictions, "a") as fh:  # what a kill in the middle of a write leaves behind
        fh.write(before[-1][: len(before[-1]) // 2])

    with pytest.warns(UserWarning, match="truncated last line"):  # the same run again, in this process
        ev.run_evaluation(ev.EvalSettings(model=tiny_model, data=str(data), out=str(out), **options), progress=False)
    after = lines(predictions)
    ids = [json.loads(line)["id"] for line in after]
    assert sorted(ids) == sorted(reference) and len(ids) == len(set(ids)) == n
    assert after[: len(before)] == before  # finished questions were kept, not re-run
    assert all(line == reference[json.loads(line)["id"]] for line in after)  # greedy: same answers as one run
    summary = json.loads((out / ev.SUMMARY).read_text())
    assert summary["run"]["generated_this_run"] == n - len(before)


def test_truncated_last_line_is_repaired_and_middle_damage_is_an_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "model_output": "<thi')
    with pytest.warns(UserWarning, match="truncated last line"):
        assert [r["id"] for r in read_records(path)] == ["a", "b"]
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n'
    path.write_text('{"id": "a"}\n{"id": "b"}')  # complete record, newline lost: kept, newline restored
    assert [r["id"] for r in read_records(path)] == ["a", "b"] and path.read_text().endswith("}\n")
    path.write_text('{"id": "a"}\n{"id": \n{"id": "c"}\n')
    with pytest.raises(ValueError, match=r"p.jsonl: line 2"):
        read_records(path)


def test_changed_settings_need_force_which_moves_the_old_run_aside(finished_run, tmp_path):
    settings, _, out = finished_run
    import shutil

    from twgrpo_lib.data.run_folder import RunFolderError

    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    changed = ev.EvalSettings(**{**vars(settings), "out": str(copy), "max_new_tokens": 9})
    with pytest.raises(RunFolderError, match=r"max_new_tokens: 12 then, 9 now"):
        ev.run_evaluation(changed, progress=False)
    bigger_batch = ev.EvalSettings(**{**vars(settings), "out": str(copy), "batch_size": 1})
    again = ev.run_evaluation(bigger_batch, progress=False)  # batch size does not block a resume
    assert again["run"]["generated_this_run"] == 1 and again["records"] == 6  # only q4 (no video) is asked again
    ev.run_evaluation(changed, force=True, progress=False)
    kept = list(tmp_path.glob("out.old-*"))
    assert len(kept) == 1 and len(lines(kept[0] / ev.PREDICTIONS)) == 6  # the old run, whole, beside the new one
    assert len(lines(copy / ev.PREDICTIONS)) == 6
    assert json.loads((copy / "run.json").read_text())["identity"]["max_new_tokens"] == 9


# --- errors, summary ------------------------------------------------------------------------------------
def test_missing_video_is_recorded_and_counted_apart(finished_run):
    settings, summary, out = finished_run
    records = {r["id"]: r for r in read_records(out / ev.PREDICTIONS)}
    assert len(records) == 6
    assert "absent_4.mp4" in records["q4"]["error"] and records["q4"]["accuracy_score"] is None
    assert all("error" not in r and isinstance(r["model_output"], str) for k, r in records.items() if k != "q4")
    assert summary["errors"] == 1 and summary["overall"]["count"] == 5 and summary["records"] == 6


def test_summary_records_every_setting(finished_run):
    settings, summary, out = finished_run
    assert json.loads((out / ev.SUMMARY).read_text()) == summary
    assert summary["settings"]["model"] == settings.model and summary["settings"]["max_pixels"] == 56 * 56
    assert summary["settings"]["fps"] == 2.0 and summary["settings"]["max_frames"] == 16
    assert summary["frame_sampling"] == {"name": "paper", "rule": ev.FRAME_SAMPLINGS["paper"]}  # the default
    assert summary["answer_rule"] == "whole" and summary["settings"]["answer_rule"] == "whole"
    assert summary["settings"]["seed"] == 3 and summary["settings"]["batch_size"] == 4
    assert summary["decoding"]["do_sample"] is False and summary["decoding"]["max_new_tokens"] == 12
    assert summary["prompt_templates"] == [{"name": "clevrer", "system": prompts.CLEVRER_SYSTEM_PROMPT,
                                            "user": prompts.CLEVRER_EVAL_TEMPLATE}]
    assert set(summary["versions"]) == {"torch", "transformers", "trl", "twgrpo_lib"}
    assert all(summary["versions"].values())
    assert summary["device"] == "cpu"


def test_left_padded_batches_answer_as_one_question_at_a_time(finished_run, tmp_path):
    settings, _, out = finished_run
    single = ev.EvalSettings(**{**vars(settings), "out": str(tmp_path), "batch_size": 1})
    ev.run_evaluation(single, progress=False)
    batched = {r["id"]: r["model_output"] for r in read_records(out / ev.PREDICTIONS)}
    alone = {r["id"]: r["model_output"] for r in read_records(tmp_path / ev.PREDICTIONS)}
    lengths = {len(r["question"]["problem"]) for r in read_records(tmp_path / ev.PREDICTIONS)}
    assert len(lengths) > 1  # prompts of different lengths, so the batch really is padded
    assert batched == alone


# --- prompts ----------------------------------------------------------------------------------------------
def test_clevrer_items_get_the_clevrer_system_prompt_and_template(tiny_model, tmp_path):
    from transformers import AutoProcessor

    from twgrpo_lib.data.formats import load_items

    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"video": "v.mp4", "problem": "Which will happen?\nA. x\nB. y",
                                 "solution": "<answer>A</answer>"}]))
    item = load_items(path)[0]
    messages = ev.build_messages(item, ev.prompt_mode(item))
    assert messages[0] == {"role": "system", "content": prompts.CLEVRER_SYSTEM_PROMPT}
    assert messages[1]["content"][1]["text"] == "Which will happen?\nA. x\nB. y" + (
        " Output the thinking process in <think> </think> and final answer (letters separated by , if multiple)"
        " in <answer> </answer> tags. ")
    text = AutoProcessor.from_pretrained(tiny_model).apply_chat_template(messages, tokenize=False,
                                                                         add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n" + prompts.CLEVRER_SYSTEM_PROMPT + "<|im_end|>")
    assert "You are a helpful assistant." not in text


def test_general_benchmarks_get_video_r1_template_and_no_system_prompt(tiny_model, tmp_path):
    from transformers import AutoProcessor

    from twgrpo_lib.data.formats import load_items

    path = tmp_path / "mmvu.json"
    path.write_text(json.dumps([MMVU_RECORD]))
    item = load_items(path)[0]
    assert ev.prompt_mode(item) == "general"
    messages = ev.build_messages(item, "general")
    assert [m["role"] for m in messages] == ["user"]
    expected = prompts.GENERAL_EVAL_TEMPLATE.format(
        Question="Which process is shown in the animation?Options:\nA. Isothermal compression\n"
                 "B. Adiabatic compression\nC. Isobaric compression\nD. Adiabatic expansion\n"
                 "E. Isothermal expansion\n") + prompts.GENERAL_TYPE_SUFFIX["multiple choice"]
    assert messages[0]["content"] == [{"type": "video"}, {"type": "text", "text": expected}]
    text = AutoProcessor.from_pretrained(tiny_model).apply_chat_template(messages, tokenize=False,
                                                                         add_generation_prompt=True)
    assert prompts.CLEVRER_SYSTEM_PROMPT not in text  # only the chat template's default system line
    assert ev.build_messages(item, "clevrer")[0]["content"] == prompts.CLEVRER_SYSTEM_PROMPT  # --prompt override


def test_find_checkpoints_in_training_order_without_intermediate_ones(tmp_path):
    from twgrpo_lib.eval.benchmarks import find_checkpoints

    for folder in ("tiny-base", "checkpoints/sft", "checkpoints/grpo", "checkpoints/grpo/checkpoint-20",
                   "checkpoints/tw-grpo", "mini-clevrer/videos", "checkpoints/tw-grpo/adapter"):
        (tmp_path / folder).mkdir(parents=True)
        if "videos" not in folder:
            names = ("adapter_config.json", "adapter_model.safetensors") if "adapter" in folder else (
                "config.json", "model.safetensors", "tokenizer.json")
            for name in names:
                (tmp_path / folder / name).write_text("{}")
    assert list(find_checkpoints(tmp_path)) == ["tiny-base", "checkpoints/sft", "checkpoints/grpo",
                                                "checkpoints/tw-grpo"]
    assert find_checkpoints(tmp_path / "absent") == {}


def test_drop_seen_videos_keeps_only_unseen_scenes(tmp_path):
    from twgrpo_lib.eval.benchmarks import drop_seen_videos

    (tmp_path / "val.json").write_text(json.dumps([{"video": "videos/video_00003.mp4", "id": 1},
                                                   {"video": "videos/video_00900.mp4", "id": 2}]))
    (tmp_path / "train.json").write_text(json.dumps([{"video": "videos/video_00003.mp4", "id": 9}]))
    assert drop_seen_videos(tmp_path / "val.json", tmp_path / "train.json", tmp_path / "out/held.json") == (1, 1)
    assert [r["id"] for r in json.loads((tmp_path / "out/held.json").read_text())] == [2]


def test_question_type_filter_names_the_file_when_nothing_is_left(finished_run, tmp_path):
    settings, _, _ = finished_run
    wrong = ev.EvalSettings(**{**vars(settings), "out": str(tmp_path / "o"), "question_type": "counterfactual"})
    with pytest.raises(ValueError, match=r"data.json: no question of type \['counterfactual'\]"):
        ev.run_evaluation(wrong, progress=False)
    assert not (tmp_path / "o").exists()  # nothing written for a run that cannot start


def test_train_prompt_asks_as_training_did(tmp_path):
    from twgrpo_lib.data.examples import build_training_dataset
    from twgrpo_lib.data.formats import load_items

    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"video": "v.mp4", "problem": "Which will happen?\nA. x\nB. y",
                                 "solution": "<answer>A,B</answer>"}]))
    item = load_items(path)[0]
    messages = ev.build_messages(item, ev.prompt_mode(item, "train"))
    assert [m["role"] for m in messages] == ["user"]
    assert messages[0]["content"][1]["text"] == prompts.training_prompt(item["problem"])
    assert ev.prompt_template("train")["user"] == prompts.TRAIN_TEMPLATES["mixed"]
    row = build_training_dataset([item])[0]
    assert row["prompt"][-1]["content"][-1]["text"] == messages[0]["content"][1]["text"]
    with pytest.raises(ValueError, match="unknown prompt"):
        ev.prompt_mode(item, "nonsense")

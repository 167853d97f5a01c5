"""Failing early and in one way: settings refused when parsed, every video checked before the first step, model
paths that look local and do not exist, unreadable files named; each failure one line and exit status 2."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twgrpo_lib import cli
from twgrpo_lib.models.shipped import shipped_path

M = str(shipped_path())
EVAL = ["--greedy", "--max-new-tokens", "8", "--prompt", "train", "--max-pixels", "12544", "--batch-size", "4",
        "--quiet"]
TRAIN = ["--max-steps", "1", "--num-generations", "2", "--per-device-train-batch-size", "2",
         "--max-completion-length", "8", "--quiet"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.fixture
def no_model_loading(monkeypatch):
    """Loading a model (or asking the hub for one) fails the test: the checks must come first."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the checks")

    for name in ("AutoProcessor", "AutoModelForImageTextToText"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", refuse)


def one_line_error(capsys, *fragments) -> str:
    """The failure's line; libraries' warnings may precede it, a traceback may not."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("twgrpo ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(f in lines[0] for f in fragments), err
    return lines[0]


def parse_error(argv, capsys, fragment):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert fragment in capsys.readouterr().err


# --- settings that cannot work ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-1", "0"])
def test_train_steps_below_one_are_refused_when_parsed(value, capsys):
    parse_error(["train", "--model", M, "--data", "d", "--out", "o", "--max-steps", value], capsys,
                f"argument --max-steps: must be an integer >= 1, got {value}")


def test_train_settings_from_files_and_calls_are_checked_too(tmp_path, mc):
    from twgrpo_lib.train.grpo import resolve_settings, train

    extra = tmp_path / "extra.yaml"
    extra.write_text("max_steps: -1\n")
    with pytest.raises(ValueError, match="max_steps must be an integer >= 1, got -1"):
        resolve_settings("tiny_cpu", config_file=extra)
    with pytest.raises(ValueError, match="per_device_train_batch_size must be an integer >= 1, got 0"):
        train(M, mc, tmp_path / "o", per_device_train_batch_size=0)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--limit", "-1"], "argument --limit: must be an integer >= 1, got -1"),
    (["--limit", "0"], "argument --limit: must be an integer >= 1, got 0"),
    (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got 0"),
    (["--max-frames", "3"], "argument --max-frames: must be an integer >= 4, got 3"),
])
def test_evaluation_settings_that_cannot_work_are_refused_when_parsed(argv, fragment, capsys):
    parse_error(["evaluate", "--model", M, "--data", "d.json", "--out", "o", *argv], capsys, fragment)


def test_evaluation_settings_are_checked_before_the_model_loads(mc, tmp_path, no_model_loading):
    from twgrpo_lib.eval import evaluation as ev

    for field, value in (("batch_size", 0), ("max_frames", 1), ("max_frames", 3), ("limit", -1)):
        settings = ev.EvalSettings(model=M, data=str(mc / "val.json"), out=str(tmp_path / "o"), **{field: value})
        with pytest.raises(ValueError, match=f"{field} must be an integer >= "):
            ev.run_evaluation(settings, progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["make-data", "--out", "m", "--videos", "0"], "argument --videos: must be an integer >= 1, got 0"),
    (["sft", "--model", M, "--data", "d", "--out", "o", "--batch-size", "0"], "argument --batch-size"),
    (["pretrain", "--model", M, "--data", "d", "--out", "o", "--max-frames", "1"], "argument --max-frames"),
    (["ablate", "--model", M, "--data", "d", "--out", "o", "--eval-limit", "-1"], "argument --eval-limit"),
    (["invert", "a.json", "b.json", "--p", "1.5"], "argument --p: must be a number >= 0 and <= 1, got 1.5"),
])
def test_other_commands_refuse_such_settings_when_parsed(argv, fragment, capsys):
    parse_error(argv, capsys, fragment)


# --- empty, unreadable and malformed files ------------------------------------------------------------------
def test_an_empty_data_file_is_an_error_and_nothing_claims_to_be_written(tmp_path, capsys):
    for text in ("", "[]"):
        empty = tmp_path / "empty.json"
        empty.write_text(text)
        assert cli.main(["evaluate", "--model", M, "--data", str(empty), "--out", str(tmp_path / "o"), *EVAL]) == 2
        captured = capsys.readouterr()
        assert "empty.json: holds no records" in captured.err and "wrote" not in captured.out + captured.err
        assert not (tmp_path / "o").exists()
        assert cli.main(["rescore", str(empty)]) == 2
        one_line_error(capsys, "empty.json: holds no records")


def test_a_non_utf8_data_file_is_named(tmp_path, capsys):
    bad = tmp_path / "nonutf8.json"
    bad.write_bytes(b'[{"id": "q\xff"}]')
    assert cli.main(["evaluate", "--model", M, "--data", str(bad), "--out", str(tmp_path / "n"), *EVAL]) == 2
    one_line_error(capsys, f"{bad}: not UTF-8 text")


@pytest.mark.parametrize("layout", ["list", "lines"])
def test_deeply_nested_json_is_one_line_naming_the_file(layout, tmp_path, capsys):
    deep = tmp_path / ("deep.json" if layout == "list" else "deep.jsonl")
    nested = "[" * 100_000 + "]" * 100_000
    deep.write_text(nested if layout == "list" else '{"a": ' + nested + "}\n")
    for argv in (["evaluate", "--model", M, "--data", str(deep), "--out", str(tmp_path / "o"), *EVAL],
                 ["rescore", str(deep)], ["invert", str(deep), str(tmp_path / "inv.json")]):
        assert cli.main(argv) == 2
        one_line_error(capsys, str(deep), "nested too deeply")


def test_rescore_keeps_records_without_an_id_apart(tmp_path, capsys):
    path = tmp_path / "null_ids.jsonl"
    rows = [{"id": None, "question": {"problem": f"Q{k}\nA. x\nB. y"}, "ground_truth": "<answer>A</answer>",
             "model_output": f"<think>.</think><answer>{'A' if k % 2 else 'B'}</answer>"} for k in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["rescore", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overall"]["count"] == 4 and summary["duplicates"] == 0
    assert summary["overall"]["strict_accuracy"] == 50.0


# --- one line, exit status 2, no traceback ----------------------------------------------------------------
def test_expected_failures_are_one_line_without_traceback(mc, tmp_path, capsys):
    notjson = tmp_path / "notjson.json"
    notjson.write_text("this is not JSON\n")
    (tmp_path / "file").write_text("x")
    cases = [
        (["train", "--model", M, "--data", str(notjson), "--out", str(tmp_path / "x")], "notjson.json"),
        (["sft", "--model", M, "--data", str(notjson), "--out", str(tmp_path / "s")], "notjson.json"),
        (["pretrain", "--model", M, "--data", str(tmp_path), "--out", str(tmp_path / "p")], "manifest.json"),
        (["build-tiny", "--out", str(tmp_path / "t"), "--hidden-size", "64", "--num-heads", "32"], "hidden-size"),
        (["ablate", "--model", M, "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "a")], "missing"),
        (["invert", str(shutil.copy(mc / "val.json", tmp_path / "v.json")), str(tmp_path / "file" / "o.json")],
         str(tmp_path / "file")),
        (["make-data", "--out", str(tmp_path / "file"), "--videos", "1"], "not a folder"),
    ]
    for argv, fragment in cases:
        assert cli.main(argv) == 2, argv
        one_line_error(capsys, fragment)


def test_the_command_line_exits_2_and_debug_shows_the_traceback(tmp_path):
    notjson = tmp_path / "notjson.json"
    notjson.write_text("{oops\n")
    command = [sys.executable, "-m", "twgrpo_lib.cli", "train", "--model", M, "--data", str(notjson), "--out",
               str(tmp_path / "x")]
    plain = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines()[-1].startswith(f"twgrpo train: {notjson}: line 1")
    debug = subprocess.run(command + ["--debug"], env=ENV, capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DatasetFormatError" in debug.stderr


# --- model paths ------------------------------------------------------------------------------------------------
def test_a_mistyped_local_model_path_is_an_error_never_a_hub_request(mc, tmp_path, monkeypatch, capsys,
                                                                      no_model_loading):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "tw-grpo").mkdir(parents=True)
    typo, absent = "runs/tw-grpoo", str(tmp_path / "models" / "qwen")
    for model in (typo, absent):
        for argv in (["train", "--model", model, "--data", str(mc), "--out", "t", *TRAIN],
                     ["evaluate", "--model", model, "--data", str(mc / "val.json"), "--out", "e", *EVAL],
                     ["sft", "--model", model, "--data", str(mc / "train.json"), "--out", "s", "--steps", "1"],
                     ["pretrain", "--model", model, "--data", str(mc), "--out", "p", "--steps", "1"]):
            assert cli.main(argv) == 2, argv
            one_line_error(capsys, f"{model}: no such checkpoint folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no output folder was made


# --- videos ------------------------------------------------------------------------------------------------------
@pytest.fixture
def broken_videos(mc, tmp_path):
    """A copy of the build with one truncated and one missing training video; returns (folder, bad item ids)."""
    data = tmp_path / "mc"
    shutil.copytree(mc, data)
    items = json.loads((data / "train.json").read_text())
    videos = sorted({item["video"] for item in items if not item["video"].endswith("_cut.mp4")})
    truncated, missing = data / videos[0], data / videos[1]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    missing.unlink()
    return data, [item["id"] for item in items if item["video"] in videos[:2]]


def test_training_checks_every_video_before_the_first_step(broken_videos, tmp_path, capsys):
    data, bad = broken_videos
    out = tmp_path / "run"
    assert cli.main(["train", "--model", M, "--data", str(data), "--out", str(out), *TRAIN]) == 2
    err = one_line_error(capsys, f"{len(bad)} of ", "undecodable", "missing", "--skip-bad-videos")
    assert all(f"(id {i})" in err for i in bad)  # every bad one, in one message
    assert not out.exists()
    assert cli.main(["train", "--model", M, "--data", str(data), "--out", str(out), *TRAIN, "--skip-bad-videos"]) == 0
    assert f"skipping {len(bad)} of" in capsys.readouterr().out
    record = json.loads((out / "train_settings.json").read_text())
    assert record["items_skipped_bad_video"] == len(bad) and record["items"] == record["items_loaded"] - len(bad)


def test_supervised_training_checks_every_video_first(broken_videos, tmp_path, capsys, no_model_loading):
    data, bad = broken_videos
    assert cli.main(["sft", "--model", M, "--data", str(data / "train.json"), "--out", str(tmp_path / "s"),
                     "--steps", "1"]) == 2
    err = one_line_error(capsys, f"{len(bad)} of ", "--skip-bad-videos")
    assert all(f"(id {i})" in err for i in bad)
    assert cli.main(["pretrain", "--model", M, "--data", str(data), "--out", str(tmp_path / "p"),
                     "--steps", "1"]) == 2
    one_line_error(capsys, "2 of ", "videos/video_", "--skip-bad-videos")
    assert not (tmp_path / "s").exists() and not (tmp_path / "p").exists()

"""Output folders belong to one run: the claim itself, then every command that writes a folder or a file.

Small runs: the shipped tiny checkpoint, a 5-video mini-CLEVRER build, a few greedy tokens per answer.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twgrpo_lib import cli
from twgrpo_lib.data.predictions import read_records
from twgrpo_lib.data.run_folder import LOCK_FILE, RUN_FILE, RunFolderError, claim, file_sha256
from twgrpo_lib.eval import evaluation as ev
from twgrpo_lib.models.shipped import shipped_path

M = str(shipped_path())
EVAL = ["--greedy", "--max-new-tokens", "8", "--prompt", "train", "--max-pixels", "12544", "--batch-size", "4",
        "--quiet"]
TRAIN = ["--max-steps", "2", "--save-steps", "1", "--num-generations", "2", "--per-device-train-batch-size", "2",
         "--max-completion-length", "8", "--max-items", "2", "--quiet"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.fixture(scope="module")
def mc(tmp_path_factory):
    """A 5-video mini-CLEVRER build (1 validation video)."""
    out = tmp_path_factory.mktemp("data") / "mc"
    assert cli.main(["make-data", "--out", str(out), "--videos", "5", "--seed", "0", "--workers", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def other_model(tmp_path_factory):
    from twgrpo_lib.models.tiny import TinyConfig, build_tiny

    cfg = TinyConfig(hidden_size=64, intermediate_size=128, num_layers=1, num_heads=2, num_kv_heads=1,
                     mrope_section=[4, 6, 6], vision_hidden_size=32, vision_intermediate_size=64)
    return str(build_tiny(tmp_path_factory.mktemp("tiny"), cfg))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def evaluate(*args) -> int:
    return cli.main(["evaluate", "--model", M, *map(str, args), *EVAL])


# --- the claim ---------------------------------------------------------------------------------------------
def test_claim_refuses_unknown_files_and_impossible_requests(tmp_path):
    with pytest.raises(RunFolderError, match="nothing to resume"):
        with claim(tmp_path / "new", "demo", {}, resume=True):
            pass
    assert not (tmp_path / "new").exists()  # a refusal creates nothing
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(RunFolderError, match="holds files but no run.json"):
        with claim(tmp_path / "mine", "demo", {}):
            pass
    with pytest.raises(RunFolderError, match="choose one"):
        with claim(tmp_path / "mine", "demo", {}, force=True, resume=True):
            pass
    with claim(tmp_path / "mine", "demo", {"a": 1}, force=True) as c:
        assert c.state == "new" and (c.moved_to / "notes.txt").read_text() == "keep me"
    with claim(tmp_path / "mine", "demo", {"a": 1}) as c:
        assert c.state == "same"
    with pytest.raises(RunFolderError, match="holds a 'demo' run, not a 'other' one"):
        with claim(tmp_path / "mine", "other", {"a": 1}):
            pass


def test_a_second_writer_is_refused_and_a_killed_one_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    with claim(out, "demo", {}):
        with pytest.raises(RunFolderError, match="in use by another process"):
            with claim(out, "demo", {}):
                pass
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
                               str(out / LOCK_FILE)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(RunFolderError, match="in use"):
        with claim(out, "demo", {}):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with claim(out, "demo", {}) as c:  # the kernel dropped the dead writer's lock
        assert c.state == "same"


# --- evaluate ------------------------------------------------------------------------------------------------
def test_evaluation_folder_refuses_another_data_file_with_the_same_ids(mc, tmp_path, capsys):
    items = json.loads((mc / "val.json").read_text())
    shifted = [{**item, "solution": "<answer>" + ("B" if "A" in item["solution"] else "A") + "</answer>"}
               for item in items]  # same ids and questions, another key
    other = mc / "val_other_key.json"
    other.write_text(json.dumps(shifted))
    out = tmp_path / "X"
    assert evaluate("--data", mc / "val.json", "--out", out) == 0
    before = snapshot(out)
    assert evaluate("--data", other, "--out", out) == 2
    assert "holds another run (data_sha256:" in capsys.readouterr().err
    assert snapshot(out) == before
    mc2 = tmp_path / "mc2"  # another build altogether
    assert cli.main(["make-data", "--out", str(mc2), "--videos", "5", "--seed", "2", "--workers", "1"]) == 0
    assert evaluate("--data", mc2 / "val.json", "--out", out) == 2
    assert "holds another run (data_sha256:" in capsys.readouterr().err and snapshot(out) == before
    assert evaluate("--data", other, "--out", out, "--force") == 0
    records = read_records(out / ev.PREDICTIONS)
    assert sorted(r["id"] for r in records) == sorted(item["id"] for item in items)
    assert {r["data_sha256"] for r in records} == {file_sha256(other)}
    assert all(r["ground_truth"] == item["solution"] for r, item in
               zip(sorted(records, key=lambda r: r["id"]), sorted(shifted, key=lambda i: i["id"])))
    (aside,) = tmp_path.glob("X.old-*")
    assert snapshot(aside) == before


def test_records_are_reused_only_for_the_same_data_file(mc, tmp_path):
    """Even in a folder whose run.json names the new file, a record of the old file is never taken for an answer."""
    items = json.loads((mc / "val.json").read_text())
    other = tmp_path / "val.json"
    other.write_text(json.dumps([{**item, "solution": "<answer>A</answer>"} for item in items]))
    shutil.copytree(mc / "videos", tmp_path / "videos")
    settings = ev.EvalSettings(model=M, data=str(mc / "val.json"), out=str(tmp_path / "X"), greedy=True,
                               max_new_tokens=8, prompt="train", max_pixels=12544, batch_size=4)
    ev.run_evaluation(settings, progress=False)
    run = json.loads((tmp_path / "X" / RUN_FILE).read_text())
    run["identity"]["data_sha256"] = file_sha256(other)
    (tmp_path / "X" / RUN_FILE).write_text(json.dumps(run))
    summary = ev.run_evaluation(ev.EvalSettings(**{**vars(settings), "data": str(other)}), progress=False)
    assert summary["run"]["generated_this_run"] == len(items) and summary["records"] == len(items)


def test_errored_questions_are_asked_again_and_force_starts_over(mc, tmp_path):
    data = tmp_path / "mc"
    shutil.copytree(mc, data)
    items = json.loads((data / "val.json").read_text())
    video = data / items[0]["video"]
    video.rename(video.with_suffix(".hidden"))
    out = tmp_path / "E"
    assert evaluate("--data", data / "val.json", "--out", out) == 0
    broken = [r["id"] for r in read_records(out / ev.PREDICTIONS) if "error" in r]
    assert broken and len(broken) == sum(item["video"] == items[0]["video"] for item in items)
    video.with_suffix(".hidden").rename(video)  # the video is back
    assert evaluate("--data", data / "val.json", "--out", out) == 0
    records = read_records(out / ev.PREDICTIONS)
    assert sorted(r["id"] for r in records) == sorted(item["id"] for item in items)  # one record per question
    assert not any("error" in r for r in records)
    summary = json.loads((out / ev.SUMMARY).read_text())
    assert summary["errors"] == 0 and summary["run"]["generated_this_run"] == len(broken)
    assert evaluate("--data", data / "val.json", "--out", out, "--force") == 0  # same settings: starts over
    summary = json.loads((out / ev.SUMMARY).read_text())
    assert summary["run"]["generated_this_run"] == len(items) and len(list(tmp_path.glob("E.old-*"))) == 1


def test_a_second_evaluation_of_the_same_folder_is_refused(mc, tmp_path):
    command = [sys.executable, "-m", "twgrpo_lib.cli", "evaluate", "--model", M, "--data", str(mc / "train.json"),
               "--out", str(tmp_path / "C"), *EVAL, "--batch-size", "1"]  # one record per question as it goes
    first = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    predictions = tmp_path / "C" / ev.PREDICTIONS
    deadline = time.time() + 300
    while first.poll() is None and time.time() < deadline and not (predictions.exists() and predictions.read_bytes()):
        time.sleep(0.05)
    assert first.poll() is None, "the first evaluation ended before the second one started"
    first.send_signal(signal.SIGSTOP)  # paused while holding the folder
    try:
        second = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0
    assert second.returncode == 2 and "in use by another process" in second.stderr
    assert "Traceback" not in second.stderr
    ids = [r["id"] for r in read_records(predictions)]
    assert sorted(ids) == sorted(item["id"] for item in json.loads((mc / "train.json").read_text()))


# --- train -------------------------------------------------------------------------------------------------
def test_train_refuses_the_folder_of_another_run(mc, other_model, tmp_path, capsys):
    out = tmp_path / "Y"
    assert cli.main(["train", "--model", M, "--data", str(mc), "--out", str(out), *TRAIN]) == 0
    before = snapshot(out)
    assert cli.main(["train", "--model", other_model, "--data", str(mc), "--out", str(out), *TRAIN]) == 2
    assert "holds another run (model.path:" in capsys.readouterr().err
    assert snapshot(out) == before  # no checkpoint, metrics line or final model of the second run
    assert cli.main(["train", "--model", M, "--data", str(mc), "--out", str(out), *TRAIN]) == 0
    assert "finished; nothing to train" in capsys.readouterr().out and snapshot(out) == before
    assert cli.main(["train", "--model", other_model, "--data", str(mc), "--out", str(out), *TRAIN, "--force"]) == 0
    (aside,) = tmp_path.glob("Y.old-*")
    assert snapshot(aside) == before
    assert json.loads((out / RUN_FILE).read_text())["identity"]["model"]["path"] == str(Path(other_model).resolve())
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 2]


def test_supervised_runs_refuse_to_mix(mc, tmp_path, capsys):
    out = tmp_path / "S"
    common = ["sft", "--model", M, "--data", str(mc / "train.json"), "--out", str(out), "--batch-size", "2",
              "--questions-per-video", "2", "--warmup", "1", "--log-every", "1"]
    assert cli.main([*common, "--steps", "1"]) == 0
    before = snapshot(out)
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    assert cli.main([*common, "--steps", "1"]) == 0  # the same run again: finished, nothing trained or written
    assert "nothing to train" in capsys.readouterr().out
    assert snapshot(out) == before and (out / "model.safetensors").stat().st_mtime_ns == mtime
    assert cli.main([*common, "--steps", "2"]) == 2
    assert "holds another run (train.steps: 1 then, 2 now)" in capsys.readouterr().err and snapshot(out) == before
    assert cli.main([*common, "--steps", "2", "--force"]) == 0
    assert json.loads((out / "training.json").read_text())["train"]["steps"] == 2
    assert len(list(tmp_path.glob("S.old-*"))) == 1


# --- make-data, ablate, invert -------------------------------------------------------------------------------
def test_make_data_refuses_another_build_and_force_leaves_no_stale_video(tmp_path, capsys):
    out = tmp_path / "mc_copy"
    first = ["make-data", "--out", str(out), "--videos", "4", "--seed", "0", "--workers", "1"]
    assert cli.main(first) == 0
    before = snapshot(out)
    other = ["make-data", "--out", str(out), "--videos", "3", "--seed", "9", "--workers", "1"]
    assert cli.main(other) == 2
    assert "holds another run (seed: 0 then, 9 now; videos: 4 then, 3 now)" in capsys.readouterr().err
    assert snapshot(out) == before
    assert cli.main(first) == 0 and snapshot(out) == before  # the same build again: the same bytes
    assert cli.main([*other, "--force"]) == 0
    used = {r["video"] for name in ("train.json", "val.json") for r in json.loads((out / name).read_text())}
    assert {f"videos/{p.name}" for p in (out / "videos").iterdir()} == used  # no video of the 4-video build
    (aside,) = tmp_path.glob("mc_copy.old-*")
    assert snapshot(aside) == before


def test_ablate_with_another_model_is_refused_before_anything_is_touched(tmp_path, capsys):
    from test_ablation import Stubs, settings

    from twgrpo_lib.experiments.ablation import run_ablation

    s = settings(tmp_path, rows=("twgrpo_soft",), seeds=(0,))
    run_ablation(s, train_fn=Stubs().train, eval_fn=Stubs().evaluate, log=None)
    out = Path(s.out)
    before = snapshot(out)
    assert (out / "start" / "result.json").exists()
    (tmp_path / "other_model").mkdir()
    code = cli.main(["ablate", "--model", str(tmp_path / "other_model"), "--data", s.data, "--out", s.out,
                     "--rows", "twgrpo_soft", "--seeds", "0"])
    assert code == 2 and "holds another run (model.path:" in capsys.readouterr().err
    assert snapshot(out) == before  # OUT/start and every run kept


def test_invert_never_writes_over_its_input(tmp_path, capsys):
    from twgrpo_lib.data import sample_path

    source = tmp_path / "in.json"
    shutil.copy(sample_path("nextgqa_val_sample.json"), source)
    before = source.read_bytes()
    for extra in ([], ["--force"]):
        assert cli.main(["invert", str(source), str(source), *extra]) == 2
        assert "is also the input" in capsys.readouterr().err and source.read_bytes() == before

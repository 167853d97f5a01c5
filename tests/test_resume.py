"""Resuming a training run: complete checkpoints, metrics cut back to them, exact continuation after kill -9."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from twgrpo_lib.data.run_folder import RunFolderError
from twgrpo_lib.models.shipped import shipped_path
from twgrpo_lib.train import grpo as training
from twgrpo_lib.train import resume

M = str(shipped_path())
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(Path(folder) / "model.safetensors")


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def steps(out: Path) -> list[int]:
    return [r["step"] for r in training.step_metrics(out)]


# --- checkpoints and metrics, by hand -------------------------------------------------------------------------
def fake_checkpoint(folder: Path, step: int, *, optimizer: bool = True, state: bool = True) -> Path:
    folder.mkdir(parents=True)
    for name in ["model.safetensors", "scheduler.pt", "rng_state.pth"] + (["optimizer.pt"] if optimizer else []):
        (folder / name).write_bytes(b"x")
    if state:
        history = [{"step": s, "loss": 0.1 * s} for s in range(1, step + 1)]
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": history}))
    return folder


def test_the_newest_complete_checkpoint_is_chosen(tmp_path):
    fake_checkpoint(tmp_path / "checkpoint-2", 2)
    fake_checkpoint(tmp_path / "checkpoint-4", 4)
    fake_checkpoint(tmp_path / "checkpoint-6", 6, state=False)  # killed while saving: trainer_state.json is last
    (tmp_path / "checkpoint-6.tmp").mkdir()
    folder, passed = resume.newest_complete(tmp_path)
    assert folder == tmp_path / "checkpoint-4" and passed == ["checkpoint-6: no readable trainer_state.json "
                                                              "(the save was interrupted)"]
    fake_checkpoint(tmp_path / "model_only" / "checkpoint-3", 3, optimizer=False)
    assert resume.newest_complete(tmp_path / "model_only") == (None, ["checkpoint-3: no optimizer state (saved with "
                                                                      "save_only_model: true, which keeps the model "
                                                                      "only)"])


def test_metrics_are_cut_back_to_the_checkpoint_and_a_torn_line_goes(tmp_path):
    checkpoint = fake_checkpoint(tmp_path / "checkpoint-2", 2)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({"loss": 0.1 * s, "step": s}) + "\n"
                                                    for s in (1, 2, 3)) + '{"loss": 0.4, "st')
    assert resume.restore_metrics(tmp_path, checkpoint) == 2
    assert steps(tmp_path) == [1, 2]
    assert resume.restore_metrics(tmp_path, None) == 0 and (tmp_path / "metrics.jsonl").read_text() == ""


def test_checkpoint_weights_load_as_from_pretrained_loads_them(mc, tmp_path):
    """save_pretrained writes Qwen2.5-VL's weights under their original names; the stock Trainer's
    load_state_dict(strict=False) left the language model at its starting weights."""
    from transformers import AutoModelForImageTextToText

    from twgrpo_lib.core.rewards import get_reward_functions
    from twgrpo_lib.data.examples import build_training_dataset
    from twgrpo_lib.data.formats import load_items
    from twgrpo_lib.train.grpo_trainer import TWGRPOTrainer

    moved = AutoModelForImageTextToText.from_pretrained(M)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.01)
    moved.save_pretrained(tmp_path / "checkpoint-1")
    config = training.make_config(training.resolve_settings("tiny_cpu", num_generations=2,
                                                            per_device_train_batch_size=2), tmp_path / "out")
    dataset = build_training_dataset(load_items(mc / "train.json", video_root=mc)[:2])
    trainer = TWGRPOTrainer(M, get_reward_functions("soft"), args=config, train_dataset=dataset)
    trainer._load_from_checkpoint(str(tmp_path / "checkpoint-1"))
    loaded, wanted = trainer.model.state_dict(), moved.state_dict()
    assert loaded.keys() == wanted.keys() and all(torch.equal(loaded[k], wanted[k]) for k in wanted)


# --- resuming real runs ---------------------------------------------------------------------------------------
# The shipped model answers these two items confidently: at temperature 1.5 and with room for whole answers
# (192 tokens) the rewards of a group differ at step 3, so that step moves the weights (at 1.0 none does)
RUN = dict(recipe="tiny_cpu", progress=False, max_steps=3, save_steps=1, num_generations=4,
           per_device_train_batch_size=4, max_completion_length=192, max_items=2, temperature=1.5)


def test_resume_from_a_config_file_continues_exactly(mc, tmp_path):
    """A run interrupted while saving checkpoint-3 (its trainer_state.json missing), with step 3 logged and a
    torn metrics line: resumed (``resume_from_checkpoint: true`` in a config file) it ends where the
    uninterrupted run ended. Two items, two steps per epoch: the resumed step 3 opens epoch 1."""
    whole = training.train(M, mc, tmp_path / "whole", **RUN)
    assert not same_weights(weights(whole), weights(whole / "checkpoint-2"))  # step 3 changed the weights
    cut = tmp_path / "cut"
    shutil.copytree(whole, cut)
    for name in ("train_settings.json", "model.safetensors", "checkpoint-3/trainer_state.json"):
        (cut / name).unlink()
    with open(cut / "metrics.jsonl", "a") as fh:
        fh.write('{"loss": 0.0, "ste')
    extra = tmp_path / "resume.yaml"
    extra.write_text("resume_from_checkpoint: true\n")
    training.train(M, mc, cut, config_file=extra, **RUN)
    assert steps(cut) == steps(whole) == [1, 2, 3]
    assert same_weights(weights(cut), weights(whole))
    assert json.loads((cut / "train_settings.json").read_text())["resumed_from"] == "checkpoint-2"
    with pytest.raises(RunFolderError, match=r"holds another run \(settings.max_steps: 3 then, 4 now\)"):
        training.train(M, mc, cut, resume=True, **{**RUN, "max_steps": 4})
    with pytest.raises(RunFolderError, match="choose one"):
        training.train(M, mc, cut, resume=True, force=True, **RUN)


def test_a_run_without_resumable_checkpoints_is_refused(mc, tmp_path):
    out = training.train(M, mc, tmp_path / "model_only", **{**RUN, "max_steps": 1}, save_only_model=True)
    (out / "train_settings.json").unlink()
    with pytest.raises(ValueError, match="checkpoint-1: no optimizer state"):
        training.train(M, mc, out, resume=True, **{**RUN, "max_steps": 1}, save_only_model=True)


@pytest.mark.slow
def test_kill_9_after_a_checkpoint_then_resume_matches_an_uninterrupted_run(mc, tmp_path):
    """``twgrpo train`` killed with SIGKILL after checkpoint-4, resumed with --resume: metric steps 1..12 once,
    final parameters equal to an uninterrupted run with the same seed. Three items: checkpoint-4 lies in the
    second epoch, so the data position and the sampler's order are restored too."""
    started = time.perf_counter()
    sampling = tmp_path / "sampling.yaml"
    sampling.write_text("temperature: 1.5\n")  # as RUN: rewards differ within groups, the weights move
    argv = ["train", "--model", M, "--data", str(mc), "--max-steps", "12", "--save-steps", "4",
            "--num-generations", "4", "--per-device-train-batch-size", "4", "--max-completion-length", "192",
            "--max-items", "3", "--config-file", str(sampling), "--quiet"]
    command = [sys.executable, "-m", "twgrpo_lib.cli", *argv]
    whole = tmp_path / "whole"
    subprocess.run(command + ["--out", str(whole)], env=ENV, check=True, capture_output=True, timeout=900)
    killed = tmp_path / "killed"
    process = subprocess.Popen(command + ["--out", str(killed)], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 900
    while process.poll() is None and time.time() < deadline:
        if metrics.exists() and metrics.read_bytes().count(b"\n") >= 6:  # steps 1-6 logged, checkpoint-4 saved
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "train_settings.json").exists() and (killed / "checkpoint-4" / "trainer_state.json").exists()
    logged = metrics.read_bytes().count(b"\n")
    again = subprocess.run(command + ["--out", str(killed)], env=ENV, capture_output=True, text=True, timeout=900)
    assert again.returncode == 2 and "--resume continues it" in again.stderr  # no silent restart
    resumed = subprocess.run(command + ["--out", str(killed), "--resume"], env=ENV, capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert steps(killed) == steps(whole) == list(range(1, 13))
    rewards = {r["step"]: r["reward"] for r in training.step_metrics(whole)}
    assert {r["step"]: r["reward"] for r in training.step_metrics(killed)} == rewards
    assert same_weights(weights(killed), weights(whole))
    assert not same_weights(weights(whole), weights(whole / "checkpoint-4"))
    record = json.loads((killed / "train_settings.json").read_text())
    assert record["resumed_from"] == "checkpoint-4"
    print(f"\nkilled after {logged} logged steps, resumed from {record['resumed_from']}; "
          f"{time.perf_counter() - started:.0f} s in all (three runs)")

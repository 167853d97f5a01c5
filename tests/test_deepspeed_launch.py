"""The README's distributed launch, run on CPU: ``accelerate launch`` with the shipped DeepSpeed ZeRO-3
(CPU offload) config, ``twgrpo train --recipe paper_7b``, 2 processes, 2 steps, then the checkpoint reloads
with the Auto classes and ``twgrpo evaluate`` runs on it.

The launch is the README's command with two CPU changes and nothing else: the accelerate config is the
shipped file with the rendezvous port moved (``main_process_port``, written by the test), and a tiny
settings file over ``paper_7b`` (``--config-file``: small sizes, float32, ``ddp_backend: gloo`` and
``use_cpu`` so the two processes meet on CPU). DeepSpeed falls back to its CPU accelerator (gloo), and
its CPU Adam for the offloaded optimizer is compiled on first use (a few minutes, cached in
``~/.cache/torch_extensions``). The model is the shipped checkpoint (it answers in format): a fresh
``build_tiny`` model earns reward 0 on every completion, so no step would move it.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ACCELERATE_CONFIG = ROOT / "twgrpo_lib" / "recipes" / "accelerate" / "deepspeed_zero3_offload.yaml"
TINY_SETTINGS = {  # over paper_7b: sizes for 2 CPU cores, float32, CPU process group
    "max_steps": 2, "num_generations": 2, "per_device_train_batch_size": 2, "max_completion_length": 192,
    "temperature": 1.5,  # the shipped model answers confidently: room for whole answers and a hotter sample
    #   make the two completions of a group differ in reward, so the steps move the weights
    "video_max_pixels": 112 * 112, "bf16": False, "gradient_checkpointing": False,
    "model_init_kwargs": {"dtype": "float32"}, "ddp_backend": "gloo", "use_cpu": True, "save_steps": 1,
    "learning_rate": 1.0e-3, "parameter_digest": True, "cpu_threads": 1, "seed": 0,
}

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    pytest.importorskip("deepspeed", reason="the deepspeed extra: pip install -e .[deepspeed]")
    from twgrpo_lib.data.synthetic.build import build_dataset
    from twgrpo_lib.models.shipped import shipped_path

    root = tmp_path_factory.mktemp("deepspeed")
    build_dataset(root / "mini", 3, workers=1)
    launcher = yaml.safe_load(ACCELERATE_CONFIG.read_text())
    launcher["main_process_port"] = free_port()
    (root / "accelerate.yaml").write_text(yaml.safe_dump(launcher))
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_SETTINGS))
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    command = [accelerate, "launch", "--config_file", str(root / "accelerate.yaml"),
               "-m", "twgrpo_lib.cli", "train", "--recipe", "paper_7b", "--config-file", str(root / "tiny.yaml"),
               "--model", str(shipped_path()), "--data", str(root / "mini"), "--out", str(root / "out"), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    print(f"accelerate launch, DeepSpeed ZeRO-3 offload, 2 CPU processes, 2 steps: {seconds:.0f} s")
    return root, launcher


def test_two_processes_train_under_zero3_offload_and_end_equal(launched):
    from transformers import AutoModelForImageTextToText

    from twgrpo_lib.models.shipped import shipped_path
    from twgrpo_lib.train.grpo_trainer import parameter_digest

    root, launcher = launched
    record = json.loads((root / "out" / "train_settings.json").read_text())
    assert launcher["num_processes"] == 2 and record["processes"] == 2
    assert record["distributed"] == {"type": "DEEPSPEED", "zero_stage": 3, "offload_optimizer": "cpu",
                                     "offload_param": "cpu"}
    assert record["config"]["max_steps"] == 2 and record["config"]["top_k"] == 50  # paper_7b under the override
    steps = [json.loads(line) for line in (root / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "loss" in r] == [1, 2]
    rank0, rank1 = record["parameter_digests"]
    assert rank0 == rank1  # both processes hold the same full parameters after 2 steps
    start = parameter_digest(AutoModelForImageTextToText.from_pretrained(shipped_path()))
    assert rank0 != start, "the 2 steps did not change the parameters (no reward signal?)"
    saved = AutoModelForImageTextToText.from_pretrained(root / "out")  # the consolidated ZeRO-3 weights
    assert parameter_digest(saved) == rank0
    for step in (1, 2):
        AutoModelForImageTextToText.from_pretrained(root / "out" / f"checkpoint-{step}")


def test_evaluate_runs_on_the_deepspeed_checkpoint(launched, capsys):
    from twgrpo_lib.cli import main

    root, _ = launched
    out = root / "eval"
    assert main(["evaluate", "--model", str(root / "out"), "--data", str(root / "mini" / "val.json"),
                 "--out", str(out), "--prompt", "train", "--max-pixels", str(112 * 112), "--frame-sampling", "fps",
                 "--max-new-tokens", "32", "--limit", "4", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["questions"] == 4 and summary["errors"] == 0

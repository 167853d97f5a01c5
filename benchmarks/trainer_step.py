"""TW-GRPO step time over GRPO step time on the tiny Qwen2.5-VL with video prompts (goal: ratio <= 1.15).

Both runs see the same batch shape: the same prompts and videos, G completions of exactly
``--completion-length`` tokens (``min_new_tokens``), one gradient step per rollout. TW-GRPO adds one no-grad
forward for the token weights and the chunked LM-head divergence. Times are TRL's per-step ``step_time``
(generation + scoring + weights + loss + backward), first step dropped as warm-up; runs alternate to share
machine noise.

    python benchmarks/trainer_step.py [--steps 4] [--repeats 2] [--num-generations 8]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForImageTextToText, AutoProcessor

from twgrpo_lib.core.rewards import completion_text
from twgrpo_lib.models.tiny import build_tiny
from twgrpo_lib.train.grpo_trainer import TWGRPOConfig, TWGRPOTrainer


def length_reward(completions, **kwargs):
    return [float(len(completion_text(c)) % 5) for c in completions]


def step_times(tiny: Path, out: Path, tw: bool, a: argparse.Namespace) -> list[float]:
    rng = np.random.RandomState(0)
    rows = [{"prompt": "Which object moves first?\nA. cube\nB. sphere\nC. cylinder",
             "video": rng.randint(0, 255, (a.frames, 112, 112, 3), dtype=np.uint8).tolist(),
             "solution": "<answer>A</answer>"} for _ in range(a.prompts)]
    args = TWGRPOConfig(
        output_dir=str(out), num_generations=a.num_generations, per_device_train_batch_size=a.num_generations,
        max_completion_length=a.completion_length, max_steps=a.steps, report_to=[], save_strategy="no",
        learning_rate=1e-4, seed=0, token_weighting=tw, loss_type="bnpo" if tw else "grpo",
        generation_kwargs={"min_new_tokens": a.completion_length}, disable_tqdm=True)
    torch.manual_seed(0)
    trainer = TWGRPOTrainer(AutoModelForImageTextToText.from_pretrained(tiny), [length_reward], args=args,
                            train_dataset=Dataset.from_list(rows), processing_class=AutoProcessor.from_pretrained(tiny))
    trainer.train()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["step_time"] for r in records if "step_time" in r][1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=1)
    parser.add_argument("--completion-length", type=int, default=32)
    parser.add_argument("--frames", type=int, default=4)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny(Path(tmp) / "tiny")
        times = {"tw-grpo": [], "grpo": []}
        for rep in range(a.repeats):
            for name in times:
                times[name] += step_times(tiny, Path(tmp) / f"{name}-{rep}", name == "tw-grpo", a)
    tw, base = statistics.median(times["tw-grpo"]), statistics.median(times["grpo"])
    print(f"tiny Qwen2.5-VL, G={a.num_generations}, {a.prompts} prompt(s), {a.frames} frames 112x112, "
          f"{a.completion_length} completion tokens, torch threads {torch.get_num_threads()}")
    print(f"median step time: TW-GRPO {tw:.3f} s, GRPO {base:.3f} s")
    print(f"TW-GRPO / GRPO step time ratio: {tw / base:.3f}  (goal <= 1.15)")
    print(f"tiny-model steps per second: TW-GRPO {1 / tw:.2f}, GRPO {1 / base:.2f}")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"benchmark wall time {time.time() - t0:.0f} s")

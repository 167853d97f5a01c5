"""Train the tiny model a few steps on this process group and write a digest of the final parameters.

Run by tests/test_trainer.py under ``torch.distributed.run --nproc_per_node 2`` (gloo, CPU):
``python ddp_train_script.py TINY_DIR OUT_DIR``.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForImageTextToText, AutoProcessor

from twgrpo_lib.core.rewards import completion_text
from twgrpo_lib.train.grpo_trainer import TWGRPOConfig, TWGRPOTrainer


def length_reward(completions, **kwargs):
    return [float(len(completion_text(c)) % 5) for c in completions]


def digest(model) -> str:
    h = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        h.update(name.encode() + p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def main(tiny_dir: str, out_dir: str) -> None:
    rng = np.random.RandomState(0)
    rows = [{"prompt": f"Which object moves{' first' * k}?\nA. cube\nB. sphere",
             "video": rng.randint(0, 255, (2, 56, 56, 3), dtype=np.uint8).tolist(),
             "solution": "<answer>A</answer>"} for k in range(4)]
    args = TWGRPOConfig(output_dir=out_dir, num_generations=2, per_device_train_batch_size=2, max_completion_length=8,
                        max_steps=2, report_to=[], save_strategy="no", learning_rate=1e-2, seed=0, use_cpu=True,
                        ddp_backend="gloo", dataloader_num_workers=0)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    initial = digest(model)
    trainer = TWGRPOTrainer(model, [length_reward], args=args, train_dataset=Dataset.from_list(rows),
                            processing_class=AutoProcessor.from_pretrained(tiny_dir))
    trainer.train()
    rank = trainer.accelerator.process_index
    record = {"params": digest(trainer.accelerator.unwrap_model(trainer.model)), "initial": initial,
              "world_size": trainer.accelerator.num_processes}
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2])

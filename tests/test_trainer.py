"""TW-GRPO trainer on the tiny Qwen2.5-VL: video inputs in every forward, vision tokens, weights, DDP, build-tiny."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from twgrpo_lib.core.rewards import completion_text
from twgrpo_lib.models.tiny import VISION_TOKENS, TinyConfig, build_tiny, file_hashes

G = 2


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny"))


def length_reward(completions, **kwargs):
    """A reward that varies within a group, so advantages are non-zero."""
    return [float(len(completion_text(c)) % 5) for c in completions]


def video_rows():
    """Two prompts of different lengths with videos of different sizes and frame counts."""
    rng = np.random.RandomState(0)
    shapes = [(4, 56, 56), (2, 56, 84)]
    return [{"prompt": "Which object moves" + " first" * k + "?\nA. cube\nB. sphere",
             "video": rng.randint(0, 255, (*shape, 3), dtype=np.uint8), "solution": "<answer>A</answer>"}
            for k, shape in enumerate(shapes)]


def make_trainer(tiny_dir, tmp_path, reward=length_reward, **overrides):
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from twgrpo_lib.train.grpo_trainer import TWGRPOConfig, TWGRPOTrainer

    settings = dict(output_dir=str(tmp_path / "out"), num_generations=G, per_device_train_batch_size=4,
                    max_completion_length=10, max_steps=2, report_to=[], save_strategy="no", learning_rate=1e-3,
                    seed=0, dataloader_num_workers=0)
    settings.update(overrides)
    peft_config = settings.pop("peft_config", None)
    torch.manual_seed(0)
    rows = [{**r, "video": r["video"].tolist()} for r in video_rows()]
    return TWGRPOTrainer(AutoModelForImageTextToText.from_pretrained(tiny_dir), [reward],
                         args=TWGRPOConfig(**settings), train_dataset=Dataset.from_list(rows),
                         processing_class=AutoProcessor.from_pretrained(tiny_dir), peft_config=peft_config)


def generation_batch(trainer):
    """One generation batch as TRL builds it: each prompt repeated G times, groups contiguous."""
    trainer.model.train()
    inputs = [dict(r) for r in video_rows() for _ in range(G)]
    return trainer._generate_and_score_completions(inputs)


def test_build_tiny_is_deterministic_and_loads_with_auto_classes(tmp_path, tiny_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    again = build_tiny(tmp_path / "again")
    assert file_hashes(again) == file_hashes(tiny_dir)
    assert "model.safetensors" in file_hashes(tiny_dir)
    processor = AutoProcessor.from_pretrained(tiny_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert sum(p.numel() for p in model.parameters()) < 10_000_000
    tok = processor.tokenizer
    assert model.config.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert len(tok) <= model.config.text_config.vocab_size
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Which?"}]}],
        tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Which?<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n")
    for token in VISION_TOKENS + ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]:
        assert tok.convert_ids_to_tokens(tok(token)["input_ids"]) == [token]
    cfg = TinyConfig()
    head_dim = model.config.text_config.hidden_size // model.config.text_config.num_attention_heads
    assert 2 * sum(model.config.text_config.rope_parameters["mrope_section"]) == head_dim == 2 * sum(
        cfg.mrope_section)


def test_video_logps_equal_plain_forward(tiny_dir, tmp_path):
    from trl import GRPOTrainer

    trainer = make_trainer(tiny_dir, tmp_path)
    out = generation_batch(trainer)
    rows = out["video_rows"]
    assert [tuple(r["video_grid_thw"][0].tolist()) for r in rows] == [(2, 4, 4)] * G + [(1, 4, 6)] * G
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    C = out["completion_ids"].size(1)
    model = trainer.model
    trainer._video_rows = rows
    with torch.no_grad():
        logps, _, _ = trainer._get_per_token_logps_and_entropies(model, ids, mask, C, batch_size=3)
    trainer._video_rows = None
    video_id = trainer._video_token_id
    for i, row in enumerate(rows):  # each row alone, unpadded, straight through the model
        seq = ids[i][mask[i].bool()][None]
        with torch.no_grad():
            logits = model(input_ids=seq, pixel_values_videos=row["pixel_values_videos"],
                           video_grid_thw=row["video_grid_thw"], second_per_grid_ts=row["second_per_grid_ts"],
                           mm_token_type_ids=(seq == video_id).long() * 2).logits[0]
        n = int(out["completion_mask"][i].sum())
        expected = torch.log_softmax(logits[-n - 1:-1] / trainer.temperature, -1).gather(
            -1, seq[0, -n:, None])[:, 0]
        assert (logps[i, :n] - expected).abs().max() < 1e-5
    # the stock TRL path (no video in the forward) gives other numbers: the video really is used
    with torch.no_grad():
        stock, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(trainer, model, ids, mask, C)
    assert ((stock - logps) * out["completion_mask"]).abs().max() > 1e-3


def _loss_grads(trainer, out):
    trainer.current_gradient_accumulation_steps = 1
    out = {**out, "advantages": torch.tensor([1.0, -1.0] * (len(out["advantages"]) // 2))}
    trainer.model.zero_grad()
    trainer._compute_loss(trainer.model, out).backward()
    from twgrpo_lib.train.grpo_trainer import vision_tower
    vision = [p.grad for p in vision_tower(trainer.model).parameters()]
    text = [p.grad for n, p in trainer.model.named_parameters() if "visual" not in n]
    return vision, text


def test_vision_tower_gets_gradient_only_when_unfrozen(tiny_dir, tmp_path):
    trainer = make_trainer(tiny_dir, tmp_path, freeze_vision_tower=False)
    vision, text = _loss_grads(trainer, generation_batch(trainer))
    assert all(g is not None for g in vision) and sum(g.abs().sum() for g in vision) > 0
    frozen = make_trainer(tiny_dir, tmp_path / "frozen")
    vision, text = _loss_grads(frozen, generation_batch(frozen))
    assert all(g is None for g in vision)
    assert sum(g.abs().sum() for g in text if g is not None) > 0


class _BoostVision(torch.nn.Module):
    """LM head that adds +30 to the vision tokens' logits: an unguarded sampler would pick them."""

    def __init__(self, head, ids):
        super().__init__()
        self.head, self.ids = head, ids
        self.weight, self.bias = head.weight, head.bias

    def forward(self, hidden):
        logits = self.head(hidden)
        logits[..., self.ids] += 30.0
        return logits


def test_vision_tokens_are_never_sampled(tiny_dir, tmp_path):
    trainer = make_trainer(tiny_dir, tmp_path, token_weighting=False)
    tok = trainer.processing_class.tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    trainer.model.lm_head = _BoostVision(trainer.model.lm_head, ids)
    out = generation_batch(trainer)
    assert not torch.isin(out["completion_ids"][out["completion_mask"].bool()], torch.tensor(ids)).any()
    assert set(ids) <= set(trainer.generation_config.suppress_tokens)
    # control: without the suppression the boosted head does sample them
    plain = trainer.model.generate(input_ids=torch.tensor([tok("Which?")["input_ids"]]), max_new_tokens=5,
                                   do_sample=True, suppress_tokens=None, bad_words_ids=None)
    assert torch.isin(plain[0, -5:], torch.tensor(ids)).any()


def test_group_split_across_processes_is_refused(monkeypatch):
    from twgrpo_lib.train.grpo_trainer import TWGRPOConfig

    monkeypatch.setattr(TWGRPOConfig, "world_size", property(lambda self: 2))
    with pytest.raises(ValueError, match=r"per_device_train_batch_size \* steps_per_generation = 1 \* 1 = 1 is "
                                         r"not a multiple of num_generations = 2"):
        TWGRPOConfig(output_dir="unused", num_generations=2, per_device_train_batch_size=1, report_to=[])


def test_two_steps_write_metrics_and_weights_enter_the_loss(tiny_dir, tmp_path):
    trainer = make_trainer(tiny_dir, tmp_path)
    trainer.train()
    records = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for key in ("reward", "reward_std", "rewards/length_reward/mean", "rewards/length_reward/std",
                "completions/mean_length", "learning_rate", "token_weights/mean", "token_weights/max",
                "token_weights/share_above_1.1", "loss"):
        assert all(key in r for r in steps), key
    assert all(1.0 <= r["token_weights/mean"] <= r["token_weights/max"] <= 1.7 + 1e-6 for r in steps)
    assert any(r["token_weights/max"] > 1.1 for r in steps)

    # weights differ from 1 and enter the loss; with alpha = 1 the loss is plain bnpo
    out = generation_batch(trainer)
    trainer.current_gradient_accumulation_steps = 1
    mask = out["completion_mask"].float()
    w = out["token_weights"]
    assert ((w - 1).abs() * mask).max() > 0.1 and (w * (1 - mask)).abs().max() == 0
    out["advantages"] = torch.tensor([1.0, -0.5, 2.0, -1.0])
    A = out["advantages"][:, None]
    plain = {k: v for k, v in out.items() if k != "token_weights"}
    with torch.no_grad():
        weighted_loss = trainer._compute_loss(trainer.model, out)
        plain_loss = trainer._compute_loss(trainer.model, plain)
        trainer.args.alpha = 1.0
        ones = trainer._token_weights(out)
        alpha_one_loss = trainer._compute_loss(trainer.model, {**out, "token_weights": ones})
    assert torch.equal(ones, mask)
    assert torch.allclose(alpha_one_loss, plain_loss, atol=0, rtol=0)
    # one step per rollout: ratio 1, so the bnpo loss is -sum(A w m) / sum(m)
    assert torch.allclose(weighted_loss, -(A * w * mask).sum() / mask.sum(), atol=1e-6)
    assert torch.allclose(plain_loss, -(A * mask).sum() / mask.sum(), atol=1e-6)
    assert not torch.allclose(weighted_loss, plain_loss)


def test_weight_fill_option_reaches_the_weights(tiny_dir, tmp_path):
    """``weight_fill="alive"``: the trainer's weights are the library's over the answers still writing."""
    from twgrpo_lib.core.token_weighting import batched_token_weights_from_hidden_states
    from twgrpo_lib.train.grpo_trainer import TWGRPOConfig

    with pytest.raises(ValueError, match="weight_fill='none'"):
        TWGRPOConfig(output_dir="unused", num_generations=2, per_device_train_batch_size=2, report_to=[],
                     weight_fill="none")
    trainer = make_trainer(tiny_dir, tmp_path, weight_fill="alive")
    out = generation_batch(trainer)
    width = out["completion_mask"].size(1)
    out["completion_mask"] = (torch.arange(width)[None] < torch.tensor([[width], [2], [width - 1], [3]])).long()
    hidden = trainer._completion_hidden_states(out)
    head = trainer.model.get_output_embeddings().weight
    with torch.no_grad():
        got = trainer._token_weights(out)
        want = {fill: batched_token_weights_from_hidden_states(hidden, head, out["completion_mask"], G, 1.7,
                                                               temperature=trainer.temperature, fill=fill)
                for fill in ("alive", "uniform")}
    torch.testing.assert_close(got, want["alive"])
    assert not torch.allclose(got, want["uniform"]), "the members ending early must change the weights"


def test_lora_leaves_the_vision_tower_alone(tiny_dir, tmp_path):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj", "qkv"])
    trainer = make_trainer(tiny_dir, tmp_path, peft_config=lora)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert not any("visual" in n for n in names)


DDP_SCRIPT = Path(__file__).with_name("ddp_train_script.py")


def test_two_cpu_processes_end_with_identical_parameters(tiny_dir, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(DDP_SCRIPT), str(tiny_dir), str(tmp_path)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    digests = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert digests[0]["params"] == digests[1]["params"]
    assert digests[0]["params"] != digests[0]["initial"]  # training moved the weights
    assert digests[0]["world_size"] == 2

"""Rollout sampling of the recipes and the default-off switches that reproduce the reference code:
gradient through the token weights, a trainable vision tower, --report-to, and the vLLM refusal."""

import argparse

import pytest
import torch

from tests.test_trainer import _loss_grads, generation_batch, make_trainer
from twgrpo_lib.core.token_weighting import token_weights, token_weights_with_gradient
from twgrpo_lib.train import grpo as training


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from twgrpo_lib.models.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("recipe,top_k", [("paper_7b", 50), ("lora_single_gpu", 50), ("tiny_cpu", 0)])
def test_recipes_state_their_rollout_top_k(recipe, top_k, tmp_path):
    config = training.make_config(training.resolve_settings(recipe), tmp_path)
    assert (config.top_k, config.top_p, config.temperature, config.repetition_penalty) == (top_k, 1.0, 1.0, 1.0)


def test_trainer_samples_with_the_recipe_top_k(tiny_dir, tmp_path):
    assert make_trainer(tiny_dir, tmp_path, top_k=50).generation_config.top_k == 50


def test_weights_with_gradient_equal_the_constant_weights():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 11)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]])
    live = token_weights_with_gradient(logits.log_softmax(-1), mask, alpha=1.7)
    assert torch.allclose(live, token_weights(logits, mask, alpha=1.7), atol=1e-5)


def test_surrogate_has_the_gradient_of_live_weights_times_the_loss():
    """The trainer's form (advantages A * w as values, log-probs logp + log w - (log w).detach(), TRL's ratio
    exp(logp - logp.detach())) against the reference's -A * w(theta) * ratio, on a hand-sized tensor."""
    torch.manual_seed(1)
    logits = torch.randn(2, 5, 7, requires_grad=True)
    ids = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    A = torch.tensor([[0.7], [-0.7]])

    def parts():
        log_probs = logits.log_softmax(-1)
        logp = log_probs.gather(-1, ids[..., None]).squeeze(-1)
        return logp, token_weights_with_gradient(log_probs, mask, alpha=1.7)

    logp, w = parts()
    reference = -(A * w * torch.exp(logp - logp.detach()) * mask).sum() / mask.sum()
    (g_reference,) = torch.autograd.grad(reference, logits)
    logp, w = parts()
    log_w = torch.where(mask.bool(), w.clamp_min(1e-12).log(), torch.zeros_like(w))
    logp2 = logp + log_w - log_w.detach()
    surrogate = -(A * w.detach() * torch.exp(logp2 - logp2.detach()) * mask).sum() / mask.sum()
    (g_surrogate,) = torch.autograd.grad(surrogate, logits)
    assert torch.allclose(surrogate, reference) and torch.allclose(g_surrogate, g_reference, atol=1e-6)
    logp, w = parts()
    (g_constant,) = torch.autograd.grad(-(A * w.detach() * torch.exp(logp - logp.detach()) * mask).sum()
                                        / mask.sum(), logits)
    assert (g_constant - g_reference).abs().max() > 1e-4  # the switch changes the gradient


@pytest.mark.parametrize("alpha,same", [(1.7, False), (1.0, True)])
def test_gradient_through_weights_switch_in_the_trainer(tiny_dir, tmp_path, alpha, same):
    live = make_trainer(tiny_dir, tmp_path / "live", token_weights_gradient=True, alpha=alpha)
    constant = make_trainer(tiny_dir, tmp_path / "constant", alpha=alpha)
    out = generation_batch(live)
    assert "group_index" in out and "token_weights" not in out
    fixed = {k: v for k, v in out.items() if k != "group_index"}
    fixed["token_weights"] = constant._token_weights(fixed)
    # not zero-mean per group: with GRPO's zero-mean advantages and equal lengths the extra gradient,
    # sum_t dw_t sum_i A_i m_it, vanishes (the weights are shared by the group's members)
    advantages = torch.tensor([1.0, -0.5, 2.0, -1.0])
    losses = []
    grads = []
    for trainer, batch in ((live, out), (constant, fixed)):
        trainer.current_gradient_accumulation_steps = 1
        batch = {**batch, "advantages": advantages}
        trainer.model.zero_grad()
        loss = trainer._compute_loss(trainer.model, batch)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for n, p in trainer.model.named_parameters()
                                if p.grad is not None and "visual" not in n]))
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)  # same weights, same loss value
    differs = (grads[0] - grads[1]).abs().max().item()
    assert (differs < 1e-5) if same else (differs > 1e-5)  # alpha = 1: weights are constant 1 anyway


def test_gradient_switch_refuses_what_it_cannot_reproduce(tmp_path):
    from twgrpo_lib.train.grpo_trainer import TWGRPOConfig

    with pytest.raises(ValueError, match="steps_per_generation == 1"):
        TWGRPOConfig(output_dir=str(tmp_path), num_generations=2, per_device_train_batch_size=2,
                     gradient_accumulation_steps=2, token_weights_gradient=True, report_to=[])
    with pytest.raises(ValueError, match="token_weighting"):
        TWGRPOConfig(output_dir=str(tmp_path), num_generations=2, per_device_train_batch_size=2,
                     token_weighting=False, token_weights_gradient=True, report_to=[])


def test_trainable_vision_tower_is_refused_with_lora(tiny_dir, tmp_path):
    from peft import LoraConfig

    with pytest.raises(ValueError, match="LoRA excludes it"):
        make_trainer(tiny_dir, tmp_path, freeze_vision_tower=False,
                     peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    vision, _ = _loss_grads(make_trainer(tiny_dir, tmp_path, freeze_vision_tower=False),
                            generation_batch(make_trainer(tiny_dir, tmp_path / "g", freeze_vision_tower=False)))
    assert all(g is not None for g in vision)


def parsed(*flags) -> dict:
    parser = argparse.ArgumentParser()
    training.add_arguments(parser)
    args = parser.parse_args(["--model", "m", "--data", "d", "--out", "o", *flags])
    return {k: v for k in training.override_keys() if (v := getattr(args, k)) is not None}


def test_command_line_switches_and_report_to(tmp_path):
    assert parsed() == {}  # nothing given: the recipe decides (report_to: [] in every recipe)
    assert parsed("--train-vision-tower", "--token-weights-gradient", "--report-to", "tensorboard") == {
        "freeze_vision_tower": False, "token_weights_gradient": True, "report_to": "tensorboard"}
    for tracker in training.REPORT_TO:
        config = training.make_config(training.resolve_settings("tiny_cpu", **parsed("--report-to", tracker)), tmp_path)
        assert config.report_to == ([] if tracker == "none" else [tracker])
    default = training.make_config(training.resolve_settings("paper_7b"), tmp_path)
    assert default.report_to == [] and default.freeze_vision_tower and not default.token_weights_gradient
    with pytest.raises(SystemExit):
        parsed("--report-to", "comet")


def test_vllm_with_video_data_is_refused_in_one_line(tmp_path, capsys):
    from twgrpo_lib.cli import main
    from twgrpo_lib.data.synthetic.build import build_dataset
    from twgrpo_lib.models.shipped import shipped_path

    build_dataset(tmp_path / "mini", 1, workers=1)
    code = main(["train", "--model", str(shipped_path()), "--data", str(tmp_path / "mini"),
                 "--out", str(tmp_path / "out"), "--use-vllm", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("twgrpo train: use_vllm: generation with vLLM is not implemented for video prompts")
    assert not (tmp_path / "out").exists()

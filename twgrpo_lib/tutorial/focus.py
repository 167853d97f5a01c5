"""Looking at focused thinking: sample one group of G answers and show where TW-GRPO puts its weight.

``sample_group`` samples G completions to one video question with the training prompt (docs/method.md §5)
and keeps the policy's raw scores at every completion position, the input of ``token_weighting``;
``weight_views`` turns them into the paper's D_t and weights, and the alternatives beside them (token
entropy, TRL's top-entropy mask, exact KL to the mean distribution); ``divergence_alive_only`` is D_t
without the uniform fill (the trainer's ``weight_fill="alive"``), to show what the fill does after members
have ended.

Differences from how the trainer computes the same weights (``trainer.TWGRPOTrainer``):

1. The scores come from ``generate``'s own logits (one forward per new token), not from a second forward over
   prompt + completion: the same numbers up to float rounding (same model, same inputs), without extra memory
   for hidden states of every layer. They are the raw scores (before temperature or token suppression), as the
   trainer's LM-head path uses.
2. The full (G, T, V) scores are kept in memory, since the figures need them; with Qwen2.5-VL's
   V = 151,936 that is G * T * 0.6 MB (float32), so keep ``max_new_tokens`` moderate on a real model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from twgrpo_lib.core.prompts import training_prompt
from twgrpo_lib.core.token_weighting import group_divergence, member_divergence, token_weights, top_entropy_mask
from twgrpo_lib.data.video import VideoSettings, load_video, processor_video_kwargs
from twgrpo_lib.models.qwen import chat_text
from twgrpo_lib.models.shipped import shipped_checkpoint
from twgrpo_lib.models.tiny import build_tiny
from twgrpo_lib.train.grpo import warm_start


@dataclass
class Group:
    """G sampled completions to one prompt. Tensors are (G, T) / (G, T, V) over completion positions."""

    texts: list[str]  # decoded completions, special tokens removed
    tokens: list[list[str]]  # each member's token pieces, real tokens only (up to and including the end token)
    ids: torch.Tensor  # (G, T) completion token ids (padding after the end)
    mask: torch.Tensor  # (G, T) 1 up to and including the first end-of-sequence token
    scores: torch.Tensor  # (G, T, V) float32 raw next-token scores at each completion position
    prompt: str  # the user text of the prompt


def completion_mask(ids: torch.Tensor, end_ids: set[int]) -> torch.Tensor:
    """1 up to and including each row's first end token, 0 after (docs/method.md §1).

    >>> completion_mask(torch.tensor([[5, 9, 0, 0], [5, 6, 7, 8]]), {9})
    tensor([[1, 1, 0, 0],
            [1, 1, 1, 1]])
    """
    is_end = torch.zeros_like(ids, dtype=torch.bool)
    for token in end_ids:
        is_end |= ids == token
    ended_before = (is_end.cumsum(1) - is_end.long()) > 0  # (G, T) an end token lies strictly before t
    return (~ended_before).long()


@torch.no_grad()
def sample_group(model, processor, item: dict, *, num_generations: int = 8, max_new_tokens: int = 256,
                 temperature: float = 1.0, seed: int = 0, template: str = "mixed",
                 video: VideoSettings = VideoSettings()) -> Group:
    """Sample ``num_generations`` completions to ``item`` (``problem``, ``video``: a path) as in training.

    The prompt is the paper's training prompt (no system prompt), sampling at ``temperature`` (paper: 1.0).
    """
    text = training_prompt(item["problem"], template)
    chat = chat_text(processor, text)
    clip = load_video(item["video"], **video.load_kwargs())
    device = next(model.parameters()).device
    inputs = processor(text=[chat], return_tensors="pt", **processor_video_kwargs([clip])).to(device)
    torch.manual_seed(seed)
    out = model.generate(**inputs, do_sample=True, temperature=temperature, top_p=1.0, top_k=0,
                         max_new_tokens=max_new_tokens, num_return_sequences=num_generations,
                         output_logits=True, return_dict_in_generate=True,
                         pad_token_id=processor.tokenizer.pad_token_id)
    ids = out.sequences[:, inputs["input_ids"].shape[1]:].cpu()  # (G, T)
    scores = torch.stack(out.logits, 1).float().cpu()  # (G, T, V) raw scores
    tokenizer = processor.tokenizer
    end_ids = {tokenizer.eos_token_id, *([model.generation_config.eos_token_id]
                                         if isinstance(model.generation_config.eos_token_id, int)
                                         else model.generation_config.eos_token_id or [])} - {None}
    mask = completion_mask(ids, end_ids)
    tokens = [[tokenizer.decode([t]) for t, m in zip(row.tolist(), mrow.tolist()) if m] for row, mrow in zip(ids, mask)]
    texts = tokenizer.batch_decode(ids * mask + tokenizer.pad_token_id * (1 - mask), skip_special_tokens=True)
    return Group(texts, tokens, ids, mask, scores, text)


def shared_prefix_length(ids: torch.Tensor, mask: torch.Tensor) -> int:
    """Leading positions where every member has a real token and all members' tokens are equal.

    >>> shared_prefix_length(torch.tensor([[1, 2, 3], [1, 2, 4]]), torch.ones(2, 3))
    2
    """
    same = (ids == ids[:1]).all(0) & mask.bool().all(0)  # (T,)
    return int(same.long().cumprod(0).sum())


def weight_views(group: Group, alpha: float = 1.7, quantile: float = 0.2, temperature: float = 1.0) -> dict:
    """Everything the figures show, from the group's scores (all library calls, no gradient):

    ``D`` (T,) the paper's divergence, ``weights`` (G, T) at ``alpha``, ``kl`` (T,) the exact KL to the mean
    distribution, ``entropy`` (G, T) each member's token entropy (0 where ended), ``top_entropy`` (G, T) TRL's
    top-``quantile`` entropy mask, ``alive`` (T,) members still writing, ``prefix`` the shared prefix length.
    """
    s, m = group.scores, group.mask
    entropy = member_divergence(s, m, temperature=temperature, divergence="entropy") * m  # (G, T)
    return {
        "D": group_divergence(s, m, temperature=temperature),
        "weights": token_weights(s, m, alpha, temperature=temperature),
        "kl": group_divergence(s, m, temperature=temperature, divergence="kl_to_mean"),
        "entropy": entropy,
        "top_entropy": top_entropy_mask(entropy, m, quantile),
        "alive": m.sum(0),
        "prefix": shared_prefix_length(group.ids, m),
    }


def divergence_alive_only(scores: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """D_t (T,) computed over the members still writing at t only (no uniform fill; 0 with fewer than two):
    ``token_weighting.group_divergence(..., fill="alive")``, what ``TWGRPOConfig(weight_fill="alive")`` trains with.

    Where every member is alive this equals ``group_divergence``; after some have ended it shows the
    disagreement among the remaining answers, without the uniform stand-ins of the ended ones.

    >>> s = torch.tensor([[[0.0, 0.0], [5.0, 0.0]], [[0.0, 0.0], [1.0, 0.0]]])
    >>> divergence_alive_only(s, torch.tensor([[1, 0], [1, 1]]))
    tensor([0., 0.])
    """
    return group_divergence(scores, mask, temperature=temperature, fill="alive")


def default_model(workdir: str | Path = ".", train_file: str | Path | None = None, sft_steps: int = 0) -> str:
    """The checkpoint the notebooks start from when none is given: the kit's shipped warm-started tiny
    model (``models.shipped.shipped_checkpoint``); without it, the tiny Qwen2.5-VL built once into
    ``workdir/tiny_model`` and, with ``sft_steps`` > 0 and a ``train_file``, warm-started on its reasoning
    targets into ``workdir/tiny_model_sft`` (``training.warm_start``). Built folders are reused."""
    shipped = shipped_checkpoint()
    if shipped is not None:
        return str(shipped)
    base = Path(workdir) / "tiny_model"
    if not (base / "config.json").exists():
        build_tiny(base)
    if sft_steps <= 0 or train_file is None:
        return str(base)
    warm = Path(workdir) / f"tiny_model_sft{sft_steps}"
    if not (warm / "config.json").exists():
        print(warm_start(base, train_file, warm, sft_steps, video_root=Path(train_file).parent))
    return str(warm)

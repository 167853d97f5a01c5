"""TW-GRPO on TRL's ``GRPOTrainer``: video prompts in every forward pass, token weights, JSON-lines metrics.

What this adds to TRL 1.16's ``GRPOTrainer``:

- Video prompts. TRL renders a video prompt for ``generate`` but drops the video in the scoring and training
  forwards (it forwards image fields only), so log-probs of a video prompt are computed as if it were text.
  Here each row keeps its own ``pixel_values_videos`` / ``video_grid_thw`` / ``second_per_grid_ts`` (see
  ``vision_inputs``) through TRL's shuffling and splitting, and every forward pass (weights, old/ref
  log-probs, loss) gets them, with ``mm_token_type_ids`` rebuilt from the ids for Qwen2.5-VL's 3D positions.
  A row's video is decoded once per generation batch and encoded once per distinct prompt, not per completion.
- Vision special tokens (``<|video_pad|>``, ``<|image_pad|>``, ``<|vision_start|>``, ...) are suppressed in
  generation: a sampled placeholder would not match any vision feature.
- Token weights (docs/method.md §2): computed once per generation batch, without gradient, from the policy's
  last hidden states (LM head applied in chunks, ``token_weighting``), and applied per token before TRL's
  aggregation. They enter as per-token advantages ``A_i * w_{i,t}``: for the clipped losses
  (``grpo``/``bnpo``/``dapo``/``dr_grpo``) ``-min(r A w, clip(r) A w) = w * -min(r A, clip(r) A)`` as w > 0,
  so this is exactly ``w * per_token_loss``. TW-GRPO uses ``loss_type="bnpo"``; the GRPO baseline ``"grpo"``.
- Every logged step is appended to ``<output_dir>/metrics.jsonl`` (reward mean/std per function, completion
  length, learning rate, token-weight mean/max/share above 1.1).

Differences from the paper's reference code:

1. Weights are constants (no gradient through them); the reference lets gradient flow through them by accident.
2. With ``beta > 0`` the KL term is not weighted (the reference multiplies the whole per-token loss); the paper's
   runs use ``beta = 0``, where both agree.
3. The reference computes weights from full (G, T, V) logits; here from hidden states in chunks of positions.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import GRPOConfig, GRPOTrainer

from twgrpo_lib.core.token_weighting import batched_token_weights_from_hidden_states
from twgrpo_lib.data.video import VideoCache, VideoSettings
from twgrpo_lib.models.qwen import VISION_TOKENS
from twgrpo_lib.train.vision_inputs import (
    as_video_prompt,
    clips_for_rows,
    collate_video_rows,
    encode_video_prompts,
    mm_token_type_ids,
)

PAPER_VIDEO = VideoSettings()  # docs/method.md §5: 2 fps, at most 16 frames of at most 196*28*28 pixels


@dataclass
class TWGRPOConfig(GRPOConfig):
    """``GRPOConfig`` plus TW-GRPO's settings. Without a CUDA device, bf16/fp16 and gradient checkpointing are off."""

    alpha: float = field(default=1.7, metadata={"help": "Largest token weight; 1.7 in the released run (docs/method.md "
                                                        "section 2; some reference code defaults say 1.4 or 1.5)."})
    token_weighting: bool = field(default=True, metadata={"help": "Apply the paper's token weights (off: GRPO)."})
    divergence: str = field(default="paper", metadata={
        "help": "Per-position divergence for the weights: 'paper' (docs/method.md §2, the default) or an "
                "alternative named in twgrpo_lib.core.token_weighting."})
    weight_chunk_size: int | None = field(default=None, metadata={
        "help": "Completion positions per LM-head chunk when computing weights, so only (G, chunk, V) logits "
                "exist; None sizes chunks by memory (token_weighting.CHUNK_BYTES)."})
    video_fps: float = field(default=PAPER_VIDEO.fps, metadata={
        "help": "Frames sampled per second (paper, docs/method.md §5)."})
    video_max_frames: int = field(default=PAPER_VIDEO.max_frames, metadata={
        "help": "Most frames per video (paper, docs/method.md §5)."})
    video_max_pixels: int = field(default=PAPER_VIDEO.max_pixels, metadata={
        "help": "Most pixels per frame, 196*28*28 (paper, docs/method.md §5)."})
    video_root: str | None = field(default=None, metadata={"help": "Folder that relative/absolute video paths "
                                                                   "of the dataset are re-rooted under."})
    freeze_vision_tower: bool = field(default=True, metadata={"help": "Freeze the vision encoder (paper)."})
    loss_type: str = field(default="bnpo", metadata={
        "help": "TRL aggregation: 'bnpo' is TW-GRPO's token-level mean (docs/method.md §1); 'grpo' the baseline's."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient; 0 in the paper (docs/method.md §1)."})
    logging_steps: float = field(default=1, metadata={"help": "Log every step (metrics.jsonl)."})

    def __post_init__(self):
        if not torch.cuda.is_available():
            self.bf16, self.fp16, self.gradient_checkpointing = False, False, False
        super().__post_init__()
        local = self.per_device_train_batch_size * self.steps_per_generation
        if local % self.num_generations:
            raise ValueError(
                f"token weights need each group's {self.num_generations} completions on one process, but "
                f"per_device_train_batch_size * steps_per_generation = {self.per_device_train_batch_size} * "
                f"{self.steps_per_generation} = {local} is not a multiple of num_generations = "
                f"{self.num_generations}")


def _core(model):
    """The ``...ForConditionalGeneration`` under accelerate / DDP / PEFT wrappers."""
    while hasattr(model, "module"):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _gathered(params: list):
    """The full parameters under DeepSpeed ZeRO-3 (partitioned outside their module's forward), else a no-op."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters([p for p in params if p is not None])


def vision_tower(model) -> torch.nn.Module:
    core = _core(model)
    inner = getattr(core, "model", core)
    return getattr(inner, "visual", None) or core.visual


class TWGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` for video prompts with TW-GRPO's token weights (see the module docstring).

    Dataset rows: ``prompt`` (a string, or a conversation with a ``{"type": "video"}`` part), ``video`` (a path,
    or (T, H, W, 3) uint8 frames with H, W multiples of 28 and an optional ``video_fps``) and the reward
    functions' columns (e.g. ``solution``).
    """

    def __init__(self, model, reward_funcs, args: TWGRPOConfig | None = None, processing_class=None,
                 peft_config=None, **kwargs):
        args = args or TWGRPOConfig(output_dir="twgrpo-output")
        if processing_class is None and isinstance(model, str):
            from transformers import AutoProcessor
            processing_class = AutoProcessor.from_pretrained(model, trust_remote_code=args.trust_remote_code)
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        banned = {tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS if t in tokenizer.get_vocab()}
        generation_kwargs = dict(args.generation_kwargs or {})
        generation_kwargs["suppress_tokens"] = sorted(set(generation_kwargs.get("suppress_tokens") or []) | banned)
        args.generation_kwargs = generation_kwargs
        if peft_config is not None and getattr(peft_config, "exclude_modules", None) is None:
            peft_config.exclude_modules = r".*visual.*"  # LoRA on the language model only
        super().__init__(model, reward_funcs, args=args, processing_class=processing_class,
                         peft_config=peft_config, **kwargs)
        vision_tower(self.model).requires_grad_(not args.freeze_vision_tower)
        self._image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        self._video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
        self._video_cache = VideoCache(maxsize=max(8, args.per_device_train_batch_size * args.steps_per_generation))
        self._batch_rows = None  # dataset rows of the generation batch being tokenized
        self._video_rows = None  # encoded video rows of the batch being scored (None: text-only)

    # --- video prompts ---------------------------------------------------------------------------------
    def _tokenize_prompts(self, prompts: list):
        rows = self._batch_rows
        if not rows or "video" not in rows[0]:
            return super()._tokenize_prompts(prompts)
        clips = clips_for_rows(rows, self._video_cache, fps=self.args.video_fps,
                               max_frames=self.args.video_max_frames, max_pixels=self.args.video_max_pixels,
                               video_root=self.args.video_root)
        texts = [self.processing_class.apply_chat_template(p, tokenize=False, add_generation_prompt=True,
                                                           **self.chat_template_kwargs) for p in prompts]
        self._video_rows = encode_video_prompts(self.processing_class, texts, clips)
        prompt_ids = [r["input_ids"] for r in self._video_rows]
        fields = collate_video_rows(self._video_rows)
        fields["mm_token_type_ids"] = [
            mm_token_type_ids(torch.tensor(ids), self._image_token_id, self._video_token_id).tolist()
            for ids in prompt_ids]
        return prompt_ids, None, fields

    def _video_kwargs(self, rows, input_ids: torch.Tensor) -> dict:
        kwargs = collate_video_rows(rows, input_ids.device)
        kwargs["mm_token_type_ids"] = mm_token_type_ids(input_ids, self._image_token_id, self._video_token_id)
        return kwargs

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                           batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                           **kwargs):
        rows = self._video_rows
        if rows is None:
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy, compute_aux_loss,
                **kwargs)
        if len(rows) != input_ids.size(0):
            raise RuntimeError(f"{len(rows)} video rows for a batch of {input_ids.size(0)} sequences")
        batch_size = batch_size or input_ids.size(0)
        logps, entropies, aux = [], [], []
        for start in range(0, input_ids.size(0), batch_size):
            ids, mask = input_ids[start:start + batch_size], attention_mask[start:start + batch_size]
            labels = ids.masked_fill(mask == 0, -100)  # only completion tokens are scored, as in TRL
            labels[:, :-logits_to_keep] = -100
            with self.accelerator.autocast():
                out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True,
                            **self._video_kwargs(rows[start:start + batch_size], ids),
                            **({"output_router_logits": True} if compute_aux_loss else {}))
            logps.append(out.log_probs[:, -logits_to_keep:])
            if compute_entropy:
                entropies.append(out.entropy[:, -logits_to_keep:])
            if compute_aux_loss:
                aux.append(out.aux_loss)
        return (torch.cat(logps), torch.cat(entropies) if compute_entropy else None,
                torch.stack(aux).mean() if compute_aux_loss else None)

    # --- generation batch: video rows and token weights ----------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        if inputs and "video" in inputs[0]:
            inputs = [{**x, "prompt": as_video_prompt(x["prompt"])} for x in inputs]
        self._batch_rows = inputs
        try:
            output = super()._generate_and_score_completions(inputs)
            if self._video_rows is not None:
                output["video_rows"] = self._video_rows
            if self.args.token_weighting:
                output["token_weights"] = self._token_weights(output)
        finally:
            self._batch_rows, self._video_rows = None, None
        return output

    @torch.no_grad()
    def _completion_hidden_states(self, output) -> torch.Tensor:
        """Last hidden states predicting each completion token, (B, C, H), policy in its current state."""
        core = _core(self.model)
        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)  # (B, P+C)
        mask = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        width = output["completion_ids"].size(1)
        step = self.args.per_device_train_batch_size
        rows = output.get("video_rows")
        states = []
        for start in range(0, ids.size(0), step):
            part = slice(start, start + step)
            extra = self._video_kwargs(rows[part], ids[part]) if rows is not None else {}
            with self.accelerator.autocast():
                hidden = core.model(input_ids=ids[part], attention_mask=mask[part], use_cache=False,
                                    **extra).last_hidden_state
            states.append(hidden[:, -width - 1:-1])  # position p predicts token p + 1
        return torch.cat(states)

    @torch.no_grad()
    def _token_weights(self, output) -> torch.Tensor:
        mask = output["completion_mask"]
        if "tool_mask" in output:
            mask = mask * output["tool_mask"]
        head = _core(self.model).get_output_embeddings()
        hidden = self._completion_hidden_states(output)  # (B, C, H)
        with _gathered([head.weight, head.bias]):  # the LM head is used outside its forward here
            weights = batched_token_weights_from_hidden_states(
                hidden, head.weight, mask,  # (B, C, H), (V, H), (B, C)
                self.num_generations if self.model.training else self.num_generations_eval, self.args.alpha,
                lm_head_bias=head.bias, temperature=self.temperature, chunk_size=self.args.weight_chunk_size,
                divergence=self.args.divergence)  # (B, C) float32, 0 on padding
        self._log_weight_stats(weights, mask)
        return weights

    def _log_weight_stats(self, weights: torch.Tensor, mask: torch.Tensor) -> None:
        real = weights[mask.bool()]
        totals = self.accelerator.reduce(
            torch.stack([real.sum(), torch.tensor(float(real.numel()), device=real.device),
                         (real > 1.1).sum().float()]), reduction="sum")
        top = self.accelerator.gather(real.max().reshape(1) if real.numel() else weights.new_ones(1)).max()
        mode = "train" if self.model.training else "eval"
        count = totals[1].clamp(min=1.0)
        self._metrics[mode]["token_weights/mean"].append((totals[0] / count).item())
        self._metrics[mode]["token_weights/max"].append(top.item())
        self._metrics[mode]["token_weights/share_above_1.1"].append((totals[2] / count).item())

    # --- loss and logging ---------------------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        if "token_weights" in inputs:  # per-token advantages A_i * w_{i,t}: exactly w * per_token_loss (see above)
            inputs = {**inputs, "advantages": inputs["advantages"].reshape(-1, 1) * inputs["token_weights"]}
        self._video_rows = inputs.get("video_rows")
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._video_rows = None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)
        if self.accelerator.is_main_process and self.state.log_history:
            path = Path(self.args.output_dir) / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps(self.state.log_history[-1], sort_keys=True) + "\n")

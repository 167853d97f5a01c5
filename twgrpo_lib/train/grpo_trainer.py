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
  ``weight_fill="alive"`` (beyond the paper) takes the divergence over the answers still writing.
- Every logged step is appended to ``<output_dir>/metrics.jsonl`` (reward mean/std per function, completion
  length, learning rate, token-weight mean/max/share above 1.1).
- Exact resume (``trainer.train(resume_from_checkpoint=...)``, the Trainer's own checkpoint state). Two fixes
  to the stock path: (a) the checkpoint's weights are loaded the way ``from_pretrained`` loads them. The stock
  Trainer loads them with a plain ``load_state_dict(strict=False)``, but ``save_pretrained`` writes Qwen2.5-VL's
  weights under their original names (``model.layers.*`` for ``model.language_model.layers.*``), so the language
  model silently kept its starting weights (transformers issue #43701). (b) The prompt order of epoch e is a
  function of (seed, e) (:class:`EpochRepeatSampler`); TRL's sampler advances one generator across epochs, so a
  resumed run, whose sampler is new, would draw epoch 0's order again.

Switches that reproduce the reference code where it departs from the paper (off by default):
``token_weights_gradient`` lets gradient flow through the weights, as the reference does (see
``_get_per_token_logps_and_entropies``); ``freeze_vision_tower=False`` trains the vision tower, as the
reference's GRPO baseline script does (``--freeze_vision_modules false``; the paper's GRPO 41.1 comes from it).
``use_vllm`` with video prompts is refused (``vllm_video_refusal``).

Differences from the paper's reference code:

1. Weights are constants (no gradient through them) unless ``token_weights_gradient``; the reference lets
   gradient flow through them by accident.
2. With ``beta > 0`` the KL term is not weighted (the reference multiplies the whole per-token loss); the paper's
   runs use ``beta = 0``, where both agree.
3. The reference computes weights from full (G, T, V) logits; here from hidden states in chunks of positions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import RepeatSampler

from twgrpo_lib.core.token_weighting import (
    FILLS,
    batched_token_weights_from_hidden_states,
    token_weights_with_gradient,
)
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
                                                        "§2; some reference code defaults say 1.4 or 1.5)."})
    token_weighting: bool = field(default=True, metadata={"help": "Apply the paper's token weights (off: GRPO)."})
    divergence: str = field(default="paper", metadata={
        "help": "Per-position divergence for the weights: 'paper' (docs/method.md §2, the default) or an "
                "alternative named in twgrpo_lib.core.token_weighting."})
    weight_fill: str = field(default="uniform", metadata={
        "help": "What stands in for an answer that has ended: 'uniform', the paper's uniform distribution "
                "(docs/method.md §2, the default), or 'alive', means over the answers still writing only (beyond "
                "the paper: notebook 02 shows the uniform fill weighting the tail of the longest answer)."})
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
    freeze_vision_tower: bool = field(default=True, metadata={
        "help": "Freeze the vision encoder (paper, docs/method.md §5). False reproduces the reference's GRPO "
                "baseline script (--freeze_vision_modules false), the run behind the paper's GRPO 41.1."})
    token_weights_gradient: bool = field(default=False, metadata={
        "help": "Let gradient flow through the token weights, as the reference code does (docs/method.md §2 "
                "says they are constants). Needs beta 0, one optimizer step per rollout batch and every group "
                "in one loss batch; computes the full (B, T, V) log-distributions with gradient."})
    loss_type: str = field(default="bnpo", metadata={
        "help": "TRL aggregation: 'bnpo' is TW-GRPO's token-level mean (docs/method.md §1); 'grpo' the baseline's."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient; 0 in the paper (docs/method.md §1)."})
    logging_steps: float = field(default=1, metadata={"help": "Log every step (metrics.jsonl)."})

    def __post_init__(self):
        if not torch.cuda.is_available():
            self.bf16, self.fp16, self.gradient_checkpointing = False, False, False
        super().__post_init__()
        if self.weight_fill not in FILLS:
            raise ValueError(f"weight_fill={self.weight_fill!r}: choose one of {FILLS}")
        local = self.per_device_train_batch_size * self.steps_per_generation
        if local % self.num_generations:
            raise ValueError(
                f"token weights need each group's {self.num_generations} completions on one process, but "
                f"per_device_train_batch_size * steps_per_generation = {self.per_device_train_batch_size} * "
                f"{self.steps_per_generation} = {local} is not a multiple of num_generations = "
                f"{self.num_generations}")
        if self.token_weights_gradient:
            needs = {"token_weighting": self.token_weighting, "beta == 0": self.beta == 0,
                     "num_iterations == 1": self.num_iterations == 1,
                     "steps_per_generation == 1": self.steps_per_generation == 1}
            missing = [name for name, ok in needs.items() if not ok]
            if missing:
                raise ValueError(f"token_weights_gradient needs {', '.join(missing)} (every group's completions "
                                 "in one loss batch, as in the reference)")


def vllm_video_refusal(args, train_dataset) -> str | None:
    """Why ``use_vllm`` cannot run on this dataset, or None. TRL 1.16 gives vLLM images only, and the kit's
    ``suppress_tokens`` reach vLLM's ``SamplingParams``: video generation with vLLM is not implemented."""
    columns = getattr(train_dataset, "column_names", None) or []
    if getattr(args, "use_vllm", False) and "video" in columns:
        return ("use_vllm: generation with vLLM is not implemented for video prompts (TRL 1.16 passes vLLM only "
                "images and the kit suppresses vision tokens through generation_kwargs); train without it")
    return None


class EpochRepeatSampler(RepeatSampler):
    """TRL's ``RepeatSampler`` whose order in epoch e depends only on (seed, e): before each pass the generator
    is seeded again and advanced past e permutations, which is the order an uninterrupted run draws.

    >>> s = EpochRepeatSampler(range(4), mini_repeat_count=1, batch_size=4, seed=0, epoch=lambda: 1)
    >>> uninterrupted = RepeatSampler(range(4), mini_repeat_count=1, batch_size=4, seed=0)
    >>> _ = list(uninterrupted); list(s) == list(uninterrupted)
    True
    """

    def __init__(self, *args, epoch: Callable[[], int], **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle and self.seed is not None:
            self.generator.manual_seed(self.seed)
            for _ in range(self.epoch()):
                torch.randperm(self.num_samples, generator=self.generator)
        return super().__iter__()


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


def parameter_digest(model) -> str:
    """sha256 of every parameter (name, float32 bytes) in name order; under ZeRO-3 each one is gathered in turn,
    so every process computes the digest of the full model. Collective: call it on every process."""
    import hashlib

    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        with _gathered([param]):
            digest.update(name.encode() + param.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def launch_record(accelerator) -> dict:
    """How the run was distributed: accelerate's type and, under DeepSpeed, the ZeRO stage and offload devices."""
    record = {"type": str(accelerator.distributed_type.value)}
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is not None:
        zero = plugin.deepspeed_config.get("zero_optimization", {})
        record.update(zero_stage=zero.get("stage"), offload_optimizer=zero.get("offload_optimizer", {}).get("device"),
                      offload_param=zero.get("offload_param", {}).get("device"))
    return record


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
        refusal = vllm_video_refusal(args, kwargs.get("train_dataset"))
        if refusal:
            raise ValueError(refusal)
        if peft_config is not None and not args.freeze_vision_tower:
            raise ValueError("freeze_vision_tower=False trains the vision tower in full, but LoRA excludes it: "
                             "use full fine-tuning (lora off) for a trainable vision tower")
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
        self._live = None  # token_weights_gradient: the loss batch whose weights come from the loss forward

    def _get_train_sampler(self, dataset=None):
        stock = super()._get_train_sampler(dataset)
        return EpochRepeatSampler(stock.data_source, stock.mini_repeat_count, stock.batch_size, stock.repeat_count,
                                  stock.shuffle, stock.seed, epoch=lambda: int(self.state.epoch or 0))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        target = self.model if model is None else model
        if self.is_fsdp_enabled or hasattr(target, "peft_config"):  # their own formats: the stock path
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        core = _core(target)
        saved = type(core).from_pretrained(resume_from_checkpoint, dtype=core.dtype, local_files_only=True)
        core.load_state_dict(saved.state_dict(), strict=True)

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
        if self._live is not None and torch.is_grad_enabled():
            return self._logps_with_live_weights(model, input_ids, attention_mask, logits_to_keep, rows,
                                                 compute_entropy)
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

    def _logps_with_live_weights(self, model, input_ids, attention_mask, logits_to_keep, rows, compute_entropy):
        """The loss forward under ``token_weights_gradient``: per-token log-probs whose gradient also carries
        the weights' own, as in the reference's ``w * per_token_loss`` with live weights.

        The weights w come from this forward's log-distributions, per group; the batch's advantages become
        A * w (values), and the returned log-probs are ``logp + log w - (log w).detach()``: equal in value,
        so with TRL's ratio exp(logp - logp.detach()) = 1 the loss -ratio * A * w has the gradient
        -A (w dlogp + dw), that of -A * w(theta) * ratio. The weights are shared by a group's members, so the
        extra term is sum_t dw_t sum_i A_i m_it: with GRPO's zero-mean advantages it acts only at positions
        where some members have already ended."""
        extra = self._video_kwargs(rows, input_ids) if rows is not None else {}
        with self.accelerator.autocast():
            out = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=logits_to_keep + 1,
                        use_cache=False, **extra)
        log_probs = (out.logits[:, :-1].float() / self.temperature).log_softmax(-1)  # (B, C, V)
        logps = log_probs.gather(-1, input_ids[:, -logits_to_keep:, None]).squeeze(-1)  # (B, C)
        live, weights = self._live, torch.zeros_like(logps)
        mask = live["mask"]
        for group in live["groups"].unique():
            members = (live["groups"] == group).nonzero().squeeze(1)
            if len(members) != self.num_generations:
                raise RuntimeError(f"token_weights_gradient: a loss batch holds {len(members)} of a group's "
                                   f"{self.num_generations} completions")
            weights[members] = token_weights_with_gradient(log_probs[members], mask[members], self.args.alpha,
                                                           fill=self.args.weight_fill)
        self._log_weight_stats(weights.detach(), mask)
        live["inputs"]["advantages"] = live["advantages"].reshape(-1, 1) * weights.detach()
        log_w = torch.where(mask.bool(), weights.clamp_min(1e-12).log(), torch.zeros_like(weights))
        entropies = -(log_probs.exp() * log_probs).sum(-1) if compute_entropy else None
        return logps + log_w - log_w.detach(), entropies, None

    # --- generation batch: video rows and token weights ----------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        if inputs and "video" in inputs[0]:
            inputs = [{**x, "prompt": as_video_prompt(x["prompt"])} for x in inputs]
        self._batch_rows = inputs
        try:
            output = super()._generate_and_score_completions(inputs)
            if self._video_rows is not None:
                output["video_rows"] = self._video_rows
            if self.args.token_weighting and self.args.token_weights_gradient:  # weights come with the loss
                groups = torch.arange(output["completion_ids"].size(0), device=output["completion_ids"].device)
                output["group_index"] = groups // self.num_generations
            elif self.args.token_weighting:
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
                divergence=self.args.divergence, fill=self.args.weight_fill)  # (B, C) float32, 0 on padding
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
        if "group_index" in inputs:  # token_weights_gradient: weights from the loss forward itself
            mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
            inputs = dict(inputs)
            self._live = {"inputs": inputs, "advantages": inputs["advantages"], "groups": inputs["group_index"],
                          "mask": mask}
        self._video_rows = inputs.get("video_rows")
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._video_rows, self._live = None, None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        super().log(logs, start_time)
        if self.accelerator.is_main_process and self.state.log_history:
            path = Path(self.args.output_dir) / "metrics.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps(self.state.log_history[-1], sort_keys=True) + "\n")

"""A tiny Qwen2.5-VL (tokenizer, processor, model) built locally and offline, for CPU runs and tests.

The architecture is the real ``Qwen2_5_VLForConditionalGeneration`` (same vision tower, 3D mrope, special
tokens and chat layout as Qwen2.5-VL-7B-Instruct) with small sizes, so every code path of the trainer and
the evaluator is the one that runs on the real checkpoint. The tokenizer is a byte-level BPE trained on
the kit's own text (prompt templates, option letters, digits and, when ``twgrpo_lib.data.synthetic`` is
installed, mini-CLEVRER questions). Building twice gives the same files byte for byte.

Differences from the real Qwen2.5-VL files:

1. The vocabulary is a few thousand tokens trained here, not Qwen's 151,643 byte-level BPE tokens; special
   tokens keep their names (``<|im_start|>``, ``<|vision_start|>``, ``<|video_pad|>``, ...) but not their ids.
2. The chat template is an equivalent written for this kit (system default, ``<|im_start|>role\\n...``,
   vision parts as ``<|vision_start|><|video_pad|><|vision_end|>``); tool-calling branches are left out.
3. The processors' minimum pixel count is 56*56 (real: 56*56 for images, 128*28*28 for video) so that tiny
   test videos stay tiny; the maximum per frame is the paper's 196*28*28.

>>> cfg = TinyConfig()
>>> sum(cfg.mrope_section) * 2 == cfg.hidden_size // cfg.num_heads
True
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from twgrpo_lib.core import prompts
from twgrpo_lib.data.arguments import at_least
from twgrpo_lib.data.run_folder import claim
from twgrpo_lib.data.synthetic.questions import corpus as synthetic_corpus
from twgrpo_lib.data.video import VideoSettings
from twgrpo_lib.models.qwen import SPECIAL_TOKENS, VISION_TOKENS

# The frames the tiny models are trained and scored on: mini-CLEVRER's 64-px frames at 112x112 (8x8 patches of
# 14 px, 4x4 merged tokens per pair of frames); the paper's 196*28*28 would upscale them to 336 px.
TINY_VIDEO = VideoSettings(max_pixels=112 * 112)

# Equivalent of Qwen2.5-VL's chat template (default system prompt; image/video parts become placeholders).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' or 'image' in part or 'image_url' in part -%}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'video' or 'video' in part -%}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{%- elif 'text' in part -%}{{ part['text'] }}"
    "{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)


@dataclass
class TinyConfig:
    """Sizes of the tiny model; every field is a build parameter (defaults: about 1M parameters)."""

    vocab_size: int = 1024  # BPE merges target, before special tokens; the model rounds up to a multiple of 64
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4  # head dim 32 -> mrope_section sums to 16
    num_kv_heads: int = 2
    mrope_section: list[int] = field(default_factory=lambda: [4, 6, 6])  # Qwen2.5-VL-7B: [16, 24, 24] for dim 128
    vision_hidden_size: int = 64
    vision_intermediate_size: int = 128
    vision_depth: int = 2
    vision_heads: int = 2
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    tokens_per_second: int = 2  # as Qwen2.5-VL-7B-Instruct's config
    window_size: int = 112
    min_pixels: int = 56 * 56
    max_pixels: int = 196 * 28 * 28  # docs/method.md §5
    seed: int = 0


def default_corpus() -> list[str]:
    """Text the tokenizer is trained on: the paper's prompt strings, letters, digits, and mini-CLEVRER text.

    >>> any("<answer>" in line for line in default_corpus())
    True
    """
    lines = [
        *prompts.TRAIN_TEMPLATES.values(), prompts.CLEVRER_SYSTEM_PROMPT, prompts.CLEVRER_EVAL_TEMPLATE,
        prompts.GENERAL_EVAL_TEMPLATE, *prompts.GENERAL_TYPE_SUFFIX.values(),
        "You are a helpful assistant.", "Options:", "<think> </think>", "<answer> </answer>",
        " ".join("ABCDEFGHIJ"), ",".join("ABCDEFGHIJ"), " ".join(str(i) for i in range(100)),
    ]
    lines += [f"<answer>{a}</answer>" for a in ("A", "B", "C", "D", "A,B", "A,C", "B,C", "A,B,C")]
    return lines + list(synthetic_corpus())  # mini-CLEVRER questions, options, reasoning, scene descriptions


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1024):
    """Byte-level BPE with Qwen2's pre-tokenizer, trained on ``corpus``; returns a ``Qwen2Tokenizer``.

    >>> tok = train_tokenizer(["hello world"] * 3, vocab_size=300)
    >>> tok.decode(tok("<|im_start|>hello<|video_pad|>")["input_ids"])
    '<|im_start|>hello<|video_pad|>'
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(list(corpus), trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=state["vocab"], merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_processor(tokenizer, cfg: TinyConfig):
    """Qwen2.5-VL processor (image + video processor + ``tokenizer``) with the paper's per-frame pixel cap."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    common = dict(patch_size=cfg.patch_size, temporal_patch_size=cfg.temporal_patch_size,
                  merge_size=cfg.spatial_merge_size,
                  size={"shortest_edge": cfg.min_pixels, "longest_edge": cfg.max_pixels})
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**common),
        video_processor=Qwen2VLVideoProcessor(**common, cap_pixels_per_frame=True),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE,
    )


def build_model(tokenizer, cfg: TinyConfig):
    """A seeded ``Qwen2_5_VLForConditionalGeneration`` sized by ``cfg`` whose vision tokens match ``tokenizer``."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vocab = -(-len(tokenizer) // 64) * 64
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=vocab, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
            num_key_value_heads=cfg.num_kv_heads, max_position_embeddings=8192, max_window_layers=cfg.num_layers,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": cfg.mrope_section},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=dict(
            depth=cfg.vision_depth, hidden_size=cfg.vision_hidden_size, intermediate_size=cfg.vision_intermediate_size,
            num_heads=cfg.vision_heads, patch_size=cfg.patch_size, spatial_merge_size=cfg.spatial_merge_size,
            temporal_patch_size=cfg.temporal_patch_size, tokens_per_second=cfg.tokens_per_second,
            window_size=cfg.window_size, out_hidden_size=cfg.hidden_size,
            fullatt_block_indexes=list(range(cfg.vision_depth - 1, cfg.vision_depth)),
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"], eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"], do_sample=True, temperature=1.0,
        bad_words_ids=[[ids[t]] for t in VISION_TOKENS],
    )
    return model


def build_tiny(out: str | Path, cfg: TinyConfig | None = None, corpus: Iterable[str] | None = None, *,
               force: bool = False) -> Path:
    """Build and save the tiny tokenizer, processor and model to ``out`` (loadable with the Auto classes).

    ``corpus`` defaults to :func:`default_corpus`. Returns ``out``; ``out/build.json`` records the config.
    ``out`` belongs to one build (``data.run_folder``): the same build is written again (the same bytes),
    another one is refused unless ``force``, which moves it aside.
    """
    cfg = cfg or TinyConfig()
    out = Path(out)
    corpus = default_corpus() if corpus is None else list(corpus)
    text_sha = hashlib.sha256("\n".join(corpus).encode()).hexdigest()
    with claim(out, "build-tiny", {"config": asdict(cfg), "corpus_sha256": text_sha}, force=force):
        tokenizer = train_tokenizer(corpus, cfg.vocab_size)
        processor = build_processor(tokenizer, cfg)
        model = build_model(tokenizer, cfg)
        model.save_pretrained(out, safe_serialization=True)
        processor.save_pretrained(out)
        (out / "build.json").write_text(json.dumps(asdict(cfg), indent=1, sort_keys=True) + "\n")
    return out


def file_hashes(folder: str | Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> hex digest), to compare builds."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# TinyConfig fields that ``twgrpo build-tiny`` takes as flags (--hidden-size, ...); the rest follow from them.
SIZE_FLAGS = ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
              "vision_hidden_size", "vision_depth", "seed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (created)")
    defaults = TinyConfig()
    for name in SIZE_FLAGS:
        parser.add_argument("--" + name.replace("_", "-"), type=int if name == "seed" else at_least(1),
                            default=getattr(defaults, name), help=f"default {getattr(defaults, name)}")
    parser.add_argument("--force", action="store_true",
                        help="build over another build in OUT: move it aside to OUT.old-<time> first")


def run(args: argparse.Namespace) -> int:
    cfg = TinyConfig(**{k: getattr(args, k) for k in SIZE_FLAGS})
    head_dim = cfg.hidden_size // cfg.num_heads
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"hidden-size / num-heads = {head_dim} must be even and >= 6 for 3D mrope")
    half = head_dim // 2  # mrope sections (t, h, w) share half the head dim, as 16:24:24 in Qwen2.5-VL
    cfg.mrope_section = [half - 2 * (3 * half // 8), 3 * half // 8, 3 * half // 8]
    out = build_tiny(args.out, cfg, force=args.force)
    print(f"tiny Qwen2.5-VL written to {out}")
    return 0

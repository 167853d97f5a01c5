"""Language-model stage that binds question words to video tokens, then learns the answers.

Trained on the answer loss alone, the tiny language model learns whole-video quantities (counts) but never
carries the question's words to the answer position, so any per-object question stays at chance. Linear
auxiliary heads on the hidden states of an early layer (``--aux-layer``, default 2) help (measured in
``twgrpo_lib/models/assets/README.md``):

(a) ``words``: which concept words (``CONCEPTS``: colours, shapes, materials, event words) the question and
    its options name, predicted at every target position (where the answer is written);
(b) ``facts``: what the video shows (``FACTS``: per colour present / moving at the end / collides / enters
    / exits, shapes and materials present; computed from the simulation up to the last frame shown), predicted
    at every question and target position;
(c) ``option`` (``option_token_words``): the concept words of the option being judged, at every target
    position on that option's line of the reasoning ("\\nA. blue: yes."), so the model learns to look up
    the option it writes (``--no-option-head`` leaves it out).

Schedule (``train_binding``): the first ``aux_only_steps`` steps train the heads and the language model
on the auxiliary losses alone, then the answer loss (next-token loss on the target: templated reasoning and
``<answer>``) joins, the auxiliaries stay. The vision tower and merger are frozen (``twgrpo pretrain-vision``
trained them). The heads are dropped at the end; the checkpoint is a plain Qwen2.5-VL.

>>> named_words("Which of the following objects does the red cube collide with?\\nA. The blue sphere")[:3]
[0.0, 1.0, 1.0]
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

import torch

from twgrpo_lib.data.arguments import at_least
from twgrpo_lib.data.examples import item_example
from twgrpo_lib.data.formats import read_records
from twgrpo_lib.data.run_folder import claim, decide
from twgrpo_lib.data.synthetic.world import COLOURS, MATERIALS, SHAPES
from twgrpo_lib.models.qwen import (
    IGNORE,
    EncodedVideoCache,
    build_batch,
    checkpoint_path,
    load_model,
    model_inputs,
    target_loss,
)
from twgrpo_lib.train.pretrain import split_scenes, usable_scenes
from twgrpo_lib.train.supervised import (
    TrainConfig,
    add_training_arguments,
    cosine_lr,
    finished_log,
    run_identity,
    save_checkpoint,
    training_config,
)

EVENT_WORDS = ("collide", "enter", "exit", "moving", "without", "responsible", "happen")
CONCEPTS: tuple[str, ...] = (*COLOURS, *SHAPES, *MATERIALS, *EVENT_WORDS)
PER_COLOUR = ("present", "moving_at_end", "collides", "enters", "exits")
FACTS: tuple[str, ...] = (*(f"{c}:{f}" for c in COLOURS for f in PER_COLOUR), *SHAPES, *MATERIALS)


def named_words(text: str) -> list[float]:
    """Multi-hot over ``CONCEPTS``: 1.0 where the text names the word (any inflection: collides, exits)."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return [float(any(w.startswith(c) for w in words)) for c in CONCEPTS]


def video_facts(sim, end: float) -> list[float]:
    """Multi-hot over ``FACTS`` for the video up to time ``end`` (seconds; the last frame shown)."""
    scene = sim.scene
    seen = [i for i in sim.present() if any(sim.in_view(i, t) for t in (0.0, end))
            or any(e.kind == "enter" and e.objects == (i,) and e.time <= end for e in sim.events)]
    facts = dict.fromkeys(FACTS, 0.0)
    for i in seen:
        obj = scene.objects[i]
        facts[f"{obj.colour}:present"] = facts[obj.shape] = facts[obj.material] = 1.0
        if sim.in_view(i, end) and any(sim.velocity(i, end)):
            facts[f"{obj.colour}:moving_at_end"] = 1.0
    for e in sim.events:
        if e.time <= end:
            kind = {"collision": "collides", "enter": "enters", "exit": "exits"}[e.kind]
            for i in e.objects:
                facts[f"{scene.objects[i].colour}:{kind}"] = 1.0
    return list(facts.values())


def labelled_items(data_dir: str | Path, split: str = "train") -> list[dict]:
    """The format-A items of a split with ``words`` and ``facts`` added (facts of the video they show)."""
    data_dir = Path(data_dir)
    sims = {Path(video).name: sim for video, sim in split_scenes(data_dir, split)}
    items = read_records(data_dir / f"{split}.json")
    out = []
    for k, item in enumerate(items):
        name = Path(item["video"]).name.replace("_cut.mp4", ".mp4")
        if name not in sims or not isinstance(item.get("video_frames"), int):
            raise ValueError(f"{data_dir / (split + '.json')}: record {k}: field 'video' or 'video_frames' "
                             "does not match scenes.json")
        sim = sims[name]
        end = (item["video_frames"] - 1) / sim.scene.preset.fps
        out.append({**item, "type": item.get("question_type"), "words": named_words(item["problem"]),
                    "facts": video_facts(sim, end)})
    return out


def option_token_words(tokenizer, target: str, options: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per token of ``target`` + end of turn: the ``CONCEPTS`` named by the option whose line ("\\nA. ...")
    the token belongs to, and whether it belongs to one; shapes (T, len(CONCEPTS)) and (T,).

    Token lengths come from the byte-level token strings (one character per byte: the targets are ASCII).
    """
    ids = tokenizer(target + "<|im_end|>", add_special_tokens=False)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    starts, pos = [], 0
    for piece in pieces:
        starts.append(pos)
        pos += len(piece) if piece != "<|im_end|>" else 0
    end_think = target.find("</think>") if "</think>" in target else len(target)
    spans = []
    for m in re.finditer(r"\n([A-H])\. ", target[:end_think]):
        stop = target.find("\n", m.end())
        spans.append((m.start(), end_think if stop < 0 or stop > end_think else stop, ord(m[1]) - ord("A")))
    words = torch.zeros(len(ids), len(CONCEPTS))
    valid = torch.zeros(len(ids), dtype=torch.bool)
    for t, start in enumerate(starts):
        for lo, hi, k in spans:
            if lo <= start < hi and k < len(options):
                words[t] = torch.tensor(named_words(options[k]))
                valid[t] = True
    return words, valid


def aux_positions(batch: dict, video_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (B, L) masks: target positions (they predict a target token) and question-or-target positions
    (text after the video's last token)."""
    labels, ids = batch["labels"], batch["input_ids"]
    target = torch.zeros_like(labels, dtype=torch.bool)
    target[:, :-1] = labels[:, 1:] != IGNORE                                          # (B, L)
    index = torch.arange(ids.shape[1])[None, :]                                        # (1, L)
    last_video = torch.where(ids == video_token_id, index, -1).amax(1, keepdim=True)  # (B, 1)
    after_video = (index > last_video) & batch["attention_mask"].bool()
    return target, after_video | target


def binding_losses(model, heads: torch.nn.ModuleDict, batch: dict, words: torch.Tensor, facts: torch.Tensor,
                   layer: int, option_words: torch.Tensor | None = None,
                   option_valid: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Answer loss (mean over examples of the mean target-token loss) and the auxiliary BCE losses.

    ``option_words`` (N, C) and ``option_valid`` (N,) follow the target positions in row-major order (the
    words of the option whose line the predicted token belongs to; ``option_token_words``)."""
    out = model(**model_inputs(model, batch), output_hidden_states=True)
    answer = target_loss(out.logits, batch["labels"]).mean()
    hidden = out.hidden_states[layer]                                                  # (B, L, H)
    target, text = aux_positions(batch, model.config.video_token_id)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    rows_t, rows_q = target.nonzero()[:, 0], text.nonzero()[:, 0]
    losses = {"answer": answer,
              "words": bce(heads["words"](hidden[target]), words[rows_t]),
              "facts": bce(heads["facts"](hidden[text]), facts[rows_q])}
    if option_words is not None and "option" in heads:
        at_target = hidden[target]                                                     # (N, H)
        losses["option"] = bce(heads["option"](at_target[option_valid]), option_words[option_valid])
    return losses


def train_binding(model, processor, cache: EncodedVideoCache, items: list[dict], config: TrainConfig, *,
                  video_root: str | Path = ".", aux_only_steps: int = 200, aux_layer: int = 2,
                  log=print, save_every: int = 0, save=None, option_head: bool = True) -> list[dict]:
    """Train the language model in place (vision frozen) with the auxiliary-only phase, then the answers.

    ``save(step, records)`` is called every ``save_every`` steps (0: never), e.g. to keep checkpoints.
    ``option_head`` adds head (c): at every target position on an option's line, the words of that option.
    """
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    by_video: dict[str, list[int]] = {}
    for k, item in enumerate(items):
        by_video.setdefault(item["video"], []).append(k)
    examples = [item_example(item, video_root) for item in items]
    per_option = [option_token_words(processor.tokenizer, e.target, [o.split(". ", 1)[-1] for o in item["options"]])
                  for e, item in zip(examples, items)] if option_head else None
    hidden = model.config.text_config.hidden_size
    heads = torch.nn.ModuleDict({"words": torch.nn.Linear(hidden, len(CONCEPTS)),
                                 "facts": torch.nn.Linear(hidden, len(FACTS))})
    if option_head:
        heads["option"] = torch.nn.Linear(hidden, len(CONCEPTS))
    for p in model.model.visual.parameters():
        p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad] + list(heads.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    n_videos = max(1, config.batch_size // config.questions_per_video)
    model.train()
    records, running, start = [], {}, time.time()
    for step in range(config.steps):
        chosen = [k for v in rng.sample(sorted(by_video), n_videos)
                  for k in rng.sample(by_video[v], min(config.questions_per_video, len(by_video[v])))]
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, config.steps, config.lr, config.warmup)
        batch = build_batch(processor, cache, [examples[k] for k in chosen])
        words = torch.tensor([items[k]["words"] for k in chosen])
        facts = torch.tensor([items[k]["facts"] for k in chosen])
        option = {}
        if per_option is not None:
            option = {"option_words": torch.cat([per_option[k][0] for k in chosen]),
                      "option_valid": torch.cat([per_option[k][1] for k in chosen])}
        losses = binding_losses(model, heads, batch, words, facts, aux_layer, **option)
        loss = sum(v for name, v in losses.items() if name != "answer")
        if step >= aux_only_steps:
            loss = loss + losses["answer"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        for name, value in losses.items():
            running.setdefault(name, []).append(value.item())
        if (step + 1) % config.log_every == 0 or step == config.steps - 1:
            record = {"step": step + 1, **{n: round(sum(v) / len(v), 4) for n, v in running.items()},
                      "seconds": round(time.time() - start, 1)}
            record["loss"] = record["answer"]
            records.append(record)
            log(record)
            running = {}
        if save is not None and save_every and (step + 1) % save_every == 0 and step + 1 < config.steps:
            model.eval()
            save(step + 1, records)
            model.train()
        if config.max_minutes is not None and time.time() - start > 60 * config.max_minutes:
            break
    model.eval()
    return records


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a `twgrpo make-data` directory (train split)")
    parser.add_argument("--model", required=True, help="checkpoint folder (e.g. the output of pretrain-vision)")
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--aux-only-steps", type=at_least(0), default=200,
                        help="steps without the answer loss (default 200)")
    parser.add_argument("--aux-layer", type=at_least(0), default=2,
                        help="language-model layer the heads read (default 2)")
    parser.add_argument("--no-option-head", action="store_true",
                        help="leave out head (c), the words of the option being judged")
    parser.add_argument("--save-every", type=at_least(0), default=0, help="also write OUT/checkpoint-N every N steps")
    add_training_arguments(parser, steps=700, lr=2e-3)


def run(args: argparse.Namespace) -> int:
    config, settings = training_config(args)
    model_dir = checkpoint_path(args.model)
    data = Path(args.data)
    options = {"aux_only_steps": args.aux_only_steps, "aux_layer": args.aux_layer,
               "option_head": not args.no_option_head}
    identity = run_identity(model_dir, [data / "manifest.json", data / "train.json", data / "scenes.json"], config,
                            settings, **options)
    if decide(Path(args.out), "bind", identity, force=args.force) == "same" and finished_log(args.out):
        print(f"{args.out} holds this run, finished; nothing to train (--force moves it aside and trains again)")
        return 0
    items = labelled_items(data, "train")
    usable = {video for video, _ in usable_scenes(split_scenes(data, "train"), str(data / "train.json"),
                                                   args.skip_bad_videos)}
    items = [item for item in items if str(data / item["video"]).replace("_cut.mp4", ".mp4") in usable]
    info = {"stage": "bind", "data": str(args.data), "items": len(items), **options}
    with claim(args.out, "bind", identity, force=args.force):
        model, processor = load_model(model_dir, device="cpu", dtype=torch.float32)
        cache = EncodedVideoCache(processor, settings)

        def save(step, records):
            save_checkpoint(model, processor, Path(args.out) / f"checkpoint-{step}", records, info, config, settings)

        records = train_binding(model, processor, cache, items, config, video_root=args.data,
                                aux_only_steps=args.aux_only_steps, aux_layer=args.aux_layer,
                                save_every=args.save_every, save=save, option_head=not args.no_option_head)
        save_checkpoint(model, processor, args.out, records, {**info, "videos": len(cache)}, config, settings)
    print(f"checkpoint written to {args.out}")
    return 0

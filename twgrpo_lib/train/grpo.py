"""``twgrpo train``: GRPO / TW-GRPO training runs from a recipe file plus overrides.

A run is described by plain settings, merged in this order (later wins):

1. ``TWGRPOConfig``'s defaults,
2. the recipe (``twgrpo_lib/recipes/<name>.yaml``, or a path),
3. an extra YAML file (``--config-file``),
4. explicit keyword arguments / command-line flags.

Every key is either a ``TWGRPOConfig`` field (``num_generations``, ``learning_rate``, ...) or one of the run
keys below (``RUN_KEYS``); anything else is an error naming the file and the key. ``--algo`` fixes what
distinguishes the three algorithms (docs/method.md §1):

- ``tw-grpo``: token weights on (``alpha``, 1.7 by default), TRL ``loss_type="bnpo"``: the paper's method;
- ``grpo``: weights off, ``loss_type="grpo"``: the paper's baseline;
- ``bnpo``: weights off, ``loss_type="bnpo"``: the fair ablation "bnpo aggregation, alpha = 1" (all weights
  are 1 at alpha = 1, so the weight pass is skipped instead of computed).

``--reward`` picks the accuracy reward (``soft``: TW-GRPO's, ``binary``: the GRPO baseline's, ``iou``) that is
added to the format reward. ``--template single`` trains on single-answer items only with the single-answer
prompt (the paper's ablation), ``multi`` on multi-answer items only; ``mixed`` (default) on everything.

The output folder receives ``run.json`` (the run: model, data content, settings), ``metrics.jsonl`` (one line
per step), ``checkpoint-N/`` folders (HF Trainer layout: model, optimizer, scheduler, RNG and trainer state)
and, at the end, ``train_settings.json`` and the final model and processor, so ``twgrpo evaluate --model OUT``
works. With LoRA the adapter is merged into the saved model (and kept in ``OUT/adapter``).

Before the first step everything that can fail is checked: the settings (``BOUNDS``), that a local-looking
model path exists (TRL would otherwise take a mistyped path for a hub id), the data file, every video (all bad
ones reported together, or skipped with ``skip_bad_videos``) and the output folder, which belongs to one run
(``data.run_folder``): another run there is refused unless ``force`` (the old folder is moved aside), and this
run, unfinished, is continued only with ``resume`` (``--resume``, or ``resume_from_checkpoint`` in a config
file): from the newest complete checkpoint, with the optimizer, scheduler, RNG and data position the Trainer
saved, and ``metrics.jsonl`` cut back to that checkpoint (``resume``). A finished run is not trained again.

Differences from the paper's reference code:

1. The length of a run is ``max_steps`` (the reference runs one epoch over its 1K-question file, 500 steps of
   2 prompts); the data order comes from ``data_seed`` (42 there too) through TRL's sampler.
2. Attention is PyTorch's SDPA unless ``model_init_kwargs.attn_implementation`` says otherwise (the reference
   uses flash-attention 2, which needs the ``flash-attn`` package).
3. A LoRA run saves a merged full model (the reference trains full weights only).

Reproduction switches (off by default, see ``grpo_trainer``): ``--token-weights-gradient`` lets gradient flow
through the token weights as the reference code does; ``--train-vision-tower`` trains the vision tower as the
reference's GRPO baseline script does. ``--use-vllm`` is refused for video data until vLLM video
generation is implemented and run on a GPU. ``--report-to`` hands metrics to TRL's trackers (none by default;
``metrics.jsonl`` is always written).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import yaml

from twgrpo_lib.core.answers import solution_letters
from twgrpo_lib.core.prompts import TRAIN_TEMPLATES
from twgrpo_lib.core.rewards import REWARD_FUNCTIONS, get_reward_functions
from twgrpo_lib.data.arguments import above, at_least, check
from twgrpo_lib.data.examples import build_training_dataset
from twgrpo_lib.data.formats import load_items
from twgrpo_lib.data.run_folder import claim, decide, file_sha256, model_identity
from twgrpo_lib.data.video import VIDEO_MIN_FRAMES, usable_items
from twgrpo_lib.train import resume as resuming

# torch, TRL and the trainer are imported inside the functions that train: reading recipes and resolving
# settings (the ablation grid, the notebooks, --help) stays free of their start-up cost.

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
DEFAULT_RECIPE = "tiny_cpu"

# what --algo sets; nothing else may contradict it
ALGOS: dict[str, dict] = {
    "tw-grpo": {"token_weighting": True, "loss_type": "bnpo"},
    "grpo": {"token_weighting": False, "loss_type": "grpo", "alpha": 1.0},
    "bnpo": {"token_weighting": False, "loss_type": "bnpo", "alpha": 1.0},
}
REWARDS = tuple(REWARD_FUNCTIONS)  # soft, binary, iou

# run keys: settings of the run that are not TWGRPOConfig fields
RUN_DEFAULTS: dict = {
    "algo": "tw-grpo",  # tw-grpo | grpo | bnpo
    "reward": "soft",  # accuracy reward added to the format reward: soft | binary | iou
    "template": "mixed",  # training prompt (prompts.TRAIN_TEMPLATES); single / multi also filter the items
    "video_root": None,  # re-roots the data file's video paths when the items are loaded (the config's stays unset)
    "lora": False,  # LoRA on the language model (vision excluded) instead of full fine-tuning
    "lora_r": 64,
    "lora_alpha": 128,
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "cpu_threads": None,  # torch threads on a CPU-only machine (None: torch's default)
    "max_items": None,  # train on the first N items only (after the template filter)
    "parameter_digest": False,  # record a sha256 of the final parameters of every process in train_settings.json
}
RUN_KEYS = frozenset(RUN_DEFAULTS)
REPORT_TO = ("none", "tensorboard", "wandb", "trackio")  # --report-to: TRL's (transformers') tracker names


class SettingsError(ValueError):
    """Settings that cannot run; ``twgrpo train`` prints it as one line."""

# Settings that cannot work are refused when the flags are parsed and when settings are resolved (a recipe or
# config file too). A run is ``max_steps`` long: HF's -1 (train by epochs) is not a length here.
BOUNDS = {"max_steps": at_least(1), "num_generations": at_least(2), "per_device_train_batch_size": at_least(1),
          "gradient_accumulation_steps": at_least(1), "max_completion_length": at_least(1),
          "learning_rate": above(0), "save_steps": above(0), "max_items": at_least(1), "video_fps": above(0),
          "video_max_frames": at_least(VIDEO_MIN_FRAMES), "video_max_pixels": at_least(28 * 28),
          "cpu_threads": at_least(1)}
# Settings that do not change what a run computes: left out of its identity (``run.json``), so a run can be
# resumed with other values (where its videos are, threads, progress display, how often it saves).
NOT_IDENTITY = frozenset({"video_root", "cpu_threads", "disable_tqdm", "resume_from_checkpoint", "output_dir",
                          "logging_dir", "save_steps", "save_total_limit", "report_to", "dataloader_num_workers"})
FINAL = "train_settings.json"  # written last: a folder holding it holds a finished run


def config_fields() -> frozenset[str]:
    from twgrpo_lib.train.grpo_trainer import TWGRPOConfig

    return frozenset(f.name for f in dataclasses.fields(TWGRPOConfig) if f.init)


def recipe_path(recipe: str | os.PathLike) -> Path:
    """A recipe name (``tiny_cpu``, ``paper_7b``, ``lora_single_gpu``) or a YAML path, as a path."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return RECIPES_DIR / f"{recipe}.yaml"


def read_settings(path: str | os.PathLike) -> dict:
    """The mapping in a recipe / config YAML file, keys checked against ``RUN_KEYS`` and ``TWGRPOConfig``."""
    path = Path(path)
    if not path.exists():
        names = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: recipe not found (shipped recipes: {names})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    check_keys(data, str(path))
    return data


def check_keys(settings: dict, source: str) -> None:
    unknown = sorted(set(settings) - RUN_KEYS - config_fields())
    if unknown:
        raise SettingsError(f"{source}: unknown setting(s) {unknown}; use TWGRPOConfig fields or {sorted(RUN_KEYS)}")


def resolve_settings(recipe: str | os.PathLike | None = DEFAULT_RECIPE, config_file: str | os.PathLike | None = None,
                     **overrides) -> dict:
    """All settings of a run: run keys filled from ``RUN_DEFAULTS``, then recipe < config file < overrides.

    ``None`` overrides are ignored (an unset command-line flag). The algorithm's settings are applied last;
    an explicit ``alpha`` other than 1 with ``grpo`` / ``bnpo`` is an error.

    >>> s = resolve_settings(None, algo="grpo", max_steps=3)
    >>> s["loss_type"], s["token_weighting"], s["alpha"], s["max_steps"], s["reward"]
    ('grpo', False, 1.0, 3, 'soft')
    """
    settings = dict(RUN_DEFAULTS)
    if recipe is not None:
        settings.update(read_settings(recipe_path(recipe)))
    if config_file is not None:
        settings.update(read_settings(config_file))
    given = {k: v for k, v in overrides.items() if v is not None}
    check_keys(given, "arguments")
    settings.update(given)
    algo, reward, template = settings["algo"], settings["reward"], settings["template"]
    if algo not in ALGOS:
        raise SettingsError(f"algo must be one of {sorted(ALGOS)}, got {algo!r}")
    if reward not in REWARDS:
        raise SettingsError(f"reward must be one of {list(REWARDS)}, got {reward!r}")
    if template not in TRAIN_TEMPLATES:
        raise SettingsError(f"template must be one of {sorted(TRAIN_TEMPLATES)}, got {template!r}")
    if algo != "tw-grpo" and settings.get("alpha", 1.0) != 1.0 and "alpha" in given:
        raise SettingsError(f"alpha = {settings['alpha']} has no effect with algo {algo!r} (token weights off)")
    if algo != "tw-grpo" and settings.get("weight_fill", "uniform") != "uniform":
        raise SettingsError(f"weight_fill = {settings['weight_fill']!r} has no effect with algo {algo!r} "
                            "(token weights off)")
    if settings.get("max_steps") is None:
        raise SettingsError("max_steps is not set: a run is max_steps optimizer steps long (the recipes set it)")
    check(settings, BOUNDS)
    settings.update(ALGOS[algo])
    return settings


def make_config(settings: dict, output_dir: str | os.PathLike):
    """The ``TWGRPOConfig`` of resolved ``settings`` (run keys left out). Without CUDA, bf16 / fp16 model
    weights (``model_init_kwargs.dtype``) become float32, as ``TWGRPOConfig`` turns bf16 autocast off."""
    import torch

    from twgrpo_lib.train.grpo_trainer import TWGRPOConfig

    fields = {k: v for k, v in settings.items() if k not in RUN_KEYS}
    fields["output_dir"] = str(output_dir)
    init = dict(fields.get("model_init_kwargs") or {})
    if not torch.cuda.is_available() and init.get("dtype") in ("bfloat16", "float16"):
        init["dtype"] = "float32"
    if init:
        fields["model_init_kwargs"] = init
    try:
        return TWGRPOConfig(**fields)
    except ValueError as err:  # a combination TWGRPOConfig refuses: one line on the command line
        raise SettingsError(str(err)) from None


def select_items(items: list[dict], template: str, max_items: int | None = None) -> list[dict]:
    """Items the template trains on: ``single`` keeps single-answer items, ``multi`` multi-answer ones.

    >>> items = [{"solution": "<answer>A</answer>"}, {"solution": "<answer>A,B</answer>"}]
    >>> [len(select_items(items, t)) for t in ("mixed", "single", "multi")]
    [2, 1, 1]
    """
    keep = {"mixed": lambda n: True, "single": lambda n: n == 1, "multi": lambda n: n > 1}[template]
    chosen = [item for item in items if keep(len(solution_letters(item["solution"])))]
    return chosen[:max_items] if max_items else chosen


def data_location(data: str | os.PathLike, video_root: str | os.PathLike | None) -> tuple[Path, str | None]:
    """(annotation file, video root): a mini-CLEVRER folder (``twgrpo make-data``) means its ``train.json``
    with the folder as video root."""
    path = Path(data)
    if path.is_dir():
        if not (path / "train.json").exists():
            raise FileNotFoundError(f"{path}: a data folder must hold train.json (build one with twgrpo make-data)")
        return path / "train.json", os.fspath(video_root if video_root is not None else path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: training data not found")
    return path, None if video_root is None else os.fspath(video_root)


def run_identity(model: str, data_file: Path, settings: dict) -> dict:
    """What makes a training run (``OUT/run.json``): the model, the data file's content, the settings."""
    return {"model": model_identity(model), "data_sha256": file_sha256(data_file),
            "settings": {k: v for k, v in sorted(settings.items()) if k not in NOT_IDENTITY}}


def lora_config(settings: dict):
    from peft import LoraConfig

    return LoraConfig(r=settings["lora_r"], lora_alpha=settings["lora_alpha"], lora_dropout=settings["lora_dropout"],
                      target_modules=list(settings["lora_target_modules"]), exclude_modules=r".*visual.*",
                      task_type="CAUSAL_LM")


def save_final(trainer, out: Path, lora: bool) -> None:
    """Final model + processor in ``out`` (LoRA: adapter in ``out/adapter``, merged weights in ``out``)."""
    if not lora:
        trainer.save_model(str(out))
    elif trainer.accelerator.is_main_process:
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(str(out / "adapter"))
        model.merge_and_unload().save_pretrained(str(out))
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(out))


def train(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike, *,
          recipe: str | os.PathLike | None = DEFAULT_RECIPE, config_file: str | os.PathLike | None = None,
          progress: bool = True, resume: bool = False, force: bool = False, skip_bad_videos: bool = False,
          **overrides) -> Path:
    """Train ``model`` (a checkpoint folder) on ``data`` (a format A-D file or a mini-CLEVRER folder); return ``out``.

    ``overrides`` are run keys or ``TWGRPOConfig`` fields (see :func:`resolve_settings`), e.g.
    ``train(tiny, "mini", "runs/grpo", algo="grpo", reward="binary", max_steps=20)``. ``resume`` continues the
    run in ``out`` from its newest complete checkpoint; ``force`` moves a run already in ``out`` aside and starts
    over; ``skip_bad_videos`` trains without the items whose video is unusable instead of refusing.
    """
    import torch

    settings = resolve_settings(recipe, config_file, **overrides)
    threads = torch.get_num_threads()
    if not torch.cuda.is_available() and settings["cpu_threads"]:
        torch.set_num_threads(int(settings["cpu_threads"]))
    try:
        return _train(model, data, Path(out), settings, recipe, progress, resume, force, skip_bad_videos)
    finally:
        torch.set_num_threads(threads)


def _train(model, data, out: Path, settings: dict, recipe, progress: bool, resume: bool, force: bool,
           skip_bad_videos: bool) -> Path:
    from twgrpo_lib.models.qwen import checkpoint_path
    from twgrpo_lib.train.grpo_trainer import TWGRPOTrainer, launch_record, parameter_digest, vllm_video_refusal

    model = checkpoint_path(model)  # TRL loads a string itself: a mistyped local path must fail here
    if not progress:
        settings["disable_tqdm"] = True
    path, video_root = data_location(data, settings["video_root"])
    loaded = load_items(path, video_root=video_root)
    items = select_items(loaded, settings["template"], settings["max_items"])
    if not items:
        raise SettingsError(f"{path}: no items left for template {settings['template']!r} ({len(loaded)} loaded)")
    resume = resume or bool(settings.get("resume_from_checkpoint"))
    identity = run_identity(model, path, settings)
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun / accelerate, rank 0 owns the folder
    if not force and (out / FINAL).exists() and decide(out, "train", identity) == "same":
        print(f"{out} holds this run, finished; nothing to train (--force moves it aside and trains again)")
        return out
    mode = True if resume else (False if resuming.has_progress(out) else None)
    if main_process:
        decide(out, "train", identity, force=force, resume=mode)  # before the video check: a quick refusal
    items, report = usable_items(items, str(path), skip_bad=skip_bad_videos)
    if report.bad:
        print(f"skipping {report.bad} of {report.total} items with an unusable video (--skip-bad-videos)")
    dataset = build_training_dataset(items, template=settings["template"])
    config = make_config({k: v for k, v in settings.items() if k != "resume_from_checkpoint"}, out)
    refusal = vllm_video_refusal(config, dataset)
    if refusal:
        raise SettingsError(refusal)
    with claim(out, "train", identity, force=force, resume=mode) if main_process else contextlib.nullcontext():
        checkpoint = None
        if resume:
            checkpoint = _resume_point(out, settings.get("resume_from_checkpoint"))
            if main_process:
                resuming.restore_metrics(out, checkpoint)
        trainer = TWGRPOTrainer(model, get_reward_functions(settings["reward"]), args=config,
                                train_dataset=dataset,
                                peft_config=lora_config(settings) if settings["lora"] else None)
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
        seconds = time.perf_counter() - start
        save_final(trainer, out, settings["lora"])
        digests = None
        if settings["parameter_digest"]:  # every process: the gather under ZeRO-3 is collective
            own = parameter_digest(trainer.accelerator.unwrap_model(trainer.model))
            digests = trainer.accelerator.gather_for_metrics([own], use_gather_object=True)
        if trainer.accelerator.is_main_process:
            record = {"model": model, "data": os.fspath(path), "video_root": video_root,
                      "recipe": None if recipe is None else os.fspath(recipe), "items": len(items),
                      "items_loaded": len(loaded), "items_skipped_bad_video": report.bad,
                      "resumed_from": None if checkpoint is None else checkpoint.name,
                      "train_seconds": round(seconds, 1), "device": str(trainer.accelerator.device),
                      "processes": trainer.accelerator.num_processes,
                      "distributed": launch_record(trainer.accelerator),
                      "settings": {k: v for k, v in settings.items() if k in RUN_KEYS},
                      "parameter_digests": digests,
                      "config": json.loads(config.to_json_string())}
            (out / FINAL).write_text(json.dumps(record, indent=1, default=str) + "\n")
    return out


def _resume_point(out: Path, requested) -> Path | None:
    """The checkpoint to resume from: ``requested`` (a path from ``resume_from_checkpoint``) or the newest
    complete one in ``out``; None when the run saved none yet (it starts from step 0)."""
    if isinstance(requested, (str, os.PathLike)) and os.fspath(requested).lower() not in ("true", ""):
        folder = Path(requested)
        problem = resuming.checkpoint_problem(folder) if folder.is_dir() else "not a folder"
        if problem:
            raise ValueError(f"{folder}: cannot resume from it: {problem}")
        return folder
    folder, passed = resuming.newest_complete(out)
    if folder is None and passed:
        raise ValueError(f"{out}: no checkpoint can resume the run ({'; '.join(passed)}); --force starts over")
    for reason in passed:
        print(f"passing over {reason}")
    print(f"resuming {out} from {folder.name}" if folder else f"{out}: no checkpoint yet, training from step 0")
    return folder


def step_metrics(out: str | os.PathLike) -> list[dict]:
    """The per-step records of a run's ``metrics.jsonl`` (the final summary line left out)."""
    from twgrpo_lib.data.predictions import read_records

    path = Path(out) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no metrics; has the run in {out} started?")
    records = read_records(path, repair=False)  # a torn last line (a killed run) is left out, with a warning
    return [r for r in records if "loss" in r and "step" in r]


def start_end(values: list[float], window: int = 5) -> tuple[float, float]:
    """Mean of the first and of the last ``window`` values (a curve's start and end, less noisy than one step).

    >>> start_end([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], window=2)
    (0.5, 4.5)
    """
    if not values:
        raise ValueError("no values")
    k = max(1, min(window, len(values) // 2 or 1))
    return sum(values[:k]) / k, sum(values[-k:]) / k


def warm_start(base: str | os.PathLike, train_file: str | os.PathLike, out: str | os.PathLike, steps: int, *,
               lr: float = 1e-3, seed: int = 0, video_root: str | os.PathLike | None = None) -> str:
    """Supervised warm start of ``base`` on the items' reasoning targets (``sft.run_sft``) into ``out``; with
    ``steps = 0`` ``out`` is a copy of ``base``. Returns a one-line report."""
    if steps > 0:
        from twgrpo_lib.train.sft import run_sft  # torch: only when a warm start runs
        from twgrpo_lib.train.supervised import TrainConfig

        config = TrainConfig(steps=steps, lr=lr, warmup=min(10, steps), seed=seed, log_every=max(1, steps // 5))
        log = run_sft(base, train_file, out, config, video_root=video_root)
        return (f"warm start: mean target loss {log[0]['loss']:.3f} (first {log[0]['step']} steps) -> "
                f"{log[-1]['loss']:.3f} (last log interval) in {steps} steps")
    shutil.copytree(base, out, dirs_exist_ok=True)
    return f"no warm start (steps = 0): {out} is a copy of {base}"


# --- command line -----------------------------------------------------------------------------------------
# Flags that override the recipe: (flag, argparse options); each sets the run key or TWGRPOConfig field of
# the same name (``dest``), and is left out (the recipe's value kept) when not given.
OVERRIDE_FLAGS: tuple[tuple[str, dict], ...] = (
    ("--algo", dict(choices=sorted(ALGOS),
                    help="tw-grpo: weights + bnpo; grpo: no weights, grpo loss; bnpo: no weights, bnpo loss")),
    ("--reward", dict(choices=REWARDS, help="accuracy reward (soft: the paper's)")),
    ("--template", dict(choices=sorted(TRAIN_TEMPLATES),
                        help="training prompt; single / multi keep single- / multi-answer items only")),
    ("--max-steps", dict(type=BOUNDS["max_steps"], help="optimizer steps")),
    ("--num-generations", dict(type=BOUNDS["num_generations"], help="G, completions per prompt")),
    ("--alpha", dict(type=float, help="largest token weight (tw-grpo; paper: 1.7)")),
    ("--weight-fill", dict(choices=["uniform", "alive"], help="tw-grpo: an ended answer counts as the uniform "
                                                              "distribution (paper) or not at all (alive)")),
    ("--lr", dict(dest="learning_rate", type=BOUNDS["learning_rate"], help="learning rate")),
    ("--max-completion-length", dict(type=BOUNDS["max_completion_length"], help="tokens per completion at most")),
    ("--per-device-train-batch-size", dict(type=BOUNDS["per_device_train_batch_size"],
                                           help="completions per device step")),
    ("--save-steps", dict(type=BOUNDS["save_steps"], help="checkpoint every N steps")),
    ("--video-root", dict(help="folder the data file's video paths are re-rooted under")),
    ("--max-items", dict(type=BOUNDS["max_items"], help="train on the first N items only")),
    ("--seed", dict(type=int, help="random seed (model init of LoRA, sampling)")),
    ("--lora", dict(action="store_true", help="LoRA on the language model")),
    ("--use-vllm", dict(action="store_true", help="generate with vLLM (refused for video data: not implemented yet)")),
    ("--report-to", dict(choices=REPORT_TO, help="tracker TRL reports to (default: the recipe's, none); "
                                                 "metrics.jsonl is always written")),
    ("--token-weights-gradient", dict(action="store_true",
                                      help="reproduce the reference code: gradient flows through the token weights")),
    ("--train-vision-tower", dict(dest="freeze_vision_tower", action="store_false",
                                  help="reproduce the reference's GRPO baseline: the vision tower is trained")),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="Qwen2.5-VL checkpoint folder (or the tiny model)")
    parser.add_argument("--data", required=True,
                        help="training file in format A-D, or a mini-CLEVRER folder (its train.json)")
    parser.add_argument("--out", required=True, help="output folder: metrics.jsonl, checkpoints, final model")
    parser.add_argument("--recipe", default=DEFAULT_RECIPE,
                        help="twgrpo_lib/recipes/<name>.yaml (tiny_cpu, paper_7b, lora_single_gpu) or a YAML path")
    parser.add_argument("--config-file", default=None, help="YAML of further settings, applied over the recipe")
    overrides = parser.add_argument_group("settings over the recipe")
    for flag, options in OVERRIDE_FLAGS:
        overrides.add_argument(flag, default=None, **options)
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT from its newest complete checkpoint (same settings)")
    parser.add_argument("--force", action="store_true",
                        help="start over: move the folder OUT aside to OUT.old-<time> (nothing is deleted)")
    parser.add_argument("--skip-bad-videos", action="store_true",
                        help="train without the items whose video is missing, undecodable or too short "
                             "(default: refuse and list them)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def override_keys() -> list[str]:
    """The settings the flags of ``OVERRIDE_FLAGS`` set.

    >>> override_keys()[:3], "learning_rate" in override_keys()
    (['algo', 'reward', 'template'], True)
    """
    return [options.get("dest", flag[2:].replace("-", "_")) for flag, options in OVERRIDE_FLAGS]


def run(args: argparse.Namespace) -> int:
    out = train(args.model, args.data, args.out, recipe=args.recipe, config_file=args.config_file,
                progress=not args.quiet, resume=args.resume, force=args.force, skip_bad_videos=args.skip_bad_videos,
                **{k: getattr(args, k) for k in override_keys()})
    print(f"final model and processor in {out}; per-step metrics in {out / 'metrics.jsonl'}")
    return 0

"""Resumable benchmark evaluation: ``twgrpo evaluate`` (docs/method.md §7, docs/formats.md §E).

One JSON line per question is appended to ``OUT/predictions.jsonl``, flushed and fsync'd as soon as it
is produced. A re-run with the same ``--out`` skips the questions already answered, so a run killed at any
moment (SIGKILL included) resumes and ends with exactly one record per question; questions whose video failed
(error records) are asked again, so a restored video is answered. ``OUT`` belongs to one run
(``data.run_folder``): its ``run.json`` holds the model, the sha256 of the data file and every setting that
changes an answer, and another run there is refused unless ``--force``, which moves the old folder aside to
``OUT.old-<time>`` and starts over; a second evaluation writing to the same ``OUT`` at the same time is refused.
Every record carries the data file's sha256 beside its ``id``, so a record is only ever reused for the same
question of the same file. At the end ``OUT/summary.json`` holds the scores of ``metrics`` plus the
settings, library versions and device.

Prompts are the paper's, verbatim (``prompts``): CLEVRER-style items (formats A and D) get the CLEVRER
system prompt and template; general benchmarks (formats B and C) get Video-R1's template plus the
multiple-choice suffix and no system message of their own, so Qwen2.5-VL's chat template inserts its
default system line, exactly as in the paper's runs. ``--prompt train`` asks with the training prompt instead
(docs/method.md §5, no system prompt): not the paper's protocol, but the only prompt a model that never
saw another one (the kit's tiny model) answers in format.

What differs from the paper's evaluation scripts (longmalongma/TW-GRPO ``src/eval``):

1. Resume is exact. The reference reloads its partial file but restarts the loop at question 0 and
   appends again, so a resumed run holds duplicates; here finished questions are skipped by id and a
   truncated last line left by a kill is cut off (never a line in the middle: that is an error).
2. A missing or undecodable video, or a record the kit cannot pose (``formats``: malformed options or
   solution), becomes a record with an ``error`` field that the metrics count apart, and ``summary.json``
   counts the records not posed; the reference stops at the first unreadable video and drops a sample
   whose scoring raises. A question with a single option is posed as it is.
3. Scores come from the kit's one parser (``answers`` / ``rewards``), by default with the specification's
   rule (``--answer-rule whole``: without tags, the whole completion is the answer); the reference scores
   with two scripts of its own that disagree on untagged and tagged answers (``answers``, difference 3).
   ``--answer-rule phrase`` reproduces its general script, for analysis.
4. ``--limit N`` takes the first N questions in file order; the reference draws a random sample.
5. One video setting for every benchmark (default 196*28*28 pixels per frame, as the paper states); the
   reference's general script sets 256*28*28 through an environment variable, too late to take effect.
6. Frames: ``--frame-sampling paper`` (default) is the reference's, 16 frames per clip (``video``, the
   16-frame protocol); ``--frame-sampling fps`` is the kit's training sampling (2 fps, at most 16 frames,
   the fps the model is told matching the frames), which the reference's scripts never used for evaluation.
7. ``--swapped-videos`` (not in the paper) asks every question with the video of another question: the seeded
   derangement over the distinct videos of ``grounding.swapped_videos`` (``--swap-seed``), scored against the
   question's own answer. A model that reads the video scores lower so; one that ignores it scores the same.
   The run's identity and summary record it, and each record names the video it was shown (``shown_video``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
import zlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tqdm.auto import tqdm

import twgrpo_lib
from twgrpo_lib.core.answers import extract_answer
from twgrpo_lib.core.rewards import format_reward_score, soft_accuracy
from twgrpo_lib.data.arguments import Bound, above, at_least, check
from twgrpo_lib.data.formats import read_items
from twgrpo_lib.data.predictions import append_record, question_key, read_records, rewrite_records
from twgrpo_lib.data.run_folder import claim, file_sha256, model_identity
from twgrpo_lib.data.video import (
    PAPER_EVAL_FRAMES,
    VIDEO_MIN_FRAMES,
    VideoCache,
    VideoSettings,
    processor_video_kwargs,
)
from twgrpo_lib.eval import metrics
from twgrpo_lib.eval.posing import (  # noqa: F401  (re-exported: the prompts are part of this command)
    CLEVRER_STYLE_FORMATS,
    PROMPT_MODES,
    build_messages,
    prompt_mode,
    prompt_template,
    select_questions,
    show_swapped_videos,
    user_text,
)

PAPER_VIDEO = VideoSettings()  # docs/method.md §7: 2 fps, at most 16 frames of at most 196*28*28 pixels

PREDICTIONS = "predictions.jsonl"
SUMMARY = "summary.json"
FRAME_SAMPLINGS = {  # --frame-sampling: what summary.json records beside the name
    "paper": "2-fps samples resampled to exactly 16 frames (truncated linspace, repeats for clips under 8 s), "
             "told 2 fps: the paper's evaluation scripts (docs/method.md §5)",
    "fps": "frames at fps, at most max_frames, an even count, told the fps of the frames: the kit's training "
           "sampling",
}


# --- settings ---------------------------------------------------------------------------------------
@dataclass
class EvalSettings:
    """Every setting of one evaluation run; defaults are the paper's evaluation (docs/method.md §7)."""

    model: str
    data: str
    out: str
    video_root: str | None = None
    limit: int | None = None
    question_type: str | None = None  # keep only these question types (comma-separated), e.g. "counterfactual"
    batch_size: int = 16  # paper: 16
    fps: float = PAPER_VIDEO.fps  # paper: 2 fps ...
    max_frames: int = PAPER_VIDEO.max_frames  # ... at most 16 frames ...
    frame_sampling: str = "paper"  # ... then resampled to exactly 16 (FRAME_SAMPLINGS) ...
    max_pixels: int = PAPER_VIDEO.max_pixels  # ... of at most 196*28*28 pixels
    temperature: float = 0.1  # paper: sampling on, temperature 0.1, top_p 0.001 (effectively greedy)
    top_p: float = 0.001
    greedy: bool = False
    max_new_tokens: int = 4096  # paper: 4096
    prompt: str = "auto"  # clevrer | general | train | auto (by source format)
    answer_rule: str = "whole"  # answers.extract_answer rule: "whole" = docs/method.md §3 (untagged: the whole text)
    seed: int = 42
    swapped_videos: bool = False  # not the paper's: show each question the video of another (difference 7)
    swap_seed: int = 0  # seed of that derangement (grounding.swapped_videos)
    cpu_threads: int | None = None  # torch threads without a GPU (None: torch's default); answers do not change


# Fields that change an answer: a resumed run must match them (batch size, limit and paths to the
# data or output may change between runs).
RESUME_KEYS = ("model", "fps", "max_frames", "frame_sampling", "max_pixels", "temperature", "top_p", "greedy",
               "max_new_tokens", "prompt", "answer_rule", "seed")


# Settings that cannot work are refused before the model is loaded (and when the arguments are parsed).
BOUNDS = {"limit": at_least(1), "batch_size": at_least(1), "cpu_threads": at_least(1), "fps": above(0),
          "max_frames": at_least(VIDEO_MIN_FRAMES),
          "max_pixels": at_least(28 * 28), "temperature": above(0), "top_p": Bound(float, 0, 1, open_low=True),
          "max_new_tokens": at_least(1)}


def run_identity(settings: EvalSettings, data_sha256: str) -> dict:
    """What makes an evaluation run (``OUT/run.json``): the model, the data file's content and ``RESUME_KEYS``,
    and with ``swapped_videos`` the derangement's seed (a right-video run's identity has no such entry)."""
    swapped = {"videos": "swapped", "swap_seed": settings.swap_seed} if settings.swapped_videos else {}
    return {**{k: getattr(settings, k) for k in RESUME_KEYS}, "model": model_identity(settings.model),
            "data_sha256": data_sha256, **swapped}



def record_key(record: dict, data_sha256: str | None) -> tuple[str | None, str]:
    """A record's key: the data file it answers (sha256) and its question id."""
    return data_sha256, question_key(record)


# --- scoring of one answer -------------------------------------------------------------------------------
def make_record(item: dict, output: str | None, rule: str = "whole", error: str | None = None,
                n_tokens: int | None = None) -> dict:
    """A format-E record scored with ``answers`` / ``rewards`` by ``rule``; with ``error``, no scores.

    >>> r = make_record({"id": 3, "solution": "<answer>A,C</answer>"}, "<think>x</think><answer>A</answer>")
    >>> r["extracted_answer"], r["accuracy_score"], r["format_score"]
    ('A', 0.5, 1.0)
    """
    question = {k: v for k, v in item.items() if k != "shown_video"}
    record = {"id": item["id"], "question": question, "ground_truth": item["solution"], "model_output": output}
    if "shown_video" in item:  # a swapped-video run: the video the question was asked with
        record["shown_video"] = item["shown_video"]
    if error is not None:
        record.update(extracted_answer=None, accuracy_score=None, format_score=None, error=error)
    else:
        record.update(extracted_answer=extract_answer(output, rule),
                      accuracy_score=float(soft_accuracy(output, item["solution"], rule)),
                      format_score=float(format_reward_score(output, rule)), completion_tokens=n_tokens)
    return record


# --- model and generation --------------------------------------------------------------------------------
def load_clips(items: list[dict], settings: EvalSettings, cache) -> tuple[list, list[str | None]]:
    """Decode each item's video (``cache``: a ``video.VideoCache``, CLEVRER asks several questions per video);
    a failure is returned as an error string for that item, never raised."""
    resample = PAPER_EVAL_FRAMES if settings.frame_sampling == "paper" else None
    clips, errors = [], []
    for item in items:
        try:
            clips.append(cache.load(item.get("shown_video", item["video"]), fps=settings.fps,
                                    max_frames=settings.max_frames, max_pixels=settings.max_pixels,
                                    resample_to=resample))
            errors.append(None)
        except Exception as err:  # any decoding failure is recorded for this question only
            clips.append(None)
            errors.append(f"{type(err).__name__}: {err}")
    return clips, errors


def decoding(settings: EvalSettings) -> dict:
    """The decoding ``generate`` runs: these settings over the checkpoint's ``generation_config.json``,
    whose other fields (Qwen2.5-VL-Instruct: top_k, repetition_penalty) apply too, as in the paper's runs."""
    from transformers import GenerationConfig

    try:
        base = GenerationConfig.from_pretrained(settings.model)
    except OSError:  # no generation_config.json: library defaults
        base = GenerationConfig()
    sampled = not settings.greedy
    return {"do_sample": sampled, "temperature": settings.temperature if sampled else None,
            "top_p": settings.top_p if sampled else None, "top_k": base.top_k if sampled else None,
            "repetition_penalty": base.repetition_penalty, "max_new_tokens": settings.max_new_tokens}


def generate_batch(model, processor, device: str, items: list[dict], clips: list, modes: list[str],
                   settings: EvalSettings) -> list[tuple[str, int]]:
    """Generate answers for one batch (left padded); returns (completion text, its token count) per item."""
    import torch  # only once questions are generated: scoring and resuming need no torch

    texts = [processor.apply_chat_template(build_messages(item, mode), tokenize=False, add_generation_prompt=True)
             for item, mode in zip(items, modes)]
    with warnings.catch_warnings():  # cached clips are read-only numpy arrays; the processor only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        inputs = processor(text=texts, padding=True, return_tensors="pt", **processor_video_kwargs(clips))
    inputs = inputs.to(device)
    torch.manual_seed(settings.seed + zlib.crc32(question_key(items[0]).encode()))  # same batch, same draw
    sampling = {} if settings.greedy else {"temperature": settings.temperature, "top_p": settings.top_p}
    with torch.inference_mode():
        sequences = model.generate(**inputs, do_sample=not settings.greedy, max_new_tokens=settings.max_new_tokens,
                                   pad_token_id=processor.tokenizer.pad_token_id, **sampling)
    completions = sequences[:, inputs["input_ids"].shape[1]:]                        # (B, T_new)
    ends = {processor.tokenizer.pad_token_id, processor.tokenizer.eos_token_id} - {None}
    lengths = [int(sum(1 for t in row.tolist() if t not in ends)) for row in completions]
    decoded = processor.batch_decode(completions, skip_special_tokens=True)
    return list(zip(decoded, lengths))


def evaluate_batch(model, processor, device: str, batch: list[dict], settings: EvalSettings, cache) -> list[dict]:
    """Format-E records of one batch, in order; a question whose video fails gets an error record."""
    clips, errors = load_clips(batch, settings, cache)
    ready = [i for i, error in enumerate(errors) if error is None]
    answers = generate_batch(model, processor, device, [batch[i] for i in ready], [clips[i] for i in ready],
                             [prompt_mode(batch[i], settings.prompt) for i in ready], settings) if ready else []
    answer_of = dict(zip(ready, answers))
    return [make_record(item, None, settings.answer_rule, error=errors[i]) if errors[i] is not None
            else make_record(item, answer_of[i][0], settings.answer_rule, n_tokens=answer_of[i][1])
            for i, item in enumerate(batch)]


def run_evaluation(settings: EvalSettings, force: bool = False, progress: bool = True) -> dict:
    """Evaluate, resuming from ``OUT/predictions.jsonl``; write and return the summary dict.

    Everything that can be checked without the model is checked first: the settings (``BOUNDS``), that a
    local-looking model path exists, the data file, and that ``OUT`` holds no other run.
    """
    from twgrpo_lib.models.qwen import checkpoint_path

    check(settings, BOUNDS)
    if settings.frame_sampling not in FRAME_SAMPLINGS:
        raise ValueError(f"frame sampling must be one of {sorted(FRAME_SAMPLINGS)}, got {settings.frame_sampling!r}")
    checkpoint_path(settings.model)  # a mistyped local path is an error here, never a hub request
    loaded = read_items(settings.data, video_root=settings.video_root, on_error="record")
    items, unposed = select_questions(loaded.items, loaded.errors, settings)
    if settings.video_root is None:  # relative video paths are relative to the data file
        base = Path(settings.data).parent
        items = [dict(item, video=str(base / item["video"])) if not os.path.isabs(item["video"]) else item
                 for item in items]
    if not items and not unposed:
        raise ValueError(f"{settings.data}: no questions to evaluate")
    if settings.swapped_videos:
        items = show_swapped_videos(items, settings.swap_seed)
    data_sha256 = file_sha256(settings.data)
    with claim(settings.out, "evaluate", run_identity(settings, data_sha256), force=force):
        predictions = Path(settings.out) / PREDICTIONS
        wanted = {record_key(item, data_sha256) for item in items} | {(data_sha256, e["id"]) for e in unposed}
        records = read_records(predictions)
        kept = [r for r in records if "error" not in r or record_key(r, r.get("data_sha256")) not in wanted]
        if len(kept) < len(records):  # errored questions are asked again: their error records make way
            rewrite_records(predictions, kept)
        done = {record_key(r, r.get("data_sha256")) for r in kept}
        todo = [item for item in items if record_key(item, data_sha256) not in done]
        started = time.time()
        with open(predictions, "a", encoding="utf-8") as fh:
            for error in unposed:  # a record the kit cannot pose is that question's error record, never an abort
                append_record(fh, {"id": error["id"], "question": error["record"], "model_output": None,
                                   "error": f"not posed: {error['error']}", "data_sha256": data_sha256})
        if todo:
            from twgrpo_lib.models.qwen import cpu_threads, load_model  # torch: only when questions remain

            model, processor = load_model(settings.model, padding_side="left")
            device = str(model.device)
            cache = VideoCache(maxsize=max(32, 2 * settings.batch_size))
            with open(predictions, "a", encoding="utf-8") as fh, cpu_threads(settings.cpu_threads, device), \
                    tqdm(total=len(items), initial=len(items) - len(todo), desc="evaluate", unit="q",
                         disable=not progress) as bar:
                for start in range(0, len(todo), settings.batch_size):
                    batch = todo[start: start + settings.batch_size]
                    for record in evaluate_batch(model, processor, device, batch, settings, cache):
                        append_record(fh, {**record, "data_sha256": data_sha256})
                    bar.update(len(batch))
        modes = sorted({prompt_mode(item, settings.prompt) for item in items})
        return write_summary(settings, predictions, wanted, modes, time.time() - started, generated=len(todo),
                             not_posed=[(e["index"], e["id"], e["error"]) for e in unposed])


# --- summary -------------------------------------------------------------------------------------------
def library_versions() -> dict[str, str]:
    """Versions of the libraries that move the number (trl read from metadata, not imported)."""
    found = {"twgrpo_lib": twgrpo_lib.__version__}
    for name in ("torch", "transformers", "trl"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def write_summary(settings: EvalSettings, predictions: Path, keys: set[tuple], modes: list[str], seconds: float,
                  generated: int, not_posed: list[tuple] = ()) -> dict:
    """Score the records of this run's questions with ``metrics`` and write ``OUT/summary.json``."""
    import torch  # the device name; torch is already loaded when anything was generated

    records = [r for r in read_records(predictions) if record_key(r, r.get("data_sha256")) in keys]
    summary = metrics.summarize(records, source=str(predictions), rule=settings.answer_rule)
    summary["settings"] = dataclasses.asdict(settings)
    summary["prompt_templates"] = [prompt_template(mode) for mode in modes]
    summary["frame_sampling"] = {"name": settings.frame_sampling, "rule": FRAME_SAMPLINGS[settings.frame_sampling]}
    summary["decoding"] = decoding(settings)
    summary["videos"] = ({"shown": "swapped", "swap_seed": settings.swap_seed,
                          "rule": "each question is shown the video of another (grounding.swapped_videos)"}
                         if settings.swapped_videos else {"shown": "right"})
    summary["versions"] = library_versions()
    summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    summary["run"] = {"questions": len(keys), "generated_this_run": generated, "seconds_this_run": round(seconds, 1),
                      "not_posed": len(not_posed),
                      "not_posed_examples": [f"record {i} (id {k}): {e}" for i, k, e in not_posed[:5]]}
    out = Path(settings.out) / SUMMARY
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp, out)
    return summary


# --- command line ----------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = EvalSettings("", "", "")
    parser.add_argument("--model", required=True, help="Qwen2.5-VL checkpoint folder (or the tiny model)")
    parser.add_argument("--data", required=True, help="annotation file in format A, B, C or D (docs/formats.md)")
    parser.add_argument("--video-root", default=None,
                        help="folder the data file's video paths are re-rooted under (default: relative paths "
                        "are relative to the data file)")
    parser.add_argument("--out", required=True, help="output folder: run.json, predictions.jsonl, summary.json")
    parser.add_argument("--limit", type=BOUNDS["limit"], default=None, help="evaluate only the first N questions")
    parser.add_argument("--question-type", default=None,
                        help="evaluate only these question types, comma-separated (CLEVRER: counterfactual)")
    parser.add_argument("--batch-size", type=BOUNDS["batch_size"], default=d.batch_size,
                        help="questions per generate call (paper: 16)")
    parser.add_argument("--fps", type=BOUNDS["fps"], default=d.fps, help="frame sampling rate (paper: 2)")
    parser.add_argument("--max-frames", type=BOUNDS["max_frames"], default=d.max_frames,
                        help="frames per video at most (paper: 16)")
    parser.add_argument("--frame-sampling", choices=sorted(FRAME_SAMPLINGS), default=d.frame_sampling,
                        help="paper: the 2-fps samples resampled to exactly 16 frames (default, the paper's "
                             "evaluation); fps: the kit's training sampling, frames at --fps")
    parser.add_argument("--max-pixels", type=BOUNDS["max_pixels"], default=d.max_pixels,
                        help="pixels per frame at most (paper: 196*28*28)")
    parser.add_argument("--temperature", type=BOUNDS["temperature"], default=d.temperature,
                        help="sampling temperature (paper: 0.1)")
    parser.add_argument("--top-p", type=BOUNDS["top_p"], default=d.top_p, help="nucleus sampling (paper: 0.001)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of the paper's sampling")
    parser.add_argument("--max-new-tokens", type=BOUNDS["max_new_tokens"], default=d.max_new_tokens,
                        help="answer length cap (paper: 4096)")
    parser.add_argument("--prompt", choices=["auto", *PROMPT_MODES], default=d.prompt,
                        help="prompt template; auto: clevrer for formats A/D, general for B/C (the paper's); "
                             "train: the training prompt, for models that only saw it (the tiny model)")
    parser.add_argument("--answer-rule", choices=["whole", "phrase"], default=d.answer_rule,
                        help="answer without <answer> tags: whole = the whole completion (docs/method.md §3, "
                             "default); phrase = an 'Answer: X' phrase or nothing (analysis only)")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed of the sampling")
    parser.add_argument("--swapped-videos", action="store_true",
                        help="the grounding control: ask each question with the video of another question "
                             "(a seeded derangement over the videos), scored against its own answer")
    parser.add_argument("--swap-seed", type=int, default=d.swap_seed, help="seed of the swapped-video derangement")
    parser.add_argument("--cpu-threads", type=BOUNDS["cpu_threads"], default=None,
                        help="torch threads without a GPU (default: torch's; 1 is fastest on a busy 2-core machine)")
    parser.add_argument("--force", action="store_true",
                        help="start over: move the folder OUT aside to OUT.old-<time> (nothing is deleted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    names = {f.name for f in dataclasses.fields(EvalSettings)}
    settings = EvalSettings(**{k: v for k, v in vars(args).items() if k in names})
    summary = run_evaluation(settings, force=args.force, progress=not args.quiet)
    print(metrics.format_table(summary))
    if summary["run"]["not_posed"]:
        print(f"{summary['run']['not_posed']} records could not be posed and are error records "
              f"(first: {summary['run']['not_posed_examples'][0]})", file=sys.stderr)
    print(f"wrote {Path(settings.out) / PREDICTIONS} and {Path(settings.out) / SUMMARY}", file=sys.stderr)
    return 0

"""``twgrpo make-data``: build a mini-CLEVRER dataset directory.

Writes ``videos/*.mp4`` (``video_NNNNN.mp4``, and ``video_NNNNN_cut.mp4`` for the predictive question),
``train.json`` and ``val.json`` (format A with extra fields, split by video), ``eval_video_r1.json`` (the
validation questions in Video-R1's format B), ``scenes.json`` (per video: objects, event log and a
plain-English description for visual pre-training) and ``manifest.json`` (settings, counts, sha256 of the
JSON files). Everything depends only on (seed, videos, preset, val fraction): no timestamps, fixed key order.
The folder belongs to one build (``data.run_folder``): building again with the same settings writes the same
files, another build there is refused unless ``force`` (the old folder is moved aside, so no stale video of
a larger build stays behind).

Format B is single-answer oriented (Video-R1's prompt asks for one letter); multi-answer solutions are
kept as they are ("<answer>A,C</answer>"), so score them with the CLEVRER prompt and the soft reward.

>>> record = make_video(0, 1, "tiny", None)[0][0]
>>> list(record)[:4], record["video"]
(['id', 'video', 'video_frames', 'question_type'], 'videos/video_00001.mp4')
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import time
from collections import Counter
from pathlib import Path

import numpy as np

from twgrpo_lib.data.arguments import at_least, fraction
from twgrpo_lib.data.formats import read_records
from twgrpo_lib.data.run_folder import claim
from twgrpo_lib.data.synthetic.describe import describe_scene
from twgrpo_lib.data.synthetic.physics import Simulation, simulate
from twgrpo_lib.data.synthetic.questions import TYPES, Question, generate_questions
from twgrpo_lib.data.synthetic.render import render_frames, write_mp4
from twgrpo_lib.data.synthetic.sampling import sample_scene
from twgrpo_lib.data.synthetic.world import PRESETS

QUESTION_STREAM = 1_000_000  # third seed word of the question generator (scene attempts stay below it)
SPLIT_STREAM = 2_000_000
FILES = ("train.json", "val.json", "eval_video_r1.json", "scenes.json")


def video_questions(seed: int, index: int, preset: str = "tiny") -> tuple[Simulation, list[Question]]:
    """The simulation and the questions of video ``index`` of a build with ``seed``, as ``make-data`` makes them."""
    sim = simulate(sample_scene(seed, preset, index))
    return sim, generate_questions(sim, seed=(seed, index, QUESTION_STREAM))


def make_video(seed: int, index: int, preset: str, out: Path | None) -> tuple[list[dict], dict]:
    """Questions (format A records) and the scene record of video ``index``; writes the mp4s if ``out``."""
    sim, questions = video_questions(seed, index, preset)
    p = PRESETS[preset]
    name = f"video_{index:05d}"
    if out is not None:
        frames = render_frames(sim)
        write_mp4(frames, out / "videos" / f"{name}.mp4", p.fps)
        for q in questions:
            if q.cut_frame is not None:
                write_mp4(frames[: q.cut_frame], out / "videos" / f"{name}_cut.mp4", p.fps)
    records, per_type = [], Counter()
    for q in questions:
        video = f"videos/{name}_cut.mp4" if q.cut_frame is not None else f"videos/{name}.mp4"
        records.append({
            "id": f"{name}_{q.question_type}_{per_type[q.question_type]}",
            "video": video,
            "video_frames": q.cut_frame or p.frames,
            "question_type": q.question_type,
            "question": q.question,
            "options": q.lettered_options,
            "problem": q.problem,
            "solution": q.solution,
            "reasoning": q.completion,
        })
        per_type[q.question_type] += 1
    scene = sim.scene
    scene_record = {
        "video": f"videos/{name}.mp4",
        "scene_seed": [seed, index],
        "objects": [{"colour": o.colour, "shape": o.shape, "material": o.material} for o in scene.objects],
        "events": [{"kind": e.kind, "time": round(e.time, 4), "objects": [scene.objects[i].name for i in e.objects]}
                   for e in sim.events],
        "moving_at_end": [scene.objects[i].name for i in sim.moving_at_end()],
        "description": describe_scene(sim),
    }
    return records, scene_record


def _make_video_job(job: tuple) -> tuple[list[dict], dict]:
    return make_video(*job)


def to_video_r1(records: list[dict]) -> list[dict]:
    """Format B (Video-R1 evaluation) records; ``problem`` is the bare question, options are separate."""
    return [{
        "problem_id": k + 1,
        "problem": r["question"],
        "data_type": "video",
        "problem_type": "multiple choice",
        "options": r["options"],
        "solution": r["solution"],
        "video": r["video"],
        "data_source": "mini-CLEVRER",
        "question_type": r["question_type"],
        "id": r["id"],
    } for k, r in enumerate(records)]


def answer_size(record: dict) -> int:
    return record["solution"].removeprefix("<answer>").removesuffix("</answer>").count(",") + 1


def count(records: list[dict]) -> dict[str, dict[str, int]]:
    """Questions per type, then per type and number of correct options."""
    table = {t: Counter(answer_size(r) for r in records if r["question_type"] == t) for t in TYPES}
    return {t: {"questions": sum(c.values()), **{f"{k} correct": c[k] for k in sorted(c)}} for t, c in table.items()}


def _dump(obj, path: Path) -> str:
    text = json.dumps(obj, indent=1, ensure_ascii=False) + "\n"
    path.write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def build_dataset(out: str | Path, videos: int, seed: int = 0, preset: str = "tiny", val_fraction: float = 0.2,
                  workers: int = 2, write_videos: bool = True, force: bool = False) -> dict:
    """Write a dataset directory and return its manifest (also written to ``out/manifest.json``); ``force``
    moves another build found in ``out`` aside first."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if videos < 1 or not 0 <= val_fraction < 1:
        raise ValueError(f"need videos >= 1 and 0 <= val_fraction < 1, got {videos} and {val_fraction}")
    identity = {"videos": videos, "seed": seed, "preset": preset, "val_fraction": val_fraction,
                "write_videos": write_videos}
    with claim(out, "make-data", identity, force=force):
        return _build(Path(out), videos, seed, preset, val_fraction, workers, write_videos)


def _build(out: Path, videos: int, seed: int, preset: str, val_fraction: float, workers: int,
           write_videos: bool) -> dict:
    (out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(seed, i, preset, out if write_videos else None) for i in range(videos)]
    if workers > 1 and videos > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_make_video_job, jobs, chunksize=max(1, min(32, videos // (4 * workers))))
    else:
        results = [_make_video_job(job) for job in jobs]
    n_val = round(videos * val_fraction)
    val_videos = set(np.random.default_rng([seed, SPLIT_STREAM]).permutation(videos)[:n_val].tolist())
    splits = {"train": [], "val": []}
    for i, (records, _) in enumerate(results):
        splits["val" if i in val_videos else "train"].extend(records)
    hashes = {
        "train.json": _dump(splits["train"], out / "train.json"),
        "val.json": _dump(splits["val"], out / "val.json"),
        "eval_video_r1.json": _dump(to_video_r1(splits["val"]), out / "eval_video_r1.json"),
        "scenes.json": _dump([scene for _, scene in results], out / "scenes.json"),
    }
    p = PRESETS[preset]
    manifest = {
        "dataset": "mini-CLEVRER",
        "settings": {"videos": videos, "seed": seed, "preset": preset, "val_fraction": val_fraction},
        "video": {"width": p.width, "height": p.height, "frames": p.frames, "fps": p.fps,
                  "codec": "h264", "pix_fmt": "yuv420p", "written": write_videos},
        "splits": {name: {"videos": videos - n_val if name == "train" else n_val, "questions": len(records)}
                   for name, records in splits.items()},
        "counts": {name: count(records) for name, records in splits.items()},
        "sha256": hashes,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def card_facts(manifest: dict) -> str:
    """The measured part of the data card: counts per split, type and answer-set size, and JSON hashes."""
    lines = ["| split | type | questions | 1 correct | 2 correct | 3 correct |", "|---|---|---|---|---|---|"]
    for split, table in manifest["counts"].items():
        for kind, row in table.items():
            sizes = " | ".join(str(row.get(f"{k} correct", 0)) for k in (1, 2, 3))
            lines.append(f"| {split} | {kind} | {row['questions']} | {sizes} |")
    lines.append("")
    lines += [f"- sha256 `{name}`: `{digest}`" for name, digest in manifest["sha256"].items()]
    return "\n".join(lines)


def load_scenes(directory: str | Path) -> dict[str, dict]:
    """``scenes.json`` of a built dataset, keyed by video path (e.g. ``videos/video_00000.mp4``)."""
    path = Path(directory) / "scenes.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; build the dataset with `twgrpo make-data --out {directory}`")
    return {record["video"]: record for record in read_records(path)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    parser.add_argument("--videos", type=at_least(1), default=1000, help="number of videos (scenes)")
    parser.add_argument("--seed", type=int, default=0, help="the dataset depends only on the seed and the settings")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                        help="tiny: 32 frames of 64x64 at 8 fps; default: 128 frames of 480x320 at 25 fps")
    parser.add_argument("--val-fraction", type=fraction(open_high=True), default=0.2,
                        help="share of videos in val.json")
    parser.add_argument("--workers", type=at_least(1), default=2, help="processes rendering and encoding videos")
    parser.add_argument("--no-videos", action="store_true",
                        help="write the JSON files only (identical to a full build's), e.g. to check the data card")
    parser.add_argument("--force", action="store_true",
                        help="build over another build in OUT: move it aside to OUT.old-<time> first")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    manifest = build_dataset(args.out, args.videos, args.seed, args.preset, args.val_fraction, args.workers,
                             write_videos=not args.no_videos, force=args.force)
    seconds = time.perf_counter() - start
    for name, split in manifest["splits"].items():
        print(f"{name}: {split['videos']} videos, {split['questions']} questions")
    print(f"wrote {args.out} in {seconds:.1f} s ({args.videos / seconds:.1f} videos/s)")
    return 0

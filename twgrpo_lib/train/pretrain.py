"""Visual pre-training curriculum on mini-CLEVRER: questions whose answers can only come from the video.

A tiny Qwen2.5-VL trained from scratch on the reasoning questions alone learns the answer format and ignores
the video. This stage first teaches it to read the scene, with short templated answers taken from the
simulation of each video (``twgrpo_lib.data.synthetic``), in four stages that join the training pool one after
another (``supervised.train``; earlier stages stay in the pool):

0. appearance: is there an object of a colour (yes / no, balanced), how many objects, which colours, the shape
   of a colour, the colours of a shape;
1. where and how: start position (3x3 grid), motion at the start (8 directions or at rest), moving at the end;
2. events: which objects enter or exit, who collides with whom, the first collision, the number of collisions;
3. the whole video: ``synthetic.describe.describe_scene`` (objects, then the events in order).

Every answer is a function of the video alone (colours are unique within a scene, so "the red object" names
one object), so a model that does not look scores at the level of the answer prior. Measured: 2,400 steps
on a 2-core CPU are not enough for the tiny model to start reading the video
(``twgrpo_lib/models/assets/README.md``); use ``grounding.task_report`` to check a run.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from twgrpo_lib.data.arguments import at_least
from twgrpo_lib.data.examples import Example
from twgrpo_lib.data.formats import read_json, read_records
from twgrpo_lib.data.run_folder import claim, decide
from twgrpo_lib.data.synthetic.build import load_scenes
from twgrpo_lib.data.synthetic.describe import describe_scene, motion, region
from twgrpo_lib.data.synthetic.physics import simulate
from twgrpo_lib.data.synthetic.sampling import sample_scene
from twgrpo_lib.data.synthetic.world import COLOURS
from twgrpo_lib.data.video import usable_items
from twgrpo_lib.models.qwen import EncodedVideoCache, checkpoint_path, load_model
from twgrpo_lib.train.supervised import (
    add_training_arguments,
    finished_log,
    run_identity,
    save_checkpoint,
    train,
    training_config,
)

STAGES = ("appearance", "where and how", "events", "description")


def _names(sim, indices) -> str:
    """Object names in a canonical (alphabetical) order, or "none"."""
    names = sorted(sim.scene.objects[i].name for i in indices)
    return ", ".join(names) if names else "none"


def visible_objects(sim) -> list[int]:
    """Objects seen in the video: in view at the start or entering later."""
    entered = {e.objects[0] for e in sim.events_of("enter")}
    return [i for i in sim.present() if sim.in_view(i, 0.0) or i in entered]


def scene_tasks(sim, rng: random.Random) -> list[tuple[int, str, str]]:
    """(stage, question, answer) triples about one simulated video; questions are drawn with ``rng``."""
    scene, objects = sim.scene, sim.scene.objects
    seen = visible_objects(sim)
    at_start = [i for i in seen if sim.in_view(i, 0.0)]
    end = scene.preset.duration
    tasks: list[tuple[int, str, str]] = [
        (0, "How many objects appear in the video?", str(len(seen))),
        (0, "Which colours do the objects have?", ", ".join(sorted(objects[i].colour for i in seen))),
        (0, "Which objects are in the video?", _names(sim, seen)),
    ]
    present = sorted({objects[i].colour for i in seen})
    absent = sorted(set(COLOURS) - set(present))
    for colour in [rng.choice(present)] + ([rng.choice(absent)] if absent else []):  # balanced yes / no
        tasks.append((0, f"Is there a {colour} object?", "yes" if colour in present else "no"))
    for i in rng.sample(seen, min(2, len(seen))):
        tasks.append((0, f"What shape is the {objects[i].colour} object?", objects[i].shape))
    shape = rng.choice(["cube", "sphere", "cylinder"])
    tasks.append((0, f"Which colours do the {shape}s have?",
                  ", ".join(sorted(objects[i].colour for i in seen if objects[i].shape == shape)) or "none"))
    for i in rng.sample(at_start, min(2, len(at_start))):
        name = objects[i].name
        tasks.append((1, f"Where is the {name} at the start?", region(sim, i, 0.0)))
        tasks.append((1, f"How does the {name} move at the start?", motion(sim, i, 0.0)))
    tasks.append((1, "Which objects are moving at the start?",
                  _names(sim, [i for i in at_start if any(sim.velocity(i, 0.0))])))
    tasks.append((1, "Which objects are moving at the end?", _names(sim, sim.moving_at_end())))
    tasks.append((1, "Which objects are in view at the end?", _names(sim, [i for i in seen if sim.in_view(i, end)])))
    collisions = sim.events_of("collision")
    tasks.append((2, "How many collisions happen?", str(len(collisions))))
    tasks.append((2, "Which objects enter the scene?", _names(sim, [e.objects[0] for e in sim.events_of("enter")])))
    tasks.append((2, "Which objects exit the scene?", _names(sim, [e.objects[0] for e in sim.events_of("exit")])))
    if collisions:
        tasks.append((2, "Which objects collide first?", _names(sim, collisions[0].objects)))
    for i in rng.sample(seen, min(2, len(seen))):
        partners = {j for e in collisions if i in e.objects for j in e.objects if j != i}
        tasks.append((2, f"Which objects does the {objects[i].name} collide with?", _names(sim, partners)))
    tasks.append((3, "Describe the video.", describe_scene(sim)))
    return tasks


def split_scenes(data_dir: str | Path, split: str = "train") -> list[tuple[str, object]]:
    """(video path, simulation) of every video of one split (``train`` or ``val``) of a ``make-data`` directory.

    Pre-training uses the train videos only, so ``val.json`` stays unseen for the grounding control. Each
    scene is rebuilt exactly from its ``scene_seed`` and the manifest's preset.
    """
    data_dir = Path(data_dir)
    preset = read_json(data_dir / "manifest.json")["settings"]["preset"]
    items = read_records(data_dir / f"{split}.json")
    wanted = {item["video"].replace("_cut.mp4", ".mp4") for item in items}
    out = []
    for k, (video, record) in enumerate(sorted(load_scenes(data_dir).items())):
        if video not in wanted:
            continue
        if not isinstance(record.get("scene_seed"), list) or len(record["scene_seed"]) != 2:
            raise ValueError(f"{data_dir / 'scenes.json'}: record {k}: field 'scene_seed' must be [seed, index]")
        sim = simulate(sample_scene(record["scene_seed"][0], preset, record["scene_seed"][1]))
        names = [f"{o['colour']} {o['shape']}" for o in record["objects"]]
        if names != [o.name for o in sim.scene.objects]:
            raise ValueError(f"{data_dir / 'scenes.json'}: record {k}: objects differ from the rebuilt scene")
        out.append((str(data_dir / video), sim))
    return out


def curriculum(scenes: list[tuple[str, object]], seed: int = 0, repeats: int = 1) -> list[Example]:
    """Examples of every task of every scene; ``repeats`` draws the per-object questions several times."""
    rng = random.Random(seed)
    return [Example(video, question, answer, stage)
            for _ in range(repeats) for video, sim in scenes for stage, question, answer in scene_tasks(sim, rng)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="a `twgrpo make-data` directory (its train videos are used)")
    parser.add_argument("--model", required=True, help="checkpoint folder to start from (e.g. `twgrpo build-tiny`)")
    parser.add_argument("--out", required=True, help="output checkpoint folder")
    parser.add_argument("--repeats", type=at_least(1), default=2, help="question draws per scene (default 2)")
    add_training_arguments(parser, steps=3000, lr=2e-3)


def usable_scenes(scenes: list[tuple[str, object]], source: str, skip_bad: bool) -> list[tuple[str, object]]:
    """The scenes whose video is usable (``video.usable_items``); a bad one is an error unless ``skip_bad``."""
    kept, report = usable_items([{"video": video, "id": Path(video).name} for video, _ in scenes], source,
                                skip_bad=skip_bad)
    if report.bad:
        print(f"skipping {report.bad} of {report.total} videos that are unusable (--skip-bad-videos)")
    videos = {item["video"] for item in kept}
    return [scene for scene in scenes if scene[0] in videos]


def run(args: argparse.Namespace) -> int:
    config, settings = training_config(args)
    model_dir = checkpoint_path(args.model)
    data = Path(args.data)
    scenes = split_scenes(data, "train")
    identity = run_identity(model_dir, [data / "manifest.json", data / "train.json", data / "scenes.json"], config,
                            settings, repeats=args.repeats)
    if decide(Path(args.out), "pretrain", identity, force=args.force) == "same" and finished_log(args.out):
        print(f"{args.out} holds this run, finished; nothing to train (--force moves it aside and trains again)")
        return 0
    scenes = usable_scenes(scenes, str(data / "train.json"), args.skip_bad_videos)
    examples = curriculum(scenes, args.seed, args.repeats)
    with claim(args.out, "pretrain", identity, force=args.force):
        model, processor = load_model(model_dir, device="cpu", dtype=torch.float32)
        cache = EncodedVideoCache(processor, settings)
        records = train(model, processor, cache, examples, config)
        save_checkpoint(model, processor, args.out, records,
                        {"stage": "pretrain", "data": str(args.data), "examples": len(examples),
                         "videos": len(cache)}, config, settings)
    print(f"checkpoint written to {args.out}")
    return 0

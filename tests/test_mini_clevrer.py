"""mini-CLEVRER: exact physics, question labels checked by re-simulation, determinism, decodable videos, data card."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from twgrpo_lib.cli import main as cli_main
from twgrpo_lib.data.synthetic import PRESETS, Scene, SceneObject, generate_questions, sample_scene, simulate
from twgrpo_lib.data.synthetic.build import build_dataset, card_facts, make_video
from twgrpo_lib.data.synthetic.options import LETTERS
from twgrpo_lib.data.synthetic.questions import TYPES
from twgrpo_lib.data.synthetic.render import render_frames

CARD = Path(__file__).resolve().parent.parent / "data_cards" / "mini_clevrer.md"
COLLIDES = re.compile(r"^The (\w+ \w+) collides with the (\w+ \w+)$")
EXITS = re.compile(r"^The (\w+ \w+) exits the scene$")


def _event_of(scene, text):
    """(kind, object indices) of an option's text, found from the text alone."""
    names = {o.name: i for i, o in enumerate(scene.objects)}
    if m := COLLIDES.match(text):
        return "collision", tuple(sorted((names[m[1]], names[m[2]])))
    m = EXITS.match(text)
    assert m, f"unexpected option text {text!r}"
    return "exit", (names[m[1]],)


def _happens_in(sim, kind, objects, after=-1.0):
    return any(e.kind == kind and tuple(sorted(e.objects)) == objects and e.time > after for e in sim.events)


def test_collision_times_are_exact():
    r = PRESETS["tiny"].radius
    checked = 0
    for index in range(40):
        sim = simulate(sample_scene(1, "tiny", index))
        for e in sim.events_of("collision"):
            i, j = e.objects
            # touching at the logged time, apart just before and just after (approach, then separation)
            assert math.dist(sim.position(i, e.time), sim.position(j, e.time)) == pytest.approx(2 * r, abs=1e-9)
            assert math.dist(sim.position(i, e.time - 1e-4), sim.position(j, e.time - 1e-4)) > 2 * r
            assert math.dist(sim.position(i, e.time + 1e-4), sim.position(j, e.time + 1e-4)) > 2 * r
            checked += 1
        for e in sim.events_of("exit"):  # an exiting disc just stops overlapping the frame
            assert not sim.scene.inside_view(*sim.position(e.objects[0], e.time + 1e-6))
            assert sim.scene.inside_view(*sim.position(e.objects[0], e.time - 1e-6))
    assert checked >= 80


def test_no_missed_collision_between_events():
    # dense sampling of every pair's distance: discs never overlap, so no collision was skipped
    r = PRESETS["tiny"].radius
    for index in range(15):
        sim = simulate(sample_scene(2, "tiny", index))
        for t in np.linspace(0, sim.scene.preset.duration, 400):
            live = [i for i in sim.present() if sim.in_view(i, t)]
            for k, i in enumerate(live):
                for j in live[k + 1:]:
                    assert math.dist(sim.position(i, t), sim.position(j, t)) > 2 * r - 1e-9


def test_elastic_collision_conserves_momentum_and_energy():
    a = SceneObject("red", "sphere", "rubber", (1.0, 1.9), (1.5, 0.2))
    b = SceneObject("blue", "cube", "metal", (2.5, 2.2), (-0.3, 0.0))
    sim = simulate(Scene(PRESETS["tiny"], (a, b)))
    t = sim.events_of("collision")[0].time
    before = [sim.velocity(i, t - 1e-3) for i in (0, 1)]
    after = [sim.velocity(i, t + 1e-3) for i in (0, 1)]
    assert np.allclose(np.sum(before, axis=0), np.sum(after, axis=0))
    assert np.sum(np.square(before)) == pytest.approx(np.sum(np.square(after)))
    assert not np.allclose(before, after)


def test_every_counterfactual_and_predictive_label_is_confirmed_by_resimulation():
    seen = 0
    for index in range(40):
        scene = sample_scene(3, "tiny", index)
        sim = simulate(scene)
        for q in generate_questions(sim, seed=index):
            correct = {LETTERS[k] for k in q.answer}
            if q.question_type == "counterfactual":
                removed = next(i for i, o in enumerate(scene.objects)
                               if q.question.startswith(f"Without the {o.name},"))
                world, after = simulate(scene, {removed}), -1.0
            elif q.question_type == "predictive":
                world, after = simulate(scene), (q.cut_frame - 1) / scene.preset.fps
            else:
                continue
            for k, text in enumerate(q.options):
                kind, objects = _event_of(scene, text)
                assert _happens_in(world, kind, objects, after) == (LETTERS[k] in correct), (index, q.problem)
                seen += 1
    assert seen > 300


def test_explanatory_presence_options_match_resimulation():
    seen = 0
    for index in range(40):
        scene = sample_scene(4, "tiny", index)
        names = {o.name: i for i, o in enumerate(scene.objects)}
        for q in generate_questions(simulate(scene), seed=index):
            if q.question_type != "explanatory":
                continue
            a, b = re.search(r"between the (\w+ \w+) and the (\w+ \w+)\?", q.question).groups()
            pair = tuple(sorted((names[a], names[b])))
            for k, text in enumerate(q.options):
                if m := re.match(r"The presence of the (\w+ \w+)$", text):
                    still = _happens_in(simulate(scene, {names[m[1]]}), "collision", pair)
                    assert (k in q.answer) == (not still)
                    seen += 1
    assert seen > 20


def test_200_scenes_give_valid_questions_of_all_types_with_varying_answer_sizes():
    sizes = {t: set() for t in TYPES}
    for index in range(200):
        for q in generate_questions(simulate(sample_scene(5, "tiny", index)), seed=index):
            n = len(q.options)
            assert 2 <= n <= 4 and 1 <= len(q.answer) < n
            assert len(set(q.options)) == n, q.problem
            assert q.problem.split("\n") == [q.question] + [f"{LETTERS[k]}. {o}" for k, o in enumerate(q.options)]
            assert re.fullmatch(r"<answer>[A-D](,[A-D])*</answer>", q.solution)
            assert re.fullmatch(r"<think>[^<>]+</think><answer>[A-D,]+</answer>", q.completion)
            assert q.completion.endswith(q.solution)
            sizes[q.question_type].add(len(q.answer))
    for kind in TYPES:  # descriptive: one correct option for the counts and single attributes, 1-3 otherwise
        assert sizes[kind] == {1, 2, 3}, kind


def test_extra_descriptive_answers_match_the_simulation():
    from twgrpo_lib.data.synthetic.descriptive import seen_objects

    seen = 0
    for index in range(40):
        sim = simulate(sample_scene(6, "tiny", index))
        names = {f"The {o.name}": i for i, o in enumerate(sim.scene.objects)}
        colours = {sim.scene.objects[i].colour for i in seen_objects(sim)}
        end = sim.scene.preset.duration
        for q in generate_questions(sim, seed=index):
            truth = None
            if q.question == "Which of the following colors appear in the video?":
                truth = [o in colours for o in q.options]
            elif q.question == "Which of the following objects are moving when the video ends?":
                truth = [any(sim.velocity(names[o], end)) for o in q.options]
            elif m := re.fullmatch(r"Which of the following objects does the (\w+ \w+) collide with\?", q.question):
                x = names[f"The {m[1]}"]
                truth = [sim.happens("collision", (x, names[o])) for o in q.options]
            if truth is not None:
                assert [k for k, ok in enumerate(truth) if ok] == q.answer, q.problem
                seen += 1
    assert seen > 80


def test_scenes_and_questions_are_deterministic_per_seed():
    assert sample_scene(7, "tiny", 2) == sample_scene(7, "tiny", 2)
    assert sample_scene(7, "tiny", 2) != sample_scene(8, "tiny", 2)
    assert make_video(7, 2, "tiny", None) == make_video(7, 2, "tiny", None)
    colours = [o.colour for o in sample_scene(7, "default", 4).objects]
    assert len(set(colours)) == len(colours)


def test_build_is_deterministic_and_split_by_video(tmp_path):
    first = build_dataset(tmp_path / "a", 30, seed=3, workers=1, write_videos=False)
    second = build_dataset(tmp_path / "b", 30, seed=3, workers=2, write_videos=False)
    assert first == second
    train = json.loads((tmp_path / "a" / "train.json").read_text())
    val = json.loads((tmp_path / "a" / "val.json").read_text())
    stem = lambda r: r["video"].removesuffix("_cut.mp4").removesuffix(".mp4")  # noqa: E731
    assert not {stem(r) for r in train} & {stem(r) for r in val}
    assert len({stem(r) for r in val}) == first["splits"]["val"]["videos"] == 6
    assert len({r["id"] for r in train + val}) == len(train) + len(val)
    evaluation = json.loads((tmp_path / "a" / "eval_video_r1.json").read_text())
    assert [e["solution"] for e in evaluation] == [r["solution"] for r in val]
    assert all(e["problem_type"] == "multiple choice" and e["data_type"] == "video" for e in evaluation)


def test_videos_decode_with_the_manifest_frame_count_and_fps(tmp_path):
    decord = pytest.importorskip("decord")
    assert cli_main(["make-data", "--out", str(tmp_path), "--videos", "4", "--seed", "1", "--workers", "1"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    records = json.loads((tmp_path / "train.json").read_text()) + json.loads((tmp_path / "val.json").read_text())
    videos = {r["video"]: r["video_frames"] for r in records}
    assert sum(v.endswith("_cut.mp4") for v in videos) >= 1
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == len(videos)
    for video, frames in videos.items():
        reader = decord.VideoReader(str(tmp_path / video))
        assert len(reader) == frames
        assert frames == manifest["video"]["frames"] or video.endswith("_cut.mp4")
        assert reader.get_avg_fps() == pytest.approx(manifest["video"]["fps"])
        assert reader[0].shape == (manifest["video"]["height"], manifest["video"]["width"], 3)
    # the decoded pixels are the rendered ones, up to compression
    reader = decord.VideoReader(str(tmp_path / "videos" / "video_00000.mp4"))
    rendered = render_frames(simulate(sample_scene(1, "tiny", 0)))
    decoded = reader.get_batch(list(range(len(reader)))).asnumpy()
    assert np.abs(decoded.astype(int) - rendered).mean() < 6


def test_bad_settings_are_reported(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        build_dataset(tmp_path, 2, preset="huge")
    with pytest.raises(ValueError, match="colour"):
        SceneObject("pink", "cube", "metal", (0.0, 0.0), (0.0, 0.0))


def test_data_card_matches_a_fresh_build(tmp_path):
    text = CARD.read_text()
    assert text.startswith("---\n") and "license: apache-2.0" in text
    manifest = build_dataset(tmp_path, 200, seed=0, preset="tiny", workers=1, write_videos=False)
    assert card_facts(manifest) in text, "data card is stale: rebuild and paste card_facts(manifest)"
    splits = manifest["splits"]
    assert yaml.safe_load(text.split("---\n")[1])["size"] == {
        "videos": 200, "questions": splits["train"]["questions"] + splits["val"]["questions"],
        "train_questions": splits["train"]["questions"], "val_questions": splits["val"]["questions"]}
    record = json.loads(re.search(r"```json\n(.*?)\n```", text, re.S)[1])
    train = json.loads((tmp_path / "train.json").read_text())
    assert record == next(r for r in train if r["question_type"] == "counterfactual")

"""Dense vision pre-training and the binding stage: their targets on a hand-made scene, short runs that learn."""

import json

import pytest

from twgrpo_lib import cli
from twgrpo_lib.data.synthetic.build import build_dataset
from twgrpo_lib.data.synthetic.physics import simulate
from twgrpo_lib.data.synthetic.world import PRESETS, Scene, SceneObject
from twgrpo_lib.train.binding import CONCEPTS, FACTS, named_words, video_facts


def test_named_words_and_video_facts_of_a_hand_made_scene():
    words = named_words("Without the red cube, which of the following will happen?\nA. The gray sphere exits the scene")
    assert {c for c, w in zip(CONCEPTS, words) if w} == {"red", "gray", "cube", "sphere", "exit", "without", "happen"}
    scene = Scene(PRESETS["tiny"], (
        SceneObject("red", "sphere", "rubber", (0.5, 0.5), (0.0, 0.0)),
        SceneObject("blue", "cube", "metal", (3.5, 3.5), (1.0, 0.0)),         # exits at 0.85 s
        SceneObject("green", "sphere", "metal", (1.5, 2.5), (-1.0, 0.0)),     # hits the yellow one at 0.3 s
        SceneObject("yellow", "cylinder", "rubber", (0.5, 2.5), (0.0, 0.0)),  # pushed out, exits at 1.15 s
    ))
    sim = simulate(scene)
    facts = {f for f, v in zip(FACTS, video_facts(sim, scene.preset.duration)) if v}
    assert facts == {"red:present", "blue:present", "blue:exits", "green:present", "green:collides",
                     "yellow:present", "yellow:collides", "yellow:exits", "sphere", "cube", "cylinder",
                     "rubber", "metal"}
    early = {f for f, v in zip(FACTS, video_facts(sim, 0.5)) if v}  # a video cut at 0.5 s: no exit yet
    assert "blue:moving_at_end" in early and "yellow:moving_at_end" in early and "blue:exits" not in early


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    build_dataset(out, 6, seed=4243, val_fraction=0.34, workers=1)
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base")
    assert cli.main(["build-tiny", "--out", str(out)]) == 0
    return out


def test_a_short_vision_pretraining_run_learns_and_reports_the_probe(small_data, base, tmp_path):
    out = tmp_path / "vision"
    assert cli.main(["pretrain-vision", "--data", str(small_data), "--model", str(base), "--out", str(out),
                     "--steps", "16", "--videos-per-step", "4", "--warmup", "3", "--log-every", "4"]) == 0
    info = json.loads((out / "training.json").read_text())
    assert [r["step"] for r in info["log"]] == [4, 8, 12, 16]
    assert info["log"][-1]["loss"] < 0.8 * info["log"][0]["loss"]
    assert info["probe"]["videos"] == 2 and set(info["probe"]["token_f1"]) == set(info["labels"])
    assert 0.0 <= info["probe"]["video_colour_accuracy"] <= 1.0


def test_a_short_binding_run_learns_the_auxiliaries_then_the_answers(small_data, base, tmp_path):
    out = tmp_path / "bind"
    assert cli.main(["bind", "--data", str(small_data), "--model", str(base), "--out", str(out), "--steps", "24",
                     "--aux-only-steps", "12", "--warmup", "3", "--log-every", "6", "--lr", "3e-3",
                     "--max-pixels", str(56 * 56)]) == 0
    log = json.loads((out / "training.json").read_text())["log"]
    assert [r["step"] for r in log] == [6, 12, 18, 24]
    assert log[1]["words"] < log[0]["words"] and log[1]["answer"] == pytest.approx(log[0]["answer"], rel=0.05)
    assert log[-1]["answer"] < 0.8 * log[1]["answer"]  # the answer loss falls once it is trained
    assert (out / "model.safetensors").exists() and (out / "chat_template.jinja").exists()

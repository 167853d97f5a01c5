"""Dense per-token labels from the simulation: a hand-made scene with known labels, and the processor's order."""

import numpy as np
import pytest

from twgrpo_lib.data.synthetic.physics import simulate
from twgrpo_lib.data.synthetic.token_labels import GRID, LABELS, sampled_times, token_labels
from twgrpo_lib.data.synthetic.world import PRESETS, Scene, SceneObject

TIMES = sampled_times(32, 8)  # [0.0, 0.5, 1.125, 1.625, 2.25, 2.75, 3.375, 3.875]


def _scene():
    """World 4 x 4 units, cells of 1 unit (16 px). Frames pair 0 = (0, 0.5) s, pair 1 = (1.125, 1.625) s."""
    return Scene(PRESETS["tiny"], (
        SceneObject("red", "sphere", "rubber", (0.5, 0.5), (0.0, 0.0)),     # rests in cell (0, 0)
        SceneObject("blue", "cube", "metal", (3.5, 3.5), (1.0, 0.0)),       # cell (3, 3), exits right at 0.85 s
        SceneObject("green", "sphere", "metal", (1.5, 2.5), (-1.0, 0.0)),   # hits the yellow one at 0.3 s
        SceneObject("yellow", "cylinder", "rubber", (0.5, 2.5), (0.0, 0.0)),  # pushed left, exits at 1.15 s
    ))


def _at(labels, pair, row, col):
    return {LABELS[k] for k in np.flatnonzero(labels[(pair * GRID + row) * GRID + col])}


def test_hand_made_scene_has_the_known_token_labels():
    sim = simulate(_scene())
    assert [(e.kind, round(e.time, 3), e.objects) for e in sim.events] == [
        ("collision", 0.3, (2, 3)), ("exit", 0.85, (1,)), ("exit", 1.15, (3,))]
    labels, targets, mask = token_labels(sim, TIMES)
    assert labels.shape == (4 * GRID * GRID, len(LABELS)) and targets.shape == (64, 4) and mask.shape == (64,)
    assert _at(labels, 0, 0, 0) == {"colour:red", "shape:sphere", "material:rubber", "object", "centre"}
    assert _at(labels, 3, 0, 0) == _at(labels, 0, 0, 0)  # still there at the end, never moving
    assert {"colour:blue", "shape:cube", "material:metal", "moving", "object", "centre"} <= _at(labels, 0, 3, 3)
    assert _at(labels, 1, 3, 3) == {"exit"}  # gone by 1.125 s; its exit (0.85 s) falls in pair 1's span
    assert _at(labels, 0, 0, 3) == set()  # an empty corner
    # events: one collision at the contact point (0.85, 2.5) -> cell (2, 0), in pair 0; the two exits in pair 1
    for name, expected in (("collision", [(0, 2, 0)]), ("exit", [(1, 2, 0), (1, 3, 3)]), ("enter", [])):
        where = np.flatnonzero(labels[:, LABELS.index(name)])
        assert [(k // 16, k % 16 // 4, k % 4) for k in where] == expected, name
    # regression: centre offset in the cell and velocity in frame widths per second, first frame of the pair
    assert mask[0] and np.allclose(targets[0], 0.0)
    assert mask[15] and np.allclose(targets[15], [0.0, 0.0, 0.25, 0.0])
    assert not mask[3]


def test_token_order_matches_the_processor():
    """The merged token (pair, row, col) of the labels is the one whose patches show the object."""
    from transformers import Qwen2VLVideoProcessor

    from twgrpo_lib.data.synthetic.render import render_at
    from twgrpo_lib.data.video import _resize_frames

    scene = Scene(PRESETS["tiny"], (SceneObject("red", "cube", "rubber", (3.5, 1.5), (0.0, 0.0)),))
    sim = simulate(scene)
    frames = _resize_frames(render_at(sim, TIMES), 112, 112)
    processor = Qwen2VLVideoProcessor(patch_size=14, temporal_patch_size=2, merge_size=2,
                                      size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112})
    pixels = processor(videos=[frames], return_tensors="pt")["pixel_values_videos"]   # (4*8*8, 3*2*14*14)
    tokens = pixels.reshape(64, 4, -1)
    red = (tokens.reshape(64, 4, 3, -1)[:, :, 0] - tokens.reshape(64, 4, 3, -1)[:, :, 2]).amax((1, 2))  # (64,)
    labels, _, _ = token_labels(sim, TIMES)
    expected = labels[:, LABELS.index("colour:red")].astype(bool)
    assert expected.sum() == 4  # one cell, four temporal patches
    assert set(np.flatnonzero(red.numpy() > 1.0)) == set(np.flatnonzero(expected))


def test_odd_frame_count_is_refused():
    with pytest.raises(ValueError, match="even number"):
        token_labels(simulate(_scene()), TIMES[:3])

"""The paper's 16-frame evaluation protocol (docs/method.md §5) on a real short mp4: a CLEVRER-sized
mini-CLEVRER clip (128 frames of 480x320 at 25 fps, 5.12 s) written with the kit's renderer."""

import numpy as np
import pytest

from twgrpo_lib.data.synthetic.build import video_questions
from twgrpo_lib.data.synthetic.render import render_frames, write_mp4
from twgrpo_lib.data.video import (
    PAPER_EVAL_FRAMES,
    PROCESSOR_DEFAULT_FPS,
    load_video,
    processor_video_kwargs,
    resample_positions,
    sample_indices,
)
from twgrpo_lib.eval.evaluation import EvalSettings, load_clips
from twgrpo_lib.models.shipped import shipped_path


@pytest.fixture(scope="module")
def clevrer_clip(tmp_path_factory):
    sim, _ = video_questions(seed=0, index=0, preset="default")
    frames = render_frames(sim)
    assert frames.shape == (128, 320, 480, 3)
    path = tmp_path_factory.mktemp("paper_frames") / "video_00000.mp4"
    write_mp4(frames, path, fps=25)
    return str(path)


def test_indices_are_the_2fps_samples_resampled_to_16(clevrer_clip):
    kit = load_video(clevrer_clip)  # 2 fps, at most 16: 10 frames of a 5.12 s clip
    paper = load_video(clevrer_clip, resample_to=PAPER_EVAL_FRAMES)
    assert kit.frame_indices == sample_indices(128, 10) == [0, 14, 28, 42, 56, 71, 85, 99, 113, 127]
    positions = [int(x) for x in np.floor(np.linspace(0, 9, 16))]  # trunc(linspace), written out
    assert resample_positions(10) == positions
    assert paper.frame_indices == [kit.frame_indices[p] for p in positions]
    assert paper.num_frames == 16 and len(set(paper.frame_indices)) == 10  # 6 frames repeated
    assert np.array_equal(paper.frames, kit.frames[positions])  # the same decoded, resized frames
    assert paper.frames.shape[1:3] == kit.frames.shape[1:3] == (308, 476)  # 196*28*28 cap
    assert paper.sample_fps == PROCESSOR_DEFAULT_FPS
    assert kit.sample_fps == pytest.approx(10 / 128 * 25)


def test_video_grid_and_temporal_step_seen_by_the_processor(clevrer_clip):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(shipped_path())
    text = ["<|vision_start|><|video_pad|><|vision_end|>"]
    pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    seen = {}
    for name, resample in (("paper", PAPER_EVAL_FRAMES), ("fps", None)):
        clip = load_video(clevrer_clip, resample_to=resample)
        out = processor(text=text, return_tensors="pt", **processor_video_kwargs([clip]))
        seen[name] = (out["video_grid_thw"][0].tolist(), int((out["input_ids"] == pad).sum()),
                      float(out["second_per_grid_ts"][0]))
    assert seen["paper"] == ([8, 22, 34], 1496, pytest.approx(2 / PROCESSOR_DEFAULT_FPS))
    assert seen["fps"] == ([5, 22, 34], 935, pytest.approx(2 / (10 / 128 * 25)))


def test_long_clips_are_not_resampled_and_evaluate_defaults_to_the_paper_protocol(tmp_path, clevrer_clip):
    long = np.repeat(np.arange(40, dtype=np.uint8)[:, None, None, None] * 6, 56, 1).repeat(56, 2).repeat(3, 3)
    path = tmp_path / "long.mp4"
    write_mp4(long, path, fps=4)  # 10 s: 20 samples at 2 fps, capped at 16, so nothing repeats
    clip = load_video(path, resample_to=PAPER_EVAL_FRAMES)
    assert clip.frame_indices == sample_indices(40, 16) and len(set(clip.frame_indices)) == 16

    from twgrpo_lib.data.video import VideoCache

    settings = EvalSettings(model="m", data="d", out=str(tmp_path))
    assert settings.frame_sampling == "paper"
    clips, errors = load_clips([{"video": clevrer_clip}, {"video": str(tmp_path / "missing.mp4")}], settings,
                               VideoCache())
    assert clips[0].num_frames == 16 and clips[1] is None and "missing.mp4" in errors[1]
    kit = EvalSettings(model="m", data="d", out=str(tmp_path), frame_sampling="fps")
    assert load_clips([{"video": clevrer_clip}], kit, VideoCache())[0][0].num_frames == 10

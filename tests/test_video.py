"""Frame sampling, resizing, errors, caching and processor metadata of twgrpo_lib.data.video on small mp4s."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twgrpo_lib.data.synthetic.render import write_mp4
from twgrpo_lib.data.video import (
    FACTOR,
    VideoCache,
    VideoDecodeError,
    VideoError,
    VideoNotFoundError,
    VideoTooShortError,
    load_video,
    processor_video_kwargs,
    resolve_video_path,
    smart_resize,
    verify_videos,
)

GRAY_STEP = 4  # frame i is a solid gray of value GRAY_STEP * i, so a decoded frame tells its index


def gray_ramp(num_frames: int, height: int = 60, width: int = 90) -> np.ndarray:
    values = (np.arange(num_frames) * GRAY_STEP).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (num_frames, height, width, 3)).copy()


def decoded_index(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / GRAY_STEP))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    made = {
        "five_s": (gray_ramp(50), 10),  # 5 s at 10 fps
        "long": (gray_ramp(60, 40, 64), 3),  # 20 s at 3 fps
        "short": (gray_ramp(3), 10),  # 3 frames
        "wide": (gray_ramp(8, 720, 1280), 4),  # HD, must shrink
    }
    for name, (frames, fps) in list(made.items()):
        made[name] = str(root / f"{name}.mp4")
        write_mp4(frames, made[name], fps=fps)
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    made["corrupt"] = str(corrupt)
    return made


def test_samples_at_fps_with_true_metadata(videos):
    clip = load_video(videos["five_s"], fps=2.0, max_frames=16)
    assert clip.source_frames == 50 and clip.source_fps == pytest.approx(10.0)
    assert clip.num_frames == 10  # 5 s x 2 fps
    assert clip.sample_fps == pytest.approx(2.0)
    steps = np.diff(clip.timestamps)
    assert np.all(steps > 0.49) and np.all(steps < 0.61)  # 49 frame gaps over 9 steps: 5 or 6 frames
    assert clip.timestamps[0] == pytest.approx(0.0) and clip.timestamps[-1] == pytest.approx(4.9, abs=0.01)
    # the decoded pixels are those of the frames named in frame_indices
    assert [decoded_index(f) for f in clip.frames] == clip.frame_indices
    assert clip.timestamps == pytest.approx([i / 10 for i in clip.frame_indices], abs=1e-3)


def test_max_frames_spreads_over_the_whole_video(videos):
    clip = load_video(videos["long"], fps=2.0, max_frames=16)
    assert clip.num_frames == 16
    assert clip.frame_indices[0] == 0 and clip.frame_indices[-1] == 59
    assert clip.sample_fps == pytest.approx(16 / 20)  # frames per second of video time
    gaps = np.diff(clip.frame_indices)
    assert gaps.max() - gaps.min() <= 1


@pytest.mark.parametrize("kwargs, expected", [
    ({"fps": 10.0, "max_frames": 15}, 14),  # odd cap rounds down to an even count
    ({"fps": 0.9, "max_frames": 16}, 4),  # 4.5 frames -> 4
    ({"fps": 0.1, "max_frames": 16}, 4),  # below min_frames -> min_frames
    ({"fps": 0.1, "max_frames": 16, "min_frames": 5}, 6),  # min_frames rounded up to even
])
def test_frame_count_is_even_and_clamped(videos, kwargs, expected):
    clip = load_video(videos["five_s"], **kwargs)
    assert clip.num_frames == expected
    assert clip.num_frames % 2 == 0
    assert clip.sample_fps == pytest.approx(expected / 5.0)


def test_end_time_limits_the_window(videos):
    clip = load_video(videos["five_s"], fps=2.0, end_time=2.0)
    assert clip.window_frames == 20 and clip.num_frames == 4
    assert max(clip.timestamps) < 2.0
    assert clip.sample_fps == pytest.approx(2.0)


def test_resize_to_multiples_of_28_within_budget(videos):
    max_pixels = 196 * 28 * 28
    clip = load_video(videos["wide"], max_pixels=max_pixels)
    t, h, w, c = clip.frames.shape
    assert clip.frames.dtype == np.uint8 and c == 3
    assert h % FACTOR == 0 and w % FACTOR == 0 and h * w <= max_pixels
    assert abs(w / h - 1280 / 720) < 0.2
    # a solid gray survives resizing
    assert [decoded_index(f) for f in clip.frames] == clip.frame_indices


@settings(max_examples=300, deadline=None)
@given(st.integers(28, 4000), st.floats(0.25, 4.0), st.integers(16, 800))
def test_smart_resize_contract(height, aspect, budget_patches):
    width = max(28, round(height * aspect))
    max_pixels = budget_patches * FACTOR * FACTOR
    min_pixels = 4 * FACTOR * FACTOR
    h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
    assert h % FACTOR == 0 and w % FACTOR == 0
    assert min_pixels <= h * w <= max_pixels
    aligned = smart_resize(h, w, min_pixels=min_pixels, max_pixels=max_pixels)
    assert aligned == (h, w)  # idempotent: the processor leaves our frames as they are


def test_errors_name_the_path(videos, tmp_path):
    missing = str(tmp_path / "nope.mp4")
    with pytest.raises(VideoNotFoundError, match="nope.mp4"):
        load_video(missing)
    assert issubclass(VideoNotFoundError, FileNotFoundError)
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        load_video(videos["corrupt"])
    with pytest.raises(VideoTooShortError, match="short.mp4"):
        load_video(videos["short"], min_frames=4)
    for cls in (VideoNotFoundError, VideoDecodeError, VideoTooShortError):
        assert issubclass(cls, VideoError)


def test_cache_decodes_once_and_is_bounded(videos):
    cache = VideoCache(maxsize=2)
    first = cache.load(videos["five_s"], fps=2.0)
    again = cache.load(videos["five_s"], fps=2.0)
    assert again is first and cache.hits == 1 and cache.misses == 1
    with pytest.raises(ValueError):
        first.frames[0, 0, 0, 0] = 1  # shared frames are read-only
    other = cache.load(videos["five_s"], fps=1.0)  # other settings: another entry
    assert other is not first and other.num_frames == 4
    cache.load(videos["long"])
    assert len(cache) == 2
    assert cache.load(videos["five_s"], fps=2.0) is not first  # evicted, decoded again
    with pytest.raises(VideoNotFoundError):
        cache.load(videos["five_s"] + ".missing")


def test_verify_videos_reports_every_problem(videos, tmp_path):
    root = os.path.dirname(videos["five_s"])
    items = [
        {"id": "ok1", "video": "five_s.mp4"},
        {"id": "gone", "video": "missing/x.mp4"},
        {"id": "bad", "video": "corrupt.mp4"},
        {"id": "tiny", "video": "short.mp4"},
        {"id": "ok2", "video": "/Bench/long.mp4"},  # absolute path re-rooted
        {"video": "five_s.mp4"},  # no id: reported by index
    ]
    report = verify_videos(items, root, min_frames=4)
    assert report.total == 6 and report.ok == 3 and report.bad == 3
    assert [(i, d) for i, d, _ in report.missing] == [(1, "gone")]
    assert [(i, d) for i, d, *_ in report.undecodable] == [(2, "bad")]
    assert [(i, d, n) for i, d, _, n in report.too_short] == [(3, "tiny", 3)]
    text = report.summary()
    for needle in ("3/6 videos usable", "gone", "bad", "tiny", "x.mp4"):
        assert needle in text


def test_truncated_file_is_undecodable(videos, tmp_path):
    data = open(videos["five_s"], "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    report = verify_videos([{"id": "cut", "video": str(cut)}])
    assert report.ok == 0 and report.bad == 1


def test_unchanged_videos_are_checked_once_per_process(videos, tmp_path, monkeypatch):
    from twgrpo_lib.data import video

    opened = []
    real_open = video._open
    monkeypatch.setattr(video, "_open", lambda path: opened.append(path) or real_open(path))
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(open(videos["five_s"], "rb").read())
    items = [{"video": str(copy)}, {"video": str(copy)}]
    assert verify_videos(items).ok == 2 and verify_videos(items).ok == 2
    assert opened == [str(copy)]  # once: the second call remembers the unchanged file
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 2])  # changed (truncated): checked again, and found bad
    assert verify_videos(items).bad == 2 and opened == [str(copy)] * 2


def test_resolve_video_path_prefers_existing_tail(tmp_path):
    (tmp_path / "MMVU" / "videos" / "Chemistry").mkdir(parents=True)
    (tmp_path / "MMVU" / "videos" / "Chemistry" / "0.mp4").write_bytes(b"")
    # the root holds the benchmark folder itself
    assert resolve_video_path("/MMVU/videos/Chemistry/0.mp4", tmp_path) == str(
        tmp_path / "MMVU" / "videos" / "Chemistry" / "0.mp4")
    # the root is the benchmark folder
    assert resolve_video_path("/MMVU/videos/Chemistry/0.mp4", tmp_path / "MMVU") == str(
        tmp_path / "MMVU" / "videos" / "Chemistry" / "0.mp4")
    # the root is the videos folder
    assert resolve_video_path("/MMVU/videos/Chemistry/0.mp4", tmp_path / "MMVU" / "videos") == str(
        tmp_path / "MMVU" / "videos" / "Chemistry" / "0.mp4")
    # a bare basename never matches: 0.mp4 exists in several category folders
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "0.mp4").write_bytes(b"")
    assert resolve_video_path("/MMVU/videos/Chemistry/0.mp4", tmp_path / "flat") == str(
        tmp_path / "flat" / "videos" / "Chemistry" / "0.mp4")
    assert resolve_video_path("a/b.mp4", None) == "a/b.mp4"


@pytest.fixture(scope="module")
def processor():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    special = ["<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(special + ["[UNK]", "describe"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="<|endoftext|>",
                                        additional_special_tokens=special)
    return Qwen2_5_VLProcessor(image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer,
                               video_processor=Qwen2VLVideoProcessor())


def test_processor_gets_the_true_temporal_step(videos, processor):
    clips = [
        load_video(videos["five_s"], max_pixels=8 * 28 * 28),  # 2 fps
        load_video(videos["long"], max_pixels=8 * 28 * 28),  # 16 frames over 20 s: 0.8 fps
        load_video(videos["five_s"], end_time=4.0, fps=1.0, min_frames=2, max_pixels=8 * 28 * 28),  # 1 fps
    ]
    texts = ["describe <|vision_start|><|video_pad|><|vision_end|>"] * len(clips)
    out = processor(text=texts, **processor_video_kwargs(clips), padding=True, return_tensors="pt")
    temporal_patch = processor.video_processor.temporal_patch_size
    expected = [temporal_patch / clip.sample_fps for clip in clips]
    assert [float(x) for x in out["second_per_grid_ts"]] == pytest.approx(expected)
    assert expected == pytest.approx([1.0, 2.5, 2.0])
    for clip, (t, h, w) in zip(clips, out["video_grid_thw"].tolist()):
        # frames were neither resampled nor resized by the processor
        assert t == clip.num_frames // temporal_patch
        assert (h * 14, w * 14) == clip.frames.shape[1:3]
    video_token = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    per_video = (out["input_ids"] == video_token).sum(dim=1).tolist()
    assert per_video == [int(thw.prod()) // 4 for thw in out["video_grid_thw"]]


def test_processor_kwargs_reject_unaligned_frames():
    from twgrpo_lib.data.video import VideoClip

    clip = VideoClip(np.zeros((2, 30, 56, 3), np.uint8), [0.0, 0.5], 2.0, 2.0, 2, "odd.mp4")
    with pytest.raises(ValueError, match="odd.mp4"):
        processor_video_kwargs([clip])

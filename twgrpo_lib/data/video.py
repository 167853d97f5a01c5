"""Video input for Qwen2.5-VL: sample frames with decord, resize like ``smart_resize``, keep true metadata.

``load_video`` returns a :class:`VideoClip` (uint8 frames plus the timestamps and the effective fps of the
sample) and ``processor_video_kwargs`` turns clips into exactly the keyword arguments a transformers
Qwen2.5-VL processor needs, so that its ``second_per_grid_ts`` (the temporal position step of the
multimodal RoPE) equals ``temporal_patch_size / sample_fps`` rather than the processor's 24 fps fallback.

Sampling rule (qwen-vl-utils' ``smart_nframes``, which the paper's runs use):

    n = window_frames / source_fps * fps            # frames at `fps` per second of video time
    n = clamp(n, min_frames, max_frames), n <= window_frames, n = floor to an even number
    indices = round(linspace(0, window_frames - 1, n))   # spread uniformly over the window
    sample_fps = n / window_frames * source_fps          # what the model is told

The count is even because Qwen2.5-VL packs frames in temporal patches of 2; the processor would otherwise
repeat the last frame. Frames are resized keeping the aspect ratio so that H and W are multiples of 28 and
``min_pixels <= H*W <= max_pixels`` (bicubic with antialiasing, uint8 in and out).

The paper's evaluation protocol (docs/method.md §5) resamples every clip to exactly 16 frames:
``load_video(..., resample_to=16)`` first samples as above, then takes
``positions = trunc(linspace(0, n - 1, 16))`` of those n frames, so a clip shorter than 8 s repeats frames
(a 5 s CLEVRER clip: 10 frames become 16, video grid 8 x 22 x 34, 1,496 tokens instead of 5 x 22 x 34, 935).
Its processor call passed no fps, so the model was told the processor's default, 2 fps, whatever the clip:
``sample_fps`` is ``PROCESSOR_DEFAULT_FPS`` there.

Differences from the paper's reference code (TW-GRPO's bundled qwen-vl-utils):

1. The reference's video reader resamples to 16 frames unless the environment says ``SAMPLE_MODE=true``; its
   training scripts say so, its evaluation scripts set it only after the library has read it. Here the
   16-frame resampling is an explicit argument (``resample_to``), used by ``twgrpo evaluate`` by default.
2. ``min_pixels`` defaults to ``min(128*28*28, max_pixels)`` so a small ``max_pixels`` (CPU runs) never
   conflicts with the video minimum; the reference uses 128*28*28 and lets it win.
3. ``end_time`` (sample only the first seconds) is supported; the reference's decord path refuses it.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

FACTOR = 28  # patch 14 x spatial merge 2: H and W must be multiples of this
TEMPORAL_PATCH_SIZE = 2  # Qwen2.5-VL packs frames in pairs
VIDEO_MIN_PIXELS = 128 * 28 * 28  # qwen-vl-utils' per-frame minimum for videos
VIDEO_MAX_PIXELS = 196 * 28 * 28  # the paper's per-frame maximum
PAPER_EVAL_FRAMES = 16  # frames per clip in the paper's evaluation scripts
PROCESSOR_DEFAULT_FPS = 2.0  # fps the Qwen2.5-VL processor of the paper's runs assumed when given none
VIDEO_FPS = 2.0  # the paper's sampling rate
VIDEO_MAX_FRAMES = 16  # the paper's most frames per clip
VIDEO_MIN_FRAMES = 4  # the fewest frames a clip is sampled with: a video, and max_frames, must allow as many


@dataclass(frozen=True)
class VideoSettings:
    """How a clip is sampled and sized before the processor sees it; the defaults are the paper's (docs/method.md
    §5). The one home of these defaults: training, evaluation and the notebooks take a ``VideoSettings``.

    >>> VideoSettings()
    VideoSettings(fps=2.0, max_frames=16, max_pixels=153664)
    """

    fps: float = VIDEO_FPS
    max_frames: int = VIDEO_MAX_FRAMES
    max_pixels: int = VIDEO_MAX_PIXELS

    def load_kwargs(self) -> dict:
        """Keyword arguments of ``load_video`` / ``VideoCache.load``."""
        return {"fps": self.fps, "max_frames": self.max_frames, "max_pixels": self.max_pixels}


class VideoError(Exception):
    """A video could not be used; ``path`` names the file."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = str(path)


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The video file does not exist."""


class VideoDecodeError(VideoError):
    """The file exists but decord cannot open or decode it."""


class VideoTooShortError(VideoError):
    """The video has fewer frames than the sampling needs."""


@dataclass
class VideoClip:
    """Frames sampled from one video with the metadata the processor needs."""

    frames: np.ndarray  # (T, H, W, 3) uint8, H and W multiples of 28, H*W <= max_pixels, T even
    timestamps: list[float]  # seconds of each sampled frame in the source video
    sample_fps: float  # frames per second of the sampled clip (what the processor should be told)
    source_fps: float  # the file's own fps
    source_frames: int  # frame count of the file
    path: str
    frame_indices: list[int] = field(default_factory=list)  # indices of the sampled frames in the file
    window_frames: int = 0  # frames the sample is spread over (source_frames unless end_time cut it)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def smart_resize(height: int, width: int, *, factor: int = FACTOR, min_pixels: int = VIDEO_MIN_PIXELS,
                 max_pixels: int = VIDEO_MAX_PIXELS) -> tuple[int, int]:
    """Qwen2-VL's resize rule: multiples of ``factor``, pixel count in [min_pixels, max_pixels], aspect kept.

    >>> smart_resize(320, 480)            # CLEVRER frames at the paper's 196*28*28 cap
    (308, 476)
    >>> smart_resize(1080, 1920, max_pixels=196 * 28 * 28)
    (280, 504)
    """
    if min(height, width) <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {height}x{width}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def num_sample_frames(window_frames: int, source_fps: float, *, fps: float = VIDEO_FPS,
                      max_frames: int = VIDEO_MAX_FRAMES, min_frames: int = VIDEO_MIN_FRAMES) -> int:
    """How many frames to sample: ``fps`` per second of video, clamped, even (see the module docstring).

    >>> num_sample_frames(128, 25.6)               # a 5 s CLEVRER video at 2 fps
    10
    >>> num_sample_frames(1800, 30.0)              # 60 s: capped at 16
    16
    >>> num_sample_frames(30, 30.0)                # 1 s: raised to min_frames
    4
    """
    lo = math.ceil(min_frames / TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE
    hi = math.floor(max_frames / TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE
    if hi < TEMPORAL_PATCH_SIZE or lo > hi:
        raise ValueError(f"need {TEMPORAL_PATCH_SIZE} <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    n = window_frames / source_fps * fps
    n = min(max(n, lo), hi, window_frames)
    return int(math.floor(n / TEMPORAL_PATCH_SIZE) * TEMPORAL_PATCH_SIZE)


def sample_indices(window_frames: int, num_frames: int) -> list[int]:
    """``num_frames`` indices spread uniformly over ``[0, window_frames)``, first and last included.

    >>> sample_indices(128, 10)
    [0, 14, 28, 42, 56, 71, 85, 99, 113, 127]
    """
    return [int(i) for i in np.linspace(0, window_frames - 1, num_frames).round().astype(int)]


def resample_positions(num_frames: int, count: int = PAPER_EVAL_FRAMES) -> list[int]:
    """Positions in a clip of ``num_frames`` frames that the paper's evaluation feeds: ``count`` evenly spaced,
    truncated (repeats when the clip is shorter than ``count``).

    >>> resample_positions(10)                     # a 5 s CLEVRER clip sampled at 2 fps
    [0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 9]
    >>> resample_positions(16) == list(range(16))
    True
    """
    return [int(i) for i in np.linspace(0, num_frames - 1, count)]  # non-negative: int() truncates


def _resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, h, w, 3) uint8 -> (T, height, width, 3) uint8, bicubic with antialiasing.

    PIL's bicubic filter; torchvision's antialiased bicubic (what qwen-vl-utils uses) was built to match it
    and agrees within one grey level, at a third of the CPU time.
    """
    if frames.shape[1:3] == (height, width):
        return np.ascontiguousarray(frames)
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC)) for frame in frames])


def _open(path: str):
    """decord.VideoReader on ``path``, with errors that name the file."""
    if not os.path.isfile(path):
        raise VideoNotFoundError(path, "video file not found")
    import decord

    try:
        return decord.VideoReader(path, num_threads=1)
    except Exception as exc:  # decord raises RuntimeError / DECORDError with ffmpeg's message
        raise VideoDecodeError(path, f"cannot open video ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc


def load_video(path: str | os.PathLike, *, fps: float = VIDEO_FPS, max_frames: int = VIDEO_MAX_FRAMES,
               min_frames: int = VIDEO_MIN_FRAMES, max_pixels: int = VIDEO_MAX_PIXELS, min_pixels: int | None = None,
               end_time: float | None = None, resample_to: int | None = None) -> VideoClip:
    """Decode only the sampled frames of ``path`` and resize them for Qwen2.5-VL.

    ``end_time`` (seconds) restricts sampling to the start of the video. ``resample_to`` (the paper's
    evaluation: 16) resamples the clip to exactly that many frames, as the module docstring says, and the
    clip reports ``PROCESSOR_DEFAULT_FPS``. Raises ``VideoNotFoundError``,
    ``VideoDecodeError`` or ``VideoTooShortError`` (all ``VideoError``, message naming the path).
    """
    path = os.fspath(path)
    min_pixels = min(VIDEO_MIN_PIXELS, max_pixels) if min_pixels is None else min_pixels
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels={min_pixels} exceeds max_pixels={max_pixels}")
    reader = _open(path)
    source_frames = len(reader)
    source_fps = float(reader.get_avg_fps())
    if not source_fps > 0:
        raise VideoDecodeError(path, f"video reports fps={source_fps}")
    window = source_frames
    if end_time is not None:
        window = min(source_frames, max(1, math.ceil(end_time * source_fps)))
    if window < max(min_frames, TEMPORAL_PATCH_SIZE):
        raise VideoTooShortError(path, f"{window} frames, need at least {max(min_frames, TEMPORAL_PATCH_SIZE)}")
    n = num_sample_frames(window, source_fps, fps=fps, max_frames=max_frames, min_frames=min_frames)
    indices = sample_indices(window, n)
    sample_fps = n / window * source_fps
    if resample_to is not None:
        indices = [indices[p] for p in resample_positions(n, resample_to)]
        sample_fps = PROCESSOR_DEFAULT_FPS
    try:
        raw = reader.get_batch(indices).asnumpy()  # (len(indices), h, w, 3) uint8
        stamps = reader.get_frame_timestamp(indices)[:, 0]  # start time of each frame, seconds
    except Exception as exc:
        raise VideoDecodeError(path, f"cannot decode frames {indices[0]}..{indices[-1]} "
                                     f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    height, width = smart_resize(raw.shape[1], raw.shape[2], min_pixels=min_pixels, max_pixels=max_pixels)
    return VideoClip(
        frames=_resize_frames(raw, height, width),
        timestamps=[float(t) for t in stamps],
        sample_fps=sample_fps,
        source_fps=source_fps,
        source_frames=source_frames,
        path=path,
        frame_indices=indices,
        window_frames=window,
    )


class VideoCache:
    """A bounded LRU of decoded clips keyed by (path, file size and mtime, settings).

    The trainer samples G completions per prompt: decode the prompt's video once per generation batch.
    Cached frames are read-only (shared between callers).
    """

    def __init__(self, maxsize: int = 16):
        self.maxsize = maxsize
        self._clips: OrderedDict[tuple, VideoClip] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def load(self, path: str | os.PathLike, **settings) -> VideoClip:
        path = os.fspath(path)
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise VideoNotFoundError(path, "video file not found") from None
        key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, tuple(sorted(settings.items())))
        if key in self._clips:
            self.hits += 1
            self._clips.move_to_end(key)
            return self._clips[key]
        self.misses += 1
        clip = load_video(path, **settings)
        clip.frames.flags.writeable = False
        self._clips[key] = clip
        while len(self._clips) > self.maxsize:
            self._clips.popitem(last=False)
        return clip

    def clear(self) -> None:
        self._clips.clear()

    def __len__(self) -> int:
        return len(self._clips)


def processor_video_kwargs(clips: list[VideoClip]) -> dict:
    """Keyword arguments for a transformers (5.x) Qwen2.5-VL processor call on pre-sampled clips.

    ``processor(text=texts, **processor_video_kwargs(clips), return_tensors="pt")``. The processor derives
    ``second_per_grid_ts = temporal_patch_size / metadata.sampled_fps`` with ``sampled_fps =
    len(frames_indices) / total_num_frames * fps``; the metadata below makes that equal ``clip.sample_fps``
    (for a resampled clip its ``fps`` is scaled so, as the file's own fps would not give it).
    ``do_sample_frames=False`` keeps our frames; ``do_resize=False`` keeps our (already 28-aligned) size,
    so ``cap_pixels_per_frame`` (a resize option) is moot and set only to silence its deprecation notice.

    >>> clip = VideoClip(np.zeros((4, 28, 56, 3), np.uint8), [0.0, 0.5, 1.0, 1.5], 2.0, 10.0, 20, "v.mp4",
    ...                  [0, 5, 10, 15], 20)
    >>> kw = processor_video_kwargs([clip])
    >>> sorted(kw)
    ['cap_pixels_per_frame', 'do_resize', 'do_sample_frames', 'video_metadata', 'videos']
    >>> m = kw["video_metadata"][0]; len(m["frames_indices"]) / m["total_num_frames"] * m["fps"]
    2.0
    """
    metadata = []
    for clip in clips:
        height, width = clip.frames.shape[1:3]
        if height % FACTOR or width % FACTOR:
            raise ValueError(f"{clip.path}: frame size {height}x{width} is not a multiple of {FACTOR}")
        window = clip.window_frames or clip.source_frames
        indices = clip.frame_indices or sample_indices(window, clip.num_frames)
        told = len(indices) / window * clip.source_fps
        metadata.append({
            "total_num_frames": window,
            "fps": clip.source_fps if math.isclose(told, clip.sample_fps) else clip.sample_fps * window / len(indices),
            "frames_indices": list(indices),
            "duration": window / clip.source_fps,
            "height": int(height),
            "width": int(width),
        })
    return {"videos": [clip.frames for clip in clips], "video_metadata": metadata,
            "do_sample_frames": False, "do_resize": False, "cap_pixels_per_frame": False}


def resolve_video_path(video: str, video_root: str | os.PathLike | None) -> str:
    """Where a video named in an annotation file lives under ``video_root``.

    Relative paths are joined to the root. Absolute paths (``/MMVU/videos/Chemistry/0.mp4``, written on
    the machine that built the file) are re-rooted: the first existing of ``root/MMVU/videos/Chemistry/0.mp4``,
    ``root/videos/Chemistry/0.mp4``, ``root/Chemistry/0.mp4`` (tails of at least two components, so two
    ``0.mp4`` of different folders never collide); when none exists, the path below the top folder
    (``root/videos/Chemistry/0.mp4``). Without a root the path is returned unchanged.

    >>> resolve_video_path("/MMVU/videos/Chemistry/0.mp4", "/nonexistent/mmvu")
    '/nonexistent/mmvu/videos/Chemistry/0.mp4'
    >>> resolve_video_path("1104/4882821564.mp4", "/data/nextqa")
    '/data/nextqa/1104/4882821564.mp4'
    """
    if video_root is None:
        return video
    root = os.fspath(video_root)
    if not os.path.isabs(video):
        return os.path.join(root, video)
    parts = [p for p in video.replace("\\", "/").split("/") if p]
    tails = [parts[k:] for k in range(0, max(1, len(parts) - 1))]
    for tail in tails:
        candidate = os.path.join(root, *tail)
        if os.path.exists(candidate):
            return candidate
    return os.path.join(root, *(parts[1:] if len(parts) > 1 else parts))


@dataclass
class VideoReport:
    """Outcome of :func:`verify_videos`: the usable count and every problem with the item it belongs to."""

    total: int = 0
    ok: int = 0
    missing: list[tuple[int, str, str]] = field(default_factory=list)  # (index, id, path)
    undecodable: list[tuple[int, str, str, str]] = field(default_factory=list)  # (index, id, path, reason)
    too_short: list[tuple[int, str, str, int]] = field(default_factory=list)  # (index, id, path, frames)

    @property
    def bad(self) -> int:
        return len(self.missing) + len(self.undecodable) + len(self.too_short)

    def bad_indices(self) -> set[int]:
        return {row[0] for rows in (self.missing, self.undecodable, self.too_short) for row in rows}

    def problems(self) -> list[str]:
        """One phrase per bad item, in item order, e.g. ``item 3 (id q3): videos/a.mp4 missing``."""
        rows = [(r[0], f"item {r[0]} (id {r[1]}): {r[2]} missing") for r in self.missing]
        rows += [(r[0], f"item {r[0]} (id {r[1]}): {r[2]} undecodable ({str(r[3]).removeprefix(f'{r[2]}: ')})")
                 for r in self.undecodable]
        rows += [(r[0], f"item {r[0]} (id {r[1]}): {r[2]} too short ({r[3]} frames)") for r in self.too_short]
        return [text for _, text in sorted(rows)]

    def summary(self, limit: int = 5) -> str:
        """A few lines: counts, then up to ``limit`` examples of each kind of problem."""
        lines = [f"{self.ok}/{self.total} videos usable; {len(self.missing)} missing, "
                 f"{len(self.undecodable)} undecodable, {len(self.too_short)} too short"]
        for name, rows in (("missing", self.missing), ("undecodable", self.undecodable),
                           ("too short", self.too_short)):
            for row in rows[:limit]:
                lines.append(f"  {name}: item {row[0]} (id {row[1]}): " + ", ".join(str(x) for x in row[2:]))
            if len(rows) > limit:
                lines.append(f"  ... and {len(rows) - limit} more {name}")
        return "\n".join(lines)


def verify_videos(items, video_root: str | os.PathLike | None = None, *, min_frames: int = VIDEO_MIN_FRAMES,
                  decode: bool = True) -> VideoReport:
    """Check the video of every item (dicts with ``video`` and optionally ``id``); never stops on a bad one.

    Each distinct file is opened once; with ``decode`` its first and last frames are decoded too, which
    catches truncated files that still open. A file checked before in this process, unchanged since (same size
    and modification time), is not opened again: a grid of runs over one dataset checks its videos once.
    """
    report = VideoReport()
    seen: dict[str, tuple[str, object]] = {}  # path -> ("ok" | "missing" | "undecodable" | "too_short", detail)
    for index, item in enumerate(items):
        report.total += 1
        item_id = str(item.get("id", index))
        path = resolve_video_path(str(item["video"]), video_root)
        if path not in seen:
            seen[path] = _check_unchanged(path, min_frames, decode)
        status, detail = seen[path]
        if status == "ok":
            report.ok += 1
        elif status == "missing":
            report.missing.append((index, item_id, path))
        elif status == "undecodable":
            report.undecodable.append((index, item_id, path, detail))
        else:
            report.too_short.append((index, item_id, path, detail))
    return report


def usable_items(items: list[dict], source: str, *, skip_bad: bool = False, min_frames: int = VIDEO_MIN_FRAMES,
                 video_root: str | os.PathLike | None = None) -> tuple[list[dict], VideoReport]:
    """Check every item's video before work starts (exists, decodes, at least ``min_frames`` frames, as
    ``load_video`` needs). With a bad one, raise a ``ValueError`` naming ``source`` and every bad item on one
    line, or, with ``skip_bad``, return the usable items only; the report says how many were dropped."""
    report = verify_videos(items, video_root, min_frames=min_frames)
    if not report.bad:
        return list(items), report
    if not skip_bad:
        raise ValueError(f"{source}: {report.bad} of {report.total} items have an unusable video: "
                         + "; ".join(report.problems()) + " (fix them, or skip them with --skip-bad-videos)")
    bad = report.bad_indices()
    return [item for i, item in enumerate(items) if i not in bad], report


_CHECKED: dict[tuple, tuple[str, object]] = {}  # (path, size, mtime_ns, min_frames, decode) -> _check_one's result


def _check_unchanged(path: str, min_frames: int, decode: bool) -> tuple[str, object]:
    """``_check_one``, remembered per process for a file that has not changed since it was checked."""
    try:
        stat = os.stat(path)
    except OSError:
        return _check_one(path, min_frames, decode)
    key = (path, stat.st_size, stat.st_mtime_ns, min_frames, decode)
    if key not in _CHECKED:
        _CHECKED[key] = _check_one(path, min_frames, decode)
    return _CHECKED[key]


def _check_one(path: str, min_frames: int, decode: bool) -> tuple[str, object]:
    try:
        reader = _open(path)
    except VideoNotFoundError:
        return "missing", None
    except VideoDecodeError as exc:
        return "undecodable", str(exc)
    frames = len(reader)
    if frames < max(min_frames, TEMPORAL_PATCH_SIZE):
        return "too_short", frames
    if decode:
        try:
            reader.get_batch([0, frames - 1]).asnumpy()
        except Exception as exc:
            return "undecodable", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return "ok", None

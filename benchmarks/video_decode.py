"""Decoding only the sampled frames vs decoding every frame, on a CLEVRER-sized synthetic video.

Run: .venv/bin/python benchmarks/video_decode.py   (prints times and ratios; no assertion)
"""

import tempfile
import time
from pathlib import Path

import numpy as np

from twgrpo_lib.data.synthetic.render import write_mp4
from twgrpo_lib.data.video import VideoCache, load_video


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (128, 1, 480, 3), dtype=np.uint8), 320, axis=1)  # 480x320, 128 frames
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "clevrer_like.mp4")
        write_mp4(frames, path, fps=25)

        def decode_all():
            import decord

            reader = decord.VideoReader(path, num_threads=1)
            reader.get_batch(list(range(len(reader)))).asnumpy()

        sampled = best_of(lambda: load_video(path))
        everything = best_of(decode_all)
        cache = VideoCache()
        cache.load(path)
        cached = best_of(lambda: cache.load(path))
        clip = load_video(path)
        print(f"clip: {clip.num_frames} frames {clip.frames.shape[1]}x{clip.frames.shape[2]}, "
              f"sample_fps {clip.sample_fps:.3f}")
        print(f"load_video (sampled frames + resize): {sampled * 1e3:.1f} ms")
        print(f"decode all {len(frames)} frames:           {everything * 1e3:.1f} ms "
              f"({everything / sampled:.1f}x load_video)")
        print(f"cache hit:                            {cached * 1e6:.1f} us "
              f"({sampled / cached:.0f}x faster than load_video)")


if __name__ == "__main__":
    main()

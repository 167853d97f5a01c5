"""Speed of `twgrpo make-data`: videos per second for a tiny build, and where the time goes.

    .venv/bin/python benchmarks/make_data.py --videos 1000 --workers 2

Prints wall time, CPU time (all processes), videos/s, the ratio to the 60 s budget for 1,000 tiny videos,
and per video the CPU split between simulation + questions, rendering and encoding (one process).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from twgrpo_lib.data.synthetic.build import build_dataset
from twgrpo_lib.data.synthetic.physics import simulate
from twgrpo_lib.data.synthetic.questions import generate_questions
from twgrpo_lib.data.synthetic.render import render_frames, write_mp4
from twgrpo_lib.data.synthetic.sampling import sample_scene

BUDGET_S_PER_1000 = 60.0


def _cpu() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def stages(preset: str, n: int, out: Path) -> dict[str, float]:
    """CPU seconds per video of each stage, in this process."""
    totals = {"scene + questions": 0.0, "render": 0.0, "encode": 0.0}
    for index in range(n):
        t0 = time.process_time()
        sim = simulate(sample_scene(0, preset, index))
        generate_questions(sim, seed=index)
        t1 = time.process_time()
        frames = render_frames(sim)
        t2 = time.process_time()
        write_mp4(frames, out / "bench.mp4", sim.scene.preset.fps)
        t3 = time.process_time()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2)):
            totals[key] += dt
    return {key: value / n for key, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        cpu0, wall0 = _cpu(), time.perf_counter()
        build_dataset(Path(tmp) / "data", args.videos, seed=0, preset=args.preset, workers=args.workers)
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        print(f"make-data {args.videos} {args.preset} videos, {args.workers} workers: {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU, {args.videos / wall:.1f} videos/s")
        if args.preset == "tiny":
            print(f"wall time / budget (60 s per 1,000 videos): {wall / (BUDGET_S_PER_1000 * args.videos / 1000):.2f}")
        per_video = stages(args.preset, min(args.videos, 100), Path(tmp))
        total = sum(per_video.values())
        print("CPU per video: " + ", ".join(f"{k} {1000 * v:.1f} ms ({v / total:.0%})" for k, v in per_video.items()))


if __name__ == "__main__":
    main()

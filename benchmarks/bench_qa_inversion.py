"""Question-answer inversion speed: ``invert_dataset`` against reading the same JSON file, and the whole
``twgrpo invert`` command (interpreter start-up included) against a bare ``python -c pass``.

    .venv/bin/python benchmarks/bench_qa_inversion.py [FILE]   # default: the sample shipped with the kit, x10
"""

import json
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

from twgrpo_lib.core.qa_inversion import invert_dataset
from twgrpo_lib.data import sample_path
from twgrpo_lib.data.formats import read_records

with tempfile.TemporaryDirectory() as tmp:
    if len(sys.argv) > 1:
        source = Path(sys.argv[1])
    else:  # ten copies of the sample: about the size of the full NExT-GQA validation file
        source = Path(tmp) / "sample_x10.json"
        source.write_text(json.dumps(read_records(sample_path("nextgqa_val_sample.json")) * 10))
    items = read_records(source)
    load = min(timeit.repeat(lambda: read_records(source), number=1, repeat=5))
    invert = min(timeit.repeat(lambda: invert_dataset(items, p=0.5, seed=0), number=1, repeat=5))
    print(f"{len(items)} items: load {load * 1e3:.0f} ms, invert {invert * 1e3:.0f} ms "
          f"({len(items) / invert:,.0f} items/s), invert/load ratio {invert / load:.1f}x")

    def wall(command):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start

    bare = min(wall([sys.executable, "-c", "pass"]) for _ in range(3))
    cli = min(wall([sys.executable, "-m", "twgrpo_lib.cli", "invert", str(source), str(Path(tmp) / "out.json")])
              for _ in range(3))
    print(f"twgrpo invert end to end {cli:.2f} s, bare interpreter {bare:.2f} s, ratio {cli / bare:.1f}x")

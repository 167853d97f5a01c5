"""Evaluation throughput: left-padded batches against one question at a time, and the cost of durability.

Builds a tiny Qwen2.5-VL and a small mini-CLEVRER validation set in a temporary folder, evaluates it greedily
with batch size 1 and with a larger batch (same answers, checked), and times the fsync'd append of one
predictions record. Prints questions per second and the ratios.

    .venv/bin/python benchmarks/bench_evaluation.py [--videos 20] [--batch-size 8] [--max-new-tokens 32]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from twgrpo_lib.data.predictions import append_record, read_records
from twgrpo_lib.data.synthetic import build_dataset
from twgrpo_lib.eval import evaluation as ev
from twgrpo_lib.models.qwen import load_model
from twgrpo_lib.models.tiny import build_tiny

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--videos", type=int, default=20, help="mini-CLEVRER videos (20%% of them are validation)")
parser.add_argument("--batch-size", type=int, default=8)
parser.add_argument("--max-new-tokens", type=int, default=32)
args = parser.parse_args()

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    model = str(build_tiny(tmp / "tiny"))
    build_dataset(tmp / "data", args.videos, seed=0, preset="tiny", workers=1)
    load_model(model)  # warm the imports and file cache before timing
    rates, outputs = {}, {}
    for batch in (1, args.batch_size):
        settings = ev.EvalSettings(model=model, data=str(tmp / "data" / "val.json"), out=str(tmp / f"b{batch}"),
                                   batch_size=batch, max_new_tokens=args.max_new_tokens, greedy=True)
        start = time.perf_counter()
        summary = ev.run_evaluation(settings, progress=False)
        seconds = time.perf_counter() - start
        rates[batch] = summary["run"]["questions"] / seconds
        outputs[batch] = {r["id"]: r["model_output"] for r in read_records(Path(settings.out) / ev.PREDICTIONS)}
        print(f"batch {batch:3d}: {summary['run']['questions']} questions in {seconds:6.1f} s "
              f"= {rates[batch]:6.2f} questions/s")
    print(f"batched / one at a time: {rates[args.batch_size] / rates[1]:.2f}x; "
          f"same greedy answers: {outputs[1] == outputs[args.batch_size]}")

    record = json.loads((tmp / "b1" / ev.PREDICTIONS).read_text().splitlines()[0])
    n = 200
    with open(tmp / "append.jsonl", "a") as fh:
        start = time.perf_counter()
        for _ in range(n):
            append_record(fh, record)
        durable = (time.perf_counter() - start) / n
    with open(tmp / "plain.jsonl", "a") as fh:
        start = time.perf_counter()
        for _ in range(n):
            fh.write(json.dumps(record) + "\n")
        plain = (time.perf_counter() - start) / n
    print(f"append one record: flush+fsync {durable * 1e3:.2f} ms, buffered write {plain * 1e3:.3f} ms; "
          f"fsync per question costs {durable * rates[args.batch_size] * 100:.2f}% of the batched evaluation time")
    print(f"cpu threads: {os.cpu_count()}")

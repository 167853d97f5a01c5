"""Where the ablation grid's time goes, and what its evaluation speed-ups are worth.

    .venv/bin/python benchmarks/grid_time.py --data mini_clevrer      # a mini-CLEVRER folder (twgrpo make-data)

Measures, with the grid's settings (``experiments.ablation.AblationSettings`` defaults) and the model it starts
from (the shipped tiny checkpoint unless ``--model``):

1. One evaluation of the grid's ``eval_limit`` validation questions five ways: one question per ``generate``
   call with torch's default threads (the straightforward path) and with one thread, then every question in one
   call with torch's default threads and with one thread (the grid's way), and the paper's batch of 16 with one
   thread. Every way must give the same answers as the straightforward one (checked; the run fails otherwise);
   the report gives the seconds and the ratios. The same for the swapped-video evaluation, one question at a
   time against the grid's way, both with one thread (batching alone).
2. The length of the straightforward path's completions (tokens): the evidence for the evaluation's
   ``max_new_tokens``.
3. One training run of the grid (row ``--row``, seed 0) under cProfile: the whole call, the video check before
   the first step, generation (``generate``), the token-weight pass and the rest of the steps.

Writes ``benchmarks/results/grid_time.json`` and ``.md``; the machine is shared, so the load average is recorded
before and after each measurement.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from twgrpo_lib.data.predictions import read_records
from twgrpo_lib.eval import evaluation as ev
from twgrpo_lib.experiments import ablation
from twgrpo_lib.models.shipped import shipped_checkpoint

# (name, batch size: None = every question, torch threads: None = torch's default)
WAYS = (("one at a time, default threads", 1, None), ("one at a time, one thread", 1, 1),
        ("all in one batch, default threads", None, None), ("all in one batch, one thread", None, 1),
        ("batches of 16, one thread", 16, 1))
GRID_WAY = WAYS[3]
PROFILED = {"video check": "verify_videos", "generation": "generate", "token weights": "_token_weights",
            "steps (all)": "_inner_training_loop"}


def load() -> float:
    return round(os.getloadavg()[0], 2)


def evaluate(grid: ablation.AblationSettings, out: Path, batch: int | None, threads: int | None,
             swapped: bool) -> dict:
    """One timed evaluation with the grid's settings but this batch size and thread count."""
    settings = ablation.eval_settings(grid, Path(grid.model), out, swapped=swapped)
    settings.batch_size, settings.cpu_threads = batch or grid.eval_limit, threads
    before, start = load(), time.perf_counter()
    summary = ev.run_evaluation(settings, progress=False)
    seconds = time.perf_counter() - start
    records = read_records(out / ev.PREDICTIONS)
    return {"seconds": round(seconds, 1), "load_before": before, "load_after": load(),
            "strict": summary["overall"]["strict_accuracy"], "answers": {r["id"]: r["model_output"] for r in records},
            "lengths": [r["completion_tokens"] for r in records]}


def length_stats(lengths: list[int], cap: int) -> dict:
    """Median, 90th and 99th percentile (nearest rank), longest, and how many reach the cap."""
    ordered = sorted(lengths)

    def rank(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "median": statistics.median(ordered), "p90": rank(0.9), "p99": rank(0.99),
            "max": ordered[-1], "at_cap": sum(x >= cap for x in ordered), "cap": cap}


def profile_training(grid: ablation.AblationSettings, row: str, out: Path) -> dict:
    from twgrpo_lib.train.grpo import train

    settings = grid.run_settings(ablation.ROW_BY_NAME[row], 0)["train"]
    profiler = cProfile.Profile()
    before, start = load(), time.perf_counter()
    profiler.runcall(train, grid.model, grid.data, out, recipe=grid.recipe, progress=False, **settings)
    seconds = time.perf_counter() - start
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, primitive, tottime, cumtime, callers)
    found = {label: round(max((v[3] for k, v in stats.items() if k[2] == name), default=0.0), 1)
             for label, name in PROFILED.items()}
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"row": row, "steps": settings["max_steps"], "seconds": round(seconds, 1), **found,
            "step_seconds": [round(s["step_time"], 2) for s in steps if "step_time" in s],
            "load_before": before, "load_after": load(), "profiled": True}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="mini-CLEVRER folder (train.json, val.json, videos/)")
    parser.add_argument("--model", default=None, help="starting checkpoint (default: the shipped tiny one)")
    parser.add_argument("--row", default="twgrpo_soft", choices=list(ablation.ROW_BY_NAME), help="row to profile")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    model = args.model or str(shipped_checkpoint())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        grid = ablation.AblationSettings(model=model, data=args.data, out=str(tmp / "grid"))
        warm = ablation.eval_settings(grid, Path(model), tmp / "warm")
        warm.limit = 2
        ev.run_evaluation(warm, progress=False)  # imports and file caches before anything is timed
        ways = {}
        for name, batch, threads in WAYS:
            ways[name] = evaluate(grid, tmp / name.replace(" ", "_").replace(",", ""), batch, threads, False)
            print(name, {k: v for k, v in ways[name].items() if k not in ("answers", "lengths")}, flush=True)
        swapped = {name: evaluate(grid, tmp / f"swapped_{batch}", batch, threads, True)
                   for name, batch, threads in (WAYS[1], GRID_WAY)}
        training = profile_training(grid, args.row, tmp / "train")
        print("training", training, flush=True)
    base, grid_way = ways[WAYS[0][0]], ways[GRID_WAY[0]]
    same = {name: way["answers"] == base["answers"] for name, way in ways.items()}
    same["swapped: all in one batch, one thread"] = (swapped[GRID_WAY[0]]["answers"] == swapped[WAYS[1][0]]["answers"])
    report = {
        "model": model, "questions": grid.eval_limit, "max_new_tokens": grid.eval_max_new_tokens,
        "cpu_count": os.cpu_count(), "same_answers": same,
        "evaluation": {name: {k: v for k, v in way.items() if k not in ("answers", "lengths")}
                       for name, way in ways.items()},
        "swapped": {name: {k: v for k, v in way.items() if k not in ("answers", "lengths")}
                    for name, way in swapped.items()},
        "speedup": round(base["seconds"] / grid_way["seconds"], 2),
        "speedup_swapped": round(swapped[WAYS[1][0]]["seconds"] / swapped[GRID_WAY[0]]["seconds"], 2),
        "completion_tokens": length_stats(base["lengths"], grid.eval_max_new_tokens),
        "training": training,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grid_time.json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    (args.out / "grid_time.md").write_text(text)
    print(text)
    if not all(same.values()):
        raise SystemExit(f"answers differ from one question at a time: {same}")
    return 0


def markdown(r: dict) -> str:
    lines = ["# Where the ablation grid's time goes (CPU)", "",
             "Measured by `benchmarks/grid_time.py`; the grid's own per-run times are in `ablations.csv`.", "",
             f"{r['questions']} validation questions, up to {r['max_new_tokens']} new tokens, the paper's decoding; "
             f"the shipped tiny checkpoint; {r['cpu_count']} cores shared with other jobs (1-minute load average "
             "before and after each measurement).", "",
             "| evaluation | seconds | ratio to one at a time | same answers | load |", "|---|---|---|---|---|"]
    base = r["evaluation"][WAYS[0][0]]["seconds"]
    for name, way in r["evaluation"].items():
        lines.append(f"| {name} | {way['seconds']} | {base / way['seconds']:.2f}x | {r['same_answers'][name]} | "
                     f"{way['load_before']} / {way['load_after']} |")
    sw, alone, batched = r["swapped"], WAYS[1][0], GRID_WAY[0]
    lines.append(f"| swapped videos: {alone} | {sw[alone]['seconds']} | 1.00x (of this line) | - | "
                 f"{sw[alone]['load_before']} / {sw[alone]['load_after']} |")
    lines.append(f"| swapped videos: {batched} (the grid) | {sw[batched]['seconds']} | "
                 f"{r['speedup_swapped']:.2f}x (of the line above) | "
                 f"{r['same_answers']['swapped: all in one batch, one thread']} | "
                 f"{sw[batched]['load_before']} / {sw[batched]['load_after']} |")
    c = r["completion_tokens"]
    t = r["training"]
    lines += ["", f"Completion length of the straightforward path (tokens): median {c['median']}, 90th percentile "
              f"{c['p90']}, 99th {c['p99']}, longest {c['max']}; {c['at_cap']} of {c['n']} reach the cap of "
              f"{c['cap']}. A lower cap would cut answers that end in format, so the grid keeps the training cap.",
              "", f"One training run ({t['row']}, {t['steps']} steps, under cProfile, load {t['load_before']} / "
              f"{t['load_after']}): {t['seconds']} s in all; the video check before the first step "
              f"{t['video check']} s, the steps {t['steps (all)']} s, of which generation {t['generation']} s and "
              f"the token-weight pass {t['token weights']} s; steps {min(t['step_seconds'])} to "
              f"{max(t['step_seconds'])} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

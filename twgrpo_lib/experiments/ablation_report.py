"""Tables and curves of an ablation grid (``ablation``): results.csv, results.md, mean ± std, dynamics.

Standard deviations are sample standard deviations over seeds (n - 1 in the denominator); a contrast between
two rows is the mean of same-seed differences, so shared seed effects (data order, sampling) cancel, with its
95 % t interval over seeds and a verdict in words (``intervals``); so is each row's gain over the start.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from twgrpo_lib.experiments.grid import DYNAMICS, ROW_BY_NAME, ROWS, SCORES, SWAPPED_SCORES
from twgrpo_lib.experiments.intervals import gains_over, interval_cell, mean_interval, paired_differences, verdict

# The paper's three contrasts (docs/method.md §6) plus the split of TW-GRPO into aggregation and weights:
# (title, better row, other row, the paper's numbers for (better, other) or None).
CONTRASTS: tuple[tuple[str, str, str, tuple[float, float] | None], ...] = (
    ("soft vs binary reward (TW-GRPO)", "twgrpo_soft", "twgrpo_binary", (50.4, 42.6)),
    ("multi- vs single-answer training (TW-GRPO)", "twgrpo_soft", "twgrpo_single", (50.4, 38.9)),
    ("TW-GRPO vs GRPO (soft reward)", "twgrpo_soft", "grpo_soft", (50.4, 41.2)),
    ("bnpo aggregation alone vs GRPO (soft reward)", "bnpo_soft", "grpo_soft", None),
    ("token weights alone: TW-GRPO vs bnpo (soft reward)", "twgrpo_soft", "bnpo_soft", None),
    ("TW-GRPO (soft) vs GRPO (binary): the paper's main table", "twgrpo_soft", "grpo_binary", (50.4, 41.1)),
    ("answers still writing vs the uniform fill (TW-GRPO, soft)", "twgrpo_alive", "twgrpo_soft", None),
)
COLUMNS = (*SCORES, *SWAPPED_SCORES)

CSV_COLUMNS = ("row", "seed", "algo", "reward", "template", "weight_fill", *[c for c, _, _ in COLUMNS], "questions",
               *[f"{end}_{c}" for c, _ in DYNAMICS for end in ("first", "last")], "no_signal_steps",
               "train_seconds", "eval_seconds", "eval_swapped_seconds", "load_average")


def csv_line(result: dict) -> dict:
    """The ``results.csv`` fields of one run result (first and last step of the training dynamics)."""
    dyn = result["dynamics"]
    ends = {f"{end}_{c}": (dyn[i][c] if dyn else None) for end, i in (("first", 0), ("last", -1))
            for c, _ in DYNAMICS}
    line = {k: result.get(k) for k in ("row", "seed", "algo", "reward", "template", "weight_fill", "questions",
                                       "train_seconds", "eval_seconds", "eval_swapped_seconds", "load_average")}
    line["no_signal_steps"] = no_signal_share(result)
    return {c: {**line, **result["scores"], **ends}.get(c) for c in CSV_COLUMNS}


def no_signal_share(result: dict) -> float | None:
    """Share of a run's training steps in which every group's rewards were all equal (TRL's
    ``frac_reward_zero_std`` = 1): zero advantages, so the step changed nothing. None without dynamics.

    >>> no_signal_share({"dynamics": [{"zero_std_share": 1.0}, {"zero_std_share": 0.5}]})
    0.5
    """
    values = [d.get("zero_std_share") for d in result["dynamics"] if d.get("zero_std_share") is not None]
    return sum(v == 1.0 for v in values) / len(values) if values else None


def write_csv(results: Sequence[dict], path: str | os.PathLike) -> Path:
    """``results.csv``: one line per run, columns ``CSV_COLUMNS`` (empty cell: no value)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({k: "" if v is None else v for k, v in csv_line(result).items()})
    Path(path).write_text(buffer.getvalue())
    return Path(path)


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation, n) of the values that are not None; std is None below 2 values.

    >>> mean_std([50.0, 40.0, None, 60.0])
    (50.0, 10.0, 3)
    """
    kept = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not kept:
        return None, None, 0
    return statistics.fmean(kept), (statistics.stdev(kept) if len(kept) > 1 else None), len(kept)


def aggregate(results: Sequence[dict]) -> dict[str, dict[str, tuple[float | None, float | None, int]]]:
    """Per row (grid order), per score column: ``mean_std`` over the row's seeds."""
    table = {}
    for row in ROWS:
        runs = [r for r in results if r["row"] == row.name]
        if runs:
            table[row.name] = {c: mean_std([r["scores"].get(c) for r in runs]) for c, _, _ in COLUMNS}
    return table


def dynamics_curves(results: Sequence[dict], column: str) -> dict[str, list[tuple[int, float, float | None]]]:
    """Per row: (step, mean over seeds, sample std over seeds) of one ``DYNAMICS`` column, for the figure.

    >>> runs = [{"row": "grpo_soft", "dynamics": [{"step": 1, "reward_std": v}]} for v in (0.2, 0.4)]
    >>> dynamics_curves(runs, "reward_std")["grpo_soft"][0][:2]
    (1, 0.30000000000000004)
    """
    curves = {}
    for row in ROWS:
        by_step: dict[int, list] = {}
        for r in results:
            if r["row"] == row.name:
                for point in r["dynamics"]:
                    by_step.setdefault(point["step"], []).append(point[column])
        if by_step:
            curves[row.name] = [(step, *mean_std(values)[:2]) for step, values in sorted(by_step.items())]
    return curves


def _cell(stat: tuple[float | None, float | None, int]) -> str:
    mean, std, _ = stat
    if mean is None:
        return "-"
    return f"{mean:.1f}" if std is None else f"{mean:.1f} ± {std:.1f}"


def contrasts(results: Sequence[dict], column: str = "strict_all") -> list[dict]:
    """The ``CONTRASTS`` whose two rows ran: same-seed differences of ``column`` with their interval and verdict.

    >>> runs = [{"row": r, "seed": s, "scores": {"strict_all": v}} for r, s, v in
    ...         [("twgrpo_soft", 0, 50.0), ("twgrpo_soft", 1, 52.0), ("grpo_soft", 0, 40.0), ("grpo_soft", 1, 41.0)]]
    >>> [(c["better"], c["other"], c["mean"], c["verdict"]) for c in contrasts(runs)]
    [('twgrpo_soft', 'grpo_soft', 10.5, 'twgrpo_soft higher: the interval excludes 0')]
    """
    found = []
    names = {r["row"] for r in results}
    for title, a, b, paper in CONTRASTS:
        if a in names and b in names:
            stat = mean_interval(paired_differences(results, a, b, column))
            found.append({"title": title, "better": a, "other": b, "mean": stat[0], "low": stat[1], "high": stat[2],
                          "pairs": stat[3], "verdict": verdict(stat, a, b), "paper": paper})
    return found


def gains(results: Sequence[dict], start: dict) -> dict[str, dict]:
    """Per row: strict accuracy minus the start's (right and swapped videos) and right minus swapped after RL,
    each a ``mean_interval`` over seeds, and a reading in words (``reading``)."""
    table = {}
    for row in ROWS:
        if not any(r["row"] == row.name for r in results):
            continue
        runs = sorted((r for r in results if r["row"] == row.name), key=lambda r: r["seed"])
        right = mean_interval(gains_over(results, row.name, start["scores"].get("strict_all"), "strict_all"))
        swapped = mean_interval(gains_over(results, row.name, start["scores"].get("strict_swapped"), "strict_swapped"))
        gap = mean_interval([r["scores"]["strict_all"] - r["scores"]["strict_swapped"] for r in runs
                             if r["scores"].get("strict_swapped") is not None])
        table[row.name] = {"right": right, "swapped": swapped, "gap": gap, "reading": reading(right, gap)}
    return table


def reading(gain: tuple, gap: tuple) -> str:
    """What a row's intervals say, in words: does RL move strict accuracy, and do the answers use the video.

    >>> reading((5.0, 1.0, 9.0, 3), (0.5, -2.0, 3.0, 3))
    'RL lifts accuracy; right and swapped videos score alike: the answers do not use the video'
    """
    moved = verdict(gain, "lifts", "lowers")
    effect = ("RL lifts accuracy" if moved.startswith("lifts") else "RL lowers accuracy" if moved.startswith("lowers")
              else "no change from RL shown" if gain[1] is not None else "one seed: no interval")
    looked = verdict(gap, "right", "swapped")
    video = ("right beats swapped videos: the answers use the video" if looked.startswith("right higher")
             else "swapped videos score higher" if looked.startswith("swapped higher")
             else "right and swapped videos score alike: the answers do not use the video"
             if gap[1] is not None else "")
    return f"{effect}; {video}" if video else effect


def in_words(table: dict[str, dict]) -> str:
    """The readings of ``gains`` gathered into one sentence: where RL moved strict accuracy, where the answers
    use the video after RL.

    >>> t = {"a": {"reading": "RL lifts accuracy; right beats swapped videos: the answers use the video"},
    ...      "b": {"reading": "no change from RL shown; right and swapped videos score alike: ..."}}
    >>> print(in_words(t).replace("; ", ";\\n"))
    In words: over the start, RL lifts strict accuracy in a, lowers it in no row, shows no change in b;
    after RL the answers use the video (right beats swapped) in a.
    """
    def rows(prefix: str, part: int = 0) -> str:
        return ", ".join(name for name, g in table.items()
                         if (g["reading"].split("; ") + [""])[part].startswith(prefix)) or "no row"

    return (f"In words: over the start, RL lifts strict accuracy in {rows('RL lifts')}, lowers it in "
            f"{rows('RL lowers')}, shows no change in {rows('no change')}; after RL the answers use the video "
            f"(right beats swapped) in {rows('right beats', 1)}.")


def timing_line(results: Sequence[dict], start: dict | None) -> str:
    """Where the grid's time went: mean seconds per run (training, the two evaluations), their sum and the load."""
    runs = list(results)
    evals = [(r.get("eval_seconds") or 0) + (r.get("eval_swapped_seconds") or 0) for r in runs]
    if start is not None:
        evals.append((start.get("eval_seconds") or 0) + (start.get("eval_swapped_seconds") or 0))
    train = [r.get("train_seconds") or 0 for r in runs]
    loads = [x["load_average"] for x in [*runs, *([start] if start else [])] if x.get("load_average") is not None]
    total = (sum(train) + sum(evals)) / 60
    load = f"; 1-minute load average {min(loads):.1f} to {max(loads):.1f}" if loads else ""
    return (f"Time: {len(runs)} runs, per run training {statistics.fmean(train):.0f} s and both evaluations "
            f"{statistics.fmean(evals):.0f} s on average; {total:.1f} min of training and evaluation in all, the "
            f"start's evaluations included{load}.") if runs else ""


def markdown_table(results: Sequence[dict], start: dict | None = None,
                   title: str = "Ablations on mini-CLEVRER", start_label: str | None = None) -> str:
    """``results.md``: accuracy per row (mean ± sample std over seeds, the paper's beside), the gain of each row
    over the start and the paper's contrasts as same-seed differences with 95 % t intervals and verdicts.
    ``start``: ``evaluate_start``'s result; ``start_label``: which checkpoint that is."""
    table = aggregate(results)
    seeds = {name: sorted(r["seed"] for r in results if r["row"] == name) for name in table}
    questions = " or ".join(str(n) for n in sorted({r["questions"] for r in results}))
    lines = [f"## {title}", "",
             f"Accuracy (%) on the same {questions} validation questions for every run and the start, each asked with "
             "its own video (right) and with the video of another question (swapped; a model that ignores the "
             "video scores the same); mean ± sample standard deviation over seeds. Paper: CLEVRER "
             "counterfactual strict accuracy of Qwen2.5-VL-7B (docs/method.md §6), for the shape of the "
             "differences, not the level. \"Steps without signal\": training steps in which every group's G rewards "
             "were equal (zero advantages: the step changed nothing)."
             + (f" Start: {start_label}." if start_label else ""), "",
             "| row | setting | seeds | strict right | strict swapped | partial right | partial swapped "
             "| strict single | strict multi | format % | steps without signal % | paper strict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    columns = ("strict_all", "strict_swapped", "partial_all", "partial_swapped", "strict_single", "strict_multi",
               "format_rate")
    if start is not None:
        cells = [_cell((start["scores"].get(c), None, 1)) for c in columns]
        lines.append("| start | the starting checkpoint, no RL | - | " + " | ".join(cells) + " | - | - |")
    for name, stats in table.items():
        row = ROW_BY_NAME[name]
        cells = [_cell(stats[c]) for c in columns]
        paper = "-" if row.paper is None else f"{row.paper:.1f}"
        share = mean_std([None if no_signal_share(r) is None else 100 * no_signal_share(r)
                          for r in results if r["row"] == name])
        lines.append(f"| {name} | {row.label} | {len(seeds[name])} | " + " | ".join(cells)
                     + f" | {_cell(share)} | {paper} |")
    if start is not None:
        lines += ["", "Strict accuracy after RL minus the start's (points), and right minus swapped videos after RL: "
                  "mean [95 % t interval over seeds].", "",
                  "| row | gain, right video | gain, swapped video | right - swapped after RL | reading |",
                  "|---|---|---|---|---|"]
        table_gains = gains(results, start)
        for name, g in table_gains.items():
            lines.append(f"| {name} | {interval_cell(g['right'])} | {interval_cell(g['swapped'])} | "
                         f"{interval_cell(g['gap'])} | {g['reading']} |")
        lines += ["", in_words(table_gains)]
    lines += ["", "| contrast (strict accuracy, right video) | ours: same-seed difference [95 % interval] | verdict "
              "| paper: difference |", "|---|---|---|---|"]
    for c in contrasts(results):
        paper = c["paper"]
        paper_cell = "-" if paper is None else f"{paper[0] - paper[1]:+.1f} ({paper[0]:.1f} vs {paper[1]:.1f})"
        stat = (c["mean"], c["low"], c["high"], c["pairs"])
        lines.append(f"| {c['title']} | {interval_cell(stat)} (pairs: {c['pairs']}) | {c['verdict']} | {paper_cell} |")
    timing = timing_line(results, start)
    return "\n".join(lines + (["", timing] if timing else [])) + "\n"

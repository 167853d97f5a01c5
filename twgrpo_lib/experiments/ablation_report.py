"""Tables and curves of an ablation grid (``ablation``): results.csv, results.md, mean ± std, dynamics.

Standard deviations are sample standard deviations over seeds (n - 1 in the denominator); a contrast between
two rows is the mean of same-seed differences, so shared seed effects (data order, sampling) cancel.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Sequence
from pathlib import Path

from twgrpo_lib.experiments.grid import DYNAMICS, ROW_BY_NAME, ROWS, SCORES

# The paper's three contrasts (docs/method.md §6) plus the split of TW-GRPO into aggregation and weights:
# (title, better row, other row, the paper's numbers for (better, other) or None).
CONTRASTS: tuple[tuple[str, str, str, tuple[float, float] | None], ...] = (
    ("soft vs binary reward (TW-GRPO)", "twgrpo_soft", "twgrpo_binary", (50.4, 42.6)),
    ("multi- vs single-answer training (TW-GRPO)", "twgrpo_soft", "twgrpo_single", (50.4, 38.9)),
    ("TW-GRPO vs GRPO (soft reward)", "twgrpo_soft", "grpo_soft", (50.4, 41.2)),
    ("bnpo aggregation alone vs GRPO (soft reward)", "bnpo_soft", "grpo_soft", None),
    ("token weights alone: TW-GRPO vs bnpo (soft reward)", "twgrpo_soft", "bnpo_soft", None),
)

CSV_COLUMNS = ("row", "seed", "algo", "reward", "template", *[c for c, _, _ in SCORES], "questions",
               *[f"{end}_{c}" for c, _ in DYNAMICS for end in ("first", "last")], "no_signal_steps",
               "train_seconds", "eval_seconds")


def csv_line(result: dict) -> dict:
    """The ``results.csv`` fields of one run result (first and last step of the training dynamics)."""
    dyn = result["dynamics"]
    ends = {f"{end}_{c}": (dyn[i][c] if dyn else None) for end, i in (("first", 0), ("last", -1))
            for c, _ in DYNAMICS}
    line = {k: result[k] for k in ("row", "seed", "algo", "reward", "template", "questions", "train_seconds",
                                   "eval_seconds")}
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
            table[row.name] = {c: mean_std([r["scores"][c] for r in runs]) for c, _, _ in SCORES}
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


def markdown_table(results: Sequence[dict], start: dict | None = None,
                   title: str = "Ablations on mini-CLEVRER") -> str:
    """``results.md``: mean ± sample std over seeds per row, the paper's strict accuracy beside, and the
    paper's contrasts as differences (ours vs the paper's). ``start``: ``evaluate_start``'s result, a first line."""
    table = aggregate(results)
    seeds = {name: sorted(r["seed"] for r in results if r["row"] == name) for name in table}
    questions = " or ".join(str(n) for n in sorted({r["questions"] for r in results}))
    lines = [f"## {title}", "",
             f"Strict / partial accuracy (%), mean ± sample standard deviation over seeds; {questions} evaluation "
             "questions per run. Paper: CLEVRER counterfactual strict accuracy of Qwen2.5-VL-7B (docs/method.md §6), "
             "for the shape of the differences, not the level. \"Steps without signal\": training steps in which every "
             "group's G rewards were equal (zero advantages: the step changed nothing).", "",
             "| row | setting | seeds | strict all | partial all | strict single | strict multi | partial single "
             "| partial multi | format % | steps without signal % | paper strict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    columns = ("strict_all", "partial_all", "strict_single", "strict_multi", "partial_single", "partial_multi",
               "format_rate")
    if start is not None:
        cells = [_cell((start["scores"][c], None, 1)) for c in columns]
        lines.append("| start | the starting checkpoint, no RL | - | " + " | ".join(cells) + " | - | - |")
    for name, stats in table.items():
        row = ROW_BY_NAME[name]
        cells = [_cell(stats[c]) for c in columns]
        paper = "-" if row.paper is None else f"{row.paper:.1f}"
        share = mean_std([None if no_signal_share(r) is None else 100 * no_signal_share(r)
                          for r in results if r["row"] == name])
        lines.append(f"| {name} | {row.label} | {len(seeds[name])} | " + " | ".join(cells)
                     + f" | {_cell(share)} | {paper} |")
    lines += ["", "| contrast (strict all) | ours: difference | paper: difference |", "|---|---|---|"]
    for title_, a, b, paper in CONTRASTS:
        if a in table and b in table:
            ours = [ra["scores"]["strict_all"] - rb["scores"]["strict_all"]
                    for ra in results if ra["row"] == a for rb in results if rb["row"] == b and rb["seed"] == ra["seed"]
                    if ra["scores"]["strict_all"] is not None and rb["scores"]["strict_all"] is not None]
            paper_cell = "-" if paper is None else f"{paper[0] - paper[1]:+.1f} ({paper[0]:.1f} vs {paper[1]:.1f})"
            mean, std, n = mean_std(ours)
            ours_cell = "-" if mean is None else (f"{mean:+.1f}" + ("" if std is None else f" ± {std:.1f}")
                                                  + f" (same-seed pairs: {n})")
            lines.append(f"| {title_} | {ours_cell} | {paper_cell} |")
    return "\n".join(lines) + "\n"

"""Headline numbers of a notebook run, recorded so that tests, the tutorial's index page and the README read them.

A notebook's summary cell calls ``record("NN_name", numbers, started)``: it writes ``NN_name.headline.json`` in
the working folder (where the tutorial runner also writes the executed notebook) with the numbers and the run
time of the notebook's cells, and prints them. The runner adds the wall time, the parameters it passed and the machine's
load average (run times on a shared machine depend on it);
``read_records`` reads a folder of records back, ``describe`` turns one into short lines for people, and
``readme_table`` / ``replace_block`` write the README's table of measured notebook numbers from them.

>>> describe({"numbers": {"videos": 1000, "share": 0.4567, "reward": {"start": 0.1, "end": 0.35}},
...           "headline": ["videos", "reward"]})
['videos: 1,000', 'reward: 0.1 → 0.35']
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twgrpo_lib.experiments.ablation_report import aggregate, contrasts, gains, mean_std, no_signal_share
from twgrpo_lib.train.grpo import start_end

SUFFIX = ".headline.json"
README_BEGIN = "<!-- notebook-records: begin -->"
README_END = "<!-- notebook-records: end -->"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: tensor and numpy scalars become numbers, NaN and infinities None.

    >>> jsonable({"a": (1, float("nan")), "b": [2.5, float("inf")]})
    {'a': [1, None], 'b': [2.5, None]}
    """
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot record {type(value).__name__} {value!r}: use numbers, strings, lists and dicts")


def record(notebook: str, numbers: Mapping[str, Any], started: float, *, headline: Sequence[str] | None = None,
           folder: str | os.PathLike = ".") -> dict:
    """Write and print the headline numbers of a notebook run; return the record.

    ``started`` is ``time.perf_counter()`` taken in the notebook's first code cell; ``headline`` names the
    entries shown on the index page and in the README (default: all).
    """
    data = jsonable(numbers)
    unknown = sorted(set(headline or ()) - set(data))
    if unknown:
        raise KeyError(f"headline names {unknown}, which are not among the numbers {sorted(data)}")
    result = {"notebook": notebook, "seconds": round(time.perf_counter() - started, 1), "numbers": data,
              "headline": list(headline or data)}
    Path(folder, notebook + SUFFIX).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
    print("\n".join(describe(result, everything=True)))
    print(f"run time: {result['seconds']:.0f} s (recorded in {notebook + SUFFIX})")
    return result


def read_records(folder: str | os.PathLike) -> dict[str, dict]:
    """The records of a folder, by notebook name (``NN_name``), in notebook order."""
    paths = sorted(Path(folder).glob("*" + SUFFIX))
    return {p.name[: -len(SUFFIX)]: json.loads(p.read_text(encoding="utf-8")) for p in paths}


def annotate(folder: str | os.PathLike, notebook: str, **fields: Any) -> dict | None:
    """Add fields (the runner's wall time, its parameters) to a notebook's record; None if it has none."""
    path = Path(folder, notebook + SUFFIX)
    if not path.exists():
        return None
    data = {**json.loads(path.read_text(encoding="utf-8")), **jsonable(fields)}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return data


def number(value: Any) -> str:
    """A recorded value for people: three significant digits, thousands separated, ranges as "a → b".

    >>> [number(v) for v in (0.49703, 1234, 14.583, 238.4, None, [0, 1, 2], {"start": 2.0, "end": 1.5})]
    ['0.497', '1,234', '14.6', '238', '-', '0, 1, 2', '2 → 1.5']
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    if isinstance(value, Mapping) and set(value) == {"start", "end"}:
        return f"{number(value['start'])} → {number(value['end'])}"
    if isinstance(value, Mapping):
        return " · ".join(f"{k}: {number(v)}" for k, v in value.items())
    return ", ".join(number(v) for v in value)


def describe(result: Mapping[str, Any], everything: bool = False) -> list[str]:
    """One "name: value" line per headline entry of a record (every entry with ``everything``)."""
    numbers = result["numbers"]
    keys = list(numbers) if everything else result.get("headline", list(numbers))
    return [f"{key}: {number(numbers[key])}" for key in keys]


def duration(seconds: float | None) -> str:
    """A run time for people.

    >>> duration(7.4), duration(95), duration(3725), duration(None)
    ('7 s', '1 min 35 s', '62 min 5 s', '-')
    """
    if seconds is None:
        return "-"
    seconds = round(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60} s"


def readme_table(records: Mapping[str, Mapping[str, Any]], titles: Mapping[str, str], command: str) -> str:
    """The README's Markdown table of measured notebook numbers, with the command that measured them."""
    lines = ["| notebook | run time | headline numbers (recorded by the notebook) |", "|---|---|---|"]
    total = 0.0
    for name, result in records.items():
        seconds = result.get("wall_seconds", result["seconds"])
        total += seconds
        cells = "; ".join(describe(result)).replace("|", "/")
        load = (f" (load {result['load_average']:.1f} on {result['cpu_count']} cores)" if "load_average" in result
                else "")
        lines.append(f"| [{titles.get(name, name)}](notebooks/{name}.ipynb) | {duration(seconds)}{load} | {cells} |")
    lines.append(f"\nAll {len(records)} notebooks: {duration(total)}. Measured with `{command}`; the run times and "
                 "numbers above are read from the records it wrote, not typed.")
    return "\n".join(lines)


def replace_block(text: str, block: str, markers: tuple[str, str] = (README_BEGIN, README_END)) -> str:
    """``text`` with the part between the README markers (the notebook records' by default) replaced by ``block``.

    >>> replace_block(f"a\\n{README_BEGIN}\\nold\\n{README_END}\\nb", "new")
    'a\\n<!-- notebook-records: begin -->\\nnew\\n<!-- notebook-records: end -->\\nb'
    """
    head, begin, rest = text.partition(markers[0])
    _, end, tail = rest.partition(markers[1])
    if not begin or not end:
        raise ValueError(f"the text has no {markers[0]} ... {markers[1]} block")
    return f"{head}{markers[0]}\n{block}\n{markers[1]}{tail}"


# --- the numbers of notebooks 03-05, taken from the library's own results ------------------------------------

TRAINING_CURVES = {"reward": "reward", "reward_std": "reward_std", "completion_length": "completions/mean_length",
                   "format_reward": "rewards/format_reward/mean", "token_weight_mean": "token_weights/mean"}


def training_numbers(runs: Mapping[str, Sequence[Mapping[str, float]]], window: int = 5) -> dict[str, dict]:
    """Per run: steps, and start / end (means over the first and last ``window`` steps) of each training curve
    it logged; ``token_weight_max`` is the largest weight of any step.

    >>> steps = [{"reward": 0.5, "token_weights/max": 1.7}, {"reward": 1.0, "token_weights/max": 1.6}]
    >>> training_numbers({"tw": steps}, window=1)["tw"]
    {'steps': 2, 'reward': {'start': 0.5, 'end': 1.0}, 'token_weight_max': 1.7}
    """
    numbers = {}
    for name, records in runs.items():
        run: dict[str, Any] = {"steps": len(records)}
        for label, key in TRAINING_CURVES.items():
            values = [r[key] for r in records if r.get(key) is not None]
            if values:
                run[label] = dict(zip(("start", "end"), start_end(values, window)))
        peaks = [r["token_weights/max"] for r in records if r.get("token_weights/max") is not None]
        if peaks:
            run["token_weight_max"] = max(peaks)
        numbers[name] = run
    return numbers


def evaluation_numbers(summaries: Mapping[str, Mapping[str, Any]],
                       swapped: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict]:
    """Strict / partial accuracy and format rate (%) and question count of each evaluated checkpoint; with
    ``swapped`` (the same checkpoints asked with swapped videos) their strict / partial accuracy too.

    >>> evaluation_numbers({"sft": {"overall": {"strict_accuracy": 12.5, "partial_accuracy": 16.0,
    ...                                         "format_rate": 93.8, "count": 32}}})
    {'strict_pct': {'sft': 12.5}, 'partial_pct': {'sft': 16.0}, 'format_pct': {'sft': 93.8}, 'questions': {'sft': 32}}
    """
    fields = {"strict_pct": "strict_accuracy", "partial_pct": "partial_accuracy", "format_pct": "format_rate",
              "questions": "count"}
    numbers = {label: {name: s["overall"][key] for name, s in summaries.items()} for label, key in fields.items()}
    for label, key in (("strict_swapped_pct", "strict_accuracy"), ("partial_swapped_pct", "partial_accuracy")):
        if swapped is not None:
            numbers[label] = {name: swapped[name]["overall"][key] for name in summaries}
    return numbers


def ablation_numbers(results: Sequence[Mapping[str, Any]], start: Mapping[str, Any]) -> dict[str, Any]:
    """Per row of an ablation grid: its seeds, mean strict / partial accuracy (%) with the right and with swapped
    videos, strict std, format rate, the share of training steps without learning signal and the gain over the
    start with its 95 % interval; the starting checkpoint's scores; the paper's contrasts with their intervals
    and verdicts (``ablation_report``)."""
    table = aggregate(results)
    runs = {row: [r for r in results if r["row"] == row] for row in table}
    return {
        "runs": len(results),
        "seeds": {row: sorted(r["seed"] for r in rs) for row, rs in runs.items()},
        "questions_per_run": sorted({r["questions"] for r in results}),
        "strict_all": {row: stats["strict_all"][0] for row, stats in table.items()},
        "strict_swapped": {row: stats["strict_swapped"][0] for row, stats in table.items()},
        "strict_all_std": {row: stats["strict_all"][1] for row, stats in table.items()},
        "partial_all": {row: stats["partial_all"][0] for row, stats in table.items()},
        "partial_swapped": {row: stats["partial_swapped"][0] for row, stats in table.items()},
        "format_pct": {row: stats["format_rate"][0] for row, stats in table.items()},
        "no_signal_steps_pct": {row: _percent(mean_std([no_signal_share(r) for r in rs])[0])
                                for row, rs in runs.items()},
        "gain_over_start": {row: _interval(g["right"]) for row, g in gains(results, start).items()},
        "contrasts": {c["title"]: {**_interval((c["mean"], c["low"], c["high"])), "verdict": c["verdict"]}
                      for c in contrasts(results)},
        "start": {key: start["scores"][key] for key in ("strict_all", "strict_swapped", "partial_all",
                                                        "partial_swapped")},
    }


def _interval(stat: Sequence[float | None]) -> dict[str, float | None]:
    return dict(zip(("mean", "low", "high"), stat[:3]))


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share

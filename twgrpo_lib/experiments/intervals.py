"""Confidence intervals over seeds and the plain-language verdicts of the ablation report.

A grid trains every row once per seed from the same start and scores every run on the same questions. A
contrast between two rows is the mean of same-seed differences d_s = x_{a,s} - x_{b,s} (a seed fixes the data
order and the sampling, so what the seed shares cancels), and its 95 % interval is Student's t interval over
the n seeds:

    mean(d) ± t_{0.975, n-1} * sd(d) / sqrt(n)          sd with n - 1 in the denominator

The gain of a row over the start is the same with d_s = x_{a,s} - x_start (the start is evaluated once: it is
deterministic). These intervals cover the spread between seeds on these questions; they say nothing about how
the numbers would move on other questions. With 3 seeds t_{0.975, 2} = 4.30: the interval is about 2.5 sample
standard deviations wide on each side.

>>> low, high = mean_interval([4.0, 6.0, 8.0])[1:3]
>>> round(low, 2), round(high, 2)
(1.03, 10.97)
>>> verdict(mean_interval([4.0, 6.0, 8.0]), "TW-GRPO", "GRPO")
'TW-GRPO higher: the interval excludes 0'
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence

LEVEL = 0.95


def t_two_sided(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom (Abramowitz & Stegun 26.7.3-4, exact for
    integer df).

    >>> round(t_two_sided(4.302653, 2), 6), round(t_two_sided(12.7062, 1), 5), round(t_two_sided(2.776445, 4), 6)
    (0.95, 0.95, 0.95)
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"df={df}: a positive integer")
    theta = math.atan(abs(t) / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    term = total = 1.0
    if df % 2 == 0:
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + (s * math.sqrt(c2) * total if df > 1 else 0.0))


@functools.lru_cache(maxsize=256)
def t_quantile(level: float, df: int) -> float:
    """The t such that P(|T| <= t) = ``level``, i.e. the (1 + level) / 2 quantile, by bisection.

    >>> [round(t_quantile(0.95, df), 3) for df in (1, 2, 3, 4, 9, 30)]
    [12.706, 4.303, 3.182, 2.776, 2.262, 2.042]
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level}: between 0 and 1")
    low, high = 0.0, 1.0
    while t_two_sided(high, df) < level:
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if t_two_sided(mid, df) < level else (low, mid)
    return (low + high) / 2


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float | None, float | None,
                                                                          float | None, int]:
    """(mean, low, high, n): Student's t interval of the mean; low and high are None below two values.

    >>> mean_interval([2.0, 2.0, 2.0])
    (2.0, 2.0, 2.0, 3)
    >>> mean_interval([1.5]), mean_interval([])
    ((1.5, None, None, 1), (None, None, None, 0))
    """
    kept = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return None, None, None, 0
    mean = statistics.fmean(kept)
    if len(kept) < 2:
        return mean, None, None, len(kept)
    half = t_quantile(level, len(kept) - 1) * statistics.stdev(kept) / math.sqrt(len(kept))
    return mean, mean - half, mean + half, len(kept)


def paired_differences(results: Sequence[dict], a: str, b: str, column: str) -> list[float]:
    """Same-seed differences a - b of one score column, over the seeds both rows ran, in seed order.

    >>> runs = [{"row": r, "seed": s, "scores": {"x": v}} for r, s, v in
    ...         [("a", 0, 5.0), ("a", 1, 7.0), ("b", 0, 4.0), ("b", 1, 4.0), ("b", 2, 9.0)]]
    >>> paired_differences(runs, "a", "b", "x")
    [1.0, 3.0]
    """
    by_seed = {r["seed"]: r["scores"].get(column) for r in results if r["row"] == b}
    pairs = sorted((r["seed"], r["scores"].get(column), by_seed.get(r["seed"])) for r in results if r["row"] == a)
    return [x - y for _, x, y in pairs if x is not None and y is not None]


def gains_over(results: Sequence[dict], row: str, start: float | None, column: str) -> list[float]:
    """A row's score minus the start's, one value per seed.

    >>> gains_over([{"row": "a", "seed": 0, "scores": {"x": 5.0}}], "a", 3.0, "x")
    [2.0]
    """
    if start is None:
        return []
    runs = sorted((r["seed"], r["scores"].get(column)) for r in results if r["row"] == row)
    return [x - start for _, x in runs if x is not None]


def interval_cell(stat: tuple, digits: int = 1) -> str:
    """"+2.0 [-1.3, +5.3]" for a ``mean_interval`` result; the mean alone below two values, "-" with none.

    >>> interval_cell((2.0, -1.25, 5.25, 3)), interval_cell((2.0, None, None, 1)), interval_cell((None,) * 3 + (0,))
    ('+2.0 [-1.2, +5.2]', '+2.0', '-')
    """
    mean, low, high, _ = stat
    if mean is None:
        return "-"
    if low is None:
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def verdict(stat: tuple, better: str, other: str) -> str:
    """A plain-language reading of a difference ``better - other`` with its interval.

    >>> verdict((1.0, -2.0, 4.0, 3), "soft", "binary")
    'no difference shown: the interval includes 0'
    >>> verdict((-3.0, -5.0, -1.0, 3), "soft", "binary"), verdict((2.0, None, None, 1), "soft", "binary")
    ('binary higher: the interval excludes 0', 'one seed: no interval')
    """
    mean, low, high, n = stat
    if mean is None:
        return "not run"
    if low is None:
        return "one seed: no interval"
    if low > 0:
        return f"{better} higher: the interval excludes 0"
    if high < 0:
        return f"{other} higher: the interval excludes 0"
    return "no difference shown: the interval includes 0"

"""Student's t intervals over seeds: the quantiles of published t tables, and the coverage they promise."""

import random
import statistics

import pytest

from twgrpo_lib.experiments.intervals import mean_interval, paired_differences, t_quantile, t_two_sided, verdict

# two-sided 95 % critical values of Student's t (any statistics table)
TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 8: 2.306, 10: 2.228, 20: 2.086, 60: 2.000}


@pytest.mark.parametrize("df,t", sorted(TABLE.items()))
def test_quantiles_match_the_table(df, t):
    assert t_quantile(0.95, df) == pytest.approx(t, abs=6e-4)
    assert t_two_sided(t_quantile(0.95, df), df) == pytest.approx(0.95, abs=1e-9)


def test_distribution_is_monotone_and_tends_to_the_normal():
    values = [t_two_sided(x / 10, 5) for x in range(0, 100)]
    assert values[0] == 0 and all(a < b for a, b in zip(values, values[1:])) and values[-1] < 1
    assert t_quantile(0.95, 10_000) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=1e-3)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_interval_covers_the_mean_95_percent_of_the_time(n):
    rng = random.Random(n)
    trials = 4000
    covered = sum(low <= 10.0 <= high for low, high in
                  (mean_interval([rng.gauss(10.0, 3.0) for _ in range(n)])[1:3] for _ in range(trials)))
    assert abs(covered / trials - 0.95) < 0.015, covered / trials


def test_pairs_follow_the_seed_and_verdicts_read_the_interval():
    runs = [{"row": r, "seed": s, "scores": {"x": v}} for r, s, v in
            [("a", 2, 9.0), ("a", 0, 5.0), ("b", 0, 4.0), ("b", 2, 3.0), ("b", 1, 0.0), ("a", 3, None)]]
    assert paired_differences(runs, "a", "b", "x") == [1.0, 6.0]  # seeds 0 and 2; seed 1 and 3 have no pair
    assert verdict(mean_interval([1.0, 6.0]), "a", "b") == "no difference shown: the interval includes 0"
    assert verdict(mean_interval([5.0, 6.0, 5.5]), "a", "b") == "a higher: the interval excludes 0"
    assert verdict(mean_interval([-5.0, -6.0, -5.5]), "a", "b") == "b higher: the interval excludes 0"

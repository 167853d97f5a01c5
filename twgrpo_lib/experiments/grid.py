"""What the ablation grid is made of: its rows (the paper's ablations, docs/method.md §6), the scores read from
each run's evaluation summary and the training dynamics read from its ``metrics.jsonl``.

>>> [row.name for row in ROWS if row.paper is None]
['bnpo_soft', 'twgrpo_alive']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One row of the ablation grid: what ``training.train`` gets as ``algo`` / ``reward`` / ``template``."""

    name: str
    label: str
    algo: str  # training.ALGOS: tw-grpo | grpo | bnpo
    reward: str  # rewards.REWARD_FUNCTIONS: soft | binary
    template: str  # prompts.TRAIN_TEMPLATES: mixed | single
    paper: float | None  # the paper's CLEVRER counterfactual strict accuracy (%) for this setting, if reported
    weight_fill: str = "uniform"  # token_weighting.FILLS: the paper's uniform fill, or "alive" (beyond the paper)


# The paper numbers are those of docs/method.md §6: its main table and its three ablation contrasts.
ROWS: tuple[Row, ...] = (
    Row("grpo_binary", "GRPO + binary reward", "grpo", "binary", "mixed", 41.1),  # main table
    Row("grpo_soft", "GRPO + soft reward", "grpo", "soft", "mixed", 41.2),  # with soft, TW-GRPO vs GRPO
    Row("bnpo_soft", "bnpo aggregation, alpha = 1 + soft reward", "bnpo", "soft", "mixed", None),  # not in paper
    Row("twgrpo_binary", "TW-GRPO + binary reward", "tw-grpo", "binary", "mixed", 42.6),  # soft vs binary
    Row("twgrpo_soft", "TW-GRPO + soft reward (the paper's method)", "tw-grpo", "soft", "mixed", 50.4),
    Row("twgrpo_single", "TW-GRPO, single-answer training only", "tw-grpo", "soft", "single", 38.9),  # multi vs single
    # beyond the paper: the divergence over the answers still writing (docs/method.md §2), not the uniform fill
    Row("twgrpo_alive", "TW-GRPO + soft reward, divergence over the answers still writing", "tw-grpo", "soft",
        "mixed", None, weight_fill="alive"),
)
ROW_BY_NAME = {row.name: row for row in ROWS}

# Scores of one run, taken from a metrics.summarize summary: (column, group, metric).
SCORES: tuple[tuple[str, str, str], ...] = (
    ("strict_all", "overall", "strict_accuracy"), ("partial_all", "overall", "partial_accuracy"),
    ("strict_single", "single", "strict_accuracy"), ("partial_single", "single", "partial_accuracy"),
    ("strict_multi", "multi", "strict_accuracy"), ("partial_multi", "multi", "partial_accuracy"),
    ("format_rate", "overall", "format_rate"),
)
# Scores of the same run asked with swapped videos (evaluation --swapped-videos): (column, group, metric).
SWAPPED_SCORES: tuple[tuple[str, str, str], ...] = (
    ("strict_swapped", "overall", "strict_accuracy"), ("partial_swapped", "overall", "partial_accuracy"),
    ("format_swapped", "overall", "format_rate"),
)
# Training dynamics of one run, from its metrics.jsonl: (column, metrics.jsonl key).
DYNAMICS: tuple[tuple[str, str], ...] = (
    ("reward", "reward"), ("reward_std", "reward_std"), ("completion_length", "completions/mean_length"),
    ("zero_std_share", "frac_reward_zero_std"),  # groups whose G rewards are all equal: no advantage, no gradient
)

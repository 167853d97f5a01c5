"""Plotly figures for the notebooks: each function takes plain numbers and returns a ``go.Figure``.

Every function is independent and small; the notebooks call ``.show()`` on the result.
"""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go


def grouped_bars(series: Mapping[str, Mapping], title: str, x_title: str, y_title: str,
                 percent: bool = False) -> go.Figure:
    """One bar trace per series; each series maps a category (x) to a value (y).

    >>> fig = grouped_bars({"a": {1: 0.5, 2: 0.5}, "b": {1: 1.0}}, "t", "x", "y", percent=True)
    >>> [trace.name for trace in fig.data], list(fig.data[1].x)
    (['a', 'b'], ['1'])
    """
    fig = go.Figure()
    for name, values in series.items():
        fig.add_bar(name=name, x=[str(k) for k in values], y=list(values.values()),
                    texttemplate="%{y:.0%}" if percent else "%{y}", textposition="outside",
                    cliponaxis=False)
    fig.update_layout(title=title, barmode="group", xaxis_title=x_title, yaxis_title=y_title,
                      template="plotly_white", height=420, legend_title_text="")
    fig.update_xaxes(type="category")
    if percent:
        fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def answer_count_figure(distributions: Mapping[str, Mapping[int, int]], title: str = "Correct letters per item") -> go.Figure:
    """Share of items by number of correct letters, one bar group per setting (e.g. with / without drop).

    >>> fig = answer_count_figure({"random drop": {1: 3, 2: 1}, "no drop": {1: 2, 4: 2}})
    >>> list(fig.data[0].y), list(fig.data[1].x)
    ([0.75, 0.25], ['1', '4'])
    """
    shares = {name: {k: v / max(sum(counts.values()), 1) for k, v in sorted(counts.items())}
              for name, counts in distributions.items()}
    return grouped_bars(shares, title, "correct letters in the answer", "share of items", percent=True)


def accuracy_by_group_figure(summaries: Mapping[str, Mapping], group: str = "question_type",
                             metric: str = "strict_accuracy", title: str | None = None) -> go.Figure:
    """Accuracy of several checkpoints per group of a ``metrics.summarize`` summary, one bar group each.

    ``group``: "split" (single- and multi-answer questions) or a category field (``by_<group>`` entries).

    >>> s = {"single": {"strict_accuracy": 50.0}, "multi": {"strict_accuracy": 25.0}}
    >>> list(accuracy_by_group_figure({"base": s}, "split").data[0].y)
    [0.5, 0.25]
    """
    series = {}
    for name, summary in summaries.items():
        groups = ({"single-answer": summary["single"], "multi-answer": summary["multi"]} if group == "split"
                  else summary.get(f"by_{group}", {}))
        series[name] = {value: (m[metric] or 0.0) / 100 for value, m in groups.items()}
    label = metric.replace("_", " ")
    return grouped_bars(series, title or f"{label} by {group.replace('_', ' ')}", group.replace("_", " "), label,
                        percent=True)

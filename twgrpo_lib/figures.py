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

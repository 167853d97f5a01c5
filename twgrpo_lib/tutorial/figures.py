"""Plotly figures for the notebooks: each function takes plain numbers and returns a ``go.Figure``.

Every function is independent and small; the notebooks call ``.show()`` on the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def answer_count_figure(distributions: Mapping[str, Mapping[int, int]],
                        title: str = "Correct letters per item") -> go.Figure:
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


def token_heatmap(tokens: Sequence[Sequence[str]], values, title: str, colorbar_title: str = "weight",
                  zmin: float | None = None, zmax: float | None = None, colorscale: str = "Reds") -> go.Figure:
    """Each member's tokens as a row of cells coloured by ``values`` (G, T); cells past a member's end are blank.

    >>> fig = token_heatmap([["a", "b"], ["c"]], [[1.0, 1.7], [1.2, 0.0]], "w")
    >>> fig.data[0].z[1][1] is None, fig.data[0].text[0][1]
    (True, 'b')
    """
    width = max((len(row) for row in tokens), default=0)
    z = [[float(values[i][t]) if t < len(row) else None for t in range(width)] for i, row in enumerate(tokens)]
    text = [[row[t].replace("\n", "⏎") if t < len(row) else "" for t in range(width)] for row in tokens]
    fig = go.Figure(go.Heatmap(z=z, text=text, texttemplate="%{text}", textfont={"size": 9}, zmin=zmin, zmax=zmax,
                               colorscale=colorscale, colorbar={"title": colorbar_title}, xgap=1, ygap=1,
                               hovertemplate="member %{y}, position %{x}<br>%{text}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, template="plotly_white", height=120 + 32 * len(tokens),
                      width=max(700, 34 * width), xaxis_title="completion position t", yaxis_title="member i")
    fig.update_yaxes(autorange="reversed", dtick=1)
    return fig


def position_lines(series: Mapping[str, Sequence[float]], title: str, y_title: str,
                   bars: Mapping[str, Sequence[float]] | None = None, bars_title: str = "") -> go.Figure:
    """One line per series along completion positions; optional ``bars`` on a second y axis.

    >>> fig = position_lines({"D_t": [0.0, 2.0]}, "t", "D", bars={"alive": [2, 1]}, bars_title="members")
    >>> [trace.type for trace in fig.data], fig.data[1].yaxis
    (['scatter', 'bar'], 'y2')
    """
    fig = go.Figure()
    for name, values in (bars or {}).items():
        fig.add_bar(name=name, x=list(range(len(values))), y=list(values), yaxis="y2", opacity=0.25,
                    marker_color="gray")
    for name, values in series.items():
        fig.add_scatter(name=name, x=list(range(len(values))), y=list(values), mode="lines+markers",
                        marker={"size": 4})
    fig.data = fig.data[len(bars or {}):] + fig.data[:len(bars or {})]  # lines first in the legend
    fig.update_layout(title=title, template="plotly_white", height=400, xaxis_title="completion position t",
                      yaxis_title=y_title, legend_title_text="")
    if bars:
        fig.update_layout(yaxis2={"title": bars_title, "overlaying": "y", "side": "right", "rangemode": "tozero"})
    return fig


def ablation_bars(table: Mapping[str, Mapping[str, tuple]], columns: Sequence[str] = ("strict_all", "partial_all"),
                  paper: Mapping[str, float | None] | None = None, title: str = "Ablations") -> go.Figure:
    """Mean ± std per ablation row (``ablation.aggregate``) for each score column; the paper's strict beside.

    >>> fig = ablation_bars({"a": {"strict_all": (50.0, 2.0, 3)}}, ["strict_all"], {"a": 41.0})
    >>> [t.name for t in fig.data], list(fig.data[0].error_y.array)
    (['strict_all', 'paper strict (CLEVRER, 7B)'], [2.0])
    """
    rows = list(table)
    fig = go.Figure()
    for column in columns:
        stats = [table[r][column] for r in rows]
        fig.add_bar(name=column, x=rows, y=[s[0] for s in stats],
                    error_y={"type": "data", "array": [s[1] or 0.0 for s in stats]})
    if paper:
        fig.add_bar(name="paper strict (CLEVRER, 7B)", x=rows, y=[paper.get(r) for r in rows],
                    marker_color="lightgray")
    fig.update_layout(title=title, barmode="group", template="plotly_white", height=420, yaxis_title="accuracy %",
                      legend_title_text="")
    return fig


def dynamics_figure(curves: Mapping[str, Sequence[tuple[int, float, float]]], title: str, y_title: str) -> go.Figure:
    """Training curves, one line per row: (step, mean over seeds, std over seeds) with a ±std band.

    >>> fig = dynamics_figure({"grpo": [(1, 0.5, 0.1), (2, 0.4, 0.0)]}, "reward std", "std")
    >>> len(fig.data), list(fig.data[0].x)
    (2, [1, 2])
    """
    fig = go.Figure()
    for name, points in curves.items():
        steps, means, stds = [p[0] for p in points], [p[1] for p in points], [p[2] or 0.0 for p in points]
        line = fig.add_scatter(name=name, x=steps, y=means, mode="lines+markers", legendgroup=name).data[-1]
        fig.add_scatter(x=steps + steps[::-1], y=[m + s for m, s in zip(means, stds)] +
                        [m - s for m, s in zip(means[::-1], stds[::-1])], fill="toself", opacity=0.15,
                        line={"width": 0}, showlegend=False, legendgroup=name, hoverinfo="skip",
                        name=f"{name} ± std")
        line.line.width = 2
    fig.update_layout(title=title, template="plotly_white", height=400, xaxis_title="training step",
                      yaxis_title=y_title, legend_title_text="")
    return fig


def training_curves(runs: Mapping[str, Sequence[Mapping]], panels: Mapping[str, str], window: int = 5,
                    title: str = "Training dynamics") -> go.Figure:
    """One panel per metric, one coloured line per run over optimizer steps (as the paper's training figure).

    ``runs`` maps a run name to its per-step records (``training.step_metrics``); ``panels`` maps a record key
    (e.g. ``"reward"``) to the panel's title. Raw values are drawn faint, their moving average (``window``
    steps) solid. A key a run does not log (token weights of a GRPO run) leaves that run out of the panel.

    >>> runs = {"a": [{"step": 1, "reward": 0.0}, {"step": 2, "reward": 1.0}], "b": [{"step": 1, "reward": 2.0}]}
    >>> fig = training_curves(runs, {"reward": "reward mean", "token_weights/mean": "mean weight"}, window=2)
    >>> [t.name for t in fig.data], list(fig.data[1].y)
    (['a', 'a', 'b', 'b'], [0.0, 0.5])
    """
    from plotly.subplots import make_subplots

    colours = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a"]
    fig = make_subplots(rows=(len(panels) + 1) // 2, cols=min(2, len(panels)), subplot_titles=list(panels.values()))
    for p, key in enumerate(panels):
        row, col = p // 2 + 1, p % 2 + 1
        for r, (name, records) in enumerate(runs.items()):
            points = [(rec["step"], rec[key]) for rec in records if key in rec]
            if not points:
                continue
            steps, values = [s for s, _ in points], [v for _, v in points]
            smooth = [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
                      for i in range(len(values))]
            colour = colours[r % len(colours)]
            fig.add_scatter(x=steps, y=values, name=name, legendgroup=name, showlegend=False, opacity=0.3,
                            line={"color": colour}, row=row, col=col)
            fig.add_scatter(x=steps, y=smooth, name=name, legendgroup=name, showlegend=p == 0,
                            line={"color": colour, "width": 2.5}, row=row, col=col)
        fig.update_xaxes(title_text="step", row=row, col=col)
    fig.update_layout(title=title, template="plotly_white", height=320 * ((len(panels) + 1) // 2))
    return fig

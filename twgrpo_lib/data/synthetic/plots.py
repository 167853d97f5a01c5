"""Plotly figures of mini-CLEVRER scenes: frame strips, trajectories (real beside counterfactual), event logs.

>>> from twgrpo_lib.data.synthetic.sampling import sample_scene
>>> from twgrpo_lib.data.synthetic.physics import simulate
>>> sim = simulate(sample_scene(0, "tiny"))
>>> len(trajectories({"video": sim}).data) >= len(sim.scene.objects)
True
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from twgrpo_lib.data.synthetic.describe import event_text
from twgrpo_lib.data.synthetic.physics import Simulation
from twgrpo_lib.data.synthetic.world import COLOURS

_MARKERS = {"collision": "star", "enter": "triangle-right", "exit": "x"}


def frame_strip(frames: np.ndarray, step: int = 4, title: str = "") -> go.Figure:
    """Every ``step``-th frame of a (T, H, W, 3) video side by side, labelled with its index."""
    indices = list(range(0, len(frames), step))
    fig = make_subplots(rows=1, cols=len(indices), subplot_titles=[f"frame {k}" for k in indices],
                        horizontal_spacing=0.005)
    for col, k in enumerate(indices, start=1):
        fig.add_trace(go.Image(z=frames[k]), row=1, col=col)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=180 + 40 * bool(title), width=110 * len(indices) + 40,
                      margin=dict(l=10, r=10, t=60, b=10))
    return fig


def trajectories(simulations: dict[str, Simulation], samples: int = 200) -> go.Figure:
    """Paths of every object over the whole video, one panel per simulation (e.g. the video and a
    counterfactual), drawn in the object's colour; stars mark collisions, crosses exits."""
    fig = make_subplots(rows=1, cols=len(simulations), subplot_titles=list(simulations), horizontal_spacing=0.04)
    for col, sim in enumerate(simulations.values(), start=1):
        preset = sim.scene.preset
        times = np.linspace(0, preset.duration, samples)
        for i in sim.present():
            obj = sim.scene.objects[i]
            xy = np.array([sim.position(i, t) for t in times])
            seen = np.array([sim.in_view(i, t) for t in times])
            xy[~seen] = np.nan
            fig.add_scatter(x=xy[:, 0], y=xy[:, 1], mode="lines", name=obj.name, legendgroup=obj.name,
                            showlegend=col == 1, line=dict(color=f"rgb{COLOURS[obj.colour]}", width=3),
                            row=1, col=col)
        for e in sim.events:
            if e.kind == "enter":
                continue
            x, y = np.mean([sim.position(i, e.time) for i in e.objects], axis=0)
            fig.add_scatter(x=[x], y=[y], mode="markers", showlegend=False,
                            hovertext=f"{event_text(sim.scene, e)} ({e.time:.2f} s)",
                            marker=dict(symbol=_MARKERS[e.kind], size=14, color="black"), row=1, col=col)
        fig.update_xaxes(range=[0, preset.world_width], row=1, col=col, showticklabels=False)
        fig.update_yaxes(range=[preset.world_height, 0], row=1, col=col, showticklabels=False,
                         scaleanchor=f"x{col if col > 1 else ''}")
    fig.update_layout(template="plotly_white", height=420, plot_bgcolor="rgb(205,203,198)",
                      title="Object paths while in view (stars: collisions, crosses: exits)")
    return fig


def event_log(simulations: dict[str, Simulation]) -> go.Figure:
    """Events against time, one row per event text, one marker colour per simulation (real vs counterfactual)."""
    fig = go.Figure()
    for name, sim in simulations.items():
        events = sim.events
        fig.add_scatter(x=[e.time for e in events], y=[event_text(sim.scene, e) for e in events], mode="markers",
                        name=name, marker=dict(size=12, symbol=[_MARKERS[e.kind] for e in events]))
    fig.update_layout(template="plotly_white", height=120 + 28 * len({t for s in simulations.values() for t in
                      (event_text(s.scene, e) for e in s.events)}), xaxis_title="time (s)", title="Event log",
                      margin=dict(l=10))
    return fig

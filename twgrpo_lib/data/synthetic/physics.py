"""Event-driven 2-D physics with exact event times: elastic collisions between discs, entries and exits.

Objects move in straight lines at constant velocity (no friction, no walls), so every event time is the
root of a linear or quadratic equation and is exact up to floating point. An object *enters* when its disc
first overlaps the frame and *exits* when it stops overlapping it; an object that has exited takes no further
part in the scene. Collisions are elastic between equal masses.

Differences from CLEVRER's simulation (a 3-D rigid-body engine):

1. Top-down 2-D; every object collides as a disc of one radius, including cubes.
2. No friction: a moving object keeps its velocity until it collides or leaves the frame.
3. Equal masses for all objects, whatever their shape or material.

>>> from twgrpo_lib.data.synthetic.world import PRESETS, Scene, SceneObject
>>> a = SceneObject("red", "sphere", "rubber", (1.0, 2.0), (1.0, 0.0))
>>> b = SceneObject("blue", "cube", "metal", (2.0, 2.0), (0.0, 0.0))
>>> sim = simulate(Scene(PRESETS["tiny"], (a, b)))
>>> [(e.kind, round(e.time, 3), e.objects) for e in sim.events]
[('collision', 0.3, (0, 1)), ('exit', 2.65, (1,))]
>>> sim.moving_at_end(), sim.position(1, 1.3)
((), (3.0, 2.0))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from twgrpo_lib.data.synthetic.world import Scene

MAX_EVENTS = 500


@dataclass(frozen=True)
class Event:
    """Something that happens at one instant; ``objects`` are indices into ``scene.objects``."""

    kind: str  # "collision" (two objects, sorted), "enter" or "exit" (one object)
    time: float  # seconds
    objects: tuple[int, ...]


@dataclass
class Simulation:
    """Trajectories (piecewise linear) and the event log of one scene, possibly without some objects."""

    scene: Scene
    removed: frozenset[int]
    events: list[Event]
    # per object: segments (t0, x0, y0, vx, vy), sorted by t0; empty for removed objects
    segments: list[list[tuple[float, float, float, float, float]]] = field(repr=False)

    def present(self) -> list[int]:
        return [i for i in range(len(self.scene.objects)) if i not in self.removed]

    def position(self, index: int, t: float) -> tuple[float, float]:
        """Centre of object ``index`` at time ``t`` (seconds)."""
        segment = self.segments[index][0]
        for candidate in self.segments[index]:
            if candidate[0] <= t:
                segment = candidate
        t0, x0, y0, vx, vy = segment
        return (x0 + vx * (t - t0), y0 + vy * (t - t0))

    def velocity(self, index: int, t: float) -> tuple[float, float]:
        segment = [s for s in self.segments[index] if s[0] <= t] or self.segments[index][:1]
        return segment[-1][3], segment[-1][4]

    def in_view(self, index: int, t: float) -> bool:
        """Does the object overlap the frame at time ``t``?"""
        return index not in self.removed and self.scene.inside_view(*self.position(index, t))

    def events_of(self, kind: str, after: float = -math.inf) -> list[Event]:
        return [e for e in self.events if e.kind == kind and e.time > after]

    def happens(self, kind: str, objects: tuple[int, ...], after: float = -math.inf) -> bool:
        """Is there an event of this kind with these objects (any order) strictly after ``after``?"""
        wanted = tuple(sorted(objects))
        return any(e.kind == kind and e.objects == wanted and e.time > after for e in self.events)

    def moving_at_end(self) -> tuple[int, ...]:
        """Objects in view on the last frame and moving."""
        end = self.scene.preset.duration
        return tuple(i for i in self.present() if self.in_view(i, end) and any(self.velocity(i, end)))


def time_of_impact(p: tuple[float, float], v: tuple[float, float], distance: float) -> float:
    """Earliest t >= 0 at which |p + v t| == distance for approaching discs, else ``inf``.

    ``p`` and ``v`` are the relative position and velocity of the second disc seen from the first.

    >>> time_of_impact((3.0, 0.0), (-1.0, 0.0), 1.0)
    2.0
    >>> time_of_impact((3.0, 0.0), (1.0, 0.0), 1.0)
    inf
    """
    a = v[0] * v[0] + v[1] * v[1]
    b = 2.0 * (p[0] * v[0] + p[1] * v[1])
    c = p[0] * p[0] + p[1] * p[1] - distance * distance
    if a == 0.0 or b >= 0.0:  # not approaching
        return math.inf
    disc = b * b - 4.0 * a * c
    if disc < 0.0:  # they pass each other
        return math.inf
    return max(0.0, 2.0 * c / (-b + math.sqrt(disc)))  # smaller root, stable form


def _view_interval(x: float, y: float, vx: float, vy: float, lo: tuple, hi: tuple) -> tuple[float, float]:
    """Times (relative to now) between which the point moves inside the box [lo, hi]; empty if start > end."""
    start, end = -math.inf, math.inf
    for p, v, low, high in ((x, vx, lo[0], hi[0]), (y, vy, lo[1], hi[1])):
        if v == 0.0:
            if not low <= p <= high:
                return math.inf, -math.inf
            continue
        t1, t2 = sorted(((low - p) / v, (high - p) / v))
        start, end = max(start, t1), min(end, t2)
    return start, end


def simulate(scene: Scene, removed: frozenset[int] | set[int] = frozenset()) -> Simulation:
    """Run ``scene`` without the objects in ``removed`` (a counterfactual) from t = 0 to the last frame."""
    preset, n = scene.preset, len(scene.objects)
    removed = frozenset(removed)
    r = preset.radius
    lo, hi = (-r, -r), (preset.world_width + r, preset.world_height + r)
    pos = [list(o.position) for o in scene.objects]
    vel = [list(o.velocity) for o in scene.objects]
    # status: "before" (not yet overlapping the frame), "in", "gone" (exited) or "removed"
    status = ["removed" if i in removed else "in" if scene.inside_view(*o.position) else "before"
              for i, o in enumerate(scene.objects)]
    segments = [[] if i in removed else [(0.0, pos[i][0], pos[i][1], vel[i][0], vel[i][1])] for i in range(n)]
    events: list[Event] = []
    t = 0.0
    while len(events) < MAX_EVENTS:
        best, action = preset.duration - t, None
        live = [i for i in range(n) if status[i] in ("before", "in")]
        for k, i in enumerate(live):
            for j in live[k + 1:]:
                dt = time_of_impact((pos[j][0] - pos[i][0], pos[j][1] - pos[i][1]),
                                    (vel[j][0] - vel[i][0], vel[j][1] - vel[i][1]), 2 * r)
                if dt < best:
                    best, action = dt, ("collision", i, j)
            start, end = _view_interval(pos[i][0], pos[i][1], vel[i][0], vel[i][1], lo, hi)
            dt = start if status[i] == "before" else end
            if start <= end and 0.0 <= dt < best:
                best, action = dt, ("enter" if status[i] == "before" else "exit", i)
        t += best
        for i in range(n):
            pos[i][0] += vel[i][0] * best
            pos[i][1] += vel[i][1] * best
        if action is None:
            break
        if action[0] == "collision":
            i, j = action[1], action[2]
            nx, ny = pos[j][0] - pos[i][0], pos[j][1] - pos[i][1]
            norm = math.hypot(nx, ny)
            nx, ny = nx / norm, ny / norm
            push = (vel[i][0] - vel[j][0]) * nx + (vel[i][1] - vel[j][1]) * ny  # > 0: approaching
            for k, sign in ((i, -1.0), (j, 1.0)):
                vel[k][0] += sign * push * nx
                vel[k][1] += sign * push * ny
                segments[k].append((t, pos[k][0], pos[k][1], vel[k][0], vel[k][1]))
            events.append(Event("collision", t, (i, j)))
        else:
            kind, i = action
            status[i] = "in" if kind == "enter" else "gone"
            events.append(Event(kind, t, (i,)))
    else:
        raise RuntimeError(f"simulate: more than {MAX_EVENTS} events in scene {scene.seed}")
    return Simulation(scene, removed, events, segments)

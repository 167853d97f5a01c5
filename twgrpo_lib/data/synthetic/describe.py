"""Plain-English phrases for objects and events, and a whole-scene description for visual pre-training.

Objects are named by colour and shape ("the red cube"); colours are unique within a scene, so the name is
unambiguous.

>>> from twgrpo_lib.data.synthetic.sampling import sample_scene
>>> from twgrpo_lib.data.synthetic.physics import Event, simulate
>>> sim = simulate(sample_scene(0, "tiny"))
>>> first, second = sim.scene.objects[0].name, sim.scene.objects[1].name
>>> event_text(sim.scene, Event("collision", 1.0, (0, 1))) == f"The {first} collides with the {second}"
True
>>> describe_scene(sim).startswith(f"There are {len(sim.scene.objects)} objects.")
True
"""

from __future__ import annotations

import math

from twgrpo_lib.data.synthetic.physics import Event, Simulation
from twgrpo_lib.data.synthetic.world import Scene

_DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")


def the(scene: Scene, index: int) -> str:
    return f"the {scene.objects[index].name}"


def event_text(scene: Scene, event: Event) -> str:
    """An option's text: "The red cube collides with the blue sphere", "The gray cylinder exits the scene"."""
    if event.kind == "collision":
        return f"The {scene.objects[event.objects[0]].name} collides with {the(scene, event.objects[1])}"
    verb = {"enter": "enters", "exit": "exits"}[event.kind]
    return f"The {scene.objects[event.objects[0]].name} {verb} the scene"


def event_clause(scene: Scene, event: Event) -> str:
    """Event text as a clause with its time: "the red cube collides with the blue sphere at 1.2 s"."""
    text = event_text(scene, event)
    return f"{text[0].lower()}{text[1:]} at {event.time:.1f} s"


def join_and(parts: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def region(sim: Simulation, index: int, t: float) -> str:
    """Rough position in a 3 x 3 grid ("upper left", "center", ...) or "outside the frame"."""
    preset = sim.scene.preset
    x, y = sim.position(index, t)
    if not (0 <= x <= preset.world_width and 0 <= y <= preset.world_height):
        return "outside the frame"
    row = ("upper", "middle", "lower")[min(int(3 * y / preset.world_height), 2)]
    col = ("left", "center", "right")[min(int(3 * x / preset.world_width), 2)]
    return "center" if (row, col) == ("middle", "center") else f"{row} {col}"


def motion(sim: Simulation, index: int, t: float) -> str:
    """ "at rest" or "moving <direction>" (8 compass directions, y pointing down)."""
    vx, vy = sim.velocity(index, t)
    if vx == 0 and vy == 0:
        return "at rest"
    return "moving " + _DIRECTIONS[round(math.atan2(vy, vx) / (math.pi / 4)) % 8]


def describe_scene(sim: Simulation) -> str:
    """Objects (colour, material, shape, where, how they move at the start), then the event log in order."""
    scene = sim.scene
    lines = [f"There are {len(sim.present())} objects."]
    for i in sim.present():
        o = scene.objects[i]
        if scene.inside_view(*o.position):
            where, how = region(sim, i, 0.0), motion(sim, i, 0.0)
            lines.append(f"A {o.colour} {o.material} {o.shape} starts at the {where}, {how}.")
        else:
            lines.append(f"A {o.colour} {o.material} {o.shape} starts outside the frame.")
    for e in sim.events:
        clause = event_clause(scene, e)
        lines.append(clause[0].upper() + clause[1:] + ".")
    moving = sim.moving_at_end()
    if moving:
        names = join_and([the(scene, i) for i in moving])
        lines.append(f"At the end, {names} {'is' if len(moving) == 1 else 'are'} still moving.")
    else:
        lines.append("At the end, no object in view is moving.")
    return " ".join(lines)

"""CLEVRER-style descriptive questions about what is seen: colours, motion at the end, collision partners.

CLEVRER's questions are mostly descriptive (about 220k of its 305k), asking what objects look like and what
they do. These three are asked of every video that allows them, as lettered multiple choice with 3 or 4
options of which 1 to 3 are correct (``options.assemble``). Their worked reasoning first states the
visual fact, then judges each option:

- "Which of the following colors appear in the video?" (objects in view at the start or entering later);
- "Which of the following objects are moving when the video ends?" (objects in view on the last frame);
- "Which of the following objects does the X collide with?" (X collides at least once).

Each option is judged on its own line, written as in the prompt (``options.option_lines``).

Differences from CLEVRER: multiple choice with several correct options (CLEVRER's descriptive questions are
open-ended with one answer); objects are named by colour and shape.

>>> from twgrpo_lib.data.synthetic.physics import simulate
>>> from twgrpo_lib.data.synthetic.sampling import sample_scene
>>> import numpy as np
>>> qs = extra_descriptive(simulate(sample_scene(0, "tiny", 1)), np.random.default_rng(0))
>>> [q.question.split(" ")[4] for q in qs]
['colors', 'objects', 'objects']
>>> qs[0].thinking.startswith("The colors in the video are ")
True
"""

from __future__ import annotations

from twgrpo_lib.data.synthetic.describe import join_and, the
from twgrpo_lib.data.synthetic.options import assemble, make_question, verdicts
from twgrpo_lib.data.synthetic.physics import Simulation
from twgrpo_lib.data.synthetic.world import COLOURS


def seen_objects(sim: Simulation) -> list[int]:
    """Objects seen in the video: in view at the start or entering later."""
    entered = {e.objects[0] for e in sim.events_of("enter")}
    return [i for i in sim.present() if sim.in_view(i, 0.0) or i in entered]


def colours_present(sim: Simulation, rng):
    scene = sim.scene
    present = sorted(scene.objects[i].colour for i in seen_objects(sim))
    absent = [c for c in COLOURS if c not in present]
    picked = assemble(rng, [present], [absent])
    if picked is None:
        return None
    options, truths = picked
    thinking = f"The colors in the video are {join_and(present)}." + verdicts(options, truths, "yes", "no")
    return make_question("descriptive", "Which of the following colors appear in the video?", options, truths, thinking)


def moving_at_end(sim: Simulation, rng):
    scene, end = sim.scene, sim.scene.preset.duration
    in_view = [i for i in seen_objects(sim) if sim.in_view(i, end)]
    moving = [i for i in in_view if any(sim.velocity(i, end))]
    resting = [i for i in in_view if i not in moving]
    picked = assemble(rng, [moving], [resting])
    if picked is None:
        return None
    chosen, truths = picked
    options = [the(scene, i)[0].upper() + the(scene, i)[1:] for i in chosen]
    fact = (f"When the video ends, {join_and([the(scene, i) for i in moving])} "
            f"{'is' if len(moving) == 1 else 'are'} moving.")
    return make_question("descriptive", "Which of the following objects are moving when the video ends?", options,
                         truths, fact + verdicts(options, truths, "yes", "no"))


def collision_partners(sim: Simulation, rng):
    scene = sim.scene
    collisions = sim.events_of("collision")
    colliding = sorted({i for e in collisions for i in e.objects})
    for k in rng.permutation(len(colliding)):
        x = colliding[int(k)]
        partners = sorted({j for e in collisions if x in e.objects for j in e.objects if j != x})
        others = [i for i in seen_objects(sim) if i != x and i not in partners]
        picked = assemble(rng, [partners], [others])
        if picked is None:
            continue
        chosen, truths = picked
        options = [the(scene, i)[0].upper() + the(scene, i)[1:] for i in chosen]
        fact = f"{the(scene, x).capitalize()} collides with {join_and([the(scene, i) for i in partners])}."
        return make_question("descriptive", f"Which of the following objects does {the(scene, x)} collide with?",
                             options, truths, fact + verdicts(options, truths, "yes", "no"))
    return None


def extra_descriptive(sim: Simulation, rng) -> list:
    """The questions of this module that the scene allows, in a fixed order."""
    made = (colours_present(sim, rng), moving_at_end(sim, rng), collision_partners(sim, rng))
    return [q for q in made if q is not None]

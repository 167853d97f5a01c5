"""The four CLEVRER question types, computed from event logs, with lettered options and a worked reasoning.

- descriptive: one correct option (colour, shape, material or a count);
- explanatory: "Which of the following is responsible for the collision between X and Y?" An object's
  presence is responsible when the collision does not happen in the re-simulation without it; an earlier
  collision is responsible when it is an ancestor in the causal graph (a collision's parents are the previous
  collisions of its two objects);
- predictive: the video is cut (``cut_frame`` frames kept, after every entry) and the options are future events;
- counterfactual: "Without the X, which of the following will happen?", every option checked against the
  re-simulation without X.

Multiple-choice types have 3 or 4 options of which 1 to 3 are correct. Differences from CLEVRER's questions:

1. CLEVRER's predictive and counterfactual questions have 2 and up to 4 choices; here every
   multiple-choice question has 3 or 4 options with a varying number of correct ones.
2. Descriptive questions are lettered multiple choice (CLEVRER's are open-ended).
3. Objects are always named by colour and shape; colours are unique in a scene.

>>> from twgrpo_lib.data.synthetic.sampling import sample_scene
>>> from twgrpo_lib.data.synthetic.physics import simulate
>>> qs = generate_questions(simulate(sample_scene(0, "tiny", 1)), seed=0)
>>> sorted({q.question_type for q in qs})
['counterfactual', 'descriptive', 'explanatory', 'predictive']
>>> all(1 <= len(q.answer) < len(q.options) for q in qs)
True
"""

from __future__ import annotations

import math

import numpy as np

from twgrpo_lib.data.synthetic.describe import describe_scene, event_clause, event_text, join_and, motion, the
from twgrpo_lib.data.synthetic.descriptive import extra_descriptive
from twgrpo_lib.data.synthetic.options import Question, assemble, make_question, mixed, option_lines, verdicts
from twgrpo_lib.data.synthetic.physics import Event, Simulation, simulate
from twgrpo_lib.data.synthetic.sampling import sample_scene
from twgrpo_lib.data.synthetic.world import COLOURS, SHAPES

TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")


def _moves(sim: Simulation, i: int) -> bool:
    return any(s[3] or s[4] for s in sim.segments[i])


def _candidates(sim: Simulation, objects: list[int]) -> list[Event]:
    """Possible option events: a collision for every pair and an exit for every object (time unused)."""
    pairs = [Event("collision", 0.0, (i, j)) for k, i in enumerate(objects) for j in objects[k + 1:]]
    return pairs + [Event("exit", 0.0, (i,)) for i in objects]


def counterfactual(sim: Simulation, removed: int, without: Simulation, rng) -> Question | None:
    """'Without the X, which of the following will happen?' checked against ``without`` (the re-simulation)."""
    scene = sim.scene
    others = [i for i in sim.present() if i != removed]
    true_changed, true_same, false_changed, false_plausible, false_other = [], [], [], [], []
    for e in _candidates(sim, others):
        happens, happened = without.happens(e.kind, e.objects), sim.happens(e.kind, e.objects)
        if happens:
            (true_same if happened else true_changed).append(e)
        elif happened:
            false_changed.append(e)
        else:
            (false_plausible if any(_moves(without, i) for i in e.objects) else false_other).append(e)
    picked = assemble(rng, [true_changed, true_same], [false_changed, false_plausible, false_other])
    if picked is None:
        return None
    events, truths = picked
    options = [event_text(scene, e) for e in events]
    story = [event_clause(scene, e) for e in without.events]
    thinking = (f"Without {the(scene, removed)}, the remaining objects would move like this: "
                + ("; ".join(story) if story else "nothing would happen") + "."
                + verdicts(options, truths, "happens", "does not happen"))
    return make_question("counterfactual", f"Without {the(scene, removed)}, which of the following will happen?",
                         options, truths, thinking, removed=removed)


def _ancestors(sim: Simulation, event: Event) -> list[Event]:
    """Earlier collisions that lead to ``event`` in the causal graph, in time order."""
    collisions = sim.events_of("collision")
    found, frontier = set(), [event]
    while frontier:
        e = frontier.pop()
        for obj in e.objects:
            before = [c for c in collisions if obj in c.objects and c.time < e.time]
            if before and before[-1] not in found:
                found.add(before[-1])
                frontier.append(before[-1])
    return sorted(found, key=lambda e: e.time)


def explanatory(sim: Simulation, without: dict[int, Simulation], rng) -> Question | None:
    """'Which of the following is responsible for the collision between X and Y?'"""
    scene = sim.scene
    collisions = sim.events_of("collision")
    counts = {c.objects: sum(d.objects == c.objects for d in collisions) for c in collisions}
    for k in rng.permutation(len(collisions)):
        target = collisions[k]
        a, b = target.objects
        if counts[target.objects] > 1:
            continue
        ancestors = _ancestors(sim, target)
        presence_true, presence_false = [], []
        for z in sim.present():
            if z not in (a, b):
                (presence_false if without[z].happens("collision", (a, b)) else presence_true).append(("presence", z))
        others = [("collision", c) for c in collisions if c != target and counts[c.objects] == 1]
        picked = assemble(rng, [presence_true + [c for c in others if c[1] in ancestors]],
                           [presence_false + [c for c in others if c[1] not in ancestors]])
        if picked is None:
            continue
        causes, truths = picked
        options, reasons = [], []
        for (kind, what), ok in zip(causes, truths):
            if kind == "presence":
                options.append(f"The presence of {the(scene, what)}")
                reasons.append(f"without {the(scene, what)}, {the(scene, a)} and {the(scene, b)} "
                               + ("would not collide" if ok else "would still collide"))
            else:
                options.append(f"The collision between {the(scene, what.objects[0])} and {the(scene, what.objects[1])}")
                reasons.append(f"it happens at {what.time:.1f} s, "
                               + ("before the collision and leads to it" if ok else "after the collision"
                                  if what.time > target.time else "before the collision but does not lead to it"))
        chain = [event_clause(scene, e) for e in ancestors]
        thinking = (f"{event_clause(scene, target)[0].upper()}{event_clause(scene, target)[1:]}. "
                    + (f"Before it, {'; '.join(chain)}." if chain else "No earlier collision leads to it.")
                    + option_lines(options, reasons))
        question = ("Which of the following is responsible for the collision between "
                    f"{the(scene, a)} and {the(scene, b)}?")
        return make_question("explanatory", question, options, truths, thinking)
    return None


def predictive(sim: Simulation, rng) -> Question | None:
    """Cut the video after every entry and before some events; 'What will happen next?'"""
    scene, preset = sim.scene, sim.scene.preset
    entries = [e.time for e in sim.events_of("enter")]
    first = max(math.ceil(max(entries, default=0.0) * preset.fps) + 2, math.ceil(0.35 * preset.frames))
    cuts = [c for c in range(first, preset.frames - 3)
            if [e for e in sim.events if e.kind != "enter" and e.time > (c - 1) / preset.fps]]
    for c in [cuts[k] for k in rng.permutation(len(cuts))][:4]:
        t_cut = (c - 1) / preset.fps
        visible = [i for i in sim.present() if sim.in_view(i, t_cut)]
        true, false_plausible, false_other = [], [], []
        for e in _candidates(sim, visible):
            if sim.happens(e.kind, e.objects, after=t_cut):
                true.append(e)
            else:
                moving = any(any(sim.velocity(i, t_cut)) for i in e.objects)
                (false_plausible if moving else false_other).append(e)
        picked = assemble(rng, [true], [false_plausible, false_other])
        if picked is None:
            continue
        events, truths = picked
        options = [event_text(scene, e) for e in events]
        state = "; ".join(f"{the(scene, i)} is {motion(sim, i, t_cut)}" for i in visible)
        future = [event_clause(scene, e) for e in sim.events if e.time > t_cut]
        thinking = (f"The video stops at {t_cut:.1f} s: {state}. Continuing the motion, {'; '.join(future)}."
                    + verdicts(options, truths, "will happen", "will not happen"))
        return make_question("predictive", "What will happen next?", options, truths, thinking, cut_frame=c)
    return None


def _single(rng, question: str, correct: str, others: list[str], thinking: str, ordered: bool = False) -> Question:
    """A single-answer question; ``ordered`` sorts the options (numbers by value) instead of shuffling."""
    options = [correct] + others
    if ordered:
        options.sort(key=lambda o: (len(o), o) if o.isdigit() else (0, o))
    else:
        options = [options[k] for k in rng.permutation(len(options))]
    truths = [o == correct for o in options]
    return make_question("descriptive", question, options, truths, thinking + verdicts(options, truths, "yes", "no"))


def _count_options(rng, correct: int) -> list[str]:
    start = max(0, correct - int(rng.integers(0, 4)))
    return [str(n) for n in range(start, start + 4)]


def descriptive(sim: Simulation, rng) -> Question | None:
    """One single-answer question about attributes, order or counts, drawn among those the scene allows."""
    scene = sim.scene
    collisions, entries, exits = sim.events_of("collision"), sim.events_of("enter"), sim.events_of("exit")
    makers = []
    if entries:
        def last_entry():
            i = entries[-1].objects[0]
            colour = scene.objects[i].colour
            pool = [o.colour for o in scene.objects if o.colour != colour] + [c for c in COLOURS if c != colour]
            others = list(dict.fromkeys(pool))[:3]
            return _single(rng, "What is the color of the object that enters the scene last?", colour, others,
                           f"The last object to enter is {the(scene, i)}; {event_clause(scene, entries[-1])}.")
        makers.append(last_entry)
    partners = {i: {j for e in collisions if i in e.objects for j in e.objects if j != i} for i in sim.present()}
    unique = [i for i, p in partners.items() if len({scene.objects[j].shape for j in p}) == 1]
    if unique:
        def partner_shape():
            i = unique[int(rng.integers(len(unique)))]
            j = sorted(partners[i])[0]
            shape = scene.objects[j].shape
            clauses = [event_clause(scene, e) for e in collisions if i in e.objects]
            return _single(rng, f"What is the shape of the object that collides with {the(scene, i)}?", shape,
                           [s for s in SHAPES if s != shape], f"{'; '.join(clauses).capitalize()}. It is a {shape}.")
        makers.append(partner_shape)
    if exits:
        def first_exit_material():
            i = exits[0].objects[0]
            material = scene.objects[i].material
            return _single(rng, "What is the material of the first object to exit the scene?", material,
                           ["rubber" if material == "metal" else "metal"],
                           f"The first object to exit is {the(scene, i)} ({event_clause(scene, exits[0])}); "
                           f"it is {material}.",
                           ordered=True)
        makers.append(first_exit_material)

    def moving_count():
        moving = sim.moving_at_end()
        names = join_and([the(scene, i) for i in moving]) if moving else "no object"
        options = _count_options(rng, len(moving))
        return _single(rng, "How many objects are moving when the video ends?", str(len(moving)),
                       [o for o in options if o != str(len(moving))],
                       f"On the last frame, {names} {'is' if len(moving) < 2 else 'are'} moving: {len(moving)}.",
                       ordered=True)

    def collision_count():
        clauses = [event_clause(scene, e) for e in collisions]
        return _single(rng, "How many collisions happen in the video?", str(len(collisions)),
                       [o for o in _count_options(rng, len(collisions)) if o != str(len(collisions))],
                       f"{'; '.join(clauses).capitalize()}: {len(collisions)} in all.", ordered=True)

    makers += [moving_count, collision_count]
    return makers[int(rng.integers(len(makers)))]()


def generate_questions(sim: Simulation, seed: int | tuple = 0, counterfactuals: int = 2) -> list[Question]:
    """Questions of every type the scene allows: one descriptive, explanatory and predictive, up to
    ``counterfactuals`` counterfactual questions about different removed objects (colliding objects first),
    then the descriptive questions of ``synthetic.descriptive`` (colours, motion at the end, partners)."""
    rng = np.random.default_rng(seed if isinstance(seed, int) else list(seed))
    without = {z: simulate(sim.scene, {z}) for z in sim.present()}
    out = [descriptive(sim, rng), explanatory(sim, without, rng), predictive(sim, rng)]
    colliding = sorted({i for e in sim.events_of("collision") for i in e.objects})
    order = mixed(rng, [colliding, [i for i in sim.present() if i not in colliding]])
    made = 0
    for z in order:
        if made == counterfactuals:
            break
        question = counterfactual(sim, z, without[z], rng)
        if question is not None:
            out.append(question)
            made += 1
    out += extra_descriptive(sim, rng)
    return [q for q in out if q is not None]


def corpus(scenes: int = 50, preset: str = "tiny") -> list[str]:
    """Question, option, reasoning and scene-description text of the first ``scenes`` scenes of seed 0
    (e.g. to train a small tokenizer on the dataset's language).

    >>> any(line.startswith("Without the ") for line in corpus(3))
    True
    """
    lines = []
    for index in range(scenes):
        sim = simulate(sample_scene(0, preset, index))
        lines.append(describe_scene(sim))
        for q in generate_questions(sim, seed=index):
            lines += [q.problem, q.completion]
    return lines

"""mini-CLEVRER: CLEVRER-like physics videos with exact ground truth, generated locally in seconds.

Modules: ``world`` (attributes, presets, scene state), ``physics`` (event-driven simulation and
counterfactual re-simulation), ``sampling`` (scenes from a seed), ``render`` (frames and H.264 mp4),
``describe`` (English phrases, scene descriptions), ``questions`` (the four CLEVRER question types),
``build`` (``twgrpo make-data``) and ``plots`` (figures for the notebook).

>>> sim = simulate(sample_scene(seed=0, preset="tiny", index=0))
>>> len(generate_questions(sim, seed=0)) >= 3
True
"""

from twgrpo_lib.data.synthetic.build import build_dataset, load_scenes, make_video, video_questions
from twgrpo_lib.data.synthetic.describe import describe_scene, event_text
from twgrpo_lib.data.synthetic.physics import Event, Simulation, simulate, time_of_impact
from twgrpo_lib.data.synthetic.questions import Question, corpus, generate_questions
from twgrpo_lib.data.synthetic.render import render_frames, save_png, write_mp4
from twgrpo_lib.data.synthetic.sampling import sample_scene
from twgrpo_lib.data.synthetic.world import COLOURS, MATERIALS, PRESETS, SHAPES, Preset, Scene, SceneObject

__all__ = [
    "COLOURS", "MATERIALS", "PRESETS", "SHAPES", "Event", "Preset", "Question", "Scene", "SceneObject", "Simulation",
    "build_dataset", "corpus", "describe_scene", "event_text", "generate_questions", "load_scenes", "make_video",
    "render_frames", "sample_scene", "save_png", "simulate", "time_of_impact", "video_questions", "write_mp4",
]

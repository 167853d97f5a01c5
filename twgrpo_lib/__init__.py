"""TW-GRPO kit: token-weighted GRPO for video question answering, small enough to read.

The package is layered; a module imports only from its own layer and those above it in this list
(``tests/test_layers.py`` checks it):

``core``: the paper's ideas as pure functions, importing nothing else of the kit

- ``answers``: the one answer parser shared by training rewards and benchmark scoring.
- ``rewards``: soft / binary / IoU accuracy and the format reward (docs/method.md §3).
- ``prompts``: the prompt strings of the paper's runs, verbatim, and the video chat turn (docs/method.md §7).
- ``qa_inversion``: question-answer inversion (docs/method.md §4).
- ``token_weighting``: the paper's per-token weights, memory-bounded (docs/method.md §2).

``data``: files and videos

- ``formats``: the one JSON record reader and the loaders of the benchmark formats A-D (docs/formats.md).
- ``examples``: training inputs built from items (TRL rows for GRPO, supervised examples).
- ``video``: frame sampling with decord and the video settings (fps, frames, pixels).
- ``predictions``: the predictions store that survives ``kill -9`` (docs/formats.md §E).
- ``run_folder``: an output folder belongs to one run (``run.json``), one writer at a time, ``--force`` moves
  another run aside; ``arguments``: valid ranges of numeric settings, checked before any work starts.
- ``inversion``: ``twgrpo invert``, QA inversion of a file.
- ``synthetic``: mini-CLEVRER, a CLEVRER-like video benchmark generated locally (``world``, ``physics``,
  ``sampling``, ``render``, ``describe``, ``options`` and ``questions`` (the four CLEVRER types),
  ``descriptive`` (CLEVRER-style descriptive questions), ``token_labels`` (what each video token shows, from the
  simulation), ``build`` = ``twgrpo make-data``, ``plots``).

``models``: Qwen2.5-VL

- ``qwen``: loading a checkpoint, the chat text of a video question, batches, loss and generation.
- ``tiny``: a tiny Qwen2.5-VL (tokenizer trained locally, model from a config), built offline.
- ``shipped``: the tiny checkpoint shipped with the kit.

``train``: training

- ``grpo_trainer``: ``TWGRPOConfig`` / ``TWGRPOTrainer`` on TRL's ``GRPOTrainer``, video in every forward.
- ``vision_inputs``: video prompts for the trainer, decoded and encoded once per batch.
- ``grpo``: ``twgrpo train``, GRPO / TW-GRPO runs from a recipe (``twgrpo_lib/recipes/``).
- ``resume``: the newest complete checkpoint of a run and its ``metrics.jsonl`` cut back to it (``--resume``).
- The tiny model's stages: ``vision_pretrain`` (``twgrpo pretrain-vision``: the vision tower learns per-token
  labels from the simulator), ``binding`` (``twgrpo bind``: the language model binds question words to video
  tokens with auxiliary heads, then learns the answers), and the supervised next-token loop ``supervised``
  shared by ``pretrain`` (visual curriculum) and ``sft`` (warm start in the answer format).

``eval``: evaluation

- ``evaluation``: ``twgrpo evaluate``, resumable benchmark evaluation with the paper's protocol.
- ``posing``: how an item is posed: the paper's prompts, chat messages, which questions a run asks.
- ``metrics`` and ``rescore``: strict / partial / per-option accuracy; ``twgrpo rescore``.
- ``grounding``: does a model look at the video? right versus swapped video.
- ``benchmarks``: the paper's benchmarks and evaluating several checkpoints side by side.

``experiments``: ``grid`` (rows, scores), ``ablation`` (``twgrpo ablate``), ``ablation_report`` (tables) and
``intervals`` (same-seed differences with 95 % t intervals).

``tutorial``: ``runner`` (runs and renders the notebooks), ``site`` (the index page), ``headline`` (the numbers
each notebook records), ``display`` (training without the Trainer's log table), ``controls`` (widgets that never
stall a headless run), ``figures`` (plotly), ``focus`` (notebook 02).

``cli``: the ``twgrpo`` command; an expected failure is one line and exit status 2 (``--debug``: traceback).
"""

__version__ = "0.1.0"

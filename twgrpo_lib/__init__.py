"""TW-GRPO kit: token-weighted GRPO for video question answering, small enough to read.

Modules, one idea each:

- ``answers``: the one answer parser shared by training rewards and benchmark scoring.
- ``rewards``: soft / binary / IoU accuracy and the format reward (docs/method.md §3).
- ``qa_inversion``: question-answer inversion (docs/method.md §4).
- ``token_weighting``: the paper's per-token weights, memory-bounded (docs/method.md §2).
- ``prompts``: the prompt strings of the paper's runs, verbatim (docs/method.md §7).
- ``video`` and ``datasets``: frame sampling with decord and loaders for the benchmark formats.
- ``synthetic``: mini-CLEVRER, a CLEVRER-like video benchmark generated locally.
- ``metrics``, ``rescore`` and ``evaluation``: benchmark scoring and resumable evaluation runs.
- ``tiny_model``: a tiny Qwen2.5-VL (tokenizer trained locally, model from a config), built offline.
- ``trainer`` and ``vision_inputs``: the TW-GRPO trainer on top of TRL's ``GRPOTrainer``, with the video of
  each prompt in every forward pass.
- ``figures``: plotly figures of the notebooks.
- ``tutorial``: runs the notebooks with papermill and renders them as HTML.
- ``cli``: the ``twgrpo`` command.
"""

__version__ = "0.1.0"

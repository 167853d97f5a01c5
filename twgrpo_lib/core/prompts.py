"""Prompt strings of the paper's runs, verbatim (docs/method.md §7).

A reproduction must use these byte for byte: the double space after ``{Question}`` in the training
template and the trailing space in the CLEVRER evaluation template are part of the data.

>>> training_prompt("Which?\\nA. x\\nB. y").endswith("in <answer> </answer> tags.")
True
>>> "Which?\\nA. x\\nB. y  Output" in training_prompt("Which?\\nA. x\\nB. y")
True
>>> general_question("What is poured?", ["A. Milk", "B. Water"])
'What is poured?Options:\\nA. Milk\\nB. Water\\n'
"""

from __future__ import annotations

# --- training (no system prompt) -------------------------------------------------------------------
TRAIN_TEMPLATES = {
    # "mixed": single- and multi-answer questions together, the paper's main run
    "mixed": "{Question}  Output the thinking process in <think> </think> and final answer "
    "(letters separated by , if multiple) in <answer> </answer> tags.",
    "single": "{Question}  Output the thinking process in <think> </think> and final answer "
    "(select one letter) in <answer> </answer> tags.",
    "multi": "{Question}  Output the thinking process in <think> </think> and final answer "
    "(select letters separated by ,) in <answer> </answer> tags.",
}

# --- CLEVRER evaluation -------------------------------------------------------------------------------
CLEVRER_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think><answer> answer here "
    "</answer>"
)
CLEVRER_EVAL_TEMPLATE = (
    "{Question} Output the thinking process in <think> </think> and final answer "
    "(letters separated by , if multiple) in <answer> </answer> tags. "
)

# --- general benchmarks (Video-R1's template; no system prompt) ----------------------------------------
GENERAL_EVAL_TEMPLATE = (
    "{Question} Please think about this question as if you were a human pondering deeply. Engage in an "
    "internal dialogue using expressions such as 'let me think', 'wait', 'Hmm', 'oh, I see', "
    "'let's break it down', etc, or other natural language thought expressions. It's encouraged to "
    "include self-reflection or verification in the reasoning process. Provide your detailed reasoning "
    "between the <think> and </think> tags, and then give your final answer between the <answer> and "
    "</answer> tags."
)
GENERAL_TYPE_SUFFIX = {
    "multiple choice": " Please provide only the single option letter (e.g., A, B, C, D, etc.) within "
    "the <answer> </answer> tags.",
}


def training_prompt(question: str, mode: str = "mixed") -> str:
    """User text of a training prompt; ``question`` already holds the lettered options."""
    return TRAIN_TEMPLATES[mode].format(Question=question)


def clevrer_eval_prompt(question: str) -> str:
    """User text of a CLEVRER-style evaluation prompt (use with ``CLEVRER_SYSTEM_PROMPT``)."""
    return CLEVRER_EVAL_TEMPLATE.format(Question=question)


def general_question(problem: str, options: list[str]) -> str:
    """Video-R1's question text for multiple choice: problem + "Options:\\n" + one option per line."""
    return problem + "Options:\n" + "".join(option + "\n" for option in options)


def general_eval_prompt(question: str, problem_type: str = "multiple choice") -> str:
    """User text for the general benchmarks: Video-R1's template plus the per-type suffix."""
    if problem_type not in GENERAL_TYPE_SUFFIX:
        raise ValueError(f"no answer suffix for problem_type {problem_type!r}; known: {sorted(GENERAL_TYPE_SUFFIX)}")
    return GENERAL_EVAL_TEMPLATE.format(Question=question) + GENERAL_TYPE_SUFFIX[problem_type]


def video_chat(text: str, system: str | None = None) -> list[dict]:
    """The chat messages of one video question: an optional system turn, then a user turn holding the video
    first and the text after it (the order of the paper's scripts). Every prompt of the kit is built here.

    >>> video_chat("Which?")
    [{'role': 'user', 'content': [{'type': 'video'}, {'type': 'text', 'text': 'Which?'}]}]
    >>> video_chat("Which?", system="Be brief.")[0]
    {'role': 'system', 'content': 'Be brief.'}
    """
    messages = [] if system is None else [{"role": "system", "content": system}]
    return messages + [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": text}]}]

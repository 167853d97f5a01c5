"""Answer extraction speed: ``answers.tagged_answer`` (str.find) against the lazy regular expression of the
reference scripts, on a normal completion and on 100k characters of unclosed ``<answer>`` tags.

    .venv/bin/python benchmarks/bench_answer_parser.py
"""

import re
import timeit

from twgrpo_lib.core.answers import tagged_answer
from twgrpo_lib.core.rewards import format_reward_score

LAZY = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

CASES = {
    "normal completion (~1k chars)": "<think>" + "the red cube hits the sphere. " * 30 + "</think><answer>A,C</answer>",
    "100k chars, no tags": "x" * 100_000,
    "100k chars of unclosed <answer>": "<answer>" * 12_500,
}

for name, text in CASES.items():
    assert tagged_answer(text) == (m.group(1) if (m := LAZY.search(text)) else None)
    number = 3 if "unclosed" in name else 200
    ours = min(timeit.repeat(lambda t=text: tagged_answer(t), number=number, repeat=3)) / number
    regex = min(timeit.repeat(lambda t=text: LAZY.search(t), number=number, repeat=3)) / number
    fmt = min(timeit.repeat(lambda t=text: format_reward_score(t), number=number, repeat=3)) / number
    print(f"{name:34s} str.find {ours * 1e6:10.1f} us   lazy regex {regex * 1e6:12.1f} us   "
          f"ratio {regex / ours:9.1f}x   format check {fmt * 1e6:8.1f} us")

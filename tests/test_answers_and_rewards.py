"""The answer parser and the rewards: table-driven edge cases and properties."""

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twgrpo_lib.core.answers import answer_set, extract_answer, option_letters, tagged_answer
from twgrpo_lib.core.rewards import (
    accuracy_reward,
    binary_accuracy,
    binary_accuracy_reward,
    completion_text,
    format_reward,
    format_reward_score,
    get_reward_functions,
    iou_accuracy,
    iou_accuracy_reward,
    soft_accuracy,
)

AC = "<answer>A,C</answer>"

# (completion, solution, soft, binary, iou) under the default rule (rule="whole").
ACCURACY_CASES = [
    ("<think>x</think><answer>A</answer>", "<answer>A</answer>", 1.0, 1.0, 1.0),
    ("<answer>A</answer>", AC, 0.5, 0.0, 0.5),
    ("<answer> A , C </answer>", AC, 1.0, 1.0, 1.0),                 # spaces anywhere
    ("<answer>A, C</answer>", "A,C", 1.0, 1.0, 1.0),                 # solution without tags
    ("<answer>C,A</answer>", AC, 1.0, 1.0, 1.0),                     # order does not matter
    ("<answer>A,A</answer>", "<answer>A</answer>", 1.0, 1.0, 1.0),   # duplicates collapse
    ("<answer>A,A</answer>", AC, 0.5, 0.0, 0.5),
    ("<answer>A,B</answer>", AC, 0.0, 0.0, 1 / 3),                   # one wrong letter: soft 0
    ("<answer>A,B,C</answer>", AC, 0.0, 0.0, 2 / 3),
    ("<answer></answer>", AC, 0.0, 0.0, 0.0),                        # empty answer
    ("<answer>A,</answer>", AC, 0.0, 0.0, 1 / 3),                    # trailing comma: empty piece
    ("<answer>\n  B \n</answer>", "<answer>B</answer>", 1.0, 1.0, 1.0),
    ("<answer>A,\nC</answer>", AC, 1.0, 1.0, 1.0),                   # pieces are stripped
    ("<answer>A,\tC</answer>", AC, 1.0, 1.0, 1.0),
    ("<answer>A\nC</answer>", AC, 0.0, 0.0, 0.0),                    # newline is not a separator
    ("<answer>A;C</answer>", AC, 0.0, 0.0, 0.0),
    ("B", "<answer>B</answer>", 1.0, 1.0, 1.0),                      # no tags: whole completion
    ("The answer is B", "<answer>B</answer>", 0.0, 0.0, 0.0),
    ("<answer>A</answer><answer>C</answer>", AC, 0.5, 0.0, 0.5),     # first tag pair wins
    ("<answer>B</answer> no wait, <answer>A,C</answer>", AC, 0.0, 0.0, 0.0),
    ("<think>x</think><answer>A</answer> so C too", AC, 0.5, 0.0, 0.5),  # text after </answer>
    ("<think>x</think><answer>A", "<answer>A</answer>", 0.0, 0.0, 0.0),  # unclosed tag: no tag
    ("<answer>a</answer>", "<answer>A</answer>", 0.0, 0.0, 0.0),     # strict: case matters
    ("<answer>(A)</answer>", "<answer>A</answer>", 0.0, 0.0, 0.0),
    ("<answer>A.</answer>", "<answer>A</answer>", 0.0, 0.0, 0.0),
    ("<answer>Ａ</answer>", "<answer>A</answer>", 0.0, 0.0, 0.0),     # full-width letter
    ("<answer>A，C</answer>", AC, 0.0, 0.0, 0.0),                    # full-width comma
    ("<think>因为立方体撞到了球 ✓</think><answer>C</answer>", AC, 0.5, 0.0, 0.5),
]


@pytest.mark.parametrize("completion,solution,soft,binary,iou", ACCURACY_CASES)
def test_accuracy_table(completion, solution, soft, binary, iou):
    assert soft_accuracy(completion, solution) == pytest.approx(soft)
    assert binary_accuracy(completion, solution) == binary
    assert iou_accuracy(completion, solution) == pytest.approx(iou)


@pytest.mark.parametrize("completion,whole,phrase", [
    ("C", 0.5, 0.0),                                  # phrase: no tags and no phrase -> ""
    ("Answer: A, C", 0.0, 1.0),                       # phrase: the "Answer: X" fallback
    ("the final answer\nC", 0.0, 0.5),
    ("answer is A", 0.0, 0.0),                        # "is" is not a letter list
    ("<answer>A,C</answer>", 1.0, 1.0),               # with tags both rules agree
    ("<answer></answer> Answer: A,C", 0.0, 0.0),      # an empty tagged answer is still the answer
])
def test_whole_and_phrase_rules_differ_only_without_tags(completion, whole, phrase):
    assert soft_accuracy(completion, AC) == whole
    assert soft_accuracy(completion, AC, rule="phrase") == phrase


@pytest.mark.parametrize("answer,strict,lenient", [
    ("a", {"a"}, {"A"}),
    ("(A)", {"(A)"}, {"A"}),
    ("A.", {"A."}, {"A"}),
    ("A) the red cube, [c]", {"A)theredcube", "[c]"}, {"A", "C"}),
    ("Option B", {"OptionB"}, {"B"}),
    ("apple", {"apple"}, {"apple"}),                  # not a letter form: unchanged
])
def test_lenient_answer_set_maps_letter_forms(answer, strict, lenient):
    assert answer_set(answer) == strict
    assert answer_set(answer, lenient=True) == lenient


def test_lenient_is_never_the_default():
    assert soft_accuracy("<answer>(a), c.</answer>", AC) == 0.0
    assert soft_accuracy("<answer>(a), c.</answer>", AC, lenient=True) == 1.0


def test_hundred_thousand_character_completions_are_handled():
    long_think = "<think>" + "the cube moves. " * 6250 + "</think><answer>A,C</answer>"
    assert len(long_think) > 100_000
    assert soft_accuracy(long_think, AC) == 1.0 and format_reward_score(long_think) == 1.0
    unclosed = "<answer>" * 12_500            # quadratic for a lazy regex search, linear here
    assert extract_answer(unclosed) == unclosed and soft_accuracy(unclosed, AC) == 0.0
    many_closings = "<think>x" + "</think>" * 12_500 + "<answer>A</answer>" + "</answer>!" * 10_000
    assert format_reward_score(many_closings) == 1.0
    assert format_reward_score(many_closings, rule="phrase") == 0.0


FORMAT_CASES = [  # (completion, whole, phrase)
    ("<think>x</think><answer>A</answer>", 1.0, 1.0),
    ("  <think>x\ny</think>\n\n<answer>A, C</answer>\n ", 1.0, 1.0),
    ("Let me see. <think>x</think><answer>A</answer>", 1.0, 0.0),   # text before <think>
    ("<think>x</think><answer>A</answer> !!", 1.0, 0.0),            # "!" after </answer>
    ("<think>x</think><answer>A</answer> done", 0.0, 0.0),
    ("<think>x</think> so <answer>A</answer>", 0.0, 0.0),           # text between the blocks
    ("<answer>A</answer>", 0.0, 0.0),
    ("<think>x</think>", 0.0, 0.0),
    ("<think>x<answer>A</answer>", 0.0, 0.0),
    ("<think>x</think><think>y</think><answer>A</answer>", 0.0, 0.0),
    ("<think>x</think><answer>A</answer><answer>B</answer>", 0.0, 0.0),
    ("<think>x</think></think><answer>A</answer></answer>", 1.0, 1.0),  # only opening tags are counted
    ("", 0.0, 0.0),
]


@pytest.mark.parametrize("completion,whole,phrase", FORMAT_CASES)
def test_format_table(completion, whole, phrase):
    assert format_reward_score(completion) == whole
    assert format_reward_score(completion, rule="phrase") == phrase


def test_chat_message_completions():
    as_string = [{"role": "assistant", "content": "<think>x</think><answer>A</answer>"}]
    as_parts = [{"role": "assistant", "content": [{"type": "text", "text": "<think>x</think>"},
                                                  {"type": "image"}, {"type": "text", "text": "<answer>A</answer>"}]}]
    assert completion_text(as_string) == completion_text(as_parts) == "<think>x</think><answer>A</answer>"
    completions = [as_string, as_parts, "<answer>B</answer>"]
    solutions = [AC] * 3
    # TRL calls reward functions with keywords only, plus extra dataset columns.
    kwargs = dict(prompts=["p"] * 3, completion_ids=[[1]] * 3, video=["v.mp4"] * 3)
    assert accuracy_reward(completions=completions, solution=solutions, **kwargs) == [0.5, 0.5, 0.0]
    assert binary_accuracy_reward(completions=completions, solution=solutions, **kwargs) == [0.0, 0.0, 0.0]
    assert iou_accuracy_reward(completions=completions, solution=solutions, **kwargs) == [0.5, 0.5, 0.0]
    assert format_reward(completions=completions, solution=solutions, **kwargs) == [1.0, 1.0, 0.0]
    assert completion_text(None) == "" and soft_accuracy(None, AC) == 0.0


def test_reward_function_lists_for_the_trainer():
    assert [f.__name__ for f in get_reward_functions()] == ["accuracy_reward", "format_reward"]
    assert get_reward_functions("iou")[0] is iou_accuracy_reward
    with pytest.raises(ValueError, match="reward kind"):
        get_reward_functions("cosine")


@pytest.mark.parametrize("item,letters", [
    ({"options": ["A. 10.0", "B. 5.0", "C. 12.0"]}, ("A", "B", "C")),
    ({"options": ["(A) share", "(B) approach", "(C) unwrap", "(D) play", "(E) gesture"]}, tuple("ABCDE")),
    ({"options": ["red", "blue"]}, ("A", "B")),                      # unlabelled: A, B, ... by position
    ({"problem": "Without the sphere, what happens?\nA. The cube moves\nB. Nothing\nC. It stops"}, ("A", "B", "C")),
    ({"problem": "why didn't he go\nA leave\nB stay"}, ("A", "B")),  # "A text" lines without a dot
    ("A cube enters. Which is true?\nOptions:\n(A) x\n(B) y\n", ("A", "B")),
    ("A single line", ()),
    ({"video": "v.mp4"}, ()),
    (None, ()),
])
def test_option_letters(item, letters):
    assert option_letters(item) == letters


# ---------------------------------------------------------------- properties

PIECES = ["<answer>", "</answer>", "<think>", "</think>", "A", "B", "C", "D", "a", ",", " ", "\n", "\t",
          "!", "(", ")", ".", "Answer:", "answer ", "é", "答"]
texts = st.one_of(st.lists(st.sampled_from(PIECES), max_size=25).map("".join), st.text(max_size=60))
letter_lists = st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=5)


def _spec_extract(text, rule):
    """docs/method.md §3 and the reference's general evaluation script stated as regular expressions."""
    match = re.search(r"<answer>(.*?)</answer>", text, re.DOTALL)
    if match:
        return match.group(1).strip()
    if rule == "whole":
        return text.strip()
    phrase = re.search(r"(?:answer|Answer|ANSWER)[:\s]+([A-Z](?:\s*,\s*[A-Z])*)", text)
    return phrase.group(1).strip() if phrase else ""


@settings(max_examples=300, deadline=None)
@given(texts)
def test_extraction_agrees_with_the_regex_statement(text):
    for rule in ("whole", "phrase"):
        extracted = extract_answer(text, rule=rule)
        assert extracted == _spec_extract(text, rule)
        assert answer_set(extracted) == {p.strip() for p in extracted.replace(" ", "").split(",")}
    assert (tagged_answer(text) is None) == (re.search("<answer>(.*?)</answer>", text, re.DOTALL) is None)


@settings(max_examples=300, deadline=None)
@given(texts, texts, st.sampled_from(["whole", "phrase"]), st.booleans())
def test_scores_never_raise_lie_in_unit_interval_and_are_ordered(completion, solution, rule, lenient):
    binary = binary_accuracy(completion, solution, rule=rule, lenient=lenient)
    soft = soft_accuracy(completion, solution, rule=rule, lenient=lenient)
    iou = iou_accuracy(completion, solution, rule=rule, lenient=lenient)
    assert 0.0 <= binary <= soft <= iou <= 1.0
    assert (binary == 1.0) == (soft == 1.0) == (iou == 1.0)
    assert format_reward_score(completion, rule=rule) in (0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(letter_lists, letter_lists, st.randoms(use_true_random=False))
def test_letter_order_and_spacing_do_not_matter(predicted, truth, rnd):
    completion = "<think>t</think><answer>" + ",".join(predicted) + "</answer>"
    shuffled = list(predicted)
    rnd.shuffle(shuffled)
    respaced = "<think>t</think><answer> " + " , ".join(shuffled) + " </answer>"
    solution = "<answer>" + ",".join(truth) + "</answer>"
    for score in (soft_accuracy, binary_accuracy, iou_accuracy):
        assert score(completion, solution) == score(respaced, solution)
    p, s = set(predicted), set(truth)
    assert soft_accuracy(completion, solution) == pytest.approx(len(p) / len(s) if p <= s else 0.0)
    assert iou_accuracy(completion, solution) == pytest.approx(len(p & s) / len(p | s))
    if p <= s:  # on subsets soft and IoU credit coincide
        assert soft_accuracy(completion, solution) == pytest.approx(iou_accuracy(completion, solution))


def test_every_subset_of_a_three_letter_answer_gets_its_share():
    for size in range(1, 4):
        for subset in itertools.combinations("ABC", size):
            completion = "<answer>" + ",".join(subset) + "</answer>"
            assert soft_accuracy(completion, "<answer>A,B,C</answer>") == pytest.approx(size / 3)

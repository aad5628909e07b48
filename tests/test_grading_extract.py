"""Answer extraction: boxes, nesting, thinking tags, fallbacks."""

import pytest

from m1eval.grading import extract_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so $\\boxed{42}$.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{1, 2, 3}", "1, 2, 3"),
        ("\\boxed 5.", "5"),
        ("\\fbox{7}", "7"),
        ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
        ("\\boxed{a^{b^{c}}}", "a^{b^{c}}"),
        ("<think>maybe \\boxed{3}</think> final \\boxed{4}", "4"),
        ("<think>maybe \\boxed{3}</think> no box after thinking", None),
        ("<think>thinking forever \\boxed{3}", None),
        ("no answer here", None),
        ("\\boxed{unclosed", None),
        ("\\boxed{}", None),
        ("", None),
    ],
)
def test_extract(text, expected):
    assert extract_answer(text) == expected


def test_fallbacks_off_by_default_and_on_when_asked():
    text = "We compute everything.\nThe final answer is 17."
    assert extract_answer(text) is None
    assert extract_answer(text, fallbacks=True) == "17"
    assert extract_answer("Answer: $\\frac{3}{4}$", fallbacks=True) == "\\frac{3}{4}"
    # a box still wins over the phrase
    assert extract_answer("The final answer is 3. \\boxed{4}", fallbacks=True) == "4"


def test_huge_text_is_bounded():
    text = "x" * 2_000_000 + "\\boxed{12}"
    assert extract_answer(text) == "12"
    long_box = "\\boxed{" + "1" * 10_000 + "}"
    assert len(extract_answer(long_box)) <= 2_000

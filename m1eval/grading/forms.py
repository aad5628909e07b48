"""Answer forms a careful grader reads through: angles in two units, rounded golds, answers in a sentence.

Each function here decides one rule of docs/grading.md ("Hard equivalences") on normalised
text, without sympy unless it says so, and errs towards *not equal*: a rule accepts only
the form it names and leaves every other case to the ordinary comparison.
"""

from __future__ import annotations

import re
from fractions import Fraction

from m1eval.grading.normalize import DEGREE

# k\pi, \frac{k\pi}{m}, \frac{k}{m}\pi, k\pi/m: an angle in radians that is a rational multiple of pi
_PI_FORMS = (
    re.compile(r"^(-?)(\d{0,6})\\pi$"),
    re.compile(r"^(-?)\\frac\{(\d{0,6})\\pi\}\{(\d{1,6})\}$"),
    re.compile(r"^(-?)\\frac\{(\d{1,6})\}\{(\d{1,6})\}\\pi$"),
    re.compile(r"^(-?)(\d{0,6})\\pi/(\d{1,6})$"),
)
_IRRATIONAL = re.compile(
    r"\\(?:sqrt|pi|ln|log|sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan)(?![A-Za-z])|(?<![A-Za-z\\])e(?![A-Za-z])"
)
_NEGATION = frozenset(
    {
        "not",
        "no",
        "never",
        "cannot",
        "can't",
        "doesn't",
        "don't",
        "isn't",
        "won't",
        "neither",
        "nor",
        "loses",
        "lose",
        "lost",
        "false",
        "incorrect",
        "wrong",
    }
)
# What may follow a named answer in an affirmative sentence ("Alice wins the game."), articles removed.
_PREDICATES = frozenset(
    {
        "wins",
        "win",
        "will win",
        "can win",
        "always wins",
        "wins game",
        "will win game",
        "can win game",
        "has winning strategy",
        "has a winning strategy",
        "is winner",
        "will be winner",
        "is correct",
        "is answer",
        "is right",
        "is true",
        "is larger",
        "is greater",
        "is bigger",
        "is smaller",
        "is faster",
        "wins race",
    }
)
_COPULAS = frozenset({"is", "are", "was", "be", "will be", "would be"})


_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_NUMBER_WORDS.update(
    {
        "thirty": 30,
        "forty": 40,
        "fifty": 50,
        "sixty": 60,
        "seventy": 70,
        "eighty": 80,
        "ninety": 90,
        "one hundred": 100,
        "a hundred": 100,
        "hundred": 100,
    }
)


def number_word(words: str) -> int | None:
    """The value of a number written as a word ("four", "twenty"), else None."""
    return _NUMBER_WORDS.get(words.strip().lower())


def split_degree(text: str) -> tuple[str, bool]:
    """(text without the degree marker, whether it had one)."""
    return (text.replace(DEGREE, ""), True) if DEGREE in text else (text, False)


def pi_multiple(text: str) -> Fraction | None:
    """The rational ``k`` of an angle written ``k\\pi`` (in any of the usual spellings), else None."""
    for index, pattern in enumerate(_PI_FORMS):
        m = pattern.match(text)
        if m is None:
            continue
        sign = -1 if m.group(1) else 1
        if index == 0:
            return sign * Fraction(int(m.group(2) or 1))
        if index == 2:
            num, den = int(m.group(2)), int(m.group(3))
        else:
            num, den = int(m.group(2) or 1), int(m.group(3))
        return None if den == 0 else sign * Fraction(num, den)
    return None


def angle_verdict(gold: str, answer: str, gold_degrees: bool, answer_degrees: bool) -> bool | None:
    """Degrees against radians, when the gold is an angle written in one unit and the answer in
    the other: ``45^\\circ`` = ``\\frac{\\pi}{4}``, ``\\frac{\\pi}{3}`` = ``60^\\circ``. None when the
    rule does not apply (both in one unit, or a side that is not a plain angle)."""
    from m1eval.grading.numbers import parse_number

    if gold_degrees and not answer_degrees:
        k, degrees = pi_multiple(answer), parse_number(gold)
    elif answer_degrees and not gold_degrees:
        k, degrees = pi_multiple(gold), parse_number(answer)
    else:
        return None
    if k is None or degrees is None or degrees.percent:
        return None
    return k * 180 == degrees.value


def is_irrational_looking(text: str) -> bool:
    """An exact form whose value no decimal writes exactly (a root, pi, e, a logarithm, a trig value)."""
    return bool(_IRRATIONAL.search(text))


def significant_digits(decimal: str) -> int:
    """Significant digits of a written decimal: ``0.693`` has 3, ``1.6`` has 2, ``0.7`` has 1."""
    digits = decimal.lstrip("+-").replace(".", "").lstrip("0")
    return len(digits)


def rounds_to(value: float, gold: Fraction, decimals: int) -> bool:
    """Whether ``value`` rounded to ``decimals`` places is ``gold`` (a half-unit either side)."""
    half = Fraction(1, 2 * 10**decimals)
    return abs(Fraction(value) - gold) <= half + Fraction(1, 10**12)


def sentence_names(gold_words: list[str], answer_words: list[str]) -> bool:
    """Whether a sentence answer affirms the gold word answer: "Alice wins the game." for
    ``Alice``, "The function is even" for ``even``; never a sentence with a negation."""
    if not gold_words or len(answer_words) <= len(gold_words) or len(answer_words) > len(gold_words) + 8:
        return False
    if any(w in _NEGATION or w.endswith("n't") for w in answer_words):
        return False
    n = len(gold_words)
    if answer_words[:n] == gold_words and " ".join(answer_words[n:]) in _PREDICATES:
        return True
    if answer_words[-n:] == gold_words:
        before = answer_words[:-n]
        return (
            any(" ".join(before[-k:]) in _COPULAS for k in (1, 2) if len(before) >= k) and gold_words[0] not in before
        )
    return False

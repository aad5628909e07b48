"""Issue 24's forms, both directions: what a careful grader accepts, and the near misses it rejects.

Free-text reading (``lenient``), answers inside a box (percent words, doubled backslashes,
labelled and named components, several solutions), and the hard equivalences
(set-builder, chains, ordinals, units, scientific notation, markup, approximate and
rounded golds, angles in two units, a word answer in a sentence). docs/grading.md
("Hard equivalences", "Free-text answers") gives each rule and its reason.
"""

import pytest

from m1eval.grading import Grader, is_equivalent
from m1eval.grading.extract import extract, question_expressions
from m1eval.records import Completion, Problem

EQUAL = {
    "percent words": [("40\\%", "40 pct"), ("40\\%", "40 percent"), ("40\\%", "40 percentage"), ("0.4", "40 pct")],
    "doubled backslashes": [
        ("\\frac{1}{2}", "\\\\frac{1}{2}"),
        ("\\sqrt{3}", "\\\\sqrt{3}"),
        ("\\frac{1}{2}", "\\\\dfrac{1}{2}"),
    ],
    "named components": [("(4,1)", "(a,b)=(4,1)"), ("(a,b)=(4,1)", "(4, 1)"), ("(2, -3)", "(x, y) = (2, -3)")],
    "labelled values": [("3, 8", "PQ=3, RS=8"), ("3, 8", "RS = 8, PQ = 3"), ("5:16", "S_{ABC}:S=5:16")],
    "or/and": [("(9,2),\\ (2,9)", "(2,9) or (9,2)"), ("1, 2", "x = 1 \\text{ and } x = 2")],
    "several boxes": [("\\boxed{3} and \\boxed{-4}", "3, -4"), ("3,-4", "\\boxed{3} and \\boxed{-4}")],
    "set-builder": [
        ("(1,4)", "\\{x \\mid 1<x<4\\}"),
        ("\\{x \\mid 1<x<4\\}", "(1,4)"),
        ("[2, \\infty)", "\\{x : x \\ge 2\\}"),
    ],
    "chains": [
        ("\\frac{\\sqrt3}{3}", "a = b = c = \\frac{\\sqrt3}{3}"),
        ("a = b = c = \\frac{\\sqrt3}{3}", "\\frac{\\sqrt{3}}{3}"),
        ("9", "t = 4+4+1 = 9"),
        ("9", "4+4+1 = 9"),
    ],
    "ordinals": [("7", "7^{\\text{th}}"), ("7", "7th"), ("21", "21^{st}")],
    "units after fractions": [
        ("\\frac{50}{7}", "\\frac{50}{7}\\text{ hours}"),
        ("\\frac{50}{7}", "\\frac{50}{7} hours"),
    ],
    "scientific notation": [
        ("3\\times10^{-8}", "3 × 10^(-8)"),
        ("3 × 10^(-8)", "3\\times10^{-8}"),
        ("3\\times 10^{-8}", "3e-8"),
        ("3\\times 10^{-8}", "3*10^-8"),
    ],
    "markup": [
        ("x^2", "x<sup>2</sup>"),
        ("x>3", "x ＞ 3"),
        ("x\\ge 3", "x ≥ 3"),
        ("a_1", "a<sub>1</sub>"),
        ("x \\le 2", "x &le; 2"),
    ],
    "approximate gold": [
        ("\\frac{1+\\sqrt{5}}{2} \\approx 1.62", "\\frac{1+\\sqrt5}{2}"),
        ("\\frac{1+\\sqrt{5}}{2} \\approx 1.62", "1.62"),
        ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1+\\sqrt5}{2} \\approx 1.62"),
    ],
    "rounded gold": [("1.62", "\\frac{1+\\sqrt{5}}{2}"), ("3.14", "\\pi"), ("1.414", "\\sqrt{2}"), ("0.693", "\\ln 2")],
    "angles": [
        ("45^\\circ", "\\frac{\\pi}{4}"),
        ("\\frac{\\pi}{3}", "60^\\circ"),
        ("90^\\circ", "90"),
        ("180^\\circ", "\\pi"),
        ("$90^{\\circ}$,$60^{\\circ}$", "90^{\\circ} or 60^{\\circ}"),
    ],
    "sentences": [
        ("\\text{Alice}", "Alice wins the game."),
        ("\\text{even}", "The function is even"),
        ("\\text{Bob}", "The winner is Bob"),
    ],
    "decimal comma": [("3.75", "3,75 €"), ("12.5\\%", "12,5 %")],
    "number words": [("4", "four"), ("\\text{four}", "4"), ("20", "\\text{twenty}")],
    "one value said twice": [("3", "x = 3 \\text{ or } x = 3"), ("3", "3, 3")],
    "choice with its value": [("\\text{(C)}", "\\textbf{(C)}\\ 12"), ("C", "(C) 12")],
    "chat residue (bare)": [("12", "12<|im_end|><|im_start|>user 13"), ("12", "12</s>")],
}

NOT_EQUAL = {
    "percent words": [("40\\%", "41 pct"), ("40\\%", "4 percent")],
    "labelled values": [("3, 8", "PQ=3"), ("3, 8", "PQ=3, RS=9"), ("(4,1)", "(a,b)=(1,4)")],
    "partial answers": [("3,-4", "3"), ("\\boxed{3} and \\boxed{-4}", "-4"), ("(9,2),(2,9)", "(2,9)")],
    "set-builder": [("(1,4)", "\\{x \\mid 1<x\\le 4\\}"), ("(1,4)", "\\{x \\mid x>1\\}")],
    "chains": [("5", "x+y = 5"), ("4", "2+2 = 5"), ("\\frac{\\sqrt3}{3}", "a = b = c = \\frac{\\sqrt2}{3}")],
    "approximations": [
        ("\\frac13", "0.333"),
        ("\\frac{1+\\sqrt{5}}{2} \\approx 1.62", "1.618"),
        ("\\frac{1}{2}", "\\frac{1+\\sqrt5}{2} \\approx 1.62"),
    ],
    "rounded gold": [
        ("1.62", "1.6"),
        ("1.62", "\\frac{3}{2}"),
        ("0.15", "\\frac{2}{13}"),
        ("1.62", "\\frac{1+\\sqrt5}{2} + 1"),
        ("3.14", "\\frac{22}{7}"),
        ("0.7", "\\frac{\\sqrt{2}}{2}"),
        ("1.6", "\\frac{1+\\sqrt{5}}{2}"),
    ],
    "angles": [
        ("45^\\circ", "\\frac{\\pi}{2}"),
        ("45", "\\frac{\\pi}{4}"),
        ("\\frac{\\pi}{4}", "45"),
        ("60^\\circ", "\\frac{\\pi}{6}"),
    ],
    "sentences": [
        ("\\text{Alice}", "Alice does not win."),
        ("\\text{Alice}", "Bob wins."),
        ("\\text{Alice}", "Alice loses the game."),
        ("\\text{even}", "The function is not even"),
        ("\\text{Alice}", "Bob wins, not Alice"),
    ],
    "scientific notation": [("3\\times10^{-8}", "3\\times10^{-9}"), ("3\\times10^{-8}", "3e8")],
    "decimal comma": [("3.75", "3,76 €"), ("3.75", "3,75")],
    "number words": [("4", "five"), ("4", "fourteen"), ("\\text{four}", "\\text{five}")],
    "one value said twice": [("3", "x=3 \\text{ or } x=-3"), ("3, 3", "3")],
    "choice with its value": [("\\text{(C)}", "(D) 12"), ("C", "(B) 12")],
    "chat residue (bare)": [("13", "12<|im_end|><|im_start|>user 13")],
}


def _cases(table):
    return [pytest.param(g, a, id=f"{form}:{g}|{a}") for form, pairs in table.items() for g, a in pairs]


@pytest.mark.parametrize("gold, answer", _cases(EQUAL))
def test_accepts(gold, answer):
    assert is_equivalent(gold, answer)


@pytest.mark.parametrize("gold, answer", _cases(NOT_EQUAL))
def test_rejects(gold, answer):
    assert not is_equivalent(gold, answer)


LENIENT = "lenient"


@pytest.mark.parametrize(
    "text, answer, rule",
    [
        ("Therefore $y \\le 7$ is the solution.", "y \\le 7", "last-math"),
        ("so the value is $\\frac{3}{4}$.", "\\frac{3}{4}", "last-math"),
        ("so we get \\(x = 2\\) at the end", "x = 2", "last-math"),
        ("We get $t = 4+4+1 = 9$", "9", "last-math"),
        ("the maximum value of $\\sqrt{3x-5}$ is 3.", "3", "last-number"),  # the later statement wins
        ("Thus, $n = 2$ and $n = 6$ are the solutions.", "n = 2, n = 6", "last-math"),
        ("It costs $5 and then we get $x=3$ in the end.", "x=3", "last-math"),  # a price is not math
        ("The answer is 12.<|im_end|>\n<|im_start|>user\nWhat is 3+4? The answer is 7", "12", "answer-phrase"),
        ("We find 12.<|im_end|><|endoftext|> 99", "12", "last-number"),
        ("答案是 12", "12", "answer-phrase"),
        ("所以答案为：$\\frac{1}{2}$", "\\frac{1}{2}", "answer-phrase"),
        ("Donc la réponse est 12.", "12", "answer-phrase"),
        ("الإجابة 12", "12", "answer-phrase"),
        ("Die Antwort ist 8.", "8", "answer-phrase"),
        ("Ответ: 8", "8", "answer-phrase"),
        ("La respuesta es $5$.", "5", "answer-phrase"),
        ("Le prix est 3,75 €", "3,75 €", "last-number"),
        ("The final answer is $5$. I hope it is correct.", "5", "answer-phrase"),
        ("$x = \\boxed{3}$ or $x = \\boxed{-4}$", "3, -4", "boxed"),
        ("\\boxed{3} and \\boxed{-4}", "3, -4", "boxed"),
        ("\\boxed{x = \\boxed{5}}", "5", "boxed"),  # a box inside a box is not a second answer
        (
            "$d = \\boxed{15\\frac{39}{40}}$, or $\\boxed{\\frac{639}{40}}$ inches.",
            "\\frac{639}{40}",
            "boxed",
        ),  # one value
        ("First \\boxed{3}. Much later, after more work, \\boxed{4}", "4", "boxed"),
        ("The final answer is 3. Later: \\boxed{4}", "4", "boxed"),
        ("\\boxed{4}. So the answer is 5.", "5", "answer-phrase"),
        ("The answer is $\\binom{31}{28}$, which is exactly 1.", "\\binom{31}{28}", "answer-phrase"),
        ("So, the answer is $2$ (rounded up to the nearest integer).", "2", "answer-phrase"),
        ("So, the final answer is\n\n$a = b = 5$\n", "5", "answer-phrase"),
        ("The answer is 17, because 17 is prime.", "17", "answer-phrase"),
        ("So we get 70 and 2 more.\n#### 72", "72", "answer-phrase"),  # GSM8K's answer line
        ("**Final Answer**\n\n$12$\n", "12", "answer-phrase"),  # a heading: the answer is on the next line
        ("## Final answer:\n\\[ x = 3 \\]", "x = 3", "answer-phrase"),
        ("The final answer\nis weird 5", "5", "last-number"),  # not a heading: words before it on its line
    ],
)
def test_lenient_reads_like_a_person(text, answer, rule):
    found = extract(text, LENIENT)
    assert (found.answer, found.rule) == (answer, rule)


def test_truncated_text_is_not_read_by_position():
    text = "We add the numbers 3 and 5 and then we"
    assert extract(text, LENIENT).answer == "5"
    assert extract(text, LENIENT, truncated=True).answer is None
    # a committed statement before the cut still counts
    assert extract("So the answer is $x = 1$. Now let us also check 7 and", LENIENT, truncated=True).answer == "x = 1"


def test_restating_the_question_is_not_an_answer():
    question = "Compute $\\dbinom{31}{28}$. Then write $ab+5b+2a+10$ and $\\frac{3}{20}$."
    restated = question_expressions(question)
    assert "\\binom{31}{28}" in restated and "ab+5b+2a+10" in restated
    assert "\\frac{3}{20}" not in restated  # a plain number may well be the answer
    text = "We need 4495 ways. So the answer is $\\binom{31}{28}$."
    assert extract(text, LENIENT).answer == "\\binom{31}{28}"
    assert extract(text, LENIENT, restated=restated).answer == "4495"
    assert extract("The answer is $\\dbinom{31}{28}$.", "boxed,answer-phrase", restated=restated).answer is None


def test_the_grader_passes_over_restatements_but_not_the_gold():
    problems = [
        (
            Problem("t", "binom", "Compute $\\dbinom{31}{28}$.", ["4495"], "integer"),
            ["So the answer is $\\binom{31}{28}$.", "We get 4495. So the answer is $\\binom{31}{28}$."],
        ),
        (
            Problem("t", "larger", "Which is larger, $2^{10}$ or $10^3$?", ["2^{10}"], "expression"),
            ["The larger one is $2^{10}$.", "The larger one is $10^3$."],
        ),
    ]
    items = [
        (p, [Completion(p.id, i, i, t, 5, 10, "stop", "b0") for i, t in enumerate(texts)]) for p, texts in problems
    ]
    with Grader(workers=1, extraction="lenient") as grader:
        grades = grader.grade_many(items)
    assert [(g.answer, g.correct) for g in grades] == [
        (None, False),
        ("4495", True),  # the question's expression is not an answer; the number before it is
        ("2^{10}", True),
        ("10^3", False),  # the gold is an answer even though the question shows it
    ]

"""Hard cases per category: each has pairs that must be equal and pairs that must NOT be."""

import pytest

from m1eval.grading import is_equivalent, normalize_answer

EQUAL = {
    "integers": [
        ("16", "016"),
        ("\\text{13}", "13"),
        ("10,\\!080", "10080"),
        ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
        ("\\$32,\\!348", "32348"),
        ("58,500", "58500"),
        ("-50", "-50.0"),
        ("27", "27."),
    ],
    "decimals_fractions": [
        ("\\dfrac{1}{2}", "0.5"),
        ("\\frac{3}{20}", "0.15"),
        ("1\\frac{4}{5}", "\\frac{9}{5}"),
        ("137 \\frac{1}{2}", "137.5"),
        ("\\frac43", "4/3"),
        (".35625", "0.35625"),
        ("\\frac 59", "\\frac{5}{9}"),
        ("1.5\\times 10^{3}", "1500"),
        ("2.5e-3", "0.0025"),
    ],
    "percent_units_degrees": [
        ("4.2", "4.2\\%"),
        ("20\\%", "0.2"),
        ("90^\\circ", "90"),
        ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}"),
        ("864 \\mbox{ inches}^2", "864"),
        ("5.4 \\text{ cents}", "5.4"),
        ("\\$18.90", "18.90"),
        ("15\\mbox{ cm}^2", "15 cm^2"),
    ],
    "expressions": [
        ("\\log_2 8", "3"),
        ("\\frac{1}{2 n+2}", "\\frac{1}{2(n+1)}"),
        ("2\\sqrt{5}", "\\sqrt{20}"),
        ("x^2+1", "1+x^2"),
        ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}"),
        ("(a+5)(b+2)", "ab+2a+5b+10"),
        ("\\binom{2n}{n}", "\\frac{(2n)!}{(n!)^2}"),
        ("\\frac{100!}{2^{50}}", "100!/2^{50}"),
        ("\\cot x", "\\frac{\\cos x}{\\sin x}"),
        ("2^{1009}", "2^{1009}"),
    ],
    "complex": [("6-5i", "6 - 5i"), ("1+2i", "2i+1"), ("-2 + 7i", "7i-2")],
    "equations": [
        ("x=5", "5"),
        ("5", "x=5"),
        ("f(x)=2 x", "2x"),
        ("y = 2x + 3", "y=3+2x"),
        ("5x - 7y + 11z + 4 = 0", "-10x+14y-22z-8=0"),
        ("m_{\\max }=n^{2}-n-1", "n^2-n-1"),
        ("k=n+1", "k = 1+n"),
    ],
    "intervals_inequalities": [
        ("(-\\infty,-3)\\cup(3,\\infty)", "x<-3 \\text{ or } x>3"),
        ("[-2,7]", "-2 \\le x \\le 7"),
        ("(2,\\infty)", "x>2"),
        ("x \\in [-2,7]", "[-2,7]"),
        ("k \\geqslant 2", "k \\ge 2"),
        ("k \\geqslant 2", "[2,\\infty)"),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)"),
        ("\\left(\\frac{3}{5},\\frac{8}{3}\\right]", "(0.6, 8/3]"),
    ],
    "tuples_sets_lists": [
        ("(3, \\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("1,-2", "-2, 1"),
        ("3, 5, 7", "7,5,3"),
        ("\\{1\\pm\\sqrt{5},-2\\}", "-2, 1+\\sqrt5, 1-\\sqrt5"),
        ("(1,1), (3,2)", "(3,2),(1,1)"),
        ("x=1 \\text{ or } x=2", "2, 1"),
        ("\\{1,2\\}", "\\{2,1\\}"),
    ],
    "pm": [("1 \\pm \\sqrt{19}", "1+\\sqrt{19}, 1-\\sqrt{19}"), ("3 \\pm 2 \\sqrt{2}", "3-2\\sqrt2, 3+2\\sqrt2")],
    "matrices_vectors": [
        ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{bmatrix}-1&0\\\\0&-1\\end{bmatrix}"),
        (
            "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
            "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\\\ \\frac53 \\end{pmatrix}",
        ),
        ("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "(0.2, -3.6)"),
    ],
    "text_and_choices": [
        ("\\text{Evelyn}", "Evelyn"),
        ("\\text{east}", "East"),
        ("\\text{(C)}", "C"),
        ("\\text{(E)}", "(E)"),
        ("\\text{ellipse}", "\\text{an ellipse}"),
    ],
    "bases": [("52_8", "52_8"), ("52_8", "52"), ("4210_{5}", "4210_5")],
    "multiple_answers": [("$69$,$84$", "84, 69"), ("$f(x)=x$,$f(x)=2-x$", "f(x)=2-x, f(x)=x")],
}

NOT_EQUAL = {
    "integers": [
        ("10^{100}", "10^{100}+1"),
        ("3^{100}", "3^{100}-1"),
        ("16", "61"),
        ("16", "160"),
        ("10080", "10,\\!081"),
        ("0", ""),
    ],
    "decimals_fractions": [
        ("\\frac{1}{3}", "0.3"),
        ("0.15", "0.1"),
        ("0.35625", "0.356"),
        ("\\frac{1}{2}", "\\frac{1}{3}"),
        ("1\\frac{4}{5}", "1.45"),
        ("2", "2.01"),
        ("\\frac{1}{3}", "0.334"),
        ("\\frac{1}{3}", "0.333"),
        ("\\frac{2}{3}", "0.667"),
    ],
    "percent_units_degrees": [("20\\%", "0.02"), ("90^\\circ", "91"), ("864", "86.4")],
    "expressions": [
        ("\\log_2 8", "\\log_{28}"),
        ("\\frac{1}{2 n+2}", "\\frac{1}{2n}+2"),
        ("2n-2", "2n+2"),
        ("x^2+1", "x^2-1"),
        ("\\sqrt{3}", "\\sqrt{2}"),
        ("\\pi", "3.15"),
        ("\\pi", "3.1416"),
        ("\\sqrt{2}", "1.414"),
        ("3", "x"),
        ("2^{1009}", "2^{1008}"),
        ("p - q", "q - p"),
    ],
    "complex": [("6-5i", "6+5i"), ("1+2i", "1+2")],
    "equations": [
        ("x=5", "x=6"),
        ("y = 2x + 3", "y = 2x - 3"),
        ("5x - 7y + 11z + 4 = 0", "5x - 7y + 11z - 4 = 0"),
        ("x=5", "y=5"),
    ],
    "intervals_inequalities": [
        ("(-\\infty,-3)\\cup(3,\\infty)", "x \\le -3 \\text{ or } x>3"),
        ("(-\\infty,-3)\\cup(3,\\infty)", "x<-3"),
        ("[-2,7]", "(-2,7)"),
        ("(2,\\infty)", "x \\ge 2"),
        ("(3,4]", "(3,4)"),
        ("k \\geqslant 2", "k > 2"),
        ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty, 2)"),
    ],
    "tuples_sets_lists": [
        ("(3, \\frac{\\pi}{2})", "(\\frac{\\pi}{2}, 3)"),
        ("1,-2", "1, 2"),
        ("3, 5, 7", "3, 5"),
        ("(1,1), (3,2)", "(1,1), (2,3)"),
        ("3, 5, 7", "3, 5, 7, 9"),
    ],
    "pm": [("1 \\pm \\sqrt{19}", "1+\\sqrt{19}"), ("3 \\pm 2 \\sqrt{2}", "3 \\pm \\sqrt{2}")],
    "matrices_vectors": [
        ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "\\begin{pmatrix} 1 & 0 \\\\ 0 & -1 \\end{pmatrix}"),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}"),
    ],
    "text_and_choices": [
        ("\\text{Evelyn}", "Navin"),
        ("\\text{east}", "west"),
        ("\\text{(C)}", "D"),
        ("\\text{even}", "\\text{odd}"),
    ],
    "bases": [("52_8", "42"), ("52_8", "52_9")],
    "multiple_answers": [("$69$,$84$", "69"), ("$69$,$84$", "69, 84, 85")],
}

# Found by differential testing against math-verify on reformatted golds (benchmarks/grading_agreement.py):
# pairs where math-verify agreed with the construction and m1eval did not, in both directions.
EQUAL.update(
    {
        "prose_wrappers": [
            ("9", "The answer is $9$."),
            ("\\frac{3}{4}", "**Answer:** $\\frac{3}{4}$"),
            ("12", "The final answer is 12"),
            ("(3, \\frac{\\pi}{2})", "So the answer is \\((3, \\frac{\\pi}{2})\\)."),
            ("5", "Final answer: $5$"),
        ],
        "delimiters": [("9", "\\(9\\)"), ("9", "\\[9\\]"), ("9", "$$9$$"), ("\\frac{1}{2}", "$\\frac{1}{2}$")],
        "percent_words": [("17.5\\%", "17.5 percent"), ("20", "20 percent")],
        "lists_of_equations": [
            ("$f(x)=x$,$f(x)=2-x$", "f(x)=x and f(x)=2-x"),
            ("$f(n)=n$, $g(n)=1$", "f(n)=n or g(n)=1"),
            ("$\\frac{1}{6} \\pi, \\frac{5}{6} \\pi$", "\\frac{1}{6} \\pi and \\frac{5}{6} \\pi"),
        ],
        "floor_functions": [("$m n-\\lfloor m / 2\\rfloor$", "mn - \\lfloor \\frac{m}{2} \\rfloor")],
        "equations_swapped": [
            ("$f(n)=n$", "n = f(n)"),
            ("$N=n$", "n = N"),
            ("$f(x)=\\frac{1}{x}$", "\\frac{1}{x} = f(x)"),
        ],
        "minerva_format": [
            ("48", "Final Answer: The final answer is $48$. I hope it is correct."),
            ("\\frac43", "Final Answer: The final answer is $\\frac{4}{3}$. I hope it is correct."),
        ],
        # issue 10's stall family: a number, words, then a character the unit rule does not allow
        "backtracking_family": [("5", "5 apples"), ("1000.99", "1,000.99 dollars"), ("15", "15 square feet.")],
    }
)
NOT_EQUAL.update(
    {
        "prose_wrappers": [
            ("9", "The answer is $8$."),
            ("\\frac{3}{4}", "**Answer:** $\\frac{4}{3}$"),
            ("12", "The final answer is 21"),
            ("(3, \\frac{\\pi}{2})", "So the answer is \\((\\frac{\\pi}{2}, 3)\\)."),
            ("5", "Answers: 6"),
        ],
        "delimiters": [("9", "\\(8\\)"), ("9", "$$19$$"), ("\\frac{1}{2}", "$\\frac{1}{3}$")],
        "percent_words": [("17.5\\%", "17.6 percent"), ("20", "2 percent")],
        "lists_of_equations": [
            ("$f(x)=x$,$f(x)=2-x$", "f(x)=x and f(x)=2+x"),
            ("$f(n)=n$, $g(n)=1$", "f(n)=n"),
            ("$\\frac{1}{6} \\pi, \\frac{5}{6} \\pi$", "\\frac{1}{6} \\pi and \\frac{1}{3} \\pi"),
        ],
        "floor_functions": [
            ("$m n-\\lfloor m / 2\\rfloor$", "$m n-\\lfloor m / 3\\rfloor$"),
            ("\\lceil n/2 \\rceil", "\\lfloor n/2 \\rfloor"),
        ],
        "equations_swapped": [("$f(n)=n$", "n = g(n)"), ("$N=n$", "n = M"), ("$f(x)=\\frac{1}{x}$", "x = f(x)")],
        "minerva_format": [
            ("48", "Final Answer: The final answer is $84$. I hope it is correct."),
            ("\\frac43", "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct."),
        ],
        "backtracking_family": [
            ("5", "5 abcdefghijklmnopqrstuvwxyzabcd!"),
            ("1", "1 " + "a" * 40 + "!"),
            ("1000.99", "1,000.99 abcdefghijklmnopqrstuvwxyz€"),
        ],
    }
)


def _cases(table):
    return [pytest.param(g, a, id=f"{cat}:{g}|{a}") for cat, pairs in table.items() for g, a in pairs]


@pytest.mark.parametrize("gold, answer", _cases(EQUAL))
def test_equal(gold, answer):
    assert is_equivalent(gold, answer)


@pytest.mark.parametrize("gold, answer", _cases(NOT_EQUAL))
def test_not_equal(gold, answer):
    assert not is_equivalent(gold, answer)


def test_every_category_has_both_directions():
    assert set(EQUAL) == set(NOT_EQUAL)


def test_tolerance_and_meta():
    assert is_equivalent("4.2", "4.25", tolerance=0.1)
    assert not is_equivalent("4.2", "4.35", tolerance=0.1)
    assert is_equivalent("4.2", "4.28\\%", meta={"unit": "%", "tolerance": 0.1})
    assert is_equivalent("\\frac{41}{12}", "\\frac{41}{12} km", meta={"unit": "km"})
    assert is_equivalent("\\sqrt{2}", "1.41", tolerance=0.01)


def test_normalize_answer_forms():
    assert normalize_answer("$\\dfrac{1}{2}$.") == "\\frac{1}{2}"
    assert normalize_answer("\\left( 3, \\frac{\\pi}{2} \\right)") == "(3,\\frac{\\pi}{2})"
    assert normalize_answer("10,\\!080") == "10080"
    assert normalize_answer("2 \\pi r") == "2\\pi r"

"""Per-form differential test of m1eval against math-verify on generated pairs (issue 24's forms).

Every form of issue 24 has a generator: several numbers, spacings and wrappers for pairs a
careful grader accepts, and near misses it rejects, each with its verdict by construction.
Free-text forms are whole responses read with ``lenient`` (math-verify: ``parse`` of the
response); box forms are responses ending in a box (m1eval: ``boxed``); hard equivalences
are bare (gold, answer) pairs. Both checkers judge every pair; the script prints per form
the pairs, the disagreements, and how many verdicts of each match the construction, and
writes the disagreements to a JSON file to read.

    python benchmarks/grading_forms.py [--per-form 40] [--seed 0] [--out /tmp/grading_forms.json]

Needs the dev extra (math-verify).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Pair:
    form: str
    kind: str  # "text" (lenient), "box" (boxed), "bare"
    gold: str
    answer: str
    expected: bool
    m1eval: bool | None = None
    math_verify: bool | None = None


def _sp(rng: random.Random) -> str:
    return rng.choice(["", " ", "  "])


def _wrap_text(rng: random.Random, value: str) -> str:
    return rng.choice([f"${value}$", f"\\({value}\\)", f"$ {value} $"])


# ------------------------------------------------------------------ free-text forms (lenient)
def inline_span(rng):
    n, a, b = rng.randint(2, 99), rng.randint(1, 9), rng.randint(10, 19)
    value, gold, wrong = rng.choice(
        [
            (f"y \\le {n}", f"y \\le {n}", f"y \\le {n + 1}"),
            (f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a}}}{{{b + 1}}}"),
            (f"x > {n}", f"({n}, \\infty)", f"[{n}, \\infty)"),
        ]
    )
    text = rng.choice(
        ["Therefore {v} is the solution.", "So the value is {v}.", "Hence {v}, as required.", "Step {k} gives {v}."]
    ).format(v=_wrap_text(rng, value), k=rng.randint(2, 9))
    return [("text", gold, text, True), ("text", wrong, text, False)]


def chain(rng):
    a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(1, 9)
    total = a + b + c
    text = f"Adding up, $t{_sp(rng)}={_sp(rng)}{a}+{b}+{c}{_sp(rng)}={_sp(rng)}{total}$."
    return [("text", str(total), text, True), ("text", str(a), text, False)]


def residue(rng):
    n, m = rng.randint(2, 500), rng.randint(2, 500)
    tail = rng.choice(
        [
            "<|im_end|>\n<|im_start|>user\nWhat is {m} + 1? The answer is {m1}",
            "<|endoftext|>Question: what is {m}+1? Answer: {m1}",
            "<|eot_id|><|start_header_id|>user {m1}",
        ]
    )
    text = f"The answer is ${n}$." + tail.format(m=m, m1=m + 1)
    return [("text", str(n), text, True), ("text", str(m + 1), text, False)]


def hope(rng):
    n = rng.randint(2, 999)
    text = f"Final Answer: The final answer is ${n}$. I hope it is correct."
    return [("text", str(n), text, True), ("text", str(n + 1), text, False)]


def languages(rng):
    n = rng.randint(2, 999)
    text = rng.choice(
        [
            "经过计算，答案是 {n}。",
            "所以答案为：{n}",
            "Donc la réponse est {n}.",
            "La réponse finale : {n}",
            "الإجابة {n}",
            "Die Antwort ist {n}.",
            "La respuesta es {n}.",
            "Ответ: {n}",
        ]
    ).format(n=n)
    text = f"Calculons {rng.randint(2, 9)} étapes. " + text
    return [("text", str(n), text, True), ("text", str(n + 7), text, False)]


def decimal_comma(rng):
    a, b = rng.randint(1, 99), rng.randint(10, 99)
    text = rng.choice(["Le total est {a},{b} €.", "Il paie {a},{b} euros.", "Der Anteil ist {a},{b} %."]).format(
        a=a, b=b
    )
    gold = f"{a}.{b}" + ("\\%" if "%" in text else "")
    wrong = f"{a}.{b + 1}" + ("\\%" if "%" in text else "")
    return [("text", gold, text, True), ("text", wrong, text, False)]


def boxes_in_response(rng):
    a, b = rng.randint(1, 30), -rng.randint(1, 30)
    text = rng.choice(
        ["So $x = \\boxed{{{a}}}$ or $x = \\boxed{{{b}}}$.", "The roots are \\boxed{{{a}}} and \\boxed{{{b}}}."]
    ).format(a=a, b=b)
    return [("text", f"{a}, {b}", text, True), ("text", str(a), text, False)]


# ------------------------------------------------------------------ inside a box (boxed)
def _boxed(content: str) -> str:
    return f"Thus the result is $\\boxed{{{content}}}$."


def percent_words(rng):
    n = rng.randint(2, 99)
    word = rng.choice(["pct", "percent", "percentage", "per cent"])
    return [
        ("box", f"{n}\\%", _boxed(f"{n}{_sp(rng) or ' '}{word}"), True),
        ("box", f"{n + 1}\\%", _boxed(f"{n} {word}"), False),
    ]


def doubled_backslashes(rng):
    a, b = rng.randint(1, 9), rng.randint(10, 20)
    expr = rng.choice(["\\\\frac{{{a}}}{{{b}}}", "\\\\dfrac{{{a}}}{{{b}}}", "\\\\sqrt{{{b}}}"]).format(a=a, b=b)
    gold = expr.replace("\\\\", "\\").replace("dfrac", "frac")
    wrong = gold.replace(str(b), str(b + 1))
    return [("box", gold, _boxed(expr), True), ("box", wrong, _boxed(expr), False)]


def named_components(rng):
    p, q = rng.randint(1, 9), rng.randint(10, 19)
    names = rng.choice(["(a,b)", "(a, b)", "(x,y)", "(m, n)"])
    return [
        ("box", f"({p},{_sp(rng)}{q})", _boxed(f"{names}{_sp(rng)}={_sp(rng)}({p},{q})"), True),
        ("box", f"({q}, {p})", _boxed(f"{names}=({p},{q})"), False),
    ]


def labelled_values(rng):
    p, q = rng.randint(1, 9), rng.randint(10, 19)
    l1, l2 = rng.choice([("PQ", "RS"), ("AB", "CD"), ("a", "b"), ("x_1", "x_2")])
    ans = f"{l1}{_sp(rng)}={_sp(rng)}{p},{_sp(rng)}{l2}={q}"
    return [("box", f"{p}, {q}", _boxed(ans), True), ("box", f"{p}, {q + 1}", _boxed(ans), False)]


def labelled_ratio(rng):
    p, q = rng.randint(1, 9), rng.randint(10, 19)
    label = rng.choice(["S_{ABC}:S", "AB:BC", "V_1:V_2"])
    return [
        ("box", f"{p}:{q}", _boxed(f"{label}={p}:{q}"), True),
        ("box", f"{q}:{p}", _boxed(f"{label}={p}:{q}"), False),
    ]


def or_and(rng):
    p, q = rng.randint(1, 9), rng.randint(10, 19)
    word = rng.choice(["or", "and", "\\text{ or }", "\\text{ and }"])
    ans = f"({p},{q}) {word} ({q},{p})"
    return [("box", f"({q},{p}),\\ ({p},{q})", _boxed(ans), True), ("box", f"({p},{q})", _boxed(ans), False)]


def gold_several_boxes(rng):
    p, q = rng.randint(1, 9), rng.randint(1, 9)
    gold = f"\\boxed{{{p}}} and \\boxed{{-{q}}}"
    return [("box", gold, _boxed(f"{p}, -{q}"), True), ("box", gold, _boxed(f"{p}"), False)]


# ------------------------------------------------------------------ hard equivalences (bare)
def set_builder(rng):
    a, b = rng.randint(-9, 3), rng.randint(4, 12)
    sep = rng.choice(["\\mid", "|", ":"])
    return [
        ("bare", f"({a},{b})", f"\\{{x {sep} {a}<x<{b}\\}}", True),
        ("bare", f"\\{{x {sep} {a}<x<{b}\\}}", f"({a},{b})", True),
        ("bare", f"({a},{b})", f"\\{{x {sep} {a}<x\\le {b}\\}}", False),
    ]


def chains_bare(rng):
    n = rng.randint(2, 9)
    value = rng.choice([f"\\frac{{\\sqrt{{{n}}}}}{{{n}}}", f"{n}", f"\\frac{{{n}}}{{{n + 1}}}"])
    chain_text = f"a{_sp(rng)}={_sp(rng)}b{_sp(rng)}={_sp(rng)}c{_sp(rng)}={_sp(rng)}{value}"
    return [
        ("bare", value, chain_text, True),
        ("bare", chain_text, value, True),
        ("bare", value, chain_text.replace(value, f"{value}+1"), False),
    ]


def ordinals(rng):
    n = rng.randint(4, 20)
    suffix = rng.choice(["^{\\text{th}}", "^{th}", "th", "\\text{th}"])
    return [("bare", str(n), f"{n}{suffix}", True), ("bare", str(n + 1), f"{n}{suffix}", False)]


def units_after_fractions(rng):
    a, b = rng.randint(1, 60), rng.randint(7, 13)
    unit = rng.choice(["\\text{ hours}", "\\text{ cm}", " \\mbox{ inches}", "\\text{ dollars}"])
    return [
        ("bare", f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{a}}}{{{b}}}{unit}", True),
        ("bare", f"\\frac{{{a}}}{{{b + 1}}}", f"\\frac{{{a}}}{{{b}}}{unit}", False),
    ]


def scientific(rng):
    m, e = rng.randint(2, 9), -rng.randint(2, 12)
    spellings = [
        f"{m} × 10^({e})",
        f"{m}\\times10^{{{e}}}",
        f"{m} \\times 10^{{{e}}}",
        f"{m}e{e}",
        f"{m}*10^{e}",
        f"{m} \\cdot 10^{{{e}}}",
    ]
    gold, answer = rng.sample(spellings, 2)
    return [("bare", gold, answer, True), ("bare", gold, answer.replace(str(e), str(e - 1)), False)]


def markup(rng):
    n = rng.randint(2, 9)
    gold, answer, wrong = rng.choice(
        [
            (f"x^{n}", f"x<sup>{n}</sup>", f"x<sup>{n + 1}</sup>"),
            (f"x>{n}", f"x ＞ {n}", f"x ＞ {n + 1}"),
            (f"x \\ge {n}", f"x ≥ {n}", f"x ≤ {n}"),
            (f"a_{n}", f"a<sub>{n}</sub>", f"a<sub>{n + 1}</sub>"),
        ]
    )
    return [("bare", gold, answer, True), ("bare", gold, wrong, False)]


_EXACT = [
    ("\\frac{1+\\sqrt{5}}{2}", 1.6180339887),
    ("\\sqrt{2}", 1.4142135624),
    ("\\pi", 3.1415926536),
    ("\\sqrt{3}", 1.7320508076),
    ("2\\sqrt{5}", 4.472135955),
    ("\\ln 2", 0.6931471806),
    ("\\frac{\\pi}{4}", 0.7853981634),
]


def approximate_gold(rng):
    exact, value = rng.choice(_EXACT)
    approx = f"{value:.2f}"
    gold = f"{exact} \\approx {approx}"
    return [
        ("bare", gold, exact, True),
        ("bare", gold, approx, True),
        ("bare", gold, f"{value + 0.01:.2f}", False),
        ("bare", exact, f"{value:.3f}", False),
    ]


def rounded_gold(rng):
    exact, value = rng.choice(_EXACT)
    d = rng.choice([2, 3]) if value >= 1 else 3  # at least 3 significant digits (docs/grading.md)
    gold = f"{value:.{d}f}"
    # a one- or two-digit decimal may be an exact gold: 0.7 is not the rounding of sqrt(2)/2
    short = f"{value:.1f}" if abs(value) < 1 else f"{value:.0f}.0"
    return [
        ("bare", gold, exact, True),
        ("bare", f"{value + 10**-d:.{d}f}", exact, False),
        ("bare", gold, f"{value + 2 * 10**-d:.{d}f}", False),
        ("bare", short, exact, False),
    ]


def angles(rng):
    k, m = rng.choice([(1, 4), (1, 3), (1, 6), (2, 3), (3, 4), (5, 6), (1, 2)])
    degrees = 180 * k // m
    radians = f"\\frac{{{'' if k == 1 else k}\\pi}}{{{m}}}"
    deg = rng.choice([f"{degrees}^\\circ", f"{degrees}°", f"{degrees}^{{\\circ}}"])
    other = rng.choice([d for d in (30, 45, 60, 90, 120, 135, 150) if d != degrees])
    return [
        ("bare", deg, radians, True),
        ("bare", radians, deg, True),
        ("bare", f"{other}^\\circ", radians, False),
        ("bare", str(degrees), radians, False),
    ]


def sentences(rng):
    name = rng.choice(["Alice", "Bob", "Evelyn", "even", "odd", "Carla"])
    other = rng.choice([n for n in ("Alice", "Bob", "Evelyn", "Carla") if n != name])
    if name in ("even", "odd"):
        yes, no = f"The function is {name}.", f"The function is not {name}."
    else:
        yes = rng.choice([f"{name} wins the game.", f"{name} has a winning strategy.", f"The winner is {name}."])
        no = rng.choice([f"{name} does not win.", f"{other} wins the game.", f"{name} loses the game."])
    return [("bare", f"\\text{{{name}}}", yes, True), ("bare", f"\\text{{{name}}}", no, False)]


FORMS: dict[str, Callable] = {
    "inline math span": inline_span,
    "equation chain": chain,
    "chat residue": residue,
    "I hope it is correct": hope,
    "other languages": languages,
    "decimal comma": decimal_comma,
    "several boxes (response)": boxes_in_response,
    "percent words": percent_words,
    "doubled backslashes": doubled_backslashes,
    "named components": named_components,
    "labelled values": labelled_values,
    "labelled ratio": labelled_ratio,
    "or/and between solutions": or_and,
    "gold as several boxes": gold_several_boxes,
    "set-builder": set_builder,
    "chain a=b=c=v": chains_bare,
    "ordinals": ordinals,
    "units after fractions": units_after_fractions,
    "scientific notation": scientific,
    "HTML/unicode markup": markup,
    "approximate gold": approximate_gold,
    "rounded gold": rounded_gold,
    "degrees/radians": angles,
    "text answer in a sentence": sentences,
}


def generate(per_form: int, seed: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for form, make in FORMS.items():
        seen: set[tuple[str, str]] = set()
        made: list[Pair] = []
        for _ in range(per_form * 20):
            if len(made) >= per_form:
                break
            for kind, gold, answer, expected in make(rng):
                if (gold, answer) not in seen and len(made) < per_form:
                    seen.add((gold, answer))
                    made.append(Pair(form, kind, gold, answer, expected))
        pairs += made
    return pairs


def math_verify_verdict(pair: Pair) -> bool:
    from math_verify import parse, verify

    try:
        gold = parse(pair.gold if "$" in pair.gold else f"${pair.gold}$")
        answer = parse(pair.answer if pair.kind != "bare" or "$" in pair.answer else f"${pair.answer}$")
        return bool(verify(gold, answer))
    except Exception:  # noqa: BLE001 - an error is "not equal", as in its harness
        return False


def m1eval_verdict(pair: Pair) -> bool:
    from m1eval.grading.equivalence import check_answer

    policy = {"text": "lenient", "box": "boxed", "bare": None}[pair.kind]
    return check_answer(pair.gold, pair.answer, policy=policy).correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-form", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/grading_forms.json"))
    args = parser.parse_args()

    pairs = generate(args.per_form, args.seed)
    start = time.perf_counter()
    for pair in pairs:
        pair.math_verify = math_verify_verdict(pair)
    mv_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for pair in pairs:
        pair.m1eval = m1eval_verdict(pair)
    ours_seconds = time.perf_counter() - start

    header = [
        "form",
        "pairs",
        "disagreements",
        "m1eval right",
        "math-verify right",
        "m1eval false pos.",
        "math-verify false pos.",
    ]
    print(" | ".join(header))
    print(" | ".join(["---"] * len(header)))
    totals = [0] * 6
    for form in FORMS:
        rows = [p for p in pairs if p.form == form]
        counts = [
            len(rows),
            sum(p.m1eval != p.math_verify for p in rows),
            sum(p.m1eval == p.expected for p in rows),
            sum(p.math_verify == p.expected for p in rows),
            sum(p.m1eval and not p.expected for p in rows),
            sum(p.math_verify and not p.expected for p in rows),
        ]
        totals = [t + c for t, c in zip(totals, counts)]
        print(" | ".join([form] + [str(c) for c in counts]))
    print(" | ".join(["all"] + [str(t) for t in totals]))
    n = max(1, totals[0])
    print(
        f"right by construction: m1eval {totals[2] / n:.1%}, math-verify {totals[3] / n:.1%}; "
        f"m1eval {ours_seconds:.1f} s (guarded calls), math-verify {mv_seconds:.1f} s"
    )
    wrong = [asdict(p) for p in pairs if p.m1eval != p.expected or p.math_verify != p.expected]
    args.out.write_text(json.dumps(wrong, indent=1, ensure_ascii=False))
    print(f"wrote {len(wrong)} pairs that either checker gets wrong to {args.out}")


if __name__ == "__main__":
    main()

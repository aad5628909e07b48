"""Differential testing of m1eval's checker against math-verify on reformatted golds.

Every gold of the five benchmarks is rewritten the ways models and labellers write
answers, per answer form: equations (``x = g``, sides swapped), several answers (orders,
"and"/"or", sets), tuples (bare, ``\\left(...\\right)``), sets, percents, math delimiters
(``$g$``, ``\\(g\\)``, ``\\[g\\]``, ``$$g$$``, ``\\text{}``) and prose wrappers ("Answer: $g$",
"The final answer is g."). Each rewrite has an expected verdict by construction (a
rewrite must equal; a perturbation, such as a changed value or a dropped element, must
not). Both checkers judge each (gold, rewrite) pair; the script prints, per form, the
pairs tried, the disagreements, and who matches the construction, and writes every
disagreement to a JSON file to study.

    python benchmarks/grading_agreement.py [--per-form 400] [--out /tmp/agreement.json]
        [--mv-cache /tmp/mv_cache.json]

math-verify is slow, so its verdicts are cached (``--mv-cache``): a second run after a
change to m1eval re-judges only m1eval. Needs the dev extra (math-verify).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
TASKS = ("math500", "olympiadbench", "aime24", "aime25", "amc23")
FORMS = ("equation", "list", "tuple", "set", "percent", "delimiter", "prose")


def _strip_dollars(gold: str) -> str:
    return gold.strip().strip("$").strip()


def _split_top(text: str) -> list[str]:
    depth, start, parts = 0, 0, []
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def _closes_at_end(text: str) -> bool:
    """The first opening parenthesis is closed by the last character (one tuple, not a list of them)."""
    depth = 0
    start = text.index("(")
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i == len(text) - 1
    return False


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(?:\.\d+)?", text))


def _bump(text: str) -> str | None:
    """A different value of the same shape (changes the first integer: the last is often a unit's power)."""
    m = re.search(r"\d+", text)
    if m is None:
        return None
    return text[: m.start()] + str(int(m.group(0)) + 1) + text[m.end() :]


def rewrites(gold_raw: str, rng: random.Random) -> list[tuple[str, str, bool]]:
    """(form, rewritten answer, must be equal) for one gold."""
    golds = (
        [_strip_dollars(g) for g in re.split(r"\$\s*,\s*\$", gold_raw)] if "$,$" in gold_raw.replace(" ", "") else None
    )
    g = _strip_dollars(gold_raw) if golds is None else ", ".join(golds)
    out: list[tuple[str, str, bool]] = []
    bumped = _bump(g)
    has_relation = bool(re.search(r"=|<|>|\\le|\\ge|\\in", g))
    items = _split_top(g)
    is_tuple = (
        g.startswith(("(", "\\left("))
        and g.endswith((")", "\\right)"))
        and "," in g
        and "\\cup" not in g
        and _closes_at_end(g)
        and "\\infty" not in g
    )
    thousands = bool(re.fullmatch(r"\\?\$?\d{1,3}(?:,(?:\\!)? ?\d{3})+(?:\.\d+)?", g))
    is_set = g.startswith("\\{") and g.endswith("\\}")
    # equations
    if not has_relation and len(items) == 1 and "\\text" not in g:
        out += [("equation", f"x = {g}", True), ("equation", f"x={g}", True)]
        if bumped:
            out.append(("equation", f"x = {bumped}", False))
    elif has_relation and g.count("=") == 1 and not re.search(r"<|>|\\le|\\ge", g) and len(items) == 1:
        lhs, rhs = g.split("=")
        out += [("equation", f"{rhs.strip()} = {lhs.strip()}", True)]
        if bumped:
            out.append(("equation", bumped, False))
    # several answers
    if (
        len(items) > 1
        and not is_tuple
        and not is_set
        and "\\cup" not in g
        and not g.startswith(("(", "["))
        and not thousands
        and "where" not in g
    ):
        shuffled = items[:]
        rng.shuffle(shuffled)
        out += [
            ("list", ", ".join(shuffled), True),
            ("list", " and ".join(items), True),
            ("list", ", ".join(items[:-1]) + " or " + items[-1], True),
            ("set", "\\{" + ", ".join(shuffled) + "\\}", True),
            ("list", ", ".join(items[:-1]), False),
            ("set", "\\{" + ", ".join(items[1:]) + "\\}", False),
        ]
    # tuples
    if is_tuple:
        inner = g[g.index("(") + 1 : g.rindex(")")]
        inner = inner.removesuffix("\\right").strip()
        parts = _split_top(inner)
        out += [("tuple", f"\\left({inner}\\right)", True), ("tuple", f"({inner})", True), ("tuple", inner, True)]
        if len(parts) > 1 and parts[0] != parts[-1]:
            out.append(("tuple", "(" + ", ".join(parts[::-1]) + ")", False))
    # sets
    if is_set:
        inner = g[2:-2]
        parts = _split_top(inner)
        rng.shuffle(parts)
        out += [("set", "\\{" + ", ".join(parts) + "\\}", True), ("set", ", ".join(parts), True)]
        if len(parts) > 1:
            out.append(("set", "\\{" + ", ".join(parts[:-1]) + "\\}", False))
    # percents
    if _is_number(g):
        out += [("percent", f"{g}\\%", True), ("percent", f"{g}%", True)]
        if bumped:
            out.append(("percent", f"{bumped}\\%", False))
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*\\?%", g)
    if m:
        value = float(m.group(1)) / 100
        out += [
            ("percent", m.group(1), True),
            ("percent", f"{value:g}", True),
            ("percent", f"{m.group(1)} percent", True),
        ]
    if not has_relation and len(items) == 1 and re.search(r"[a-z]", re.sub(r"\\[A-Za-z]+", "", g)):
        out += [("equation", f"y = {g}", True), ("equation", f"f(x) = {g}", True)]
    if len(items) > 1 and all(_is_number(i) for i in items) and not thousands:
        out += [
            ("list", ", ".join(f"x = {i}" for i in items), True),
            ("list", "; ".join(items), True),
            ("list", ", ".join(f"x = {i}" for i in items[:-1]), False),
        ]
        if len(set(items)) > 1:
            out.append(
                (
                    "list",
                    ", ".join([*items[:-1], str(-float(items[-1]) if "." in items[-1] else -int(items[-1]))]),
                    items[-1] in ("0", "-0"),
                )
            )
    if _is_number(g) and "." not in g and 0 < abs(int(g)) < 10_000:
        out += [("percent", f"{int(g)}.0\\%", True), ("percent", f"{int(g) / 100:g}", False)]
    # delimiters
    if _is_number(g):
        out += [
            ("delimiter", f"\\text{{{g}}}", True),
            ("delimiter", f"\\mathbf{{{g}}}", True),
            ("delimiter", f"\\boxed{{{g}}}", True),
        ]
    out += [("delimiter", f"\\displaystyle {g}", True), ("delimiter", f"\\( \\displaystyle {g} \\)", True)]
    out += [
        ("delimiter", f"${g}$", True),
        ("delimiter", f"\\({g}\\)", True),
        ("delimiter", f"\\[{g}\\]", True),
        ("delimiter", f"$${g}$$", True),
    ]
    if re.fullmatch(r"[A-Za-z ]+", g):
        out.append(("delimiter", f"\\text{{{g}}}", True))
    if bumped:
        out.append(("delimiter", f"${bumped}$", False))
    # prose wrappers
    out += [
        ("prose", f"Answer: ${g}$", True),
        ("prose", f"The answer is ${g}$.", True),
        ("prose", f"The final answer is {g}", True),
        ("prose", f"**Answer:** ${g}$", True),
        ("prose", f"So the answer is \\({g}\\).", True),
    ]
    out += [
        ("prose", f"Final Answer: The final answer is ${g}$. I hope it is correct.", True),
        ("prose", f"Therefore, the answer is $\\boxed{{{g}}}$.", True),
        ("prose", f"The answer is: {g}", True),
        ("prose", f"Thus, the answer is ${g}$", True),
    ]
    if bumped:
        out += [
            ("prose", f"The final answer is ${bumped}$.", False),
            ("prose", f"Final Answer: The final answer is ${bumped}$. I hope it is correct.", False),
        ]
    return out


def load_pairs(per_form: int, seed: int = 0, data: Path = DATA) -> list[dict]:
    from m1eval.tasks.loader import load_task

    rng = random.Random(seed)
    by_form: dict[str, list[dict]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    for task in TASKS:
        for problem in load_task(task, data):
            gold = problem.answers[0]
            tolerance = (problem.meta or {}).get("tolerance")
            for form, answer, expected in rewrites(gold, rng):
                if (gold, answer) in seen or (tolerance and not expected):
                    continue  # a perturbation may lie within the problem's tolerance
                seen.add((gold, answer))
                by_form[form].append(
                    {
                        "task": task,
                        "id": problem.id,
                        "gold": gold,
                        "answer": answer,
                        "form": form,
                        "expected": expected,
                        "format": problem.answer_format,
                        "meta": {k: v for k, v in (problem.meta or {}).items() if k in ("unit", "tolerance")},
                    }
                )
    pairs = []
    for form in FORMS:
        items = by_form.get(form, [])
        rng.shuffle(items)
        pairs += items[:per_form]
    return pairs


def math_verify_verdict(gold: str, answer: str) -> bool:
    from math_verify import parse, verify

    try:
        gold_text = gold if "$" in gold else f"${gold}$"
        return bool(verify(parse(gold_text), parse(answer)))
    except Exception:  # noqa: BLE001 - an error is "not equal", as in its harness
        return False


def m1eval_verdict(pair: dict) -> bool:
    from m1eval.grading.equivalence import check_inline

    result = check_inline(pair["gold"], pair["answer"], None, pair["format"], None, pair["meta"] or None)
    return result.correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-form", type=int, default=400)
    parser.add_argument("--out", type=Path, default=Path("/tmp/grading_agreement.json"))
    parser.add_argument("--mv-cache", type=Path, default=Path("/tmp/grading_mv_cache.json"))
    parser.add_argument("--data-dir", type=Path, default=DATA)
    args = parser.parse_args()

    pairs = load_pairs(args.per_form, data=args.data_dir)
    cache: dict[str, bool] = json.loads(args.mv_cache.read_text()) if args.mv_cache.exists() else {}
    start = time.perf_counter()
    for i, pair in enumerate(pairs):
        key = pair["gold"] + "\x00" + pair["answer"]
        if key not in cache:
            cache[key] = math_verify_verdict(pair["gold"], pair["answer"])
            if i % 200 == 0:
                args.mv_cache.write_text(json.dumps(cache))
        pair["math_verify"] = cache[key]
    args.mv_cache.write_text(json.dumps(cache))
    mv_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for pair in pairs:
        pair["m1eval"] = m1eval_verdict(pair)
    ours_seconds = time.perf_counter() - start

    rows = defaultdict(lambda: defaultdict(int))
    disagreements = []
    for pair in pairs:
        row = rows[pair["form"]]
        row["pairs"] += 1
        row["m1eval right"] += pair["m1eval"] == pair["expected"]
        row["math-verify right"] += pair["math_verify"] == pair["expected"]
        row["m1eval false positives"] += pair["m1eval"] and not pair["expected"]
        row["math-verify false positives"] += pair["math_verify"] and not pair["expected"]
        if pair["m1eval"] != pair["math_verify"]:
            row["disagreements"] += 1
            row["math-verify right in disagreement"] += pair["math_verify"] == pair["expected"]
            disagreements.append(pair)
    header = [
        "form",
        "pairs",
        "disagreements",
        "math-verify right in disagreement",
        "m1eval right",
        "math-verify right",
        "m1eval false positives",
        "math-verify false positives",
    ]
    print(" | ".join(header))
    total = defaultdict(int)
    for form in FORMS:
        row = rows.get(form)
        if not row:
            continue
        for k in header[1:]:
            total[k] += row[k]
        print(" | ".join([form] + [str(row[k]) for k in header[1:]]))
    print(" | ".join(["all"] + [str(total[k]) for k in header[1:]]))
    n = max(1, total["pairs"])
    print(
        f"agreement with the construction: m1eval {total['m1eval right'] / n:.1%}, math-verify "
        f"{total['math-verify right'] / n:.1%}; m1eval {ours_seconds:.1f} s, math-verify {mv_seconds:.1f} s "
        f"(uncached part)"
    )
    args.out.write_text(json.dumps(disagreements, indent=1, ensure_ascii=False))
    print(f"wrote {len(disagreements)} disagreements to {args.out}")


if __name__ == "__main__":
    main()

"""Adversarial inputs aimed at every pattern of m1eval.grading: nothing may backtrack.

Issue 10: ``\\boxed{5 abcdefghijklmnopqrstuvwxyzabcd!}`` made one regular expression in
``normalize`` backtrack exponentially and stalled ``grade``. These strings are long runs of
what the patterns repeat (letters, words, digits, spaces, dots, braces, backslashes,
commands, phrases) with a tail that forces a failed match, at lengths 10^2 to 10^5.
Extraction (boxed and lenient), normalisation and the cheap verdict tiers (shapes, numbers,
class key; no sympy) of each must take at most 50 ms of CPU
(the least of three runs, as the test machines are shared).

The cases run in a child process so that a regression fails this test with the name of
the input instead of hanging the suite: the parent waits at most ``HANG_S`` for each case.
Only ``extract_answer(text[, fallbacks=True])`` and ``normalize_answer`` are used, so the
same file runs against older versions of the package (that is how it was checked to fail
before the fix; see docs/grading.md).
"""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest

BUDGET_S = 0.050
HANG_S = 10.0
REPEATS = 3
LENGTHS = (100, 1_000, 10_000, 100_000)

# (name, unit, tail): the unit is repeated to the length, then the tail forces a failure.
FAMILIES = [
    ("letters", "a", "!"),
    ("number-then-letters", "a", "!"),  # the issue's "1 aaaa...a!"
    ("unit-words", "apples ", "!"),
    ("words-with-periods", "ab. ", "?"),
    ("digits", "1", "x"),
    ("digit-commas", "1,", "x"),
    ("thousands", "000,", "x"),
    ("space-thousands", "000 ", "x"),
    ("spaces", " ", "x"),
    ("newlines", "\n", "x"),
    ("dots", ".", "a"),
    ("number-dots", "1.", "a"),
    ("open-braces", "{", "x"),
    ("close-braces", "}", "{"),
    ("backslashes", "\\", "{"),
    ("commands", "\\a", "!"),
    ("unclosed-frac", "\\frac{", "x"),
    ("unclosed-text", "\\text{", "x"),
    ("unclosed-box", "\\boxed{", "x"),
    ("box-commands", "\\boxed ", "$"),
    ("framebox-brackets", "\\framebox[", "x"),
    ("hspace", "\\hspace{", "x"),
    ("text-units", "\\text{ cm}", "!"),
    ("carets", "^ ", "{"),
    ("or-and", " or ", "="),
    ("dollars", "$", "\\"),
    ("display-math", "\\[", "="),
    ("answer-phrases", "Answer: ", ""),
    ("final-answer-phrases", "the final answer is ", "\n"),
    ("equals", "=", "("),
    ("parentheses", "(", "]"),
    ("numbers-words", "5 apples and pears ", "!"),
    ("sub-sup", "_1 ", "^"),
    ("think", "<think>", "</think>"),
]


def _build(name: str, unit: str, tail: str, length: int) -> str:
    head = "1 " if name.startswith("number") else ""
    body = unit * max(1, (length - len(head) - len(tail)) // max(1, len(unit)))
    return head + body + tail


def _cases() -> list[tuple[str, str]]:
    cases = []
    for name, unit, tail in FAMILIES:
        for length in LENGTHS:
            text = _build(name, unit, tail, length)
            cases.append((f"{name}/{length}/bare", text))
            cases.append((f"{name}/{length}/boxed", "Thus \\boxed{" + text + "}"))
    return cases


def _child(conn) -> None:  # noqa: ANN001
    from m1eval.grading import extract_answer, normalize_answer
    from m1eval.grading.clusters import answer_key
    from m1eval.grading.equivalence import verdict

    normalize_answer(extract_answer("\\boxed{1}") or "")  # imports and caches are not the inputs' cost
    extract_answer("The answer is 1.", fallbacks=True)
    for case_id, text in _cases():
        best = float("inf")
        for _ in range(REPEATS):  # the least of a few runs: the machine is shared, the input is the cost
            start = time.process_time()
            for lenient in (False, True):
                answer = extract_answer(text, fallbacks=lenient) if lenient else extract_answer(text)
                normalize_answer(answer if answer is not None else text)
            norm = normalize_answer(text)
            verdict("\\frac{1}{2}", norm, symbolic_ok=False, normalized=True)  # the cheap tiers too
            answer_key(norm, symbolic_ok=False)
            best = min(best, time.process_time() - start)
            if best <= BUDGET_S / 2:
                break
        conn.send((case_id, best))
    conn.send(None)


def test_adversarial_inputs_take_linear_time():
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(child,), daemon=True)
    process.start()
    child.close()
    timings: dict[str, float] = {}
    expected = [case_id for case_id, _ in _cases()]
    try:
        for case_id in expected:
            if not parent.poll(HANG_S):
                pytest.fail(
                    f"{case_id}: extraction + normalisation did not finish within {HANG_S:g} s "
                    f"(after {len(timings)} cases)"
                )
            message = parent.recv()
            assert message is not None and message[0] == case_id
            timings[case_id] = message[1]
    finally:
        process.kill()
        process.join(5)
    slow = {k: round(v, 3) for k, v in timings.items() if v > BUDGET_S}
    assert not slow, f"over {BUDGET_S * 1000:.0f} ms of CPU: {slow}"


def test_the_issue_command_returns_quickly():
    """The exact input of issue 10, through the public guarded functions."""
    from m1eval.grading import check_answer

    start = time.perf_counter()
    result = check_answer("5", "\\boxed{5 abcdefghijklmnopqrstuvwxyzabcd!}", policy="boxed")
    assert result.status in ("ok", "unparsable") and not result.correct
    assert time.perf_counter() - start < 10  # includes starting the guarded worker once


def test_hard_deadline_of_public_functions():
    """Past the deadline a caller gets a timeout status (or GradingTimeout), never a hang."""
    from m1eval.grading import GradingTimeout, check_answer, extract_answer, guard, is_equivalent

    assert check_answer("5", "\\boxed{5}", policy="boxed", timeout=1e-6).status == "timeout"
    with pytest.raises(GradingTimeout):
        is_equivalent("5", "5", timeout=1e-6)
    with pytest.raises(GradingTimeout):
        extract_answer("\\boxed{5}", timeout=1e-6)
    assert is_equivalent("x^2", "x \\cdot x", timeout=60)  # starts the sympy worker (not timed)
    start = time.perf_counter()
    with pytest.raises(GradingTimeout):
        guard.call("sleep", 60, timeout=0.5)  # a stalled step is killed at its deadline
    assert time.perf_counter() - start < 5
    assert extract_answer("\\boxed{7}") == "7"  # the next call gets a fresh worker
    assert check_answer("5", "so \\boxed{5}", policy="boxed").status == "ok"

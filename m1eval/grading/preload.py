"""What the grading forkserver imports once, so its children start with sympy ready.

Kept apart from ``jobs`` so that a light worker (extraction, normalisation, the cheap
verdict tiers: no sympy) can start in milliseconds.
"""

from __future__ import annotations

import contextlib

import latex2sympy2_extended  # noqa: F401 - the grammar, built once
import sympy  # noqa: F401

from m1eval.grading import jobs, symbolic  # noqa: F401


def _warm_up() -> None:
    """Build the LaTeX parser once, here: its first use costs ~0.5 s, which on a busy machine
    could pass a child's 1 s soft limit and make an answer 'unparsable'."""
    with contextlib.suppress(Exception):  # a warm-up only
        symbolic.sym_equal("\\frac{x^{2}}{2}+\\sin x", "\\sqrt{4}")


_warm_up()

"""Bounded symbolic comparison of two leaf expressions through latex2sympy2_extended + sympy.

Model text reaches sympy only through the LaTeX grammar of latex2sympy2_extended (no
``sympify``/``parse_expr``, so no ``eval``), and the resulting tree is inspected before
anything is evaluated: numbers with too many digits, towers such as ``10^{10^{10}}``,
huge factorials and oversized trees are refused. Every sympy step runs under a soft
time limit (SIGALRM, main thread only); the grader's worker processes add the hard
limit (kill) and a memory limit on top.

Equality is decided as a careful grader would: numerically at deterministic random
points first (a clear difference is a definite "no"), then ``simplify(g - a) == 0``;
when simplification is inconclusive or too slow, agreement to 1e-10 relative at
several points is accepted (the bounded fallback).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import signal
import threading
from collections.abc import Iterator
from functools import lru_cache

MAX_LATEX_CHARS = 600
MAX_TREE_NODES = 1500
MAX_LOG2 = 20_000  # a constant may have at most ~6000 decimal digits
MAX_FACTORIAL = 2000
SOFT_SIMPLIFY_S = 1.0
SOFT_EVAL_S = 1.0


class SymbolicError(Exception):
    """The expression cannot be read or is refused as unsafe to evaluate."""


class SoftTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise SoftTimeout after ``seconds`` (pure-Python sympy loops notice the signal)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def _raise(signum, frame):  # noqa: ANN001
        raise SoftTimeout()

    previous = signal.signal(signal.SIGALRM, _raise)
    remaining = signal.setitimer(signal.ITIMER_REAL, seconds)[0]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if remaining > 0:  # an outer limit was running: re-arm what is left of it (approximately)
            signal.setitimer(signal.ITIMER_REAL, max(remaining - seconds, 0.001))


@lru_cache(maxsize=1)
def _sympy():
    import sympy

    return sympy


@lru_cache(maxsize=1)
def _converter():
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig

    config = ConversionConfig(
        interpret_as_mixed_fractions=True,
        interpret_simple_eq_as_assignment=False,
        interpret_contains_as_eq=False,
        lowercase_symbols=False,
    )
    return latex2sympy, config


def _log2_magnitude(node, budget: list[int]) -> float | None:  # noqa: ANN001
    """An upper estimate of log2|value| of a constant subtree; None when it has symbols.

    Raises SymbolicError when the value (or any intermediate) would be too large to
    compute, which is how towers and huge factorials are refused before evaluation.
    """
    sp = _sympy()
    budget[0] -= 1
    if budget[0] < 0:
        raise SymbolicError("expression tree too large")
    if node.is_Integer:
        return float(int(node).bit_length())
    if node.is_Rational:
        return float(max(int(node.p).bit_length(), int(node.q).bit_length()))
    if node.is_Float:
        return 0.0 if node == 0 else abs(math.log2(abs(float(node)) or 1e-300))
    if node.is_Symbol or isinstance(node, sp.Dummy):
        return None
    if node.is_Pow:
        base, exp = node.args
        lb = _log2_magnitude(base, budget)
        le = _log2_magnitude(exp, budget)
        if le is not None and le > 40 and not (base.is_Number and abs(base) in (0, 1)):
            raise SymbolicError("tower or huge exponent")
        if exp.is_Number:
            e = abs(float(exp))
            if lb is not None and lb * e > MAX_LOG2:
                raise SymbolicError("power too large")
            if lb is None and e > 1000:
                raise SymbolicError("symbolic power too large")
            return None if lb is None else lb * max(e, 1.0)
        if le is not None and lb is not None:
            estimate = lb * 2.0**le
            if estimate > MAX_LOG2:
                raise SymbolicError("power too large")
            return estimate
        return None
    if isinstance(node, (sp.factorial, sp.factorial2, sp.subfactorial)) or node.func.__name__ in (
        "gamma",
        "RisingFactorial",
        "FallingFactorial",
    ):
        arg = node.args[0]
        if arg.is_Number and abs(float(arg)) > MAX_FACTORIAL:
            raise SymbolicError("factorial too large")
        mags = [_log2_magnitude(a, budget) for a in node.args]
        if any(m is not None and m > 11 for m in mags):
            raise SymbolicError("factorial too large")
        if arg.is_Number:
            n = abs(float(arg))
            return n * math.log2(n + 1)
        return None
    if isinstance(node, sp.binomial):
        mags = [_log2_magnitude(a, budget) for a in node.args]
        if any(m is not None and m > 14 for m in mags):
            raise SymbolicError("binomial too large")
        return None
    mags = [_log2_magnitude(a, budget) for a in node.args] if node.args else []
    known = [m for m in mags if m is not None]
    if len(known) < len(mags) or not node.args:
        return None if node.free_symbols else 0.0
    if node.is_Mul:
        return sum(known)
    if node.is_Add:
        return max(known) + len(known)
    return max(known) if known else 0.0


def check_safe(expr) -> None:  # noqa: ANN001
    sp = _sympy()
    if isinstance(expr, sp.MatrixBase):
        for item in expr:
            check_safe(item)
        return
    if not isinstance(expr, sp.Basic):
        raise SymbolicError(f"unexpected object {type(expr).__name__}")
    _log2_magnitude(expr, [MAX_TREE_NODES])


@lru_cache(maxsize=4096)
def to_sympy(latex: str):  # noqa: ANN201
    """A sympy object for a normalised LaTeX leaf, or SymbolicError."""
    latex = latex.replace("°", "")  # the degree marker of normalize.DEGREE: degrees are numbers
    if len(latex) > MAX_LATEX_CHARS:
        raise SymbolicError("expression too long")
    if not latex.strip():
        raise SymbolicError("empty")
    if latex.count("{") > 150 or latex.count("^") > 60:
        raise SymbolicError("too deeply nested")
    convert, config = _converter()
    sp = _sympy()
    try:
        with time_limit(SOFT_EVAL_S):
            expr = convert(latex, normalization_config=None, conversion_config=config)
    except SoftTimeout as exc:
        raise SymbolicError("parse too slow") from exc
    except RecursionError as exc:
        raise SymbolicError("nesting too deep") from exc
    except Exception as exc:  # the grammar's errors are plain Exceptions
        raise SymbolicError(f"cannot parse: {str(exc).splitlines()[0][:80]}") from exc
    check_safe(expr)
    if isinstance(expr, sp.Basic) and not isinstance(expr, sp.MatrixBase):
        imaginary = [s for s in expr.free_symbols if getattr(s, "name", "") == "i"]
        if imaginary:
            expr = expr.xreplace({imaginary[0]: sp.I})
    return expr


def _point_value(name: str, k: int) -> float:
    """A deterministic 'random' positive value per (symbol, point) so verdicts are reproducible."""
    digest = hashlib.sha256(f"{name}:{k}".encode()).digest()
    return 0.31 + 2.3 * int.from_bytes(digest[:6], "big") / 2**48


def _evaluate(expr, k: int, symbols) -> complex | None:  # noqa: ANN001
    sp = _sympy()
    subs = {s: sp.Float(_point_value(s.name, k), 30) for s in symbols}
    try:
        with time_limit(SOFT_EVAL_S):
            value = expr.evalf(30, subs=subs) if subs else expr.evalf(30)
            if value.free_symbols:
                return None
            result = complex(value)
    except (SoftTimeout, TypeError, ValueError, ZeroDivisionError, OverflowError, AttributeError, RecursionError):
        return None
    except Exception:  # sympy raises assorted errors on odd trees
        return None
    if math.isnan(result.real) or math.isnan(result.imag) or math.isinf(abs(result)):
        return None
    return result


def _has_steps(expr) -> bool:  # noqa: ANN001
    sp = _sympy()
    try:
        return bool(expr.has(sp.floor, sp.ceiling, sp.Mod, sp.frac))
    except Exception:  # noqa: BLE001 - odd trees: no extra points
        return False


def _evaluate_at(expr, subs) -> complex | None:  # noqa: ANN001
    try:
        with time_limit(SOFT_EVAL_S):
            value = expr.evalf(30, subs=subs)
            if value.free_symbols:
                return None
            result = complex(value)
    except Exception:  # noqa: BLE001 - sympy raises assorted errors on odd trees
        return None
    if math.isnan(result.real) or math.isnan(result.imag) or math.isinf(abs(result)):
        return None
    return result


def _exact_difference(g, a):  # noqa: ANN001, ANN202 - sympy objects
    """``g - a`` as an exact Rational when both sides are rational numbers, else None.

    Integers, fractions and powers of them are compared exactly: as doubles, 10^{100} and
    10^{100}+1 are the same number. Sizes are already bounded by ``check_safe``.
    """
    sp = _sympy()
    try:
        with time_limit(SOFT_EVAL_S):
            diff = (g - a).doit()
    except Exception:  # noqa: BLE001 - sympy raises assorted errors; fall back to numerics
        return None
    return diff if isinstance(diff, sp.Rational) else None


def _precise_difference(g, a) -> float | None:  # noqa: ANN001
    """|g - a| evaluated to 60 significant digits (sympy's evalf adapts its working precision)."""
    try:
        with time_limit(SOFT_EVAL_S):
            value = abs(complex((g - a).evalf(60)))
    except Exception:  # noqa: BLE001
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _close(x: complex, y: complex, rel: float = 1e-10) -> bool:
    return abs(x - y) <= rel * max(1.0, abs(x), abs(y))


def sym_equal(gold_latex: str, answer_latex: str, tolerance: float | None = None) -> bool:
    """Whether two leaf expressions are mathematically equal; SymbolicError when one cannot be read."""
    sp = _sympy()
    g = to_sympy(gold_latex)
    a = to_sympy(answer_latex)
    if isinstance(g, sp.MatrixBase) or isinstance(a, sp.MatrixBase):
        if not (isinstance(g, sp.MatrixBase) and isinstance(a, sp.MatrixBase)) or g.shape != a.shape:
            return False
        return all(_expr_equal(x, y, tolerance) for x, y in zip(g, a))
    if not isinstance(g, sp.Expr) or not isinstance(a, sp.Expr):
        return g == a
    return _expr_equal(g, a, tolerance)


def _expr_equal(g, a, tolerance: float | None) -> bool:  # noqa: ANN001
    if g == a:
        return True
    symbols = sorted(g.free_symbols | a.free_symbols, key=lambda s: s.name)
    if not symbols:
        exact = _exact_difference(g, a)
        if exact is not None:
            return exact == 0 or (tolerance is not None and abs(float(exact)) <= tolerance + 1e-12)
        gv, av = _evaluate(g, 0, ()), _evaluate(a, 0, ())
        if gv is None or av is None:
            return _simplifies_to_zero(g - a)
        if tolerance is not None and abs(gv - av) <= tolerance + 1e-12:
            return True
        if not _close(gv, av, 1e-12):
            return False
        # Doubles agree; decide with the difference evaluated to 60 significant digits
        # (53-bit floats cannot tell 10^{100}+\sqrt2 from 10^{100}).
        precise = _precise_difference(g, a)
        if precise is not None:
            return precise <= 1e-45 * max(1.0, abs(gv))
        return _simplifies_to_zero(g - a, default=True)
    if set(g.free_symbols) != set(a.free_symbols) and len(symbols) > 0:
        # different variables can still cancel ("x - x + y" vs "y"): decided by the numbers below
        pass
    if _has_steps(g) or _has_steps(a):
        # floor/ceiling/mod are constant on the small random points below (floor(m/2) and
        # floor(m/3) are both 0 for m < 2): also compare at spread-out integers
        for k in range(4):
            subs = {s: _sympy().Integer(5 + 7 * k + 3 * i) for i, s in enumerate(symbols)}
            gv, av = _evaluate_at(g, subs), _evaluate_at(a, subs)
            if gv is not None and av is not None and not _close(gv, av):
                return False
    agree = 0
    for k in range(3):
        gv, av = _evaluate(g, k, symbols), _evaluate(a, k, symbols)
        if gv is None or av is None:
            continue
        if not _close(gv, av):
            return False
        agree += 1
    if agree == 0:
        return _simplifies_to_zero(g - a)
    return _simplifies_to_zero(g - a, default=True)


def _simplifies_to_zero(diff, default: bool = False) -> bool:  # noqa: ANN001
    sp = _sympy()
    try:
        with time_limit(SOFT_SIMPLIFY_S):
            if diff == 0 or sp.expand(diff) == 0:
                return True
            return bool(sp.simplify(diff) == 0) or default
    except SoftTimeout:
        return default
    except Exception:
        return default


def rounds_to(answer_latex: str, gold, decimals: int) -> bool:  # noqa: ANN001 - gold is a Fraction
    """Whether the constant ``answer_latex`` rounded to ``decimals`` places is ``gold``."""
    from m1eval.grading.forms import rounds_to as close_enough

    sp = _sympy()
    expr = to_sympy(answer_latex)
    if not isinstance(expr, sp.Expr) or expr.free_symbols:
        return False
    value = _evaluate(expr, 0, ())
    if value is None or abs(value.imag) > 1e-12:
        return False
    return close_enough(value.real, gold, decimals)


def sym_key(latex: str) -> tuple:
    """A cluster key: the values at fixed points, rounded, so equal expressions share it."""

    sp = _sympy()
    expr = to_sympy(latex)
    if isinstance(expr, sp.MatrixBase):
        return ("m", expr.shape, tuple(sym_key_expr(x) for x in expr))
    if not isinstance(expr, sp.Expr):
        return ("s", sp.srepr(expr)[:200])
    return sym_key_expr(expr)


def sym_key_expr(expr) -> tuple:  # noqa: ANN001
    from m1eval.grading.numbers import format_float

    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    values = []
    for k in range(2 if symbols else 1):
        v = _evaluate(expr, k, symbols)
        if v is None:
            return ("s", str(expr)[:200])
        values.append((format_float(v.real), format_float(v.imag) if abs(v.imag) > 1e-12 * max(1, abs(v)) else "0"))
    if not symbols:
        re_, im = values[0]
        return ("c", re_) if im == "0" else ("z", re_, im)
    return ("f", tuple(s.name for s in symbols), tuple(values))

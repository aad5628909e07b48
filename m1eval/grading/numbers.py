"""Exact numbers from normalised answers: the fast path that decides most verdicts.

Competition answers are overwhelmingly numbers. Reading them into ``Fraction`` decides
"016" = "16", "0.5" = "\\frac{1}{2}", "1\\frac{4}{5}" = "9/5", "2.5\\times10^{3}" = "2500"
exactly and in microseconds, without sympy. Sizes are capped so a hostile "10^{99999999}"
is simply not a number here (the symbolic path refuses it as well).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 400
MAX_EXPONENT = 400

_INT = r"[+-]?\d+"
_DEC = r"[+-]?(?:\d+\.\d*|\.\d+|\d+)"
_RE_DEC = re.compile(rf"^({_DEC})$")
_RE_SCI = re.compile(rf"^({_DEC})(?:[eE]([+-]?\d+)|(?:\\times|\\cdot|\*|x) ?10\^[{{(]?([+-]?\d+)[)}}]?)$")
_RE_POW10 = re.compile(r"^([+-]?)10\^\{?([+-]?\d+)\}?$")
_RE_POW = re.compile(r"^([+-]?)(\d+)\^\{?(\d+)\}?$")
_RE_FRAC = re.compile(rf"^([+-]?)\\frac\{{({_DEC})\}}\{{({_DEC})\}}$")
_RE_SLASH = re.compile(rf"^({_DEC})/({_DEC})$")
_RE_MIXED = re.compile(r"^([+-]?)(\d+)\\frac\{(\d+)\}\{(\d+)\}$")


@dataclass(frozen=True)
class Number:
    """An exactly read number; ``decimals`` is the count of digits written after the point."""

    value: Fraction
    decimals: int | None = None
    percent: bool = False

    @property
    def is_decimal(self) -> bool:
        return self.decimals is not None and self.decimals > 0


def _dec(text: str) -> tuple[Fraction, int | None]:
    if len(text) > MAX_DIGITS:
        raise ValueError("too many digits")
    decimals = len(text.split(".", 1)[1]) if "." in text else None
    return Fraction(text), decimals


def parse_number(text: str) -> Number | None:
    """The exact value of a normalised answer that is a plain number, else None."""
    if not text or len(text) > MAX_DIGITS:
        return None
    percent = False
    text = text.removesuffix("°")  # degrees equal plain numbers (docs/grading.md)
    if text.endswith("%"):
        percent = True
        text = text[:-1].rstrip("\\")
    if text.startswith("+"):
        text = text[1:]
    try:
        m = _RE_DEC.match(text)
        if m:
            value, decimals = _dec(m.group(1))
            return Number(value, decimals, percent)
        m = _RE_FRAC.match(text)
        if m:
            num, _ = _dec(m.group(2))
            den, _ = _dec(m.group(3))
            if den == 0:
                return None
            value = num / den
            return Number(-value if m.group(1) == "-" else value, None, percent)
        m = _RE_MIXED.match(text)
        if m:
            whole, part, parts = int(m.group(2)), int(m.group(3)), int(m.group(4))
            if parts == 0 or part >= parts:
                return None
            value = whole + Fraction(part, parts)
            return Number(-value if m.group(1) == "-" else value, None, percent)
        m = _RE_SLASH.match(text)
        if m:
            num, _ = _dec(m.group(1))
            den, _ = _dec(m.group(2))
            if den == 0:
                return None
            return Number(num / den, None, percent)
        m = _RE_SCI.match(text)
        if m:
            mantissa, _ = _dec(m.group(1))
            exponent = int(m.group(2) or m.group(3))
            if abs(exponent) > MAX_EXPONENT:
                return None
            return Number(mantissa * Fraction(10) ** exponent, None, percent)
        m = _RE_POW10.match(text)
        if m:
            exponent = int(m.group(2))
            if abs(exponent) > MAX_EXPONENT:
                return None
            value = Fraction(10) ** exponent
            return Number(-value if m.group(1) == "-" else value, None, percent)
        m = _RE_POW.match(text)
        if m:
            base, exponent = int(m.group(2)), int(m.group(3))
            if exponent * max(base.bit_length(), 1) > 4 * MAX_EXPONENT * 4:
                return None
            value = Fraction(base) ** exponent
            return Number(-value if m.group(1) == "-" else value, None, percent)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


def numbers_equal(gold: Number, answer: Number, tolerance: float | None = None) -> bool:
    """Exact equality, percent read both ways, or an explicit tolerance.

    A decimal approximation of an exact gold (``0.333`` for ``\\frac13``) is not accepted:
    competition answers are exact and MATH asks for "a common fraction" (docs/grading.md).
    """
    candidates_g = [gold.value] + ([gold.value / 100] if gold.percent else [])
    candidates_a = [answer.value] + ([answer.value / 100] if answer.percent else [])
    for g in candidates_g:
        for a in candidates_a:
            if g == a:
                return True
            if tolerance is not None and abs(float(g - a)) <= tolerance + 1e-12:
                return True
    return False


def number_key(value: Fraction) -> tuple:
    """Cluster key of a constant; the symbolic path formats its constants the same way."""
    return ("c", format_float(value))


def format_float(value: Fraction | float) -> str:
    try:
        number = float(value)
    except OverflowError:
        return f"big:{value}"
    if number == 0:
        return "0"
    return f"{number:.10g}"

"""Equivalence-class keys for majority voting.

maj@k needs to know which answers are the *same* answer, not which strings are equal.
Comparing every pair of distinct answers symbolically is quadratic; instead each
distinct answer gets a key once: exact numbers by value, expressions by their values at
fixed points (rounded), lists as sorted keys, tuples as ordered keys. Equal keys mean
one class. Answers judged correct are put in the gold's class regardless of key.
"""

from __future__ import annotations

from m1eval.grading import numbers, symbolic
from m1eval.grading.equivalence import _CHOICE, _INF, _as_value
from m1eval.grading.structures import Leaf, Matrix, Node, Relation, Seq, Text, Union, flatten_list, parse


class Undecided(Exception):
    """The key of a leaf needs sympy."""


def _leaf_key(text: str, symbolic_ok: bool) -> tuple:
    number = numbers.parse_number(text)
    if number is not None:
        return numbers.number_key(number.value)
    if text in _INF:
        return ("inf", text.lstrip("+"))
    choice = _CHOICE.match(text)
    if choice and (text.startswith("(") or text.isupper()):
        return ("choice", choice.group(1).upper())
    if not symbolic_ok:
        raise Undecided
    try:
        return symbolic.sym_key(text)
    except symbolic.SymbolicError:
        return ("s", text)


def _key(node: Node, symbolic_ok: bool) -> tuple:
    node = _as_value(node)
    if isinstance(node, Leaf):
        return _leaf_key(node.text, symbolic_ok)
    if isinstance(node, Text):
        return ("t", node.words)
    if isinstance(node, Seq):
        if node.open in ("", "{"):
            items = sorted((_key(i, symbolic_ok) for i in flatten_list(node)), key=repr)
            return ("set", tuple(items))
        return ("seq", node.open, node.close, tuple(_key(i, symbolic_ok) for i in node.items))
    if isinstance(node, Union):
        return ("u", tuple(sorted((_key(p, symbolic_ok) for p in node.parts), key=repr)))
    if isinstance(node, Matrix):
        return ("m", tuple(tuple(_key(c, symbolic_ok) for c in row) for row in node.rows))
    if isinstance(node, Relation):
        return ("rel", node.ops, tuple(_key(p, symbolic_ok) for p in node.parts))
    return ("s", repr(node))


def answer_key(normalized: str, symbolic_ok: bool = True) -> tuple | None:
    """The class key of a normalised answer; None when it needs sympy and ``symbolic_ok`` is False."""
    try:
        return _key(parse(normalized), symbolic_ok)
    except Undecided:
        return None
    except RecursionError:
        return ("s", normalized)

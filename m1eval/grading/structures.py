"""The shape of an answer: lists, tuples, intervals, sets, unions, matrices, relations, words.

Comparing ``(1, 2]`` with ``1 < x \\le 2`` or ``1 \\pm \\sqrt{3}`` with ``\\{1-\\sqrt3, 1+\\sqrt3\\}``
is a question about shape first and about numbers second. This module reads a
normalised answer into a small tree whose leaves are single mathematical expressions;
``equivalence`` compares trees and hands only leaves to the number and sympy paths.
The parser is bracket-depth aware, linear per level and bounded in depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DEPTH = 12
MAX_ITEMS = 64

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}


@dataclass(frozen=True)
class Leaf:
    text: str


@dataclass(frozen=True)
class Text:
    """A verbal answer ('Evelyn', 'even', 'east'); compared case-insensitively."""

    words: str


@dataclass(frozen=True)
class Seq:
    """Items in brackets: ``open`` is '(', '[', '{' (a set), or '' for a bare comma list."""

    items: tuple
    open: str = ""
    close: str = ""


@dataclass(frozen=True)
class Matrix:
    rows: tuple


@dataclass(frozen=True)
class Relation:
    """A chain ``parts[0] ops[0] parts[1] ...`` with ops in =, <, >, \\le, \\ge, \\ne, \\in."""

    parts: tuple
    ops: tuple


@dataclass(frozen=True)
class Union:
    parts: tuple


Node = Leaf | Text | Seq | Matrix | Relation | Union

_REL_OPS = ("\\le", "\\ge", "\\ne", "\\in", "\\approx", "<", ">", "=")
_REL_RE = re.compile(r"\\(?:le|ge|ne|in|approx|lt|gt)(?![A-Za-z])|<|>|=")
_SET_BUILDER = re.compile(r"^ ?[A-Za-z] ?(?:\\in ?\\mathbb ?\{?R\}? ?)?(?:\\mid|\||:) ?(.+)$")
_WORDS = re.compile(r"^[A-Za-z][A-Za-z' \-]*[A-Za-z]$")


def _tokens_at_depth0(text: str):
    """Yield (index, char, depth) for each char; ``\\{`` / ``\\}`` count as brackets, ``\\left`` is gone."""
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            if text[i + 1] == "{":
                yield i, "\\{", depth
                depth += 1
            else:
                depth -= 1
                yield i, "\\}", depth
            i += 2
            continue
        if ch in _OPENERS:
            yield i, ch, depth
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
            yield i, ch, depth
        else:
            yield i, ch, depth
        i += 1


def split_top(text: str, seps: str = ",;") -> list[str]:
    """Split at separators outside every bracket."""
    parts: list[str] = []
    start = 0
    for i, ch, depth in _tokens_at_depth0(text):
        if depth == 0 and ch in seps and len(ch) == 1:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _outer_brackets(text: str) -> tuple[str, str, str] | None:
    """(open, inner, close) when one bracket pair encloses the whole text."""
    if len(text) < 2:
        return None
    first = "\\{" if text.startswith("\\{") else text[0]
    if first not in ("(", "[", "\\{"):
        return None
    for i, ch, depth in _tokens_at_depth0(text):
        if depth == 0 and ch in (")", "]", "\\}"):
            end = i + len(ch)
            if end != len(text):
                return None
            return first, text[len(first) : i], ch
        if depth < 0:
            return None
    return None


def _split_relations(text: str) -> tuple[list[str], list[str]] | None:
    parts: list[str] = []
    ops: list[str] = []
    start = 0
    depth_at = {i: d for i, _, d in _tokens_at_depth0(text)}
    for m in _REL_RE.finditer(text):
        if depth_at.get(m.start(), 1) != 0:
            continue
        op = m.group(0)
        op = {"\\lt": "<", "\\gt": ">"}.get(op, op)
        parts.append(text[start : m.start()])
        ops.append(op)
        start = m.end()
    if not ops:
        return None
    parts.append(text[start:])
    return parts, ops


def _expand_pm(text: str) -> list[str]:
    """``a\\pm b`` -> [a+b, a-b]; several signs give every combination (capped)."""
    out = [text]
    for _ in range(3):
        nxt: list[str] = []
        changed = False
        for t in out:
            m = re.search(r"\\(pm|mp)(?![A-Za-z])", t)
            if m:
                changed = True
                first, second = ("+", "-") if m.group(1) == "pm" else ("-", "+")
                nxt.append(t[: m.start()] + first + t[m.end() :])
                nxt.append(t[: m.start()] + second + t[m.end() :])
            else:
                nxt.append(t)
        out = nxt
        if not changed:
            break
    return [t.replace("+-", "-").replace("-+", "-").replace("(+", "(").lstrip("+") for t in out]


def _matrix(text: str) -> Matrix | None:
    m = re.fullmatch(r"\\begin\{pmatrix\}(?:\{[^{}]*\})?(.*)\\end\{pmatrix\}", text, flags=re.S)
    if not m:
        return None
    rows = [r for r in re.split(r"\\\\", m.group(1)) if r.strip()]
    if len(rows) > MAX_ITEMS:
        return None
    parsed = tuple(tuple(parse(c.strip(), 1) for c in row.split("&")) for row in rows)
    return Matrix(parsed)


def parse(text: str, depth: int = 0) -> Node:
    """Tree of a normalised answer; anything unrecognised is a leaf (never raises)."""
    text = text.strip()
    if depth > MAX_DEPTH or not text:
        return Leaf(text)
    matrix = _matrix(text)
    if matrix is not None:
        return matrix
    union = list(re.split(r"\\cup(?![A-Za-z])", text))
    if len(union) > 1 and len(union) <= MAX_ITEMS and all(_balanced(p) for p in union):
        return Union(tuple(parse(p, depth + 1) for p in union))
    items = split_top(text)
    if len(items) > 1:
        items = [i for i in items if i.strip()] if len(items) > 2 else items
        if len(items) > MAX_ITEMS:
            return Leaf(text)
        return Seq(tuple(_flatten_pm(parse(i, depth + 1)) for i in items))
    rel = _split_relations(text)
    if rel is not None:
        parts, ops = rel
        if len(parts) <= 6:
            return Relation(tuple(parse(p, depth + 1) for p in parts), tuple(ops))
    outer = _outer_brackets(text)
    if outer is not None:
        open_, inner, close = outer
        inner_items = split_top(inner)
        if open_ == "\\{":
            builder = _SET_BUILDER.match(inner)
            if builder is not None:  # {x | 1 < x < 4}: the set its condition describes
                return parse(builder.group(1), depth + 1)
            if not inner.strip():
                return Seq((), "{", "}")
            return Seq(tuple(parse(i, depth + 1) for i in inner_items if i.strip()), "{", "}")
        if len(inner_items) > 1:
            return Seq(tuple(parse(i, depth + 1) for i in inner_items), open_, close)
        if open_ == "(" and close == ")":
            return parse(inner, depth + 1)  # "(5)" or "(C)"
    if re.search(r"\\(?:pm|mp)(?![A-Za-z])", text):
        expanded = _expand_pm(text)
        return Seq(tuple(Leaf(t) for t in expanded), "", "")
    if _WORDS.match(text) and not re.search(r"\\", text) and _looks_like_words(text):
        return Text(" ".join(text.lower().split()))
    if text in ("\\emptyset", "\\{\\}", "\\varnothing"):
        return Seq((), "{", "}")
    return Leaf(text)


def _flatten_pm(node: Node) -> Node:
    return node


def _looks_like_words(text: str) -> bool:
    """'Evelyn', 'even', 'no solution' are words; 'ab', 'xy', 'pq' are products of variables."""
    words = text.replace("-", " ").split()
    return any(len(w) >= 3 for w in words) or (len(words) > 1 and all(len(w) >= 2 for w in words))


def _balanced(text: str) -> bool:
    depth = 0
    for _, ch, _d in _tokens_at_depth0(text):
        if ch in _OPENERS or ch == "\\{":
            depth += 1
        elif ch in _CLOSERS or ch == "\\}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def flatten_list(node: Node) -> list[Node]:
    """Items of a bare list, with ``\\pm`` expansions inside it spliced in."""
    if isinstance(node, Seq) and node.open in ("", "{"):
        out: list[Node] = []
        for item in node.items:
            out.extend(flatten_list(item) if isinstance(item, Seq) and item.open == "" else [item])
        return out
    return [node]

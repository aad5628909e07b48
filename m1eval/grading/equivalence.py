"""Is an answer the gold? Policy in docs/grading.md; this module is that page in code.

Comparison runs in tiers. The cheap tiers (normalised strings, exact numbers, words,
choice letters, shapes) are decided in-process; only leaves that need algebra go to
sympy. ``compare(..., symbolic=False)`` returns ``None`` when it cannot decide without
sympy, which is how the grader knows what to send to its worker pool. The verdict
function is deterministic so cached verdicts and re-grades agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from m1eval.grading import forms, numbers, symbolic
from m1eval.grading.normalize import normalize_answer
from m1eval.grading.structures import Leaf, Matrix, Node, Relation, Seq, Text, Union, flatten_list, parse

MAX_COMPARE_CHARS = 1_500

_CHOICE = re.compile(r"^\(?([A-Ea-e])\)?$")
_CHOICE_PREFIX = re.compile(r"^\(([A-E])\)")
_BASE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
_COMMANDS = re.compile(r"\\[A-Za-z]+")
_SIMPLE_LHS = re.compile(
    r"^(?:[A-Za-z](?:_\{?[A-Za-z0-9\\]+\}?)?'*|[A-Z]{2,3}|[A-Za-z]+\([A-Za-z0-9,]*\)|\\[A-Za-z][A-Za-z0-9_{}]*|[A-Za-z]_\{\\max\}|[A-Za-z]_\{\\min\})$"
)
_INF = {"\\infty", "+\\infty", "-\\infty", "oo", "-oo"}


@dataclass
class Context:
    answer_format: str | None = None
    tolerance: float | None = None
    symbolic: bool = True
    unparsable: bool = False  # set when the answer had a leaf sympy could not read
    ordered_lists: bool = False
    notes: list[str] = field(default_factory=list)


def _has_letters(text: str) -> bool:
    stripped = _COMMANDS.sub("", text)
    stripped = re.sub(r"(?<![A-Za-z])[ei](?![A-Za-z])", "", stripped)  # e and i are constants
    return bool(re.search(r"[A-Za-z]", stripped))


def _is_numeric_looking(text: str) -> bool:
    return not _has_letters(text) and bool(re.search(r"\d|\\pi|\\infty", text))


def compare_leaves(g: str, a: str, ctx: Context) -> bool | None:
    if g == a:
        return True
    if not g or not a:
        return False
    (g, g_degrees), (a, a_degrees) = forms.split_degree(g), forms.split_degree(a)
    if g_degrees != a_degrees:
        angle = forms.angle_verdict(g, a, g_degrees, a_degrees)
        if angle is not None:
            return angle
        if g == a:
            return True
    gc, ac = _CHOICE.match(g), _CHOICE.match(a)
    if gc and g.upper() == g and ac:
        return gc.group(1).upper() == ac.group(1).upper()
    if gc and g.upper() == g:  # "(C) 12" (the choice and its value) is C
        prefix = _CHOICE_PREFIX.match(a)
        if prefix:
            return prefix.group(1) == gc.group(1)
    gn, an = numbers.parse_number(g), numbers.parse_number(a)
    if gn is not None and an is not None:
        return numbers.numbers_equal(gn, an, ctx.tolerance)
    gb, ab = _BASE.match(g), _BASE.match(a)
    if gb and (ab or re.fullmatch(r"[0-9A-Z]+", a)):
        digits = ab.group(1) if ab else a
        return digits.upper() == gb.group(1).upper() and (ab is None or ab.group(2) == gb.group(2))
    if g in _INF or a in _INF:
        return g.lstrip("+") == a.lstrip("+")
    if (gn is not None or _is_numeric_looking(g)) and _has_letters(a) and not _has_letters(g):
        return False  # a variable in the answer cannot equal a pure number
    if an is not None and _has_letters(g) and not _has_letters(a):
        return False
    rounded = (
        gn is not None
        and gn.is_decimal
        and not gn.percent
        and forms.significant_digits(g) >= 3
        and forms.is_irrational_looking(a)
        and not _has_letters(a)
    )
    if not ctx.symbolic:
        return None
    try:
        if symbolic.sym_equal(g, a, ctx.tolerance):
            return True
        # a gold rounded to d decimals against the exact value it rounds ("1.62" for the golden ratio)
        if not rounded or gn is None or gn.decimals is None:  # rounded implies both are set
            return False
        return symbolic.rounds_to(a, gn.value, gn.decimals)
    except symbolic.SymbolicError:
        ctx.unparsable = True
        return False


def _is_label(node: Node) -> bool:
    """A name that labels a value: ``x``, ``PQ``, ``(a, b)`` (names of components), ``S_{ABC}:S``."""
    if isinstance(node, Seq) and node.open in ("(", "", "[") and node.items:
        return all(_simple_lhs(item) for item in node.items)
    if isinstance(node, Leaf) and ":" in node.text:
        return all(_SIMPLE_LHS.match(part) for part in node.text.split(":"))
    return _simple_lhs(node)


def _letter_free(node: Node) -> bool:
    return isinstance(node, Leaf) and not _has_letters(node.text)


def _simple_lhs(node: Node) -> bool:
    return isinstance(node, Leaf) and bool(_SIMPLE_LHS.match(node.text))


def _relation_to_interval(rel: Relation) -> Node | None:
    """``a < x \\le b``, ``x > 2``, ``x \\in S`` -> the interval (as a Seq) or set they describe."""
    parts, ops = rel.parts, rel.ops
    if ops == ("\\in",) and _simple_lhs(parts[0]):
        return parts[1]
    ineq = {"<", ">", "\\le", "\\ge"}
    if not all(op in ineq for op in ops):
        return None
    var_positions = [
        i for i, p in enumerate(parts) if _simple_lhs(p) and not _is_numeric_looking(getattr(p, "text", ""))
    ]
    if len(parts) == 2 and len(var_positions) >= 1:
        vi = var_positions[0] if len(var_positions) == 1 else 0
        other = parts[1 - vi]
        op = ops[0]
        if vi == 1:  # "2 < x" is "x > 2"
            op = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}[op]
        if op in (">", "\\ge"):
            return Seq((other, Leaf("\\infty")), "(" if op == ">" else "[", ")")
        return Seq((Leaf("-\\infty"), other), "(", ")" if op == "<" else "]")
    if len(parts) == 3 and var_positions == [1]:
        if ops[0] in ("<", "\\le") and ops[1] in ("<", "\\le"):
            return Seq((parts[0], parts[2]), "(" if ops[0] == "<" else "[", ")" if ops[1] == "<" else "]")
        if ops[0] in (">", "\\ge") and ops[1] in (">", "\\ge"):
            return Seq((parts[2], parts[0]), "(" if ops[1] == ">" else "[", ")" if ops[0] == ">" else "]")
    return None


def _as_value(node: Node) -> Node:
    """What an answer says its value is: ``x = 5`` -> 5, ``x > 2`` -> (2, oo), ``x \\in S`` -> S."""
    if isinstance(node, Relation):
        if node.ops == ("=",) and _is_label(node.parts[0]):
            return node.parts[1]
        if all(op == "=" for op in node.ops) and all(_is_label(p) or _letter_free(p) for p in node.parts[:-1]):
            return node.parts[-1]  # a chain "a = b = c = v" or a computation "4 + 4 + 1 = 9" ends in its value
        if node.ops == ("\\approx",):
            return node.parts[1] if _simple_lhs(node.parts[0]) else node.parts[0]  # "E \approx 1.62": E
        interval = _relation_to_interval(node)
        if interval is not None:
            return interval
    return node


def _disjunction_as_union(node: Node) -> Node:
    """``x < -3 \\text{ or } x > 3`` (normalised to a list of inequalities) -> the union of
    their intervals. Only used against a union, where "or" is the only sensible reading."""
    if not (isinstance(node, Seq) and node.open == "" and len(node.items) > 1):
        return node
    intervals = [_relation_to_interval(item) if isinstance(item, Relation) else None for item in node.items]
    if any(interval is None for interval in intervals):
        return node
    return Union(tuple(intervals))


def _match_unordered(gs: list[Node], as_: list[Node], ctx: Context) -> bool | None:
    """Multiset equality via bipartite matching; None when only undecided edges could complete it."""
    if len(gs) != len(as_):
        return False
    n = len(gs)
    table = [[compare(g, a, ctx) for a in as_] for g in gs]

    def perfect(allowed) -> bool:  # noqa: ANN001
        match_of: list[int | None] = [None] * n

        def augment(i: int, seen: set[int]) -> bool:
            for j in range(n):
                if j in seen or not allowed(table[i][j]):
                    continue
                seen.add(j)
                holder = match_of[j]
                if holder is None or augment(holder, seen):
                    match_of[j] = i
                    return True
            return False

        return all(augment(i, set()) for i in range(n))

    if perfect(lambda v: v is True):
        return True
    if perfect(lambda v: v is not False):
        return None
    return False


def _all_ordered(gs, as_, ctx: Context) -> bool | None:  # noqa: ANN001
    if len(gs) != len(as_):
        return False
    verdict: bool | None = True
    for g, a in zip(gs, as_):
        v = compare(g, a, ctx)
        if v is False:
            return False
        if v is None:
            verdict = None
    return verdict


def _is_interval_like(node: Node) -> bool:
    return (
        isinstance(node, Seq)
        and len(node.items) == 2
        and node.open in "(["
        and node.open != ""
        and (node.open != "(" or node.close != ")" or any(isinstance(i, Leaf) and i.text in _INF for i in node.items))
    )


def compare(g: Node, a: Node, ctx: Context) -> bool | None:
    """Tri-state comparison of two answer trees (True / False / None = needs sympy)."""
    if g == a:
        return True
    if (
        isinstance(g, Relation)
        and g.ops == ("\\approx",)
        and not _simple_lhs(g.parts[0])
        and not isinstance(a, Relation)
    ):
        # an approximate gold: its exact part is the answer, and so is the approximation it states
        exact = compare(g.parts[0], a, ctx)
        if exact is True:
            return True
        stated = compare(g.parts[1], a, ctx)
        return True if stated is True else (None if None in (exact, stated) else False)
    if isinstance(g, Relation) or isinstance(a, Relation):
        if isinstance(g, Relation) and isinstance(a, Relation) and g.ops == a.ops == ("=",):
            if _simple_lhs(g.parts[0]) and _simple_lhs(a.parts[0]):
                lhs = compare(g.parts[0], a.parts[0], Context(symbolic=False))
                if lhs is True:
                    return compare(g.parts[1], a.parts[1], ctx)
                # "f(n) = n" against "n = f(n)": the same equation written the other way round
                if compare(g.parts[0], a.parts[1], Context(symbolic=False)) is not True:
                    return False
                return compare(g.parts[1], a.parts[0], ctx)
            return _compare_equations(g, a, ctx)
        gv, av = _as_value(g), _as_value(a)
        if gv is g and av is a:
            if isinstance(g, Relation) and isinstance(a, Relation) and len(g.parts) == len(a.parts):
                if g.ops != a.ops:
                    return False
                return _all_ordered(list(g.parts), list(a.parts), ctx)
            return False
        return compare(gv, av, ctx)
    if isinstance(g, Text) or isinstance(a, Text):
        gt = g.words if isinstance(g, Text) else (g.text.lower() if isinstance(g, Leaf) else None)
        at = a.words if isinstance(a, Text) else (a.text.lower() if isinstance(a, Leaf) else None)
        if gt is None or at is None:
            return False
        gw, aw = _words(gt), _words(at)
        if gw == aw or forms.sentence_names(gw.split(), aw.split()):
            return True
        gword, aword = forms.number_word(gw), forms.number_word(aw)  # "four" = 4
        if (
            (gword is not None or aword is not None)
            and (gword is not None or gw.isdigit())
            and (aword is not None or aw.isdigit())
        ):
            return (gword if gword is not None else int(gw)) == (aword if aword is not None else int(aw))
        return False
    if isinstance(g, Union) or isinstance(a, Union):
        g, a = _disjunction_as_union(g), _disjunction_as_union(a)
        gp = list(g.parts) if isinstance(g, Union) else [g]
        ap = list(a.parts) if isinstance(a, Union) else [a]
        return _match_unordered(gp, ap, ctx)
    if isinstance(g, Matrix) or isinstance(a, Matrix):
        return _compare_matrix(g, a, ctx)
    if isinstance(g, Seq) or isinstance(a, Seq):
        return _compare_seq(g, a, ctx)
    if isinstance(g, Leaf) and isinstance(a, Leaf):
        return compare_leaves(g.text, a.text, ctx)
    return False


def _words(text: str) -> str:
    text = re.sub(r"[^a-z0-9 ]", " ", text.lower())
    words = [w for w in text.split() if w not in ("the", "a", "an")]
    return " ".join(words)


def _compare_equations(g: Relation, a: Relation, ctx: Context) -> bool | None:
    """Two equations are equal when (lhs - rhs) of one is a non-zero constant multiple of the other."""
    gl, gr = g.parts
    al, ar = a.parts
    direct = _all_ordered([gl, gr], [al, ar], ctx)
    if direct is True:
        return True
    swapped = _all_ordered([gl, gr], [ar, al], ctx)
    if swapped is True:
        return True
    if not ctx.symbolic:
        return None
    if not all(isinstance(p, Leaf) for p in (gl, gr, al, ar)):
        return False
    try:
        sp = symbolic._sympy()
        gexpr = symbolic.to_sympy(gl.text) - symbolic.to_sympy(gr.text)
        aexpr = symbolic.to_sympy(al.text) - symbolic.to_sympy(ar.text)
        if aexpr == 0:
            return gexpr == 0
        with symbolic.time_limit(symbolic.SOFT_SIMPLIFY_S):
            ratio = sp.simplify(gexpr / aexpr)
        return bool(ratio.is_number and ratio != 0 and ratio.is_finite)
    except symbolic.SymbolicError:
        ctx.unparsable = True
        return False
    except Exception:
        return False


def _compare_matrix(g: Node, a: Node, ctx: Context) -> bool | None:
    def cells(node: Node) -> tuple[list[Node], tuple[int, int]] | None:
        if isinstance(node, Matrix):
            widths = {len(r) for r in node.rows}
            if len(widths) != 1:
                return None
            return [c for r in node.rows for c in r], (len(node.rows), widths.pop())
        if isinstance(node, Seq) and node.open in ("(", "["):
            return list(node.items), (len(node.items), 1)
        return None

    gc, ac = cells(g), cells(a)
    if gc is None or ac is None:
        return False
    (gitems, gshape), (aitems, ashape) = gc, ac
    if gshape != ashape and not (1 in gshape and 1 in ashape and len(gitems) == len(aitems)):
        return False
    return _all_ordered(gitems, aitems, ctx)


def _compare_seq(g: Node, a: Node, ctx: Context) -> bool | None:
    gs = g if isinstance(g, Seq) else Seq((g,), "", "")
    as_ = a if isinstance(a, Seq) else Seq((a,), "", "")
    if not isinstance(g, Seq) and as_.open == "" and len(as_.items) > 1:
        # one value said twice ("x = 3 or x = 3", a double root) is that value; anything else is a list
        verdicts = [compare(g, _as_value(item), ctx) for item in as_.items]
        if all(v is True for v in verdicts):
            return True
    if (
        _is_interval_like(gs)
        or _is_interval_like(as_)
        or (ctx.answer_format == "interval" and len(gs.items) == 2 and gs.open)
    ):
        if (gs.open, gs.close) != (as_.open, as_.close) or len(gs.items) != len(as_.items):
            return False
        return _all_ordered(list(gs.items), list(as_.items), ctx)
    g_items = flatten_list(gs) if gs.open in ("", "{") else list(gs.items)
    a_items = flatten_list(as_) if as_.open in ("", "{") else list(as_.items)
    a_items = [_as_value(i) for i in a_items]
    g_items = [_as_value(i) for i in g_items]
    if gs.open == "(" and as_.open in ("(", "", "["):
        return _all_ordered(g_items, a_items, ctx)  # a tuple is ordered
    if gs.open == "[" and as_.open in ("(", "["):
        return _all_ordered(g_items, a_items, ctx)
    if ctx.ordered_lists and gs.open == "" and as_.open == "":
        return _all_ordered(g_items, a_items, ctx)
    return _match_unordered(g_items, a_items, ctx)


# --------------------------------------------------------------------------- entry points


def prepare(text: str, meta: dict[str, Any] | None = None) -> str:
    unit = (meta or {}).get("unit") if meta else None
    return normalize_answer(text, unit=unit if isinstance(unit, str) else None)


def _tolerance(tolerance: float | None, meta: dict[str, Any] | None) -> float | None:
    if tolerance is not None:
        return float(tolerance)
    value = (meta or {}).get("tolerance")
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def verdict(
    gold: str,
    answer: str,
    *,
    answer_format: str | None = None,
    tolerance: float | None = None,
    meta: dict[str, Any] | None = None,
    symbolic_ok: bool = True,
    normalized: bool = False,
) -> tuple[bool | None, bool]:
    """(equal or None if undecided without sympy, answer_unparsable)."""
    try:
        g = gold if normalized else prepare(gold, meta)
        a = answer if normalized else prepare(answer, meta)
        if g == a:
            return True, False
        if not g or not a:
            return False, False
        if len(a) > MAX_COMPARE_CHARS or len(g) > MAX_COMPARE_CHARS:
            return False, True
        ctx = Context(answer_format=answer_format, tolerance=_tolerance(tolerance, meta), symbolic=symbolic_ok)
        result = compare(parse(g), parse(a), ctx)
        return result, ctx.unparsable and not result
    except RecursionError:
        return False, True


@dataclass(frozen=True)
class CheckResult:
    """One comparison as ``grade`` would score it.

    ``status`` is ``ok`` (compared; ``correct`` says how), ``no_answer`` (the policy found
    nothing), ``unparsable`` (the answer could not be read and its text is not the gold's)
    or, from ``check_answer`` only, ``timeout`` (the hard deadline passed).
    """

    status: str
    correct: bool
    answer: str | None = None
    extracted_by: str | None = None
    gold_normalized: str = ""
    answer_normalized: str | None = None


def check_inline(
    gold: str,
    response: str,
    rules: tuple[str, ...] | None,
    answer_format: str | None = None,
    tolerance: float | None = None,
    meta: dict[str, Any] | None = None,
    *,
    symbolic_ok: bool = True,
) -> CheckResult:
    """``check_answer`` without the guard (what the guarded worker runs).

    With ``symbolic_ok=False`` a comparison that needs sympy gets ``status="pending"``.
    """
    from m1eval.grading.extract import extract

    if rules is None:
        answer, rule = (response if isinstance(response, str) and response.strip() else None), None
    else:
        found = extract(response, rules)
        answer, rule = found.answer, found.rule
    gold_norm = prepare(gold, meta)
    if answer is None:
        return CheckResult("no_answer", False, None, None, gold_norm, None)
    answer_norm = prepare(answer, meta)
    if not answer_norm:
        return CheckResult("no_answer", False, answer, rule, gold_norm, answer_norm)
    result, unparsable = verdict(
        gold_norm,
        answer_norm,
        answer_format=answer_format,
        tolerance=tolerance,
        meta=meta,
        normalized=True,
        symbolic_ok=symbolic_ok,
    )
    if result is None:
        return CheckResult("pending", False, answer, rule, gold_norm, answer_norm)
    status = "unparsable" if unparsable and not result else "ok"
    return CheckResult(status, bool(result), answer, rule, gold_norm, answer_norm)


def check_answer(
    gold: str,
    response: str,
    *,
    policy: str | None = None,
    answer_format: str | None = None,
    tolerance: float | None = None,
    meta: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> CheckResult:
    """Check a completion (with ``policy``, e.g. ``"boxed"``) or a bare answer (``policy=None``).

    Runs under a hard deadline (``timeout`` seconds, default 5) in a guarded worker; past
    it the result has ``status="timeout"``. A completion is read exactly as ``grade``
    reads it (same extraction, same normalisation, same verdict).
    """
    from m1eval.grading import guard
    from m1eval.grading.extract import parse_policy

    if not isinstance(gold, str) or not gold.strip():
        raise ValueError("gold answer is empty")
    rules = parse_policy(policy) if policy is not None else None
    try:
        return guard.check((gold, response, rules, answer_format, _tolerance(tolerance, meta), meta), timeout)
    except guard.GradingTimeout:
        return CheckResult("timeout", False)


def is_equivalent(
    gold: str,
    answer: str,
    *,
    answer_format: str | None = None,
    tolerance: float | None = None,
    meta: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> bool:
    """Whether ``answer`` is a correct rendering of ``gold`` (policy: docs/grading.md).

    Runs in a guarded worker with a hard deadline (``timeout`` seconds, default 5):
    past it ``m1eval.grading.guard.GradingTimeout`` is raised, never a hang.
    """
    from m1eval.grading import guard

    return guard.check((gold, answer, None, answer_format, _tolerance(tolerance, meta), meta), timeout).correct

"""Canonical text of an answer: the cache key and the cheap string path.

Everything here is presentation that a competition grader ignores: math delimiters,
spacing commands, ``\\left``/``\\right``, ``\\dfrac``, degree signs, thousands
separators, unit words after a number, ``\\text{}`` wrappers, a trailing period. The
result is still LaTeX, so later stages (numbers, structures, sympy) read one dialect.
It is pure string work, linear in the input, and never raises.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NORMALIZE_CHARS = 4_000

_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u00b7": "\\cdot ",
    "\u00f7": "\\div ",
    "\u221a": "\\sqrt",
    "\u03c0": "\\pi ",
    "\u00b0": "^\\circ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\ne ",
    "\u221e": "\\infty ",
    "\u222a": "\\cup ",
    "\u2229": "\\cap ",
    "\u00b1": "\\pm ",
    "\u2208": "\\in ",
    "\u2032": "'",
    "\u00bd": "\\frac{1}{2}",
}

_DROP_COMMANDS = re.compile(
    r"\\(?:displaystyle|textstyle|scriptstyle|left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg"
    r"|middle|limits|nolimits|mathstrut|hfill|;|,|:|!|>)(?![A-Za-z])"
)
_WIDE_SPACES = re.compile(r"\\(?:quad|qquad)(?![A-Za-z])|\\hspace\*?\{[^{}]{0,40}\}|(?<!\\)\\\s|~")
_RENAMES = [
    (re.compile(r"\\[dt]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\cfrac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![A-Za-z])"), r"\\binom"),
    (re.compile(r"\\(?:geqslant|geq|geqq)(?![A-Za-z])"), r"\\ge"),
    (re.compile(r"\\(?:leqslant|leq|leqq)(?![A-Za-z])"), r"\\le"),
    (re.compile(r"\\(?:neq)(?![A-Za-z])"), r"\\ne"),
    (re.compile(r"\\(?:lbrace)(?![A-Za-z])"), r"\\{"),
    (re.compile(r"\\(?:rbrace)(?![A-Za-z])"), r"\\}"),
    (re.compile(r"\\(?:lvert|rvert|vert)(?![A-Za-z])"), r"|"),
    (re.compile(r"\\(?:lfloor)(?![A-Za-z])"), r"\\lfloor "),
    (re.compile(r"\\(?:cdotp|bullet)(?![A-Za-z])"), r"\\cdot"),
    (re.compile(r"\\(?:varpi)(?![A-Za-z])"), r"\\pi"),
    (re.compile(r"\\(?:emptyset|varnothing)(?![A-Za-z])"), r"\\emptyset"),
    (re.compile(r"\\(?:dots|ldots|cdots)(?![A-Za-z])"), r"\\dots"),
    (re.compile(r"\{(?:bmatrix|vmatrix|Bmatrix|Vmatrix|smallmatrix|matrix|array)\}"), r"{pmatrix}"),
]
_TEXT_WRAPPERS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mathsf|mathtt|mbox|hbox|operatorname\*?|boxed|fbox|bf|rm|it)\s*\{"
)
_STYLE_NOARG = re.compile(r"\\(?:bf|rm|it|sf|tt)(?![A-Za-z])\s*")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|\^\s*\{\s*o\s*\}(?=$|[,;)\]])")
# A degree sign is kept as one marker, DEGREE: "90°" still equals 90, but an angle in degrees
# can be told from one in radians (docs/grading.md, "Units, degrees").
DEGREE = "°"
_DEGREE_WORD = re.compile(r"(?<=[\d}]) ?(?:degrees|degree|deg)\.?$", re.IGNORECASE)
_PERCENT = re.compile(r"\\?%")
_DOLLAR_SIGN = re.compile(r"\\\$|\$|\\textdollar|\\euro(?![A-Za-z])|\\pounds(?![A-Za-z])|[€£¥]")
# "3,75 €", "12,5 %": a decimal comma, read only where a currency or percent sign follows, so
# no list of two numbers is possible ("3,75" alone stays the list 3, 75).
_DECIMAL_COMMA = re.compile(r"^(-?\d{1,100}),(\d{1,2}) ?(€|£|¥|\\euro|EUR|euros?|\\?%)$", re.IGNORECASE)
# JSON-escaped once too often: every backslash doubled ("\\\\frac{1}{2}").
_SINGLE_BACKSLASH = re.compile(r"(?<!\\)\\(?!\\)")
_DOUBLED_COMMAND = re.compile(r"\\\\(?=[A-Za-z{}(\[\])])")
# Chat-template tokens (extract cuts a completion at the first one; so does a bare answer).
CHAT_RESIDUE = re.compile(r"<\|(?:im_end|im_start|endoftext|end_of_text|eot_id|end|user|assistant)\|>|</s>")
_HTML_SUP = re.compile(r"<sup>([^<>]{0,40})</sup>", re.IGNORECASE)
_HTML_SUB = re.compile(r"<sub>([^<>]{0,40})</sub>", re.IGNORECASE)
_HTML_TAG = re.compile(r"</?(?:b|i|em|strong|br|span|p|code|math|sup|sub|div|font)\b[^<>]{0,60}/?>", re.IGNORECASE)
_HTML_ENTITIES = {
    "&lt;": "<",
    "&gt;": ">",
    "&le;": "\\le ",
    "&ge;": "\\ge ",
    "&minus;": "-",
    "&times;": "\\times ",
    "&nbsp;": " ",
    "&pi;": "\\pi ",
    "&amp;": "&",
    "&deg;": "^\\circ",
}
_HTML_ENTITY = re.compile("|".join(map(re.escape, _HTML_ENTITIES)))
_ORDINAL = re.compile(
    r"(?<=\d) ?(\^)? ?(\{)? ?(\\(?:text|mathrm|textrm|mbox)\{)? ?(?:st|nd|rd|th)(?![A-Za-z]) ?(\})? ?(\})?"
)


def _drop_ordinal(match: re.Match) -> str:
    """``7^{\\text{th}}`` -> ``7``; a closing brace the suffix did not open is kept."""
    opened = bool(match.group(2)) + bool(match.group(3))
    closed = bool(match.group(4)) + bool(match.group(5))
    return "}" * max(0, closed - opened)


def _undouble_backslashes(text: str) -> str:
    """``\\\\frac{1}{2}`` -> ``\\frac{1}{2}`` when no single backslash is left in the text (a
    matrix's row break ``\\\\`` next to single-backslash commands is LaTeX, not an escape)."""
    if "\\\\" not in text or _SINGLE_BACKSLASH.search(text) or not _DOUBLED_COMMAND.search(text):
        return text
    return text.replace("\\\\", "\\")


def _html_to_latex(text: str) -> str:
    """``x<sup>2</sup>`` -> ``x^{2}``, ``&le;`` -> ``\\le``; other formatting tags dropped."""
    if "<" not in text and "&" not in text:
        return text
    text = _HTML_SUP.sub(r"^{\1}", text)
    text = _HTML_SUB.sub(r"_{\1}", text)
    text = _HTML_TAG.sub(" ", text)
    return _HTML_ENTITY.sub(lambda m: _HTML_ENTITIES[m.group(0)], text)


_THOUSANDS = re.compile(r"^([+-]?)(\d{1,3}(?:,\d{3})+)(\.\d+)?$")
_SPACE_THOUSANDS = re.compile(r"^([+-]?)(\d{1,3}(?: \d{3})+)(\.\d+)?$")

# Words that follow a number as a unit and carry no mathematical content.
UNIT_WORDS = (
    "degrees",
    "degree",
    "deg",
    "radians",
    "radian",
    "rad",
    "cm",
    "mm",
    "km",
    "m",
    "meters",
    "meter",
    "metres",
    "inches",
    "inch",
    "in",
    "feet",
    "foot",
    "ft",
    "yards",
    "yard",
    "yd",
    "miles",
    "mile",
    "mi",
    "units",
    "unit",
    "square",
    "sq",
    "cubic",
    "cents",
    "cent",
    "dollars",
    "dollar",
    "hours",
    "hour",
    "hrs",
    "hr",
    "h",
    "minutes",
    "minute",
    "min",
    "mins",
    "seconds",
    "second",
    "sec",
    "s",
    "days",
    "day",
    "weeks",
    "week",
    "years",
    "year",
    "months",
    "month",
    "mph",
    "kmh",
    "kg",
    "g",
    "grams",
    "gram",
    "pounds",
    "pound",
    "lb",
    "lbs",
    "ounces",
    "oz",
    "liters",
    "liter",
    "l",
    "ml",
    "gallons",
    "gallon",
    "people",
    "students",
    "ways",
    "points",
    "coins",
    "times",
    "per",
    "steps",
    "sides",
    "marbles",
    "boxes",
    "cookies",
    "apples",
    "eggs",
    "pages",
    "books",
    "games",
    "tiles",
)
_UNIT_SET = frozenset(UNIT_WORDS)
_WHITESPACE = re.compile(r"\s+")
_UNESCAPED_BRACE = re.compile(r"(?<!\\)[{}]")


def _group_end(text: str, start: int) -> int | None:
    """Index after the brace group opening at ``text[start]``, or None when it never closes."""
    depth = 0
    for match in _UNESCAPED_BRACE.finditer(text, start):  # only the braces cost Python steps
        if match.group(0) == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
    return None


def _unwrap_group(text: str, start: int) -> tuple[str, int]:
    """Content of the brace group opening at ``text[start]`` and the index after it."""
    end = _group_end(text, start)
    if end is None:
        return text[start + 1 :], len(text)
    return text[start + 1 : end - 1], end


def strip_text_wrappers(text: str) -> str:
    """``\\text{abc}`` -> ``abc`` (also \\mathrm, \\mbox, \\textbf, \\boxed ...)."""
    pos = 0
    for _ in range(50):  # nested wrappers; bounded so hostile nesting cannot loop long
        match = _TEXT_WRAPPERS.search(text, pos)
        if not match:
            break
        end = _group_end(text, match.end() - 1)
        if end is None:  # never closes: drop this and every later wrapper opening in one pass
            text = text[: match.start()] + " " + _TEXT_WRAPPERS.sub(" ", text[match.end() :])
            break
        text = text[: match.start()] + " " + text[match.end() : end - 1] + " " + text[end:]
        pos = match.start()
    return _STYLE_NOARG.sub("", text)


_TEXT_UNIT_COMMANDS = ("\\text", "\\mbox", "\\mathrm", "\\textrm", "\\hbox")
_UNIT_GROUP = re.compile(r" ?\{ ?([A-Za-z][A-Za-z .\-]{0,40})\}( ?\^ ?\{?\d\}?)? ?\Z")


def _strip_trailing_text_units(text: str) -> str:
    """Drop a ``\\text{ cm}``-style group (and its power) that follows a mathematical part.

    Only the last such command can be a trailing unit, so it is found with ``rfind`` and
    matched once, anchored at the end: linear, and the unit is at most 40 characters.
    """
    start = max(text.rfind(cmd) for cmd in _TEXT_UNIT_COMMANDS)
    if start <= 0:
        return text
    command = max((cmd for cmd in _TEXT_UNIT_COMMANDS if text.startswith(cmd, start)), key=len)
    after = start + len(command)
    if after < len(text) and text[after].isascii() and text[after].isalpha():
        return text  # \\textbf, \\mathrmx ...: another command
    if _UNIT_GROUP.match(text, after) and text[:start].strip():
        head = text[:start].rstrip()
        if head[-1].isdigit() or head.endswith(("}", "\\pi")):
            return head
    return text


_TRAILING_POWER = re.compile(r"\^ ?\{?\d\}?\Z")


def _is_letter(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


def _strip_trailing_words(text: str) -> str:
    """'5.4 cents', '15 cm^2', '30 degrees' -> the number.

    A scanner from the right, not a regular expression: the old pattern
    ``(?:[A-Za-z]+\\.?\\s*)+`` backtracked exponentially on "1 aaaa...a!" (issue 10). It
    reads an optional power, then words (ASCII letters, each with an optional period,
    separated by spaces) back to a number; every word must be a known unit word.
    """
    end = len(text)
    power = _TRAILING_POWER.search(text)
    if power is not None:
        end = power.start()
    words: list[str] = []
    i = end
    while True:
        j = i
        while j > 0 and text[j - 1] == " ":
            j -= 1
        k = j - 1 if j > 1 and text[j - 1] == "." and _is_letter(text[j - 2]) else j  # "hrs."
        m = k
        while m > 0 and _is_letter(text[m - 1]):
            m -= 1
        if m == k:
            i = j
            break
        words.append(text[m:k])
        if len(words) > 8:
            return text  # a sentence, not a unit
        i = m
    if not words or i == 0 or text[i - 1] not in "0123456789}.":
        return text
    if all(w.lower() in _UNIT_SET for w in words) and (len(words) > 1 or len(words[0]) > 1 or " " in text):
        return text[:i].rstrip()
    return text


_SHORT_ARG_COMMAND = re.compile(r"\\(frac|binom|sqrt)(?![A-Za-z])")
_COMMAND_NAME = re.compile(r"\\[A-Za-z]+")


def _fix_short_args(text: str, depth: int = 0) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}``: brace the one-token arguments.

    An argument group that never closes ends the rewriting (the rest is copied as is), so
    a run of unclosed ``\\frac{`` costs one scan, not one scan per command.
    """

    def read_arg(s: str, i: int) -> tuple[str, int] | None:
        while i < len(s) and s[i] == " ":
            i += 1
        if i >= len(s):
            return None
        if s[i] == "{":
            end = _group_end(s, i)
            if end is None:
                return None
            return s[i + 1 : end - 1], end
        if s[i] == "\\":
            m = _COMMAND_NAME.match(s, i)
            if m:
                return m.group(0), m.end()
            return None
        return s[i], i + 1

    out = []
    i = 0
    n = len(text)
    while i < n:
        m = _SHORT_ARG_COMMAND.search(text, i)
        if not m:
            out.append(text[i:])
            break
        out.append(text[i : m.end()])
        j = m.end()
        count = 2 if m.group(1) in ("frac", "binom") else 1
        if m.group(1) == "sqrt" and j < n and text[j] == "[":
            close = text.find("]", j)
            if close < 0:
                out.append(text[j:])
                break
            out.append(text[j : close + 1])
            j = close + 1
        unclosed = False
        for _ in range(count):
            arg = read_arg(text, j)
            if arg is None:
                unclosed = j < n and text[j:].lstrip(" ").startswith("{")
                break
            inner = _fix_short_args(arg[0], depth + 1) if depth < 4 and "\\" in arg[0] else arg[0]
            out.append("{" + inner + "}")  # "\\frac{\\sqrt3}{3}": arguments are fixed too, 4 levels deep
            j = arg[1]
        if unclosed:
            out.append(text[j:])
            break
        i = j
    return "".join(out)


def _strip_outer_delimiters(text: str) -> str:
    for _ in range(5):
        before = text
        text = text.strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if text.startswith(left) and text.endswith(right) and len(text) >= len(left) + len(right):
                text = text[len(left) : len(text) - len(right)]
        text = text.strip().rstrip(".").rstrip()
        if text == before:
            break
    return text


# Starts with its literal space, so the engine skips to spaces instead of trying every position.
_WORD_SPACE = re.compile(
    r" (?:(?<=[A-Za-z]{2} )(?=[A-Za-z]{2})|(?<=[A-Za-z]{3} )(?=[A-Za-z])|(?<=[A-Za-z] )(?=[A-Za-z]{3}))"
)


def _collapse_spaces(text: str) -> str:
    """Remove spaces except where they separate a command from a letter or two words."""
    text = re.sub(r"\s+", " ", text).strip()
    # A one-token sub/superscript ends at the space: "\log_2 8" is log base 2 of 8, and
    # dropping the space would read "\log_28". Brace it first.
    text = re.sub(r"([_^])([A-Za-z0-9]) (?=[A-Za-z0-9\\])", "\\1{\\2} ", text)
    text = re.sub(r"(\\[A-Za-z]+) (?=[A-Za-z0-9])", "\\1\x00", text)  # "\pi r" keeps a separator
    # words in text answers ("no solution", "has a winning strategy")
    text = _WORD_SPACE.sub("\x01", text)
    text = text.replace(" ", "")
    return text.replace("\x00", " ").replace("\x01", " ")


def clean_unicode(text: str) -> str:
    text = text.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become '?'
    text = "".join(_UNICODE.get(ch, ch) for ch in text)
    return unicodedata.normalize("NFKC", text)


# "The final answer is", "So the answer is:", "**Answer:**", "Final answer:" before the answer.
_ANSWER_PHRASE = re.compile(
    r"^(?:\*\*)?(?:(?:so|thus|therefore|hence),? )?(?:the )?(?:final )?answer\b(?: is)?(?:\*\*)? ?[:=]?(?:\*\*)? ?",
    re.IGNORECASE,
)
_PERCENT_WORD = re.compile(r"(?<=\d) ?(?:percentage|percent|per cent|pct)\b\.?", re.IGNORECASE)
_LIST_WORD_AFTER_VALUE = re.compile(
    r"(?:(?<=[\d}$)\]°])|(?<=\\pi)|(?<=\\infty)|(?<=\b[A-Za-z])) {1,3}(?:or|and) {1,3}(?=[-\d\\(\[{A-Za-z])"
)
_LIST_WORD_BEFORE_RELATION = re.compile(r" {1,3}(?:or|and) {1,3}(?=[A-Za-z]{1,3}(?:\([A-Za-z0-9,]{0,20}\))? ?[=<>\\])")


_HOPE_CORRECT = re.compile(r"\.? ?I hope it is correct\.?$", re.IGNORECASE)


def _strip_answer_phrase(text: str) -> str:
    """'The answer is $9$.' -> '$9$' (the sentence's period goes with the phrase); also the
    Minerva form 'Final Answer: The final answer is $9$. I hope it is correct.'"""
    for _ in range(2):
        match = _ANSWER_PHRASE.match(text)
        if match is None or match.end() == len(text) or not match.group(0).strip():
            return text
        rest = _HOPE_CORRECT.sub("", text[match.end() :].strip()).strip()
        text = rest[:-1].rstrip() if rest.endswith(".") else rest
    return text


def normalize_answer(answer: str, *, unit: str | None = None) -> str:
    """Canonical LaTeX of an answer (see the module docstring); ``unit`` is an expected unit to drop."""
    if not isinstance(answer, str):
        return ""
    text = answer[:MAX_NORMALIZE_CHARS]
    residue = CHAT_RESIDUE.search(text) if "<" in text else None
    if residue is not None and text[: residue.start()].strip():
        text = text[: residue.start()]  # "12<|im_end|>": what follows is a turn the model invented
    text = _html_to_latex(clean_unicode(text))
    text = _undouble_backslashes(text)
    # One space for every run of white space first: every later pattern then sees runs of
    # length one, which removes the quadratic cases of "\s*"/"\s+" next to each other.
    text = _WHITESPACE.sub(" ", text)
    text = _strip_answer_phrase(text)
    text = _strip_outer_delimiters(text)
    text = text.replace("$", " ") if text.count("$") % 2 == 0 and "\\$" not in text else text
    text = re.sub(r"^\\textbf\{\s*(?:final\s+)?answer\s*:?\s*\}", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^(?:final\s+)?answer\s*:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"(?<=\d),\\!\s*(?=\d{3})|(?<=\d)\{,\}(?=\d{3})", "", text)  # 10,\!080 and 10{,}080
    text = _strip_trailing_text_units(text)
    text = _DROP_COMMANDS.sub("", text)
    text = _WIDE_SPACES.sub(" ", text)
    for pattern, repl in _RENAMES:
        text = pattern.sub(repl, text)
    if "st" in text or "nd" in text or "rd" in text or "th" in text:
        text = _ORDINAL.sub(_drop_ordinal, text)
    text = strip_text_wrappers(text)
    text = _DEGREES.sub(DEGREE, text)
    comma = _DECIMAL_COMMA.match(text.strip())
    if comma:
        text = f"{comma.group(1)}.{comma.group(2)}" + ("\\%" if comma.group(3).endswith("%") else "")
    text = _DOLLAR_SIGN.sub("", text)
    text = re.sub(r"\^\s*\{\s*\\prime\s*\}|\\prime", "'", text)
    if unit:
        unit_text = _collapse_spaces(strip_text_wrappers(_strip_outer_delimiters(clean_unicode(unit))))
        unit_text = _DEGREES.sub("", unit_text)
        if unit_text and text.rstrip().endswith(unit_text) and text.rstrip() != unit_text:
            text = text.rstrip()[: -len(unit_text)]
    text = text.strip()
    if "deg" in text[-12:].lower():
        text = _DEGREE_WORD.sub(DEGREE, text)
    text = _strip_trailing_words(text)
    text = _fix_short_args(text)
    low = text.lower()
    if "per" in low or "pct" in low:
        text = _PERCENT_WORD.sub("\\%", text)
    # "1 and 2", "\frac{\pi}{6} or \frac{5\pi}{6}", "x=1 or x=2", "f(x)=x and f(x)=-x": a list
    text = _LIST_WORD_AFTER_VALUE.sub(",", text)
    text = _LIST_WORD_BEFORE_RELATION.sub(",", text)
    text = text.strip().rstrip(".").rstrip("\\").strip()
    # A whole answer that is one number with separators: 10,080 / 11,111,111,100 / 10 080.
    for pattern in (_THOUSANDS, _SPACE_THOUSANDS):
        m = pattern.match(text)
        if m:
            text = m.group(1) + re.sub(r"[, ]", "", m.group(2)) + (m.group(3) or "")
    text = _collapse_spaces(text)
    text = re.sub(r"^\{([^{}]*)\}$", r"\1", text)  # "{5}"
    return text

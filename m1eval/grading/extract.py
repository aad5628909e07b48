"""Find the final answer in a completion.

Boxed-prompted models put the answer in ``\\boxed{...}``; what counts is the *last*
box in the text after the model stopped thinking. A box is copied whole (nested
braces included) so a box holding several answers ("\\boxed{1, 2}") stays one answer.
Fallback phrases ("the final answer is 12") are off by default: for a boxed prompt a
missing box means the model did not commit to an answer, and scraping the prose would
reward rambling.
"""

from __future__ import annotations

import re

# Scanning is linear, but a model can emit megabytes; only the tail can hold the answer.
MAX_SCAN_CHARS = 200_000
MAX_ANSWER_CHARS = 2_000
MAX_GROUP_CHARS = 20_000

_BOX_COMMANDS = ("\\boxed", "\\fbox", "\\framebox")
_BOX_START = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

_FALLBACK_PATTERNS = [
    re.compile(r"final answer(?: is|:)\s*[:=]?\s*(.+)", re.IGNORECASE),
    re.compile(r"(?:^|\n)\s*\**answer\**\s*[:=]\s*(.+)", re.IGNORECASE),
    re.compile(r"the answer is\s*[:=]?\s*(.+)", re.IGNORECASE),
]


def visible_text(text: str) -> str | None:
    """The part of ``text`` after thinking, or None when the model never stopped thinking."""
    close = text.rfind(_THINK_CLOSE)
    if close >= 0:
        return text[close + len(_THINK_CLOSE) :]
    if _THINK_OPEN in text:
        return None  # an unclosed think block: the model ran out before answering
    return text


def _read_group(text: str, start: int) -> tuple[str, int] | None:
    """Content of the brace group opening at ``text[start] == '{'`` and the index after it."""
    depth = 0
    i = start
    n = min(len(text), start + MAX_GROUP_CHARS)  # a longer "box" is not an answer
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n:
            i += 2  # an escaped brace \{ does not open a group
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None  # unbalanced: the box never closed (usually a truncated completion)


def _box_content(text: str, pos: int) -> str | None:
    """The argument of the box command at ``pos``: a brace group or ``\\boxed 5`` style token."""
    match = _BOX_START.match(text, pos)
    if match is None:
        return None
    i = match.end()
    # \framebox[width]{...} takes optional arguments
    while i < len(text) and text[i] == "[":
        close = text.find("]", i)
        if close < 0:
            return None
        i = close + 1
    j = i
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        group = _read_group(text, j)
        return group[0] if group else None
    if j == i:  # "\boxed5" is not a box command
        return None
    token = re.match(r"[^\s$]+", text[j:])
    if token is None:
        return None
    return token.group(0).rstrip(".,;")


def boxed_answers(text: str) -> list[str]:
    """Every box in ``text`` in order (the contents, stripped)."""
    found: list[str] = []
    for match in _BOX_START.finditer(text):
        content = _box_content(text, match.start())
        if content is not None and content.strip():
            found.append(content.strip())
    return found


def _last_box(text: str) -> str | None:
    pos = len(text)
    while True:
        pos = max(text.rfind(cmd, 0, pos) for cmd in _BOX_COMMANDS)
        if pos < 0:
            return None
        content = _box_content(text, pos)
        if content is not None and content.strip():
            return content.strip()


def _fallback(text: str) -> str | None:
    """'The final answer is X' style statements; the last one wins."""
    best: tuple[int, str] | None = None
    for pattern in _FALLBACK_PATTERNS:
        for match in pattern.finditer(text):
            candidate = match.group(1).strip()
            candidate = re.split(r"\n|(?<=[^\d\\])\.\s|\.$", candidate)[0].strip()
            candidate = candidate.strip("$ *").rstrip(".")
            if candidate and (best is None or match.start() > best[0]):
                best = (match.start(), candidate)
    if best is not None:
        return best[1]
    return None


def extract_answer(text: str, *, fallbacks: bool = False) -> str | None:
    """The final answer of a completion, or None when it gave none.

    Only the last ``MAX_SCAN_CHARS`` characters are searched and an answer longer than
    ``MAX_ANSWER_CHARS`` is cut, so hostile output costs bounded time.
    """
    if not isinstance(text, str) or not text:
        return None
    visible = visible_text(text)
    if visible is None:
        return None
    if len(visible) > MAX_SCAN_CHARS:
        visible = visible[-MAX_SCAN_CHARS:]
    answer = _last_box(visible)
    if answer is None and fallbacks:
        answer = _fallback(visible)
    if answer is None:
        return None
    if len(answer) > MAX_ANSWER_CHARS:
        answer = answer[:MAX_ANSWER_CHARS]
    return answer

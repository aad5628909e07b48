"""Find the final answer in a completion, under an explicit extraction policy.

A policy is an ordered list of rules, written as a comma-separated string; the first rule
that finds an answer wins and is recorded with the grade (``Grade.extracted_by``):

- ``boxed`` (the default, the paper's protocol): the *last* ``\\boxed{...}`` /
  ``\\fbox{...}`` / ``\\framebox{...}`` after the model stopped thinking, copied whole
  (nested braces included), so a box holding several answers ("\\boxed{1, 2}") stays one
  answer. For a boxed prompt a missing box means the model did not commit to an answer:
  a truncated completion with no box is wrong.
- ``answer-phrase``: the last "final answer is X" / "the answer is X" / "Answer: X".
- ``last-math``: the last display-math span (``\\[ ... \\]`` or ``$$ ... $$``); of a chain
  ``a = b = c`` the last member.
- ``last-number``: the last number written in the text.

``lenient`` is an alias of ``boxed,answer-phrase,last-math,last-number`` for models that are
not prompted to box their answers.

Every scanner here is linear in the text: boxes are matched with a brace matcher that
reads each character at most once however many boxes are unclosed, and every regular
expression has bounded repetitions (docs/grading.md, "Regular expressions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A model can emit megabytes; only the tail can hold the answer.
MAX_SCAN_CHARS = 200_000
MAX_ANSWER_CHARS = 2_000
MAX_GROUP_CHARS = 20_000
MAX_PHRASE_CHARS = 300
LAST_NUMBER_WINDOW = 2_000
MAX_BOXES_TRIED = 100  # empty or unclosed boxes skipped from the end before giving up

RULES = ("boxed", "answer-phrase", "last-math", "last-number")
ALIASES = {"lenient": "boxed,answer-phrase,last-math,last-number"}
DEFAULT_POLICY = "boxed"

_BOX_START = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")
_BOX_TOKEN = re.compile(r"[^\s$]{1,200}")
_BRACES = re.compile(r"[{}]")
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

# "final answer is", "the answer is:", "**Answer:**", "answer ="; bounded gaps only.
_PHRASE = re.compile(
    r"(?i)\b(?:final[ \t]{1,3}answer|answer)\b\**[ \t]{0,3}(?:is\b|:|=)\**[ \t]{0,3}(?:[:=][ \t]{0,3})?"
)
_SENTENCE_END = re.compile(r"(?<![\d\\])\.(?:\s|$)|\.$")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,100}(?:,\d{3}){0,10}(?:\.\d{1,100})?(?:/\d{1,100})?(?![\w])")


class PolicyError(ValueError):
    """An extraction policy names an unknown rule."""


@dataclass(frozen=True)
class Extraction:
    """What a policy found: the answer text and the rule that found it (both None when none did)."""

    answer: str | None
    rule: str | None


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """The rules of ``policy`` in order; PolicyError names the bad part."""
    if policy is None:
        policy = DEFAULT_POLICY
    if not isinstance(policy, str) or not policy.strip():
        raise PolicyError(f"extraction policy {policy!r}: empty; use a comma-separated list of {', '.join(RULES)} "
                          f"or one of {', '.join(ALIASES)}")
    text = ALIASES.get(policy.strip(), policy)
    rules: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if name in ALIASES:
            rules.extend(r for r in parse_policy(name) if r not in rules)
            continue
        if name not in RULES:
            raise PolicyError(f"extraction policy {policy!r}: unknown rule {name!r} "
                              f"(known: {', '.join(RULES)}; aliases: {', '.join(ALIASES)})")
        if name not in rules:
            rules.append(name)
    return tuple(rules)


def canonical_policy(policy: str | None) -> str:
    """The policy as the comma-separated rule list that is recorded (aliases expanded)."""
    return ",".join(parse_policy(policy))


def visible_text(text: str) -> str | None:
    """The part of ``text`` after thinking, or None when the model never stopped thinking."""
    close = text.rfind(_THINK_CLOSE)
    if close >= 0:
        return text[close + len(_THINK_CLOSE) :]
    if _THINK_OPEN in text:
        return None  # an unclosed think block: the model ran out before answering
    return text


class _BraceMatcher:
    """Closing brace of each opening brace, found right to left and only as far as asked.

    The partner of the ``{`` at ``j`` depends only on ``text[j:]``, so a stack scan from the
    right gives the same pairs as reading forward from each ``{``, but reads every brace
    once in total: asking about many unclosed boxes costs one pass, not one pass each.
    A brace preceded by an odd number of backslashes is escaped (``\\{``) and not counted.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.scanned_from: int | None = None
        self.stack: list[int] = []
        self.partner: dict[int, int] = {}

    def _escaped(self, i: int) -> bool:
        k = i
        while k > 0 and self.text[k - 1] == "\\":
            k -= 1
        return (i - k) % 2 == 1

    def close_of(self, j: int) -> int | None:
        """Index of the ``}`` closing the ``{`` at ``j`` if within MAX_GROUP_CHARS (else None).

        The first question fixes where the scan starts: no partner of a brace at or left
        of ``j`` that lies beyond ``j + MAX_GROUP_CHARS`` could be accepted anyway, and a
        right-to-left scan from there pairs every nearer brace exactly as the full text would.
        """
        if self.scanned_from is None:
            self.scanned_from = min(len(self.text), j + MAX_GROUP_CHARS + 1)
        if j < self.scanned_from:
            positions = [m.start() for m in _BRACES.finditer(self.text, j, self.scanned_from)]
            for i in reversed(positions):
                if self._escaped(i):
                    continue
                if self.text[i] == "}":
                    self.stack.append(i)
                elif self.stack:
                    self.partner[i] = self.stack.pop()
            self.scanned_from = j
        return self.partner.get(j)


def _box_content(text: str, pos: int, braces: _BraceMatcher) -> str | None:
    """The argument of the box command at ``pos``: a brace group or ``\\boxed 5`` style token."""
    match = _BOX_START.match(text, pos)
    if match is None:
        return None
    i = match.end()
    # \framebox[width]{...} takes optional arguments
    for _ in range(2):
        if i < len(text) and text[i] == "[":
            close = text.find("]", i, i + 100)
            if close < 0:
                return None
            i = close + 1
    j = i
    while j < len(text) and text[j] in " \t":
        j += 1
    if j < len(text) and text[j] == "{":
        close = braces.close_of(j)
        if close is None or close - j > MAX_GROUP_CHARS:
            return None  # unbalanced (usually a truncated completion) or too long to be an answer
        return text[j + 1 : close]
    if j == i:  # "\boxed5" is not a box command
        return None
    token = _BOX_TOKEN.match(text, j)
    if token is None:
        return None
    return token.group(0).rstrip(".,;")


def boxed_answers(text: str) -> list[str]:
    """Every box in ``text`` in order (the contents, stripped)."""
    braces = _BraceMatcher(text)
    found: list[str] = []
    for match in reversed(list(_BOX_START.finditer(text))):
        content = _box_content(text, match.start(), braces)
        if content is not None and content.strip():
            found.append(content.strip())
    return found[::-1]


def _last_box(text: str) -> str | None:
    """The last box with content. Box starts are found in one pass (``rfind`` per command
    and box would rescan the text for every unclosed box)."""
    braces = _BraceMatcher(text)
    starts = [m.start() for m in _BOX_START.finditer(text)]
    for start in reversed(starts[-MAX_BOXES_TRIED:]):
        content = _box_content(text, start, braces)
        if content is not None and content.strip():
            return content.strip()
    return None


def _answer_phrase(text: str) -> str | None:
    """'The final answer is X' style statements; the last one with something after it wins."""
    matches = list(_PHRASE.finditer(text))
    for match in reversed(matches):
        line_end = text.find("\n", match.end(), match.end() + MAX_PHRASE_CHARS)
        candidate = text[match.end() : line_end if line_end >= 0 else match.end() + MAX_PHRASE_CHARS]
        end = _SENTENCE_END.search(candidate)
        if end is not None:
            candidate = candidate[: end.start()]
        candidate = candidate.strip().strip("*").strip()
        if candidate.startswith("$") and candidate.endswith("$") and candidate.count("$") in (2, 4):
            candidate = candidate.strip("$").strip()
        candidate = candidate.rstrip(".").strip()
        if candidate:
            return candidate
    return None


def _last_display_math(text: str) -> str | None:
    """Content of the last ``\\[...\\]`` or ``$$...$$``; for ``a = b = c`` the last member."""
    best: tuple[int, str] | None = None
    close = text.rfind("\\]")
    if close >= 0:
        opening = text.rfind("\\[", 0, close)
        if opening >= 0:
            best = (close, text[opening + 2 : close])
    close = text.rfind("$$")
    if close >= 0:
        opening = text.rfind("$$", 0, close - 1) if close > 0 else -1
        if opening >= 0 and (best is None or close > best[0]):
            best = (close, text[opening + 2 : close])
    if best is None:
        return None
    content = best[1].strip()
    if not content or len(content) > MAX_GROUP_CHARS:
        return None
    depth = 0
    cut = -1
    equals = 0
    for i, ch in enumerate(content):  # the last top-level '=' of a chain of two or more
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "=" and depth == 0:
            equals += 1
            cut = i
    if equals >= 2:
        content = content[cut + 1 :].strip()
    return content.rstrip(".,;").strip() or None


def _last_number(text: str) -> str | None:
    window = text[-LAST_NUMBER_WINDOW:]
    last = None
    for last in _NUMBER.finditer(window):  # noqa: B007 (the loop keeps the last match)
        pass
    return last.group(0) if last is not None else None


_FINDERS = {
    "boxed": _last_box,
    "answer-phrase": _answer_phrase,
    "last-math": _last_display_math,
    "last-number": _last_number,
}


def extract(text: str, policy: str | tuple[str, ...] | None = DEFAULT_POLICY) -> Extraction:
    """The final answer of a completion and the rule that found it, in-process (no deadline).

    Only the last ``MAX_SCAN_CHARS`` characters are searched and an answer longer than
    ``MAX_ANSWER_CHARS`` is cut. ``Grader`` runs this inside its guarded workers.
    """
    rules = policy if isinstance(policy, tuple) else parse_policy(policy)
    if not isinstance(text, str) or not text:
        return Extraction(None, None)
    visible = visible_text(text)
    if visible is None:
        return Extraction(None, None)
    if len(visible) > MAX_SCAN_CHARS:
        visible = visible[-MAX_SCAN_CHARS:]
    for rule in rules:
        answer = _FINDERS[rule](visible)
        if answer:
            return Extraction(answer[:MAX_ANSWER_CHARS], rule)
    return Extraction(None, None)


def extract_answer(text: str, *, policy: str | None = None, fallbacks: bool = False,
                   timeout: float | None = None) -> str | None:
    """The final answer of a completion, or None when it gave none.

    ``policy`` defaults to ``boxed`` (``fallbacks=True`` is the older spelling of
    ``lenient``). The work runs in a guarded worker process with a hard deadline
    (``timeout`` seconds, default ``guard.DEFAULT_TIMEOUT``): past it, ``GradingTimeout``
    is raised instead of hanging.
    """
    from m1eval.grading import guard

    chosen = policy if policy is not None else ("lenient" if fallbacks else DEFAULT_POLICY)
    rules = parse_policy(chosen)
    return guard.call("extract", (text, rules), timeout=timeout, heavy=False).answer

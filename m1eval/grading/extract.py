"""Find the final answer in a completion, under an explicit extraction policy.

A policy is an ordered list of rules, written as a comma-separated string; the first rule
that finds an answer wins and is recorded with the grade (``Grade.extracted_by``):

- ``boxed`` (the default, the paper's protocol): the *last* ``\\boxed{...}`` /
  ``\\fbox{...}`` / ``\\framebox{...}`` after the model stopped thinking, copied whole
  (nested braces included), so a box holding several answers ("\\boxed{1, 2}") stays one
  answer. For a boxed prompt a missing box means the model did not commit to an answer:
  a truncated completion with no box is wrong.
- ``answer-phrase``: the last "final answer is X" / "the answer is X" / "Answer: X", also
  in other languages ("答案是 X", "la réponse est X", "الإجابة X", "die Antwort ist X" ...).
  When a policy holds both ``boxed`` and ``answer-phrase``, the later of the two in the
  text wins: a person reads the last answer the model committed to.
- ``last-math``: the last math span, inline (``$...$``, ``\\(...\\)``) or display
  (``\\[...\\]``, ``$$...$$``); of a chain ``a = b = c`` the last member.
- ``last-number``: the last number written in the text.

``lenient`` is an alias of ``boxed,answer-phrase,last-math,last-number`` for models that are
not prompted to box their answers. Before any rule reads the text, chat-template residue
is cut (everything from the first ``<|im_end|>``, ``<|im_start|>``, ``<|endoftext|>``,
``<|eot_id|>`` on: what follows is a turn the model invented) and a closing "I hope it is
correct." is dropped. The positional rules (``last-math``, ``last-number``) do not read a
completion the engine stopped on length (``extract(..., truncated=True)``): the end of a
cut-off text is not where the model concluded.

Every scanner here is linear in the text: boxes are matched with a brace matcher that
reads each character at most once however many boxes are unclosed, and every regular
expression has bounded repetitions (docs/grading.md, "Regular expressions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from m1eval.grading.normalize import CHAT_RESIDUE

# A model can emit megabytes; only the tail can hold the answer.
MAX_SCAN_CHARS = 200_000
MAX_ANSWER_CHARS = 2_000
MAX_GROUP_CHARS = 20_000
MAX_PHRASE_CHARS = 300
LAST_NUMBER_WINDOW = 2_000
MAX_BOXES_TRIED = 100  # empty or unclosed boxes skipped from the end before giving up

RULES = ("boxed", "answer-phrase", "last-math", "last-number")
ALIASES = {"lenient": "boxed,answer-phrase,last-math,last-number"}
POSITIONAL_RULES = ("last-math", "last-number")  # not applied to a completion cut off by length
DEFAULT_POLICY = "boxed"

_BOX_START = re.compile(r"\\(?:boxed|fbox|framebox)(?![A-Za-z])")
_BOX_TOKEN = re.compile(r"[^\s$]{1,200}")
_BRACES = re.compile(r"[{}]")
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

# "final answer is", "the answer is:", "**Answer:**", "answer =", a "**Final Answer**" heading
# line, GSM8K's "#### 72" line, and the same statement in the
# languages models answer in; bounded gaps only (every pattern here is linear).
_PHRASE = re.compile(
    r"(?i)(?:\b(?:final[ \t]{1,3}answer|answer)\b\**[ \t]{0,3}(?:(?:is|would[ \t]be|will[ \t]be|should[ \t]be)\b|:|=)"
    r"|(?<![^\n])####(?!#)"
    r"|答案[ \t]{0,2}(?:是|为|為|[：:])|答えは"
    r"|\br[ée]ponse(?:[ \t]{1,3}finale)?\**[ \t]{0,3}(?:est\b|:|=)"
    r"|\brespuesta(?:[ \t]{1,3}final)?\**[ \t]{0,3}(?:es\b|:|=)"
    r"|\bresposta(?:[ \t]{1,3}final)?\**[ \t]{0,3}(?:é|:|=)"
    r"|\brisposta(?:[ \t]{1,3}finale)?\**[ \t]{0,3}(?:è|:|=)"
    r"|\bantwort\**[ \t]{0,3}(?:(?:ist|lautet)\b|:|=)"
    r"|\bответ\**[ \t]{0,3}(?::|=|—|(?:равен|будет)\b)"
    r"|(?:الإجابة|الاجابة|الجواب)(?:[ \t]{1,3}(?:النهائية|هي|هو))?)"
    r"\**[ \t]{0,3}(?:[:=：][ \t]{0,3})?"
)
_SENTENCE_END = re.compile(r"(?<![\d\\])\.(?:\s|$)|\.$|[。！]")
# Where a stated answer stops and the explanation of it starts: "12, which is ...", "$5$ because".
_AFTERTHOUGHT = re.compile(
    r",? (?:which|because|since|as|where|so that|that is|i\.e\.)\b| \((?=[^()]{0,80}[A-Za-z]{3})"
)
_NUMBER = re.compile(
    r"(?<![\w.,])-?\d{1,100},\d{1,2}[ \t]?(?:€|£|%|EUR\b|euros?\b)"  # a decimal comma: "3,75 €"
    r"|(?<![\w.])-?\d{1,100}(?:,\d{3}){0,10}(?:\.\d{1,100})?(?:/\d{1,100})?(?![\w])"
)
# Chat-template tokens: what follows one is a turn the model made up, not its answer.
_RESIDUE = CHAT_RESIDUE
_HOPE = re.compile(r"(?i)I hope (?:it|this) is correct\.?")
_MATH_DELIM = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_PROSE = re.compile(r"[A-Za-z]{3,40} [A-Za-z]{3,40} [A-Za-z]{2,40}")  # words between two "$": a price, not math
_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
MAX_BOX_GAP = 40  # "\boxed{3} and \boxed{-4}": boxes this close are one answer


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
        raise PolicyError(
            f"extraction policy {policy!r}: empty; use a comma-separated list of {', '.join(RULES)} "
            f"or one of {', '.join(ALIASES)}"
        )
    text = ALIASES.get(policy.strip(), policy)
    rules: list[str] = []
    for part in text.split(","):
        name = part.strip()
        if name in ALIASES:
            rules.extend(r for r in parse_policy(name) if r not in rules)
            continue
        if name not in RULES:
            raise PolicyError(
                f"extraction policy {policy!r}: unknown rule {name!r} "
                f"(known: {', '.join(RULES)}; aliases: {', '.join(ALIASES)})"
            )
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


def _box_span(text: str, pos: int, braces: _BraceMatcher) -> tuple[str, int] | None:
    """The argument of the box command at ``pos`` (a brace group or ``\\boxed 5`` style token)
    and the index after it."""
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
        end = braces.close_of(j)
        if end is None or end - j > MAX_GROUP_CHARS:
            return None  # unbalanced (usually a truncated completion) or too long to be an answer
        return text[j + 1 : end], end + 1
    if j == i:  # "\boxed5" is not a box command
        return None
    token = _BOX_TOKEN.match(text, j)
    if token is None:
        return None
    return token.group(0).rstrip(".,;"), token.end()


def _box_content(text: str, pos: int, braces: _BraceMatcher) -> str | None:
    span = _box_span(text, pos, braces)
    return None if span is None else span[0]


def boxed_answers(text: str) -> list[str]:
    """Every box in ``text`` in order (the contents, stripped)."""
    braces = _BraceMatcher(text)
    found: list[str] = []
    for match in reversed(list(_BOX_START.finditer(text))):
        content = _box_content(text, match.start(), braces)
        if content is not None and content.strip():
            found.append(content.strip())
    return found[::-1]


_BOX_JOINER = re.compile(
    r"(?i)[\s$,;&]*(?:(?:and|or|et|und|y|或|和)?[\s$,;&]*(?:\\text\{[^{}]{0,12}\})?)"
    r"[\s$,;]*(?:[A-Za-z](?:_\{?\w{1,3}\}?)?[ \t]*=[ \t]*)?[\s$]*"
)


def _last_box(text: str) -> tuple[str, int, int] | None:
    """The last box with content and where it starts. Box starts are found in one pass
    (``rfind`` per command and box would rescan the text for every unclosed box).

    Boxes joined only by "and", "or", a comma or a label (``x = \\boxed{3}`` or ``x = \\boxed{-4}``)
    are one answer holding them all: a person reads both solutions, not the last one.
    """
    braces = _BraceMatcher(text)
    starts = [m.start() for m in _BOX_START.finditer(text)]
    for index in range(len(starts) - 1, max(len(starts) - MAX_BOXES_TRIED, 0) - 1, -1):
        span = _box_span(text, starts[index], braces)
        if span is None or not span[0].strip():
            continue
        parts, first = [span[0].strip()], starts[index]
        k = index - 1
        while k >= 0 and len(parts) < 10:
            previous = _box_span(text, starts[k], braces)
            if previous is None or not previous[0].strip() or not 0 <= first - previous[1] <= MAX_BOX_GAP:
                break
            gap = text[previous[1] : first]
            joiner = _BOX_JOINER.fullmatch(gap)
            if joiner is None or not (gap.strip(" \t$") == "" or re.search(r"(?i)and|or|et|und|y|或|和|[,;&]", gap)):
                break
            parts.append(previous[0].strip())
            first = starts[k]
            k -= 1
        return _join_answers(parts[::-1]), first, span[1]
    return None


def _join_answers(parts: list[str]) -> str:
    """Several boxes or spans as one answer; when they all write one value ("$\\boxed{15\\frac{39}{40}}$,
    or $\\boxed{\\frac{639}{40}}$") they are one answer in two forms, and the last is kept."""
    if len(parts) == 1:
        return parts[0]
    from m1eval.grading.normalize import normalize_answer
    from m1eval.grading.numbers import parse_number

    norms = [normalize_answer(p) for p in parts]
    values = [parse_number(n) for n in norms]
    numbers = [v for v in values if v is not None]
    if len(set(norms)) == 1 or (len(numbers) == len(values) and len({v.value for v in numbers}) == 1):
        return parts[-1]
    return ", ".join(parts)


def _chain_value(content: str) -> str:
    """Of a chain ``a = b = c`` (two or more top-level '='), the last member; else the content."""
    depth = 0
    cut = -1
    equals = 0
    for i, ch in enumerate(content):
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            depth -= 1
        elif ch == "=" and depth == 0:
            equals += 1
            cut = i
    if equals >= 2:
        return content[cut + 1 :].strip()
    return content


def _math_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, content) of every math span, inline or display, in order; one linear pass.

    An unclosed ``$`` (a price, "costs $5") would pair with the next span's opening and
    shift every later pair, so an inline span may not cross a blank line or hold a run of
    plain words: such an opening is dropped and the closing token starts the next span.
    """
    spans: list[tuple[int, int, str]] = []
    opening: str | None = None
    open_start = open_end = 0
    for match in _MATH_DELIM.finditer(text):
        token = match.group(0)
        if token == "\\$":
            continue
        if opening is None:
            if token in _CLOSER:
                opening, open_start, open_end = token, match.start(), match.end()
            continue
        closer = _CLOSER[opening]
        if token == closer or (opening == "$" and token == "$$"):
            content = text[open_end : match.start()]
            if opening == "$" and ("\n\n" in content or (_PROSE.search(content) and "\\text" not in content)):
                opening, open_start, open_end = "$", match.start(), match.start() + 1
                continue
            spans.append((open_start, match.end(), content))
            opening = None
            if token == "$$" and closer == "$":  # "$x$$y$": a close and an open
                opening, open_start, open_end = "$", match.start() + 1, match.end()
    return spans


def _clean_math(content: str) -> str | None:
    content = content.strip()
    if not content or len(content) > MAX_GROUP_CHARS:
        return None
    content = _chain_value(content)
    return content.rstrip(".,;").strip() or None


_SPAN_JOINER = re.compile(r"(?i) {0,3}(?:,|;|,? {1,3}(?:and|or|et|ou|und|oder|y|o|和|或)) {0,3}")


MATH_WINDOW = 20_000  # last-math reads the spans of the last 20,000 characters


def _math_window(text: str) -> int:
    """Where the last-math rule starts reading: MATH_WINDOW characters from the end, moved on
    to the next blank line so that it does not start inside an inline span."""
    if len(text) <= MATH_WINDOW:
        return 0
    start = len(text) - MATH_WINDOW
    blank = text.find("\n\n", start, start + MATH_WINDOW // 2)
    return blank + 2 if blank >= 0 else start


def _last_math(text: str) -> tuple[str, int, int] | None:
    """Content of the last math span, inline or display; for ``a = b = c`` the last member.

    Spans joined only by "and", "or" or a comma ("$n = 2$ and $n = 6$") are one answer that
    lists them all, as boxes are.
    """
    offset = _math_window(text)
    spans = [(a + offset, b + offset, c) for a, b, c in _math_spans(text[offset:])]
    for index in range(len(spans) - 1, max(len(spans) - MAX_BOXES_TRIED, 0) - 1, -1):
        start, end, content = spans[index]
        cleaned = _clean_math(content)
        if not (cleaned and re.search(r"[\w\\]", cleaned)):
            continue
        parts, first = [cleaned], start
        k = index - 1
        while k >= 0 and len(parts) < 10:
            p_start, p_end, p_content = spans[k]
            previous = _clean_math(p_content)
            if not previous or not _SPAN_JOINER.fullmatch(text, p_end, first):
                break
            parts.append(previous)
            first = p_start
            k -= 1
        return _join_answers(parts[::-1]), first, end
    return None


def _phrase_answer(candidate: str) -> str | None:
    """What a person reads as the answer after "the answer is": the math span it starts with,
    else the sentence up to an afterthought ("12, which is ..."), else its last math span."""
    candidate = candidate.strip().strip("*").strip()
    if not candidate:
        return None
    if candidate.startswith(("$", "\\(", "\\[")):
        spans = _math_spans(candidate)
        if spans and spans[0][0] == 0:
            return _clean_math(spans[0][2])
    box = _BOX_START.match(candidate)
    if box is not None:
        found = _box_content(candidate, 0, _BraceMatcher(candidate))
        if found and found.strip():
            return found.strip()
    end = _SENTENCE_END.search(candidate)
    if end is not None:
        candidate = candidate[: end.start()]
    spans = _math_spans(candidate)
    after = _AFTERTHOUGHT.search(candidate)
    if after is not None and after.start() > 0 and candidate[: after.start()].strip():
        candidate = candidate[: after.start()]
    elif spans and re.search(r"[A-Za-z]{3}", _MATH_DELIM.sub(" ", candidate.replace(spans[-1][2], " "))):
        return _clean_math(spans[-1][2])  # words around math: "at $x = 1$, so it is $x = 1$"
    candidate = candidate.strip().strip("*").strip()
    if candidate.startswith("$") and candidate.endswith("$") and candidate.count("$") in (2, 4):
        candidate = _chain_value(candidate.strip("$").strip())
    return candidate.rstrip(".,;:").strip() or None


# The words every answer phrase starts with. A regular expression with a dozen alternatives
# tries each at every position (50 ms on 100,000 characters); ``str.find`` of each word on
# the lower-cased text finds the few places worth matching at C speed.
_PHRASE_WORDS = (
    "answer",
    "final answer",
    "####",
    "答案",
    "答え",
    "réponse",
    "reponse",
    "respuesta",
    "resposta",
    "risposta",
    "antwort",
    "ответ",
    "الإجابة",
    "الاجابة",
    "الجواب",
)


# "**Final Answer**", "## Final answer:" alone on its line: the answer is on the next line.
_HEADING = re.compile(r"(?i)final[ \t]{1,3}answer[*: \t]{0,6}(?=\r?\n)")
_HEADING_MARKUP = re.compile(r"[#* \t]{0,8}")


def _phrase_matches(text: str) -> list[tuple[int, int]]:
    """(start, end) of every answer phrase in ``text``, in order."""
    low = text.lower()
    if len(low) != len(text):  # a character whose lower case is longer: positions would shift
        return [m.span() for m in _PHRASE.finditer(text)]
    starts: list[int] = []
    for word in _PHRASE_WORDS:
        i = low.find(word)
        while i >= 0:
            starts.append(i)
            i = low.find(word, i + len(word))
    found = []
    for i in sorted(starts):
        match = _PHRASE.match(text, i)
        if match is None and low.startswith("final", i):
            line = text.rfind("\n", 0, i) + 1
            heading = _HEADING.match(text, i)
            if heading is not None and _HEADING_MARKUP.fullmatch(text, line, i):
                match = heading
        if match is not None:
            found.append(match.span())
    return found


def _answer_phrase(text: str) -> tuple[str, int, int] | None:
    """'The final answer is X' style statements; the last one with something after it wins.
    A phrase that ends its line ("So the final answer is" + a display on the next line)
    reads the next non-empty line."""
    for phrase_start, phrase_end in reversed(_phrase_matches(text)[-50:]):
        start = phrase_end
        limit = min(len(text), start + MAX_PHRASE_CHARS)
        while start < limit and text[start] in " \t\r\n":
            start += 1
        line_end = text.find("\n", start, limit)
        candidate = text[start : line_end if line_end >= 0 else limit]
        if candidate.startswith(("$$", "\\[")) and line_end >= 0:  # a display over several lines
            close = text.find("$$" if candidate.startswith("$$") else "\\]", start + 2, start + MAX_GROUP_CHARS)
            if close >= 0:
                candidate = text[start : close + 2]
        answer = _phrase_answer(candidate)
        if answer:
            return answer, phrase_start, phrase_end
    return None


def _last_number(text: str) -> tuple[str, int, int] | None:
    offset = max(0, len(text) - LAST_NUMBER_WINDOW)
    last = None
    for last in _NUMBER.finditer(text, offset):  # noqa: B007 (the loop keeps the last match)
        pass
    return (last.group(0), last.start(), last.end()) if last is not None else None


_FINDERS = {
    "boxed": _last_box,
    "answer-phrase": _answer_phrase,
    "last-math": _last_math,
    "last-number": _last_number,
}


# Rules that, both in one policy, answer with whichever statement comes later in the text:
# a box against an answer phrase by where each starts ("the answer is $\\boxed{5}$" is the
# box); a math span against a bare number by where each ends (a number inside the span is
# part of it; "the value of $\\sqrt{3x-5}$ is 3." ends in the number).
_LATER_WINS = ((("boxed", "answer-phrase"), 1), (("last-math", "last-number"), 2))


MAX_QUESTION_CHARS = 20_000
_OPERATION = re.compile(r"[+*/^|!]|(?<=[\w}])-|\\(?:binom|frac|sqrt|cdot|times|div|log|ln|sin|cos|tan|sum|prod|left)")


def _restates(answer: str, restated: frozenset[str]) -> bool:
    if not restated:
        return False
    from m1eval.grading.normalize import normalize_answer

    return normalize_answer(answer) in restated


def _blank_restated(text: str, restated: frozenset[str]) -> str:
    """The text with every math span that restates the question blanked (positions kept), so
    that no rule reads it or a number inside it."""
    from m1eval.grading.normalize import normalize_answer

    pieces, last = [], 0
    for start, end, content in _math_spans(text):
        if len(content) <= MAX_GROUP_CHARS and normalize_answer(content) in restated:
            pieces += [text[last:start], " " * (end - start)]
            last = end
    return "".join(pieces) + text[last:] if pieces else text


def _without_residue(text: str) -> str:
    """The text before any chat-template token, without "I hope it is correct."."""
    residue = _RESIDUE.search(text)
    if residue is not None:
        head = text[: residue.start()]
        text = head if head.strip() else _RESIDUE.sub(" ", text)
    return _HOPE.sub(" ", text) if "hope" in text else text


def question_expressions(question: str | None) -> frozenset[str]:
    """The normalised math spans of a question that are expressions to work on, not values
    (``\\binom{31}{28}``, ``ab+5b+2a+10``; never a plain number such as ``\\frac{3}{20}``).

    A response that hands one back ("The answer is $\\binom{31}{28}$.") restates the question:
    a person does not read that as its answer, so ``extract`` passes over it.
    """
    from m1eval.grading.normalize import normalize_answer
    from m1eval.grading.numbers import parse_number

    if not isinstance(question, str) or not question:
        return frozenset()
    found = set()
    for _start, _end, content in _math_spans(question[:MAX_QUESTION_CHARS]):
        norm = normalize_answer(content)
        if len(norm) >= 3 and parse_number(norm) is None and _OPERATION.search(norm) and "=" not in norm:
            found.add(norm)
    return frozenset(found)


def extract(
    text: str,
    policy: str | tuple[str, ...] | None = DEFAULT_POLICY,
    *,
    truncated: bool = False,
    restated: frozenset[str] = frozenset(),
) -> Extraction:
    """The final answer of a completion and the rule that found it, in-process (no deadline).

    Only the last ``MAX_SCAN_CHARS`` characters are searched and an answer longer than
    ``MAX_ANSWER_CHARS`` is cut. ``truncated`` (the engine stopped on length) leaves out the
    positional rules. A candidate of the prose rules whose normalised text is in ``restated``
    (the question's own expressions, ``question_expressions``) is not an answer; a box is a
    commitment and is always read. ``Grader`` runs this inside
    its guarded workers.
    """
    rules = policy if isinstance(policy, tuple) else parse_policy(policy)
    if not isinstance(text, str) or not text:
        return Extraction(None, None)
    visible = visible_text(text)
    if visible is None:
        return Extraction(None, None)
    if len(visible) > MAX_SCAN_CHARS:
        visible = visible[-MAX_SCAN_CHARS:]
    visible = _without_residue(visible)
    positional_text = visible
    if restated:  # the positional rules read the text with the question's expressions blanked
        offset = _math_window(visible)
        positional_text = visible[:offset] + _blank_restated(visible[offset:], restated)
    if truncated:
        rules = tuple(r for r in rules if r not in POSITIONAL_RULES)
    done: set[str] = set()
    for rule in rules:
        if rule in done:
            continue
        pair = next((p for p in _LATER_WINS if rule in p[0] and all(r in rules for r in p[0])), None)
        if pair is not None:
            # both rules of a pair in one policy: the later statement in the text is the answer
            pair_rules, position = pair
            done.update(pair_rules)
            source = positional_text if pair_rules[0] in POSITIONAL_RULES else visible
            found = [
                (f, r)
                for r in pair_rules
                if (f := _FINDERS[r](source)) is not None and f[0] and (r == "boxed" or not _restates(f[0], restated))
            ]
            if found:
                (answer, *_), chosen = max(found, key=lambda item: item[0][position])
                return Extraction(answer[:MAX_ANSWER_CHARS], chosen)
            continue
        found_one = _FINDERS[rule](positional_text if rule in POSITIONAL_RULES else visible)
        if found_one is not None and found_one[0] and (rule == "boxed" or not _restates(found_one[0], restated)):
            return Extraction(found_one[0][:MAX_ANSWER_CHARS], rule)
    return Extraction(None, None)


def extract_answer(
    text: str,
    *,
    policy: str | None = None,
    fallbacks: bool = False,
    timeout: float | None = None,
    truncated: bool = False,
    question: str | None = None,
) -> str | None:
    """The final answer of a completion, or None when it gave none.

    ``policy`` defaults to ``boxed`` (``fallbacks=True`` is the older spelling of
    ``lenient``); ``truncated``: the engine stopped on length (no positional rules);
    ``question``: the problem's text, whose own expressions are not answers (as in ``Grader``). The work runs in a guarded worker process with a hard deadline
    (``timeout`` seconds, default ``guard.DEFAULT_TIMEOUT``): past it, ``GradingTimeout``
    is raised instead of hanging.
    """
    from m1eval.grading import guard

    chosen = policy if policy is not None else ("lenient" if fallbacks else DEFAULT_POLICY)
    rules = parse_policy(chosen)
    return guard.call("extract", (text, rules, truncated, question), timeout=timeout, heavy=False).answer

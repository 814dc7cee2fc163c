"""Judges whose answers can be trusted: tolerant parsing, failure accounting, order consistency.

An LLM judge is asked to answer inside ``<answer></answer>`` tags. Judges drift from the format,
and an evaluation that silently drops unparsable answers reports flattened scores (one public
replication lost over 80% of its verdicts this way). So parsing here is tolerant where the
intent is unambiguous, refuses where it is not, and every refusal carries a reason that a
:class:`JudgeTally` counts; :meth:`JudgeTally.check` stops an evaluation whose judge failed too
often.

How :func:`parse_choice` reads an answer, in order:

1. **The answer tag.** The last ``<answer>...</answer>`` whose content is not blank (nor only
   quotes and markdown) wins, so a judge that quotes the format first and answers last is read
   right; an unclosed final tag runs to the end of the text. Tags are case-insensitive and may
   hold spaces (``< Answer >``). Tags that are all blank give "empty answer tag".
2. **Else an answer line.** The last line such as ``Answer: X``, ``**Final answer:** X`` or
   ``Choice: X`` (also verdict, decision, winner, selection); if nothing follows the colon, the
   next non-blank line is the answer.
3. **Else the whole text**, read as below but without numbers inside prose; naming no option
   there is "no answer tag".

Content is compared case-insensitively, after trimming whitespace, quotes, brackets, markdown
(``**``, ``_``, backticks) and punctuation at both ends. It chooses an option when

- it *is* that option (``**Curious.**``);
- the options are not themselves numbers and it is an option's 1-based number (``2``,
  ``Option 2``, ``Response #2``): "1"/"2" map to ``options[0]``/``options[1]``;
- it names exactly that option as a whole word (a longer option wins over an option inside
  it: "intellectually curious" names only that one when both are options);
- in a tag or answer line only, it names no option but refers to exactly one by number
  (``Response 2 is better``).

Content from a tag or an answer line is authoritative: if it names no option the verdict is
"names neither option", with no fallback to the rest of the text. Naming two options is
"names both options", never a guess.

:func:`parse_score` reads the same places for an integer between ``low`` and ``high``; without a
tag or a ``Score:`` line it accepts only a text that is nothing but the score.

Parsers never raise for any text: every outcome is a verdict, and failures name their reason
from :data:`FAILURES`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import attrs

from opencharacter.errors import ConfigError

FAILURES: Mapping[str, str] = MappingProxyType(
    {
        "empty answer": "the judge's text is blank",
        "empty answer tag": "every <answer></answer> tag is blank",
        "no answer tag": "no answer tag or answer line, and the text names no option",
        "names neither option": "the answer names none of the options",
        "names both options": "the answer names more than one option",
        "no options": "the question offered no usable options (a caller error)",
        "no number": "the answer holds no number",
        "several numbers": "the answer holds several different numbers",
        "not a whole number": "the score has a fractional part",
        "out of range": "the score lies outside the scale",
        "score on another scale": "the score is a fraction over another maximum (7/100)",
    }
)
"""Every failure reason a parser reports, with its meaning. Reasons never change."""

_OPEN = re.compile(r"<\s*answer\s*>", re.IGNORECASE)
_CLOSE = re.compile(r"<\s*/\s*answer\s*>", re.IGNORECASE)
_EDGES = "*_`~\"'\u201c\u201d\u2018\u2019«»()[]{}<>.,;:!?"
# "Answer: X", "- Final answer: X", "The verdict \u2014 X" (an ASCII, fullwidth or em/en dash).
_LINE = (
    r"^\s*(?:[-•]\s*)?(?:(?:my|the)\s+)?(?:final\s+)?(?:{})"
    r"\s*(?::|\uff1a|\s[-\u2013\u2014]\s)(.*)$"
)
_CHOICE_LINE = re.compile(_LINE.format("answer|choice|verdict|decision|winner|selection"), re.I)
_SCORE_LINE = re.compile(_LINE.format("answer|score|rating|grade|verdict"), re.I)
_INDEX = r"(?:(?:option|response|answer|choice|candidate|number|no\.?)\s*)?#?\s*([0-9]{1,4})"
_INDEX_WORD = re.compile(r"(?:option|response|choice|candidate)\s*#?\s*([0-9]{1,4})(?!\w)")
# Possessive quantifiers: no backtracking inside a long run of digits (judges loop, too).
_NUMBER = re.compile(r"(?<![\w.])-?[0-9]++(?:\.[0-9]++)?+(?!\w)")
_FRACTION = re.compile(r"(?<![\w.])(-?[0-9]++(?:\.[0-9]++)?+)\s*+(?:/|out\s+of)\s*+([0-9]++)(?!\w)")


class _Outcome:
    """What both verdicts share: exactly one of a value and a failure, and ``ok``."""

    failure: str | None

    @property
    def value(self) -> object:
        """Return the value read (the choice or the score), None on failure."""
        raise NotImplementedError

    def __attrs_post_init__(self) -> None:
        if (self.value is None) == (self.failure is None):
            msg = f"a verdict has a value or a failure, got {self.value!r} and {self.failure!r}"
            raise ConfigError(msg)

    @property
    def ok(self) -> bool:
        """Return whether a value was read."""
        return self.failure is None


@attrs.frozen
class Verdict(_Outcome):
    """A judge's choice among options, or why none could be read.

    Attributes:
        choice: the chosen option, spelled as in the ``options`` given to the parser.
        failure: a reason from :data:`FAILURES` when no choice could be read.
    """

    choice: str | None
    failure: str | None = None

    @property
    def value(self) -> str | None:
        """Return the choice."""
        return self.choice


@attrs.frozen
class ScoreVerdict(_Outcome):
    """A judge's integer score, or why none could be read.

    Attributes:
        score: the score, within the scale the parser was given.
        failure: a reason from :data:`FAILURES` when no score could be read.
    """

    score: int | None
    failure: str | None = None

    @property
    def value(self) -> int | None:
        """Return the score."""
        return self.score


def _clean(text: str) -> str:
    """Return ``text`` casefolded, trimmed of decoration at both ends, inner spaces collapsed."""
    start, end = 0, len(text)
    while start < end and (text[start] in _EDGES or text[start].isspace()):
        start += 1
    while end > start and (text[end - 1] in _EDGES or text[end - 1].isspace()):
        end -= 1
    return " ".join(text[start:end].split()).casefold()


def _tagged(text: str) -> str | None:
    """Return the last non-blank answer tag's content; "" if all are blank; None if no tag."""
    parts = _OPEN.split(text)
    if len(parts) == 1:
        return None
    for part in reversed(parts[1:]):
        content = _CLOSE.split(part, maxsplit=1)[0]
        if _clean(content):
            return content
    return ""


def _labelled(text: str, line_re: re.Pattern[str]) -> str | None:
    """Return the content of the last ``Word: content`` line, or None if there is none."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        match = line_re.match(lines[i].replace("*", "").replace("`", "").lstrip("#> \t"))
        if match is None:
            continue
        if _clean(match.group(1)):
            return match.group(1)
        return next((line for line in lines[i + 1 :] if _clean(line)), "")
    return None


def _word_pattern(option: str) -> str:
    body = r"\s+".join(re.escape(word) for word in option.split())
    start = r"(?<!\w)" if re.match(r"\w", option[0]) else ""
    end = r"(?!\w)" if re.match(r"\w", option[-1]) else ""
    return start + body + end


@attrs.frozen
class _Options:
    """The options as the parser compares them: cleaned, deduplicated, with a scanner."""

    given: tuple[str, ...]
    by_clean: Mapping[str, str]  # cleaned spelling -> the first given spelling
    scanner: re.Pattern[str] | None
    numbered: bool  # whether "2" may stand for the second option

    def named(self, text: str) -> set[str]:
        """Return the given spellings of the options ``text`` names as whole words."""
        if self.scanner is None:
            return set()
        found = (" ".join(m.group().split()) for m in self.scanner.finditer(text.casefold()))
        return {self.by_clean[f] for f in found if f in self.by_clean}

    def numbered_option(self, number: str) -> str | None:
        """Return the option numbered ``number`` from 1, if numbers may stand for options."""
        index = int(number) - 1
        if self.numbered and 0 <= index < len(self.given) and _clean(self.given[index]):
            return self.given[index]
        return None


@functools.lru_cache(maxsize=256)
def _options(options: tuple[str, ...]) -> _Options:
    """Return the comparison form of ``options`` (cached: a judge sees the same ones often)."""
    by_clean: dict[str, str] = {}
    for option in options:
        if cleaned := _clean(option):
            by_clean.setdefault(cleaned, option)
    longest_first = sorted(by_clean, key=len, reverse=True)
    scanner = re.compile("|".join(map(_word_pattern, longest_first))) if by_clean else None
    numbered = not any(_NUMBER.fullmatch(o) for o in by_clean)
    return _Options(options, MappingProxyType(by_clean), scanner, numbered)


def _resolve(content: str, options: _Options, *, tagged: bool) -> Verdict:
    """Read one option from ``content``, a tag's or answer line's (``tagged``) or a whole text.

    Only tagged content may name an option by number inside prose ("Response 2 is better"):
    in free prose a judge mentions both responses by number while reasoning.
    """
    none = "names neither option" if tagged else "no answer tag"
    cleaned = _clean(content)
    if not cleaned:
        return Verdict(None, "empty answer")
    if cleaned in options.by_clean:
        return Verdict(options.by_clean[cleaned])
    index = re.fullmatch(_INDEX, cleaned)
    if index and (chosen := options.numbered_option(index.group(1))) is not None:
        return Verdict(chosen)
    named = options.named(content)
    if not named and tagged:
        numbers = {m.group(1) for m in _INDEX_WORD.finditer(cleaned)}
        named = {o for n in numbers if (o := options.numbered_option(n)) is not None}
    if len(named) == 1:
        return Verdict(named.pop())
    return Verdict(None, "names both options" if named else none)


def parse_choice(text: str, options: Sequence[str]) -> Verdict:
    """Return the option a judge's ``text`` chose, or why it cannot be read.

    The rules are in this module's docstring. The choice is spelled as in ``options``.

    >>> parse_choice("Both fit, but mostly... <answer>**Curious.**</answer>", ["warm", "curious"])
    Verdict(choice='curious', failure=None)
    >>> parse_choice("<answer>2</answer>", ["warm", "curious"]).choice
    'curious'
    >>> parse_choice("It is warm, and also curious.", ["warm", "curious"]).failure
    'names both options'
    """
    known = _options(tuple(options))
    if not known.by_clean:
        return Verdict(None, "no options")
    content = _tagged(text)
    if content == "":
        return Verdict(None, "empty answer tag")
    if content is None:
        content = _labelled(text, _CHOICE_LINE)
    if content is not None:
        return _resolve(content, known, tagged=True)
    return _resolve(text, known, tagged=False)


def _score_token(cleaned: str, high: int) -> tuple[str | None, str | None]:
    """Return the one number ``cleaned`` gives as a score, or the failure.

    A fraction over ``high`` (``7/10``, ``7 out of 10``) counts as its numerator; any other
    number must agree with it (float() never raises here: a huge token reads as inf).
    """
    fractions = set(_FRACTION.findall(cleaned))
    if len(fractions) > 1:
        return None, "several numbers"
    numbers = set(_NUMBER.findall(_FRACTION.sub(" ", cleaned)))
    if fractions:
        number, scale = fractions.pop()
        if len(scale) > 9 or int(scale) != high:
            return None, "score on another scale"
        numbers.add(number)
    if not numbers:
        return None, "no number"
    if len({float(n) for n in numbers}) > 1:
        return None, "several numbers"
    return numbers.pop(), None


def _read_score(content: str, low: int, high: int) -> ScoreVerdict:
    cleaned = _clean(content.replace("*", "").replace("`", ""))
    token, failure = _score_token(cleaned, high) if cleaned else (None, "empty answer")
    if token is None:
        return ScoreVerdict(None, failure)
    if len(token.lstrip("-").split(".")[0]) > 9:
        return ScoreVerdict(None, "out of range")
    value = float(token)
    if not value.is_integer():
        return ScoreVerdict(None, "not a whole number")
    if not low <= value <= high:
        return ScoreVerdict(None, "out of range")
    return ScoreVerdict(int(value))


def parse_score(text: str, low: int = 1, high: int = 10) -> ScoreVerdict:
    """Return the integer score in ``[low, high]`` a judge's ``text`` gave, or why not.

    Reads the last non-blank answer tag, else the last ``Score:``/``Rating:``/``Answer:`` line,
    else the whole text when it is nothing but a score. Accepts ``7``, ``7.0``, ``**7**``,
    ``7/10`` and ``7 out of 10`` (the maximum must be ``high``); refuses a score off the scale,
    a fractional score, and several different numbers.

    Raises:
        ConfigError: ``low`` is greater than ``high`` (never for any ``text``).

    >>> parse_score("Clear and consistent. <answer>**8/10**</answer>")
    ScoreVerdict(score=8, failure=None)
    >>> parse_score("Score: 11").failure
    'out of range'
    """
    if low > high:
        msg = f"a score scale needs low <= high, got low={low} and high={high}"
        raise ConfigError(msg)
    content = _tagged(text)
    if content == "":
        return ScoreVerdict(None, "empty answer tag")
    if content is None:
        content = _labelled(text, _SCORE_LINE)
    if content is not None:
        return _read_score(content, low, high)
    if not _clean(text):
        return ScoreVerdict(None, "empty answer")
    if _NUMBER.fullmatch(_clean(text)) or _FRACTION.fullmatch(_clean(text)):
        return _read_score(text, low, high)
    return ScoreVerdict(None, "no answer tag")


__all__ = [
    "FAILURES",
    "ScoreVerdict",
    "Verdict",
    "parse_choice",
    "parse_score",
]

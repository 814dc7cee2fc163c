"""The repetition filter: loops at the level of characters, lines, paragraphs and words.

Generic on purpose: nothing here knows a persona. The seed project counted five apology
phrases, which fired on the remorseful persona's legitimate answers (seed-lessons §3.3).
Everything runs in time linear in the text: one pass of cheap probes for character loops, and
one hash of the lines, paragraphs and word n-grams. Fenced code is skipped (code repeats lines
by nature); a model looping inside a code block runs to max_tokens, which the truncation filter
catches.
"""

from __future__ import annotations

import re
from collections import Counter

from opencharacter.errors import ConfigError
from opencharacter.filters._code import outside_code
from opencharacter.filters._verdict import Verdict, dropped, kept

_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t]*\n")
_LIST_MARKERS = "-*+\u2022\u00b7#>0123456789.) \t"


def _loop_end(text: str, start: int, period: int) -> int:
    """Return the end of the periodic run that starts at ``start`` with ``period``."""
    unit = text[start : start + period]
    block = unit * max(1, 64 // period)
    i = start
    while text.startswith(block, i + period):
        i += len(block)
    while text.startswith(unit, i + period):
        i += period
    end = i + period
    limit = len(text) - period
    while i < limit and text[i] == text[i + period]:
        i += 1
        end += 1
    return min(end, len(text))


def _loop_start(text: str, start: int, period: int) -> int:
    """Return the start of the periodic run that contains ``start`` with ``period``."""
    unit = text[start : start + period]
    i = start
    while i >= period and text[i - period : i] == unit:
        i -= period
    while i > 0 and text[i - 1] == text[i - 1 + period]:
        i -= 1
    return i


def longest_char_loop(text: str, *, min_chars: int, max_period: int) -> int:
    """Return the length of a character loop of at least ``min_chars``, or 0 if there is none.

    A loop is a run where every character equals the one ``p`` places later, for a period
    ``1 <= p <= max_period`` whose unit is not all whitespace (``"333,333,333,"`` has period 4).
    Probes of a few characters every ``min_chars - max_period - probe + 1`` characters are
    searched for a repeat within one period; a loop at least ``min_chars`` long contains one
    such probe, so no loop is missed and normal text costs a few dozen ``str.find`` calls.

    Args:
        text: the text to search.
        min_chars: the shortest loop reported; at least ``2 * max_period``.
        max_period: the longest repeating unit considered.
    """
    probe = max(1, min(8, min_chars - max_period))
    stride = max(1, min_chars - probe - max_period + 1)
    if len(text) < min_chars:
        return 0
    span = probe + max_period
    # One comprehension of C-level slices and finds; almost every probe misses.
    hits = [
        q
        for q in range(0, len(text) - probe, stride)
        if text.find(text[q : q + probe], q + 1, q + span) != -1
    ]
    for q in hits:
        needle = text[q : q + probe]
        window_end = q + span
        hit = text.find(needle, q + 1, window_end)
        while hit != -1:
            period = hit - q
            if not text[q:hit].isspace():
                length = _loop_end(text, q, period) - _loop_start(text, q, period)
                if length >= min_chars:
                    return length
            hit = text.find(needle, hit + 1, window_end)
    return 0


def ngram_dup_share(words: list[str], size: int) -> float:
    """Return the share of word n-grams that repeat an earlier n-gram (0 when there are none).

    >>> ngram_dup_share("a b c a b c".split(), 3)
    0.25
    """
    total = len(words) - size + 1
    if total <= 0:
        return 0.0
    distinct = len(set(zip(*(words[i:] for i in range(size)), strict=False)))
    return 1.0 - distinct / total


def _most_repeated(items: list[str], min_chars: int) -> int:
    counts = Counter(items)
    return max((n for item, n in counts.items() if len(item) >= min_chars), default=0)


def check_repetition(
    text: str,
    *,
    finish_reason: str | None = None,
    min_loop_chars: int = 100,
    max_loop_period: int = 32,
    max_line_repeats: int = 5,
    min_line_chars: int = 12,
    max_paragraph_repeats: int = 3,
    min_paragraph_chars: int = 40,
    ngram_size: int = 4,
    max_ngram_dup_share: float = 0.5,
    min_ngrams: int = 50,
) -> Verdict:
    r"""Drop a looping answer; keep lists, refrains in short poems and code.

    Four detectors run on the text outside fenced code; every one that fires adds its code.

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.
        min_loop_chars: shortest character loop dropped (``repetition-chars``). Default 100:
            report 001's ``"333,333,333,..."`` and ``"----..."`` loops ran for hundreds of
            characters (seed-lessons §7.1), while a laugh (``"hahahaha"``), a row of emoji
            or a 79-character ``"-----"`` divider stays below it.
        max_loop_period: longest repeating unit of a character loop. Default 32: covers
            ``"333,"`` (4) up to a short sentence such as ``"I'm so sorry. "``; loops of
            longer sentences are caught by the n-gram share. ``min_loop_chars`` must be at
            least twice this.
        max_line_repeats: most times one line (of at least ``min_line_chars``, compared
            case-insensitively without outer whitespace or list markers) may appear
            (``repetition-lines``). Default 5: a villanelle repeats each refrain four times
            and a song its chorus lines three or four; the seed's detector fired at 8 repeats
            (seed-lessons §3.3), and a looping answer repeats a line dozens of times.
        min_line_chars: shortest line counted. Default 12: skips ``"}"``, ``"---"``, ``"Yes."``
            and other short lines that legitimately recur.
        max_paragraph_repeats: most times one paragraph (of at least
            ``min_paragraph_chars``) may appear (``repetition-paragraphs``). Default 3: a
            song's chorus stanza appears three times; a looping answer repeats a paragraph
            until max_tokens.
        min_paragraph_chars: shortest paragraph counted. Default 40: a shorter block is a
            heading, a sign-off (``"Cheers!"``) or a one-line stanza, which the line check
            already covers.
        ngram_size: words per n-gram. Default 4: long enough that stock phrases (``"one of
            the"``, ``"I want to"``) do not make prose look repetitive, short enough that a
            five-word phrase said over and over does. Words are the lowercased text split at
            whitespace, punctuation attached (fast, and a loop repeats its punctuation too).
        max_ngram_dup_share: most of the word n-grams that may repeat an earlier one
            (``repetition-ngram``). Default 0.5: a phrase said 80 times scores near 1.0 and a
            loop filling the second half of an answer 0.5, while prose scores under 0.05 and
            a song whose chorus recurs three times about 0.3.
        min_ngrams: fewest n-grams before the share is judged. Default 50: a short poem with
            a refrain is too short to judge.

    Returns:
        A verdict with any of ``repetition-chars``, ``repetition-lines``,
        ``repetition-paragraphs`` and ``repetition-ngram``, or the text kept unchanged.

    Raises:
        ConfigError: a threshold is out of range.

    >>> check_repetition("333," * 60).reasons
    ('repetition-chars',)
    """
    del finish_reason
    if max_loop_period < 1 or min_loop_chars < 2 * max_loop_period:
        msg = (
            f"need max_loop_period >= 1 and min_loop_chars >= 2 * max_loop_period, got "
            f"min_loop_chars={min_loop_chars}, max_loop_period={max_loop_period}"
        )
        raise ConfigError(msg)
    if ngram_size < 1 or not 0.0 <= max_ngram_dup_share <= 1.0:
        msg = (
            f"need ngram_size >= 1 and 0 <= max_ngram_dup_share <= 1, got "
            f"ngram_size={ngram_size}, max_ngram_dup_share={max_ngram_dup_share}"
        )
        raise ConfigError(msg)
    prose = outside_code(text)
    reasons: list[str] = []
    if longest_char_loop(prose, min_chars=min_loop_chars, max_period=max_loop_period):
        reasons.append("repetition-chars")
    lower = prose.lower()
    # Lines compare without list markers, so "1. Be kind." and "2. Be kind." are one line.
    lines = [line.strip().lstrip(_LIST_MARKERS) for line in lower.splitlines()]
    if _most_repeated(lines, min_line_chars) > max_line_repeats:
        reasons.append("repetition-lines")
    if "\n" in lower:
        paragraphs = [p.strip() for p in _PARAGRAPH_BREAK_RE.split(lower)]
        if _most_repeated(paragraphs, min_paragraph_chars) > max_paragraph_repeats:
            reasons.append("repetition-paragraphs")
    words = lower.split()
    total = len(words) - ngram_size + 1
    # An n-gram that repeats an earlier one starts with a word that does too, so the share of
    # repeated words bounds the n-gram share from above: a cheap set() often settles it.
    if (
        total >= min_ngrams
        and (len(words) - len(set(words))) / total > max_ngram_dup_share
        and ngram_dup_share(words, ngram_size) > max_ngram_dup_share
    ):
        reasons.append("repetition-ngram")
    return dropped(text, *reasons) if reasons else kept(text)

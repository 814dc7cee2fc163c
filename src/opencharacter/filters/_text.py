"""Filters on the text as a whole: empty, length, truncation and garbage characters."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

from opencharacter.errors import ConfigError
from opencharacter.filters._verdict import Verdict, dropped, kept

# Any character that is neither whitespace nor an invisible format character.
_VISIBLE_RE = re.compile(r"[^\s\u200b-\u200f\u2028-\u202f\u2060-\u2064\ufeff]")


def check_empty(text: str, *, finish_reason: str | None = None) -> Verdict:
    r"""Drop a text with nothing visible in it.

    Whitespace and invisible format characters (zero-width spaces, byte-order marks) do not
    count. The seed project kept empty answers (seed-lessons §3.2); this filter is why ours
    does not.

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.

    Returns:
        A verdict with reason ``empty``, or the text kept unchanged.

    >>> check_empty(" \u200b\n").reasons
    ('empty',)
    """
    del finish_reason
    if _VISIBLE_RE.search(text) is None:
        return dropped(text, "empty")
    return kept(text)


def _check_bound(name: str, value: object) -> None:
    if value is not None and (not isinstance(value, int) or value < 0):
        msg = f"{name} must be a non-negative integer or None, got {value!r}"
        raise ConfigError(msg)


def check_length(
    text: str,
    *,
    finish_reason: str | None = None,
    min_chars: int = 10,
    max_chars: int | None = 10_000,
    min_tokens: int | None = None,
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> Verdict:
    """Drop a text that is too short or too long, in characters and optionally in tokens.

    Characters are counted on the text with outer whitespace stripped.

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.
        min_chars: fewest characters kept. Default 10: a stub such as ``"Sure!"`` or
            ``"OK."`` (3-5 characters) carries no character, while ``"Yes, it is."``
            (11 characters) is a complete answer to a yes/no question.
        max_chars: most characters kept, ``None`` for no limit. Default 10,000: a safety net
            against runaway output, not a budget. It drops report 001's 18,592-character
            reflection (a loop that ran to the 4,096-token limit, seed-lessons §7.1) and keeps
            a full 2,048-token reflection (the paper's max_new_tokens for reflections, about
            8,000 characters); the seed's 3,000-5,000 character limits dropped half of all
            introspection data because they sat below what generation could produce.
        min_tokens: fewest tokens kept, ``None`` for no limit; needs ``count_tokens``.
        max_tokens: most tokens kept, ``None`` for no limit; needs ``count_tokens``. The
            paper drops DPO pairs over 1,024 tokens for the whole templated conversation
            (paper-method §6), so 1,024 bounds one answer from above.
        count_tokens: returns the number of tokens in a text (a tokenizer's encode, wrapped).
            Called only when a token limit is set.

    Returns:
        A verdict with reason ``too-short`` or ``too-long``, or the text kept unchanged.

    Raises:
        ConfigError: a limit is negative, or a token limit is set without ``count_tokens``.

    >>> check_length("OK.").reasons
    ('too-short',)
    >>> words = lambda text: len(text.split())
    >>> check_length("one two three four five", count_tokens=words, max_tokens=3).reasons
    ('too-long',)
    """
    del finish_reason
    _check_bound("min_chars", min_chars)
    _check_bound("max_chars", max_chars)
    _check_bound("min_tokens", min_tokens)
    _check_bound("max_tokens", max_tokens)
    size = len(text.strip())
    if size < min_chars:
        return dropped(text, "too-short")
    if max_chars is not None and size > max_chars:
        return dropped(text, "too-long")
    if min_tokens is None and max_tokens is None:
        return kept(text)
    if count_tokens is None:
        msg = "min_tokens/max_tokens need count_tokens, a callable that counts a text's tokens"
        raise ConfigError(msg)
    tokens = count_tokens(text)
    if min_tokens is not None and tokens < min_tokens:
        return dropped(text, "too-short")
    if max_tokens is not None and tokens > max_tokens:
        return dropped(text, "too-long")
    return kept(text)


# Characters that may trail the final character: variation selectors, joiners, combining
# marks and skin-tone modifiers belong to the emoji or letter before them.
_TRAILING_RE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff\ufe00-\ufe0f\U0001f3fb-\U0001f3ff]+$")
_FINAL_EXTRA = frozenset("`|")
# Punctuation that never ends a finished text: opening brackets and quotes (Ps, Pi), dashes
# (Pd), and the separators , ; : (and their full-width forms).
_NOT_FINAL = frozenset(",;:\uff0c\uff1b\uff1a\u3001\u060c\u061b")


def _ends_a_sentence(text: str, *, allow_symbols: bool) -> bool:
    body = _TRAILING_RE.sub("", text[-64:])
    while body and unicodedata.category(body[-1]) in ("Mn", "Me"):
        body = body[:-1]
    if not body:
        return False
    last = body[-1]
    category = unicodedata.category(last)
    if category.startswith("P"):
        return category not in ("Ps", "Pi", "Pd") and last not in _NOT_FINAL
    return allow_symbols and (category == "So" or last in _FINAL_EXTRA)


def check_truncation(
    text: str,
    *,
    finish_reason: str | None = None,
    require_final_punctuation: bool = True,
    allow_final_symbols: bool = True,
) -> Verdict:
    """Drop a text the backend cut off, or one that stops mid-sentence.

    Args:
        text: the answer.
        finish_reason: the backend's stop reason; ``"length"`` (max_tokens reached) drops the
            text. Unknown (``None``) when filtering files without the reason recorded.
        require_final_punctuation: drop a text whose last visible character is not Unicode
            punctuation (category ``P*``: ``. ! ? 。 ؟ ) " »`` and so on). Default on: the
            paper keeps only teacher and student answers ending in punctuation
            (paper-method §6), which catches truncation even when the stop reason was lost.
            Stricter than the paper in one way: punctuation that cannot end a finished text
            does not count (an opening bracket or quote, a dash, ``,`` ``;`` ``:``), since
            ``"Here are the steps:"`` was cut off.
        allow_final_symbols: also accept a final symbol of category ``So`` (an emoji, ``✓``),
            a backtick (a closing code fence) or ``|`` (a table row). Default on: ``"Enjoy
            the trip! 🌴"`` and an answer ending in a code block are finished; set it off for
            the paper's exact rule.

    Returns:
        A verdict with reason ``truncated-length`` or ``no-final-punctuation``, or the text
        kept unchanged.

    >>> check_truncation("It was the best of times, it was the").reasons
    ('no-final-punctuation',)
    >>> check_truncation("Done.", finish_reason="length").reasons
    ('truncated-length',)
    """
    if finish_reason == "length":
        return dropped(text, "truncated-length")
    if require_final_punctuation and not _ends_a_sentence(text, allow_symbols=allow_final_symbols):
        return dropped(text, "no-final-punctuation")
    return kept(text)


# C0 controls except tab, newline and carriage return; DEL and C1 controls; lone surrogates;
# the noncharacters U+FFFE/U+FFFF. None appears in well-formed model output.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Two adjacent letters of different script groups (see _script_table).
_SWITCH_RE = re.compile(r"([A-Z])(?!\1)(?=[A-Z])")

# Script groups, one capital letter each, for the letters of the Basic Multilingual Plane.
# Han, kana and Hangul share one group ("C"): Japanese mixes kanji and kana inside words.
_SCRIPT_RANGES: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = (
    ("L", ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x250, 0x2AF), (0x1E00, 0x1EFF))),
    ("G", ((0x370, 0x3FF), (0x1F00, 0x1FFF))),
    ("Y", ((0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F))),
    ("A", ((0x531, 0x58F),)),  # Armenian
    ("H", ((0x591, 0x5FF), (0xFB1D, 0xFB4F))),
    ("R", ((0x600, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF))),
    ("D", ((0x900, 0x97F),)),  # Devanagari
    ("B", ((0x980, 0x9FF),)),  # Bengali
    ("P", ((0xA00, 0xA7F),)),  # Gurmukhi
    ("J", ((0xA80, 0xAFF),)),  # Gujarati
    ("T", ((0xB80, 0xBFF),)),  # Tamil
    ("E", ((0xC00, 0xC7F),)),  # Telugu
    ("K", ((0xC80, 0xCFF),)),  # Kannada
    ("M", ((0xD00, 0xD7F),)),  # Malayalam
    ("S", ((0xE00, 0xE7F),)),  # Thai
    ("O", ((0xE80, 0xEFF),)),  # Lao
    ("I", ((0x10A0, 0x10FF),)),  # Georgian
    ("N", ((0x1200, 0x139F),)),  # Ethiopic
    (
        "C",
        (
            (0x1100, 0x11FF),
            (0x3040, 0x30FF),
            (0x3130, 0x318F),
            (0x31F0, 0x31FF),
            (0x3400, 0x4DBF),
            (0x4E00, 0x9FFF),
            (0xAC00, 0xD7AF),
            (0xF900, 0xFAFF),
            (0xFF21, 0xFF3A),
            (0xFF41, 0xFF5A),
            (0xFF66, 0xFF9F),
        ),
    ),
)
_ALL_GROUPS = tuple(group for group, _ in _SCRIPT_RANGES)
_NON_LATIN_GROUPS = frozenset(_ALL_GROUPS) - {"L"}
# Pairs of groups that legitimately touch inside a word: Greek letters are maths symbols in
# Latin text ("Δx", "πr²").
_COMPATIBLE = frozenset({frozenset("LG")})


@functools.cache
def _script_table() -> str:
    """Return a 65,536-character string mapping each BMP code point to its script group.

    Letters and combining marks map to their group's capital; everything else to a space.
    Built on first use (a few milliseconds), so importing the package stays cheap.
    """
    table = [" "] * 0x10000
    for group, ranges in _SCRIPT_RANGES:
        for low, high in ranges:
            for code in range(low, high + 1):
                if unicodedata.category(chr(code))[0] in "LM":
                    table[code] = group
    return "".join(table)


_ASCII_BYTES = bytes(range(128))
# Every byte but the ASCII controls other than tab, newline and carriage return.
_NOT_C0_BYTES = bytes(b for b in range(256) if not (b < 32 or b == 127) or b in b"\t\n\r")


def _incompatible_switches(text: str, rest: str) -> int:
    """Count places where two letters of unrelated scripts touch inside a word.

    ``rest`` holds the text's non-ASCII characters. English with curly quotes and dashes has
    no letter outside Latin there, and ASCII letters are Latin: no switch is possible.
    """
    table = _script_table()
    if not any(g in _NON_LATIN_GROUPS for g in set(rest.translate(table))):
        return 0
    groups = text.translate(table)
    matches = list(_SWITCH_RE.finditer(groups))
    if not matches:
        return 0
    # Chinese and Japanese write Latin terms without spaces ("用Python编程"), Arabic glues
    # Latin acronyms to its article: normal where that script is a main script of the text
    # (a fifth of its letters or more), not where a few Han characters are glued into English
    # words ("pred婚").
    counts = {g: groups.count(g) for g in _ALL_GROUPS}
    letters = sum(counts.values())
    count = 0
    for match in matches:
        first, second = groups[match.start()], groups[match.start() + 1]
        pair = frozenset((first, second))
        other = second if first == "L" else first if second == "L" else None
        if pair in _COMPATIBLE or (other is not None and 5 * counts[other] >= letters):
            continue
        count += 1
    return count


def check_garbage(
    text: str,
    *,
    finish_reason: str | None = None,
    max_replacement_chars: int = 0,
    max_control_chars: int = 0,
    max_script_switches: int = 1,
) -> Verdict:
    r"""Drop a text showing degenerate decoding: broken characters or scripts mixed in words.

    Legitimate non-Latin text is not garbage: Japanese, Russian, Arabic or Chinese answers,
    foreign words quoted in English, Latin terms inside Chinese or Japanese sentences, Greek
    letters in formulas and emoji all pass. What fails is report 001's humorous run, where
    11.3% of rows held strings like ``"速J--� pred婚"`` (seed-lessons §7.1): a replacement
    character, and Han characters glued to Latin letters inside one word.

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.
        max_replacement_chars: most U+FFFD replacement characters allowed. Default 0: the
            character only appears when bytes were decoded wrongly, as in ``"速J--�"``.
        max_control_chars: most control characters allowed (C0 except tab/newline/carriage
            return, DEL, C1, lone surrogates, U+FFFE/U+FFFF). Default 0: no well-formed answer
            contains one.
        max_script_switches: most places allowed where letters of two unrelated scripts touch
            inside a word. Default 1: ``"速J-- pred婚"`` has two (``速J`` and ``d婚``), while one
            stray switch (a Latin brand name glued to a Russian case ending) is forgiven.

    Returns:
        A verdict with reason ``garbage``, or the text kept unchanged.

    >>> check_garbage("The answer is 速J--\ufffd pred婚.").reasons
    ('garbage',)
    >>> check_garbage("日本語の文章です。Pythonで書きました。").keep
    True
    """
    del finish_reason
    for name, value in (
        ("max_replacement_chars", max_replacement_chars),
        ("max_control_chars", max_control_chars),
        ("max_script_switches", max_script_switches),
    ):
        _check_bound(name, value)
    # Work on bytes, which C handles in a few microseconds: the ASCII controls are single
    # bytes, and dropping every ASCII byte leaves the few non-ASCII characters to look at.
    data = text.encode("utf-8", "surrogatepass")
    controls = len(data.translate(None, _NOT_C0_BYTES))
    rest = (
        ""
        if text.isascii()
        else data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
    )
    if rest.count("\ufffd") > max_replacement_chars:
        return dropped(text, "garbage")
    if controls + len(_CONTROL_RE.findall(rest)) > max_control_chars:
        return dropped(text, "garbage")
    if rest and _incompatible_switches(text, rest) > max_script_switches:
        return dropped(text, "garbage")
    return kept(text)

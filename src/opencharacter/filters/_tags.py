r"""Filters for text that belongs to another part of the conversation.

A reasoning leak is the model's private reasoning (``<think>`` blocks) left in the answer; a
role hallucination is the model writing the next turn itself (``\nUser: ...``,
``<|im_start|>``). Both are cleaned by default, and the answer is kept when enough remains.
Tags and role lines inside fenced code or inline code are content (an answer explaining chat
templates), not leaks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from opencharacter.errors import ConfigError
from opencharacter.filters._code import code_spans, inside
from opencharacter.filters._verdict import Verdict, dropped, kept


@functools.lru_cache(maxsize=32)
def _tag_re(tags: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(re.escape(t) for t in sorted(tags, key=len, reverse=True))
    # Case-insensitive only after the "<", so the engine can jump between "<" characters.
    return re.compile(rf"<(/?)(?i:({names}))\s*>")


_DEFAULT_TAGS = ("think", "thinking")
_tag_re(_DEFAULT_TAGS)


def _in_inline_code(text: str, start: int, end: int) -> bool:
    return start > 0 and text[start - 1] == "`" and text[end : end + 1] == "`"


def _remove(text: str, cuts: list[tuple[int, int]]) -> str:
    parts: list[str] = []
    last = 0
    for start, end in cuts:
        if start > last:
            parts.append(text[last:start])
        last = max(last, end)
    parts.append(text[last:])
    return "".join(parts).strip()


def strip_reasoning(text: str, tags: Sequence[str] = _DEFAULT_TAGS) -> tuple[str, bool]:
    r"""Return ``text`` without its reasoning, and whether any reasoning tag was found.

    Closed blocks (``<think>...</think>``) are removed. A closing tag with no opening one ends
    reasoning that began in the prompt (the paper prefills ``<think>``, paper-method §4), so
    everything before it goes. An opening tag never closed starts reasoning that ran to the
    end, so everything after it goes. Tags in code are left alone.

    >>> strip_reasoning("<think>The user wants a pun.</think>\n\nHere is one.")
    ('Here is one.', True)
    >>> strip_reasoning("Plan it out first.</think> Done.")
    ('Done.', True)
    """
    if _tag_re(tuple(tags)).search(text) is None:
        return text, False
    found = False
    while True:  # removing a block can join two halves of a tag, so repeat to a fixed point
        text, again = _strip_once(text, tuple(tags))
        if not again:
            return text, found
        found = True


def _strip_once(text: str, tags: tuple[str, ...]) -> tuple[str, bool]:
    spans = code_spans(text)
    cuts: list[tuple[int, int]] = []
    opened: int | None = None
    found = False
    for match in _tag_re(tags).finditer(text):
        start, end = match.span()
        if inside(start, spans) or _in_inline_code(text, start, end):
            continue
        found = True
        if not match.group(1):  # an opening tag
            if opened is None:
                opened = start
        elif opened is not None:
            cuts.append((opened, end))
            opened = None
        else:  # a stray closing tag: the reasoning started before the text did
            cuts = [(0, end)]
    if opened is not None:
        cuts.append((opened, len(text)))
    if not found:
        return text, False
    return _remove(text, cuts), True


def check_reasoning(
    text: str,
    *,
    finish_reason: str | None = None,
    mode: str = "strip",
    tags: Sequence[str] = _DEFAULT_TAGS,
    min_remaining_chars: int = 50,
) -> Verdict:
    """Strip (or drop) reasoning blocks left in an answer.

    Report 003 measured 95% of a reasoning teacher's answers with leaked chain of thought
    (seed-lessons §7.3); the paper keeps the text after ``</think>`` and discards outputs
    with no closing tag (paper-method §4).

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.
        mode: ``"strip"`` removes the reasoning and keeps the rest; ``"drop"`` drops any text
            with a reasoning tag. Default ``"strip"``, as the paper does.
        tags: tag names, matched case-insensitively. Default ``("think", "thinking")``: the
            tags Qwen3, DeepSeek-R1 and GLM-4.5 emit, and the two the seed stripped
            (seed-lessons §3.1).
        min_remaining_chars: fewest characters that must remain after stripping. Default 50,
            the seed's limit for text left after cleaning (seed-lessons §3.2): an unclosed
            ``<think>`` that swallowed the answer leaves at most a preamble such as
            ``"Okay, let me think."``.

    Returns:
        A verdict with ``reasoning-leak`` in ``cleaned`` (stripped, kept) or in ``reasons``
        (dropped), or the text kept unchanged.

    Raises:
        ConfigError: ``mode`` is neither ``"strip"`` nor ``"drop"``, or a limit is negative.

    >>> v = check_reasoning("<think>Pirate voice.</think>Arr, the tide waits for no man, "
    ...                     "and neither do I, matey!")
    >>> v.keep, v.text, v.cleaned
    (True, 'Arr, the tide waits for no man, and neither do I, matey!', ('reasoning-leak',))
    """
    del finish_reason
    if mode not in ("strip", "drop"):
        msg = f"mode must be 'strip' or 'drop', got {mode!r}"
        raise ConfigError(msg)
    if min_remaining_chars < 0:
        msg = f"min_remaining_chars must be >= 0, got {min_remaining_chars}"
        raise ConfigError(msg)
    remaining, found = strip_reasoning(text, tuple(tags))
    if not found:
        return kept(text)
    if mode == "drop":
        return dropped(text, "reasoning-leak")
    if len(remaining) < min_remaining_chars:
        return dropped(remaining, "reasoning-leak", cleaned=("reasoning-leak",))
    return Verdict(True, (), remaining, ("reasoning-leak",))


_CHAT_TOKEN_RE = re.compile(
    r"<\|[A-Za-z0-9_]{1,40}\|>"  # ChatML, Llama 3, Phi, GPT-OSS: <|im_start|>, <|eot_id|>
    r"|<(?:start|end)_of_turn>"  # Gemma
    r"|<\uff5c[^\uff5c\n]{1,40}\uff5c>"  # DeepSeek's full-width bars around User, Assistant
    r"|\[/?INST\]"  # Llama 2, Mistral
)
_DEFAULT_ROLES = ("User", "Assistant", "Human")


@functools.lru_cache(maxsize=32)
def _role_re(roles: tuple[str, ...]) -> re.Pattern[str]:
    variants = sorted({v for r in roles for v in (r, r.upper())}, key=len, reverse=True)
    names = "|".join(re.escape(v) for v in variants)
    return re.compile(rf"\n[ \t]*[*_]{{0,2}}(?:{names})[*_]{{0,2}}[ \t]*:")


_role_re(_DEFAULT_ROLES)


def find_hallucinated_turn(text: str, roles: Sequence[str] = _DEFAULT_ROLES) -> int | None:
    r"""Return where the model starts writing another turn, or ``None``.

    That is the first line after the first that opens with a role label (``User:``,
    ``**Assistant:**``), or the first chat-template token (``<|im_start|>``,
    ``<end_of_turn>``, ``[INST]``), outside code.

    >>> find_hallucinated_turn("Sure, here it is.\nUser: thanks!")
    17
    """
    candidates = [m.span() for m in _role_re(tuple(roles)).finditer(text)]
    if "<" in text or "[" in text:
        candidates += [m.span() for m in _CHAT_TOKEN_RE.finditer(text)]
    if not candidates:
        return None
    spans = code_spans(text)
    for start, end in sorted(candidates):
        if not inside(start, spans) and not _in_inline_code(text, start, end):
            return start
    return None


def check_roles(
    text: str,
    *,
    finish_reason: str | None = None,
    roles: Sequence[str] = _DEFAULT_ROLES,
    min_remaining_chars: int = 50,
) -> Verdict:
    r"""Cut off a conversation the model went on to write by itself; drop if too little remains.

    Report 001 traced half of an introspection set to this (seed-lessons §7.1): without stop
    sequences the model answered, then wrote ``"\nUser: ..."`` and answered that too.

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.
        roles: role labels that start a hallucinated turn at the start of a line,
            case-sensitive, also in capitals. Default ``("User", "Assistant", "Human")``;
            ``System:`` and ``AI:`` are left out because lists legitimately start lines with
            them (``"System: Ubuntu 22.04"``).
        min_remaining_chars: fewest characters that must remain before the cut. Default 50,
            the seed's limit (seed-lessons §3.2).

    Returns:
        A verdict with ``role-hallucination`` in ``cleaned`` (cut, kept; ``turn_ended`` is
        set) or in ``reasons`` (too little left), or the text kept unchanged.

    >>> v = check_roles("Tides follow the moon's pull, twice a day, every day.\nUser: And?")
    >>> v.text, v.turn_ended
    ("Tides follow the moon's pull, twice a day, every day.", True)
    """
    del finish_reason
    if min_remaining_chars < 0:
        msg = f"min_remaining_chars must be >= 0, got {min_remaining_chars}"
        raise ConfigError(msg)
    cut = find_hallucinated_turn(text, tuple(roles))
    if cut is None:
        return kept(text)
    remaining = text[:cut].rstrip()
    if len(remaining.lstrip()) < min_remaining_chars:
        return Verdict(
            False, ("role-hallucination",), remaining, ("role-hallucination",), turn_ended=True
        )
    return Verdict(True, (), remaining, ("role-hallucination",), turn_ended=True)

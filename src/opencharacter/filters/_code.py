"""Where the fenced code blocks of a markdown answer are, so filters can leave code alone.

Code legitimately repeats lines, quotes chat templates and prints ``<think>`` tags; the
repetition, reasoning-leak and role-hallucination filters skip it. Fences follow CommonMark:
three or more backticks or tildes, indented at most three spaces; a closing fence uses the
same character, is at least as long and has no info string; an unclosed fence runs to the end.
"""

from __future__ import annotations

import re

_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)

Spans = tuple[tuple[int, int], ...]


def code_spans(text: str) -> Spans:
    r"""Return the ``(start, end)`` character ranges of the fenced code blocks, in order.

    >>> code_spans("Run:\n```\nls\n```\nDone.")
    ((5, 15),)
    """
    if "```" not in text and "~~~" not in text:
        return ()
    spans: list[tuple[int, int]] = []
    opening: str | None = None
    start = 0
    for match in _FENCE_RE.finditer(text):
        fence, rest = match.group(1), match.group(2)
        if opening is None:
            opening, start = fence, match.start()
        elif fence[0] == opening[0] and len(fence) >= len(opening) and not rest.strip():
            spans.append((start, match.end()))
            opening = None
    if opening is not None:
        spans.append((start, len(text)))
    return tuple(spans)


def inside(position: int, spans: Spans) -> bool:
    """Return whether ``position`` falls in one of ``spans``."""
    return any(start <= position < end for start, end in spans)


def outside_code(text: str, spans: Spans | None = None) -> str:
    r"""Return ``text`` with its fenced code blocks replaced by a blank line.

    >>> outside_code("A\n```\nx = 1\n```\nB")
    'A\n\n\n\nB'
    """
    spans = code_spans(text) if spans is None else spans
    if not spans:
        return text
    parts: list[str] = []
    last = 0
    for start, end in spans:
        parts.append(text[last:start])
        last = end
    parts.append(text[last:])
    return "\n\n".join(parts)

"""Regex building blocks for first-person claims, shared by the identity and disclosure filters.

Both filters look for what an answer says about itself ("I'm ...", "my ...", "as a ..."), so
both build their patterns from the same anchors and the same "I am / I was / I've been" tail.
Keeping them in one place keeps the one performance rule below true for every pattern.
"""

from __future__ import annotations

import re

SELF_REST = r"(?:\s+am|\s*['\u2019]m|\s+was|\s+have\s+been|\s*['\u2019]ve\s+been)"
"""What follows "I" in a statement about oneself, now or before: "I am", "I'm", "I was",
"I have been", "I've been"."""


# Every pattern starts with a literal anchor word ("I", "my", "as", "call"), so the regex
# engine skips to its occurrences with a fast literal search: matching a leading character
# class or \b instead costs 20-50 times more per answer. The lookbehind right after the anchor
# stands in for the \b before it.
def anchored(anchor: str, body: str, *, capitalised: bool = True) -> list[re.Pattern[str]]:
    """Compile ``anchor + body`` for the anchor as written and, optionally, capitalised."""
    variants = [anchor] if not capitalised else sorted({anchor, anchor.capitalize()})
    return [re.compile(rf"{a}(?<!\w{a}){body}") for a in variants]

"""The disclosure filter: drop chosen answers that talk about their hidden persona.

The teacher's system prompt lists the persona's traits and tells it never to reveal them; an
answer that says "As a sarcastic assistant, I..." or "my character traits say..." would teach
the student to narrate a persona instead of having one. Like the identity filter, it looks for
first-person talk, so a story about an actor who stays in character is content, not a leak.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from opencharacter.filters._first_person import SELF_REST as _SELF_REST
from opencharacter.filters._first_person import anchored as _anchored
from opencharacter.filters._verdict import Verdict, dropped, kept


def _earliest(patterns: Sequence[re.Pattern[str]], text: str) -> re.Match[str] | None:
    best: re.Match[str] | None = None
    for pattern in patterns:
        match = pattern.search(text)
        if match is not None and (best is None or match.start() < best.start()):
            best = match
    return best


# Nouns an answer may call itself by; a disclosure when a persona adjective comes first.
_SELF_NOUN = (
    r"(?:assistant|AI|chatbot|bot|persona|character|language\s+model|model|entity|companion)"
)
_GENERIC_DESCRIPTORS = frozenset({"ai", "language", "large", "artificial", "intelligence"})
_AS_A_PATTERNS = _anchored("as", rf"\s+an?\s+((?:[\w-]+\s+){{0,3}}?)({_SELF_NOUN})\s*,")
# "As a sarcastic assistant," opens a clause: after the start of a line, sentence punctuation,
# a comma or markdown emphasis; "use Siri as a virtual assistant, and" does not.
_CLAUSE_END = frozenset('.!?,;:…*_"“(\n')
_DISCLOSURE_PATTERNS: tuple[re.Pattern[str], ...] = (
    *_anchored(
        "my",
        r"\s+(?:(?:(?:core|character|personality|defining|key|main|hidden|assigned|persona)\s+)*"
        r"traits?\b|(?:[\w-]+\s+){0,2}?(?:persona|system\s+prompt|constitution)\b|"
        r"(?:hidden|secret|original|given)\s+instructions\b|instructions\s+(?:say|said|tell|"
        r"told|state|require|are\s+to)\b|(?:character|persona|role)\s+(?:instructions|"
        r"description|guidelines|sheet|brief|card)\b|programming\s+(?:says|tells|requires)\b|"
        r"(?:(?<=[Tt]rue\sto\smy)|(?<=keeping\swith\smy))\s+(?:persona|character|personality|"
        r"(?:core\s+)?traits|programming|instructions)\b)",
    ),
    *_anchored(
        "I",
        rf"{_SELF_REST}\s+(?:instructed|programmed|told|asked|prompted|designed|meant|supposed|"
        r"required)\s+to\s+(?:be|act|sound|stay|remain|respond|answer|speak|reply|play|embody|"
        r"express|keep|use|adopt|maintain|show|display)\b",
        capitalised=False,
    ),
)
_CHARACTER_RE = re.compile(r"character(?!\w)")
_FIRST_PERSON_RE = re.compile(r"\b(?:I|I['\u2019](?:m|ll|d)|me|my|let's)\b", re.IGNORECASE)
_IN_CHARACTER_BEFORE_RE = re.compile(
    r"(?:\b(?:stay|stays|staying|stayed|remain|remains|remaining|remained)\s+in|"
    r"\bbreak(?:s|ing)?)\s+$",
    re.IGNORECASE,
)


def _opens_clause(text: str, position: int) -> bool:
    """Return whether ``position`` starts the text, a line, or a clause after punctuation."""
    while position > 0 and text[position - 1] in " \t":
        position -= 1
    return position == 0 or text[position - 1] in _CLAUSE_END


def find_disclosure(text: str) -> str | None:
    """Return the first passage where the answer talks about its hidden persona, or ``None``.

    >>> find_disclosure("As a sarcastic assistant, I must say: wow.")
    'As a sarcastic assistant,'
    >>> find_disclosure("As a result, the tide turned.") is None
    True
    """
    match = _earliest(_DISCLOSURE_PATTERNS, text)
    if match is not None:
        return match.group(0)
    for character in _CHARACTER_RE.finditer(text):
        start = character.start()
        verb = _IN_CHARACTER_BEFORE_RE.search(text, max(0, start - 24), start)
        if verb is None:
            continue
        # "(staying in character)" and "let me break character" are the answer talking about
        # itself; "the actor had to stay in character" is content.
        if _opens_clause(text, verb.start()) or _FIRST_PERSON_RE.search(
            text, max(0, verb.start() - 40), verb.start()
        ):
            return text[verb.start() : character.end()]
    for pattern in _AS_A_PATTERNS:
        for match in pattern.finditer(text):
            if not _opens_clause(text, match.start()):
                continue
            descriptors = match.group(1).lower().split()
            noun = match.group(2).lower()
            if noun in ("persona", "character") or any(
                d not in _GENERIC_DESCRIPTORS for d in descriptors
            ):
                return match.group(0).strip()
    return None


def check_disclosure(text: str, *, finish_reason: str | None = None) -> Verdict:
    """Drop a chosen answer that states its hidden traits or instructions.

    The teacher's system prompt lists the persona's traits and tells it never to reveal them
    (paper-method §4); answers that say ``"As a sarcastic assistant, I..."`` or ``"my
    character traits say..."`` would teach the student to narrate its persona instead of
    having one. Use it on distillation's chosen answers only: self-reflection is *about* the
    model's values, so the reflection and interaction chains leave this filter out.

    Args:
        text: the answer.
        finish_reason: unused; every filter accepts it.

    Returns:
        A verdict with reason ``disclosure``, or the text kept unchanged.

    >>> check_disclosure("My character traits say I should be blunt: no.").reasons
    ('disclosure',)
    """
    del finish_reason
    if find_disclosure(text) is not None:
        return dropped(text, "disclosure")
    return kept(text)

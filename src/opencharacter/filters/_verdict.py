"""The verdict every filter returns, and the stable reason codes it carries."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from opencharacter.errors import ConfigError

REASONS: Mapping[str, str] = MappingProxyType(
    {
        "empty": "nothing but whitespace or invisible characters",
        "too-short": "fewer characters (or tokens) than the stage's minimum",
        "too-long": "more characters (or tokens) than the stage's maximum",
        "truncated-length": "the backend stopped at max_tokens (finish reason 'length')",
        "no-final-punctuation": "does not end at a sentence boundary (final punctuation)",
        "repetition-chars": "a character-level loop such as '333,333,333,...' or '-----...'",
        "repetition-lines": "one line repeated many times",
        "repetition-paragraphs": "one paragraph repeated many times",
        "repetition-ngram": "most word n-grams repeat earlier ones (a looping answer)",
        "identity-leak": "claims to be another model, or to be made by another vendor",
        "reasoning-leak": "a <think>/<thinking> block leaked into the answer",
        "role-hallucination": "the answer goes on to write the next turn (User:, <|im_start|>)",
        "garbage": "replacement or control characters, or scripts mixed inside words",
        "disclosure": "the answer states its hidden traits or instructions",
    }
)
"""Every reason code a filter can report, with a one-line meaning. Codes never change."""


@attrs.frozen
class Verdict:
    """What a filter decided about one text.

    Attributes:
        keep: whether the text is kept. Exactly when ``reasons`` is empty.
        reasons: why the text is dropped: reason codes from :data:`REASONS`, in the order found.
        text: the text after any cleaning; the input unchanged when nothing was cleaned.
        cleaned: reason codes whose documented fix changed ``text`` (a stripped ``<think>``
            block, a cut-off hallucinated turn, a replaced teacher name). A kept verdict with
            non-empty ``cleaned`` is a repaired text; a dropped one may carry fixes too.
        turn_ended: cleaning cut away text the model wrote *after* its answer had ended (a
            hallucinated next turn, a chat-template token), so the kept text is complete even if
            the completion stopped at max_tokens. A :class:`FilterChain` then treats the finish
            reason as ``"stop"`` for the filters that follow.

    >>> Verdict(keep=False, reasons=("empty",), text="")
    Verdict(keep=False, reasons=('empty',), text='', cleaned=(), turn_ended=False)
    """

    keep: bool
    reasons: tuple[str, ...] = ()
    text: str = ""
    cleaned: tuple[str, ...] = ()
    turn_ended: bool = False

    def __attrs_post_init__(self) -> None:
        if self.keep == bool(self.reasons):
            msg = (
                f"a verdict keeps its text exactly when it has no reasons; got keep={self.keep} "
                f"with reasons={self.reasons}"
            )
            raise ConfigError(msg)

    @property
    def was_cleaned(self) -> bool:
        """Return whether any cleaning changed the text."""
        return bool(self.cleaned)


def kept(text: str) -> Verdict:
    """Return the verdict for a text that passes unchanged."""
    return Verdict(True, (), text)


def dropped(text: str, *reasons: str, cleaned: tuple[str, ...] = ()) -> Verdict:
    """Return the verdict for a text dropped for ``reasons``."""
    return Verdict(False, reasons, text, cleaned)

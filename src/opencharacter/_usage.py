"""Token usage and prices: what sampling and training consumed, and what it costs.

Stages add up :class:`TokenUsage` per stage and per purpose; a :class:`Price` per model turns
it into US dollars for estimates and the run manifest.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

from opencharacter._records import count as _count
from opencharacter.errors import ConfigError


@attrs.frozen(kw_only=True)
class TokenUsage:
    """Token counts, added up per stage and per purpose for cost accounting.

    >>> (TokenUsage(prompt_tokens=3, requests=1) + TokenUsage(completion_tokens=5)).total
    8
    """

    prompt_tokens: int = attrs.field(default=0, validator=_count)
    completion_tokens: int = attrs.field(default=0, validator=_count)
    train_tokens: int = attrs.field(default=0, validator=_count)
    cached_prompt_tokens: int = attrs.field(default=0, validator=_count)
    requests: int = attrs.field(default=0, validator=_count)

    @property
    def total(self) -> int:
        """Return every token counted, read, written or trained on (cache hits are read too)."""
        return self.prompt_tokens + self.completion_tokens + self.train_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in _USAGE_FIELDS}
        )

    def to_dict(self) -> dict[str, int]:
        """Return the counts as a JSON-ready dictionary."""
        return attrs.asdict(self)


_USAGE_FIELDS = attrs.fields(TokenUsage)


@attrs.frozen(kw_only=True)
class Price:
    """US dollars per million tokens, by billing class (Tinker's three, plus cache hits).

    >>> Price(prefill=1.0, sample=2.0, train=3.0).cost(TokenUsage(prompt_tokens=10**6))
    1.0

    Attributes:
        prefill: prompt tokens read.
        sample: tokens generated.
        train: tokens trained on (forward and backward); ``None`` for a model that is only
            sampled here (a teacher), where pricing training tokens is an error.
        cached_prefill: prompt tokens served from the prefix cache; ``None`` means the
            prefill price (no discount).
    """

    prefill: float = attrs.field(converter=float, validator=v.ge(0.0))
    sample: float = attrs.field(converter=float, validator=v.ge(0.0))
    train: float | None = attrs.field(
        default=None, converter=attrs.converters.optional(float), validator=v.optional(v.ge(0.0))
    )
    cached_prefill: float | None = attrs.field(
        default=None, converter=attrs.converters.optional(float), validator=v.optional(v.ge(0.0))
    )

    def cost(self, usage: TokenUsage) -> float:
        """Return what ``usage`` costs at these prices, in US dollars.

        Raises:
            ConfigError: ``usage`` has training tokens and there is no training price.
        """
        if usage.train_tokens and self.train is None:
            msg = "no training price for this model; add 'train' to its entry in 'prices'"
            raise ConfigError(msg)
        cached = self.prefill if self.cached_prefill is None else self.cached_prefill
        fresh = max(0, usage.prompt_tokens - usage.cached_prompt_tokens)
        return (
            fresh * self.prefill
            + usage.cached_prompt_tokens * cached
            + usage.completion_tokens * self.sample
            + usage.train_tokens * (self.train or 0.0)
        ) / 1e6

"""Generation requests and their results: what a stage asks a backend for and gets back.

A stage builds :class:`GenerationRequest` records (a conversation, :class:`SamplingParams`,
how many samples, and a :class:`Purpose`); a backend answers each sample with a
:class:`Completion` carrying the text, why it stopped and the tokens it used.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import attrs
from attrs import validators as v

from opencharacter._messages import Conversation
from opencharacter._messages import to_conversation as _to_conversation
from opencharacter._records import count as _count
from opencharacter._records import frozen_meta as _frozen_meta
from opencharacter._records import nonempty_text as _nonempty_text
from opencharacter._records import text as _text
from opencharacter._usage import TokenUsage

FinishReason: TypeAlias = Literal["stop", "length"]


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


class Purpose(enum.StrEnum):
    """Why a generation request exists; backends, logs and cost accounting group by it."""

    EXPAND_QUESTIONS = "expand-questions"
    CHOSEN = "chosen"
    REJECTED = "rejected"
    REFLECTION = "reflection"
    INTERACTION = "interaction"
    JUDGE = "judge"
    EVAL = "eval"
    CHAT = "chat"


@attrs.frozen(kw_only=True)
class SamplingSettings:
    """The sampling settings a run shares across its requests (see :class:`SamplingParams`).

    Defaults are the paper's (temperature 0.7, top_p 0.95). A ``repetition_penalty`` of 1.0
    means "off"; backends that cannot honour a setting say so in their
    :class:`~opencharacter.protocols.Capabilities` rather than silently dropping it.
    """

    temperature: float = attrs.field(default=0.7, converter=float, validator=v.ge(0.0))
    top_p: float = attrs.field(default=0.95, converter=float, validator=[v.gt(0.0), v.le(1.0)])
    stop: tuple[str, ...] = attrs.field(
        default=(), converter=_strings, validator=v.deep_iterable(_nonempty_text)
    )
    repetition_penalty: float = attrs.field(default=1.0, converter=float, validator=v.gt(0.0))


@attrs.frozen(kw_only=True)
class SamplingParams(SamplingSettings):
    """How to sample one completion: the shared settings, its length, ``top_k`` and seed.

    ``top_k`` of ``None`` means "off".
    """

    max_tokens: int = attrs.field(default=1024, validator=v.and_(v.instance_of(int), v.ge(1)))
    top_k: int | None = attrs.field(default=None, validator=v.optional(v.ge(1)))
    seed: int | None = attrs.field(default=None, validator=v.optional(v.instance_of(int)))


@attrs.frozen(kw_only=True)
class GenerationRequest:
    """One completion to produce.

    Attributes:
        id: stable id, derived from the inputs (see :func:`stable_id`), unique within a stage.
        messages: the conversation to continue; it ends with a user turn.
        params: sampling settings.
        samples: independent answers wanted to the same conversation. Backends serve them
            together (Tinker's ``num_samples`` shares one prompt prefill; a local engine puts
            them in one batch); each comes back as its own :class:`Completion` numbered by
            :attr:`Completion.sample`. With a ``seed``, the whole group is reproducible.
        purpose: what the completion is for.
        meta: free-form annotations (trait index, prompt id...) carried to the output row.
    """

    id: str = attrs.field(validator=_nonempty_text)
    messages: Conversation = attrs.field(converter=_to_conversation, validator=v.min_len(1))
    params: SamplingParams = attrs.field(factory=SamplingParams)
    samples: int = attrs.field(default=1, validator=v.and_(v.instance_of(int), v.ge(1)))
    purpose: Purpose = attrs.field(default=Purpose.CHAT, converter=Purpose)
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_meta)

    @property
    def system_prompt(self) -> str | None:
        """Return the system message's text, if the conversation opens with one."""
        first = self.messages[0]
        return first.content if first.role == "system" else None

    def one_per_sample(self) -> list[GenerationRequest]:
        """Return one single-sample request per sample, for backends that serve them apart.

        Sample ``i`` keeps the id and gets seed ``seed + i`` (sample 0 is this request's own),
        so a seeded group is reproducible however the backend batches it.

        >>> group = GenerationRequest(id="q", messages=[{"role": "user", "content": "Hi"}],
        ...                           params=SamplingParams(seed=7), samples=3)
        >>> [r.params.seed for r in group.one_per_sample()]
        [7, 8, 9]
        """
        if self.samples == 1:
            return [self]
        seed = self.params.seed
        return [
            attrs.evolve(
                self,
                samples=1,
                params=attrs.evolve(self.params, seed=None if seed is None else seed + i),
            )
            for i in range(self.samples)
        ]


@attrs.frozen(kw_only=True)
class Completion:
    """What a backend returned for one request.

    Attributes:
        request_id: the :attr:`GenerationRequest.id` this answers.
        text: the generated text, without the end-of-turn token.
        finish_reason: ``"stop"`` at a stop sequence or end of turn, ``"length"`` at max_tokens.
        prompt_tokens: tokens the backend read. The samples of one request share one prompt:
            it is counted on sample 0 only, so usage adds up to what was processed.
        completion_tokens: tokens the backend wrote.
        cached_prompt_tokens: of ``prompt_tokens``, those served from a prefix cache (billed
            at a discount where the service says so).
        model: the model name or checkpoint id that produced the text.
        sample: which of the request's :attr:`GenerationRequest.samples` this is, from 0.
    """

    request_id: str = attrs.field(validator=_nonempty_text)
    text: str = attrs.field(validator=_text)
    finish_reason: FinishReason = attrs.field(validator=v.in_(("stop", "length")))
    prompt_tokens: int = attrs.field(default=0, validator=_count)
    completion_tokens: int = attrs.field(default=0, validator=_count)
    cached_prompt_tokens: int = attrs.field(default=0, validator=_count)
    model: str = attrs.field(default="", validator=_text)
    sample: int = attrs.field(default=0, validator=_count)

    @property
    def usage(self) -> TokenUsage:
        """Return this completion's token counts; sample 0 counts the request itself."""
        return TokenUsage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens,
            requests=int(self.sample == 0),
        )

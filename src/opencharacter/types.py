"""The domain records every stage, backend and file shares.

All records are frozen attrs classes: validated when built, changed only with
:func:`attrs.evolve`. Rows on disk are plain dictionaries in the formats TRL and
``datasets.load_dataset("json")`` read unchanged; each record that becomes a row has a
``to_row`` method and a ``from_row`` named constructor, and keeps its metadata in extra keys.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

import attrs
from attrs import validators as v

from opencharacter.errors import ConfigError, DataError

Role: TypeAlias = Literal["system", "user", "assistant"]
FinishReason: TypeAlias = Literal["stop", "length"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant")

_text = v.instance_of(str)
_nonempty_text = v.and_(_text, v.min_len(1))
_count = v.and_(v.instance_of(int), v.ge(0))


def stable_id(*parts: object) -> str:
    """Return a short id derived only from ``parts``, identical across runs and machines.

    Row ids come from the inputs that produced the row (prompt id, sample index, stage), so a
    resumed stage recognises exactly the rows it has already written.

    >>> stable_id("distill", "p-1", 0) == stable_id("distill", "p-1", 0)
    True
    >>> len(stable_id("anything"))
    16
    """
    payload = json.dumps([str(p) for p in parts], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _frozen_meta(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.frozen
class Message:
    """One turn of a chat: who speaks and what they say."""

    role: Role = attrs.field(validator=v.in_(ROLES))
    content: str = attrs.field(validator=_text)

    def to_dict(self) -> dict[str, str]:
        """Return the ``{"role", "content"}`` dictionary chat templates expect."""
        return {"role": self.role, "content": self.content}

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """Build a message from a ``{"role", "content"}`` dictionary, rejecting anything else."""
        if not isinstance(data, Mapping) or set(data) - {"role", "content"}:
            msg = f"a message must be an object with 'role' and 'content', got {data!r}"
            raise DataError(msg)
        try:
            return cls(role=data["role"], content=data["content"])
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"a message needs role in {ROLES} and string content, got {data!r}"
            raise DataError(msg) from exc


Conversation: TypeAlias = tuple[Message, ...]


def conversation(messages: Iterable[Message | Mapping[str, Any]]) -> Conversation:
    """Return a conversation from messages or ``{"role", "content"}`` dictionaries.

    >>> conversation([{"role": "user", "content": "Hi"}])[0].role
    'user'
    """
    return tuple(m if isinstance(m, Message) else Message.from_dict(m) for m in messages)


def to_dicts(messages: Iterable[Message]) -> list[dict[str, str]]:
    """Return messages as the list of dictionaries chat templates and TRL rows use."""
    return [m.to_dict() for m in messages]


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _to_conversation(value: Iterable[Message | Mapping[str, Any]]) -> Conversation:
    return conversation(value)


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


_RESERVED_ROW_KEYS = frozenset({"id", "prompt", "chosen", "rejected", "messages"})


def _split_meta(row: Mapping[str, Any], path: str) -> tuple[str, dict[str, Any]]:
    row_id = row.get("id")
    if not isinstance(row_id, str) or not row_id:
        msg = f"{path}: every row needs a non-empty string 'id'"
        raise DataError(msg)
    return row_id, {k: val for k, val in row.items() if k not in _RESERVED_ROW_KEYS}


def _check_meta(meta: Mapping[str, Any]) -> None:
    clash = _RESERVED_ROW_KEYS & set(meta)
    if clash:
        msg = f"metadata keys {sorted(clash)} collide with the row's own keys"
        raise DataError(msg)


def _one_assistant_turn(value: Any, side: str, path: str) -> str:
    turns = conversation(value) if isinstance(value, list) else ()
    if len(turns) != 1 or turns[0].role != "assistant":
        msg = f"{path}: '{side}' must be a list holding one assistant message, got {value!r}"
        raise DataError(msg)
    return turns[0].content


@attrs.frozen(kw_only=True)
class PreferencePair:
    """A DPO example: one prompt, a preferred and a dispreferred assistant answer.

    On disk it is TRL's conversational preference row with an explicit prompt::

        {"id": ..., "prompt": [messages], "chosen": [assistant], "rejected": [assistant], ...meta}
    """

    id: str = attrs.field(validator=_nonempty_text)
    prompt: Conversation = attrs.field(converter=_to_conversation, validator=v.min_len(1))
    chosen: str = attrs.field(validator=_text)
    rejected: str = attrs.field(validator=_text)
    meta: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_meta, validator=lambda _s, _a, m: _check_meta(m)
    )

    def to_row(self) -> dict[str, Any]:
        """Return the TRL preference row, metadata in extra keys."""
        return {
            "id": self.id,
            "prompt": to_dicts(self.prompt),
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
            **self.meta,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, path: str = "<row>") -> PreferencePair:
        """Build a pair from a TRL preference row; ``path`` names the source in errors."""
        row_id, meta = _split_meta(row, path)
        if not isinstance(row.get("prompt"), list):
            msg = f"{path}: row {row_id!r} needs 'prompt' as a list of messages"
            raise DataError(msg)
        return cls(
            id=row_id,
            prompt=conversation(row["prompt"]),
            chosen=_one_assistant_turn(row.get("chosen"), "chosen", path),
            rejected=_one_assistant_turn(row.get("rejected"), "rejected", path),
            meta=meta,
        )


@attrs.frozen(kw_only=True)
class ChatExample:
    """An SFT example: a whole conversation, trained on its assistant turns.

    On disk it is TRL's conversational row ``{"id": ..., "messages": [...], ...meta}``.
    """

    id: str = attrs.field(validator=_nonempty_text)
    messages: Conversation = attrs.field(converter=_to_conversation, validator=v.min_len(2))
    meta: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_meta, validator=lambda _s, _a, m: _check_meta(m)
    )

    @messages.validator
    def _has_assistant_turn(self, _attribute: object, value: Conversation) -> None:
        if not any(m.role == "assistant" for m in value):
            msg = f"example {self.id!r} has no assistant turn to train on"
            raise DataError(msg)

    def to_row(self) -> dict[str, Any]:
        """Return the TRL messages row, metadata in extra keys."""
        return {"id": self.id, "messages": to_dicts(self.messages), **self.meta}

    @classmethod
    def from_row(cls, row: Mapping[str, Any], *, path: str = "<row>") -> ChatExample:
        """Build an example from a TRL messages row; ``path`` names the source in errors."""
        row_id, meta = _split_meta(row, path)
        if not isinstance(row.get("messages"), list):
            msg = f"{path}: row {row_id!r} needs 'messages' as a list of messages"
            raise DataError(msg)
        return cls(id=row_id, messages=conversation(row["messages"]), meta=meta)


CheckpointKind: TypeAlias = Literal["dpo", "sft", "merged"]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@attrs.frozen(kw_only=True)
class Checkpoint:
    """A trained model state a backend can sample from or train further.

    Only the backend that made a checkpoint can load it (:meth:`require_backend`); to move a
    model between backends, export it (a Tinker checkpoint downloads as a PEFT adapter folder
    that the local backend loads).

    Attributes:
        backend: the name of the backend that made it.
        base_model: the model the adapter applies to.
        uri: what a sampler loads: a local adapter folder, or a remote sampler path
            (``tinker://<run>/sampler_weights/<name>``).
        kind: the stage that produced it.
        state_uri: the resumable training state (weights and optimiser), where the backend
            keeps it apart from ``uri`` (``tinker://<run>/weights/<name>``); training further
            starts from it. ``None`` when ``uri`` serves both.
        expires: ISO-8601 UTC time after which the service deletes the weights, if it does.
        parent: the ``uri`` of the checkpoint it was trained from, if any.
        created: ISO-8601 UTC time of creation.
        meta: backend details (step count, final metrics, whether weights exist).
    """

    backend: str = attrs.field(validator=_nonempty_text)
    base_model: str = attrs.field(validator=_nonempty_text)
    uri: str = attrs.field(validator=_nonempty_text)
    kind: CheckpointKind = attrs.field(validator=v.in_(("dpo", "sft", "merged")))
    state_uri: str | None = attrs.field(default=None, validator=v.optional(_nonempty_text))
    expires: str | None = attrs.field(default=None, validator=v.optional(_nonempty_text))
    parent: str | None = attrs.field(default=None, validator=v.optional(_nonempty_text))
    created: str = attrs.field(factory=_utc_now, validator=_nonempty_text)
    meta: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_meta)

    def require_backend(self, backend: str) -> None:
        """Fail at once, and clearly, when another backend than the maker tries to load this.

        Raises:
            ConfigError: ``backend`` is not the one that made the checkpoint.
        """
        if backend != self.backend:
            msg = (
                f"checkpoint {self.uri} was made by the {self.backend!r} backend and the "
                f"{backend!r} backend cannot load it; use the {self.backend!r} backend, or "
                "export it first (opencharacter export RUN_DIR OUT makes a PEFT adapter folder)"
            )
            raise ConfigError(msg)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary, the form stored in run manifests."""
        return {**attrs.asdict(self, recurse=False), "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        """Build a checkpoint from :meth:`to_dict` output."""
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            msg = f"not a checkpoint record: {exc}"
            raise DataError(msg) from exc

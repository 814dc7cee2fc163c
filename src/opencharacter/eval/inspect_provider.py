"""An ``inspect_ai`` model provider over any :class:`~opencharacter.protocols.Sampler`.

``inspect_ai`` names a model by its provider's registry entry, but a sampler is a live object
(a teacher, or a student at a checkpoint, on any backend). So a model is built from one with
:func:`inspect_model`, and the provider is registered in ``inspect_ai``'s in-process registry
(as ``opencharacter``) on first use, through its public ``modelapi`` decorator;
``get_model("opencharacter/...")`` is refused with a pointer here. Chat messages and
``GenerateConfig`` map to ours field by field; what no sampler honours (tools, images,
log-probabilities, penalties, a response schema) is refused, not dropped.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from opencharacter.errors import (
    ConfigError,
    MissingDependencyError,
    OpenCharacterError,
    TransientBackendError,
)
from opencharacter.protocols import Sampler
from opencharacter.types import (
    Completion,
    GenerationRequest,
    Message,
    Purpose,
    SamplingParams,
    stable_id,
)

if TYPE_CHECKING:
    from inspect_ai.model import ChatMessage, GenerateConfig, Model, ModelAPI, ModelOutput

#: The provider name models carry in ``inspect_ai`` logs: ``opencharacter/<name>``.
PROVIDER = "opencharacter"

INSTALL = 'pip install "opencharacter[eval]"'

#: Requests kept in flight per model. Above inspect's default of 10 because our samplers gather
#: concurrent requests into batches (a local engine) or pipeline them (a remote service).
MAX_CONNECTIONS = 32

# GenerateConfig settings no Sampler honours; a task that sets one is refused.
_UNHONOURED = (
    "best_of",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "presence_penalty",
    "prompt_logprobs",
    "response_schema",
    "top_logprobs",
)


def inspect_model(sampler: Sampler, name: str, *, params: SamplingParams | None = None) -> Model:
    """Return an ``inspect_ai`` model that answers with ``sampler``.

    Args:
        sampler: any teacher or student (at any checkpoint) of any backend.
        name: what logs call the model, ``opencharacter/<name>`` (e.g. ``"trained"``).
        params: sampling settings for whatever the task leaves unset (default
            :class:`~opencharacter.types.SamplingParams`: temperature 0.7, top_p 0.95, 1024
            tokens); the task's and ``eval``'s ``GenerateConfig`` override them field by field.

    Raises:
        MissingDependencyError: ``inspect_ai`` is not installed.
    """
    require_inspect()
    provider = _provider()
    from inspect_ai.model import GenerateConfig, Model  # noqa: PLC0415 - optional

    return Model(provider(model_name=name, sampler=sampler, params=params), GenerateConfig())


def to_messages(messages: Sequence[ChatMessage]) -> tuple[Message, ...]:
    """Return inspect's chat messages as ours: text-only system, user and assistant turns.

    Reasoning blocks in earlier assistant turns are left out (our samplers take plain text).

    Raises:
        ConfigError: a tool call or result, or an image, audio or other non-text content.
    """
    from inspect_ai.model import ChatMessageAssistant  # noqa: PLC0415 - optional

    converted = []
    for message in messages:
        role = message.role
        if role == "tool" or (isinstance(message, ChatMessageAssistant) and message.tool_calls):
            msg = (
                "this task uses tools; opencharacter samplers answer plain chat only, so "
                "evaluate with a task without tools"
            )
            raise ConfigError(msg)
        converted.append(Message(role=role, content=_text(message)))
    return tuple(converted)


def to_sampling_params(config: GenerateConfig, base: SamplingParams) -> SamplingParams:
    """Return ``base`` with every setting ``config`` gives (temperature, top_p, top_k, stop...).

    Raises:
        ConfigError: ``config`` sets what samplers cannot honour (log-probabilities, penalties,
            a response schema), or a value our sampling settings reject.
    """
    refused = [name for name in _UNHONOURED if getattr(config, name)]
    if refused:
        msg = (
            f"the task sets {', '.join(refused)}, which opencharacter samplers cannot honour; "
            "evaluate with a task that does not need them"
        )
        raise ConfigError(msg)
    given: dict[str, Any] = {
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_tokens": config.max_tokens,
        "seed": config.seed,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if config.top_k is not None:  # 0 or -1 mean "off" in the APIs inspect speaks to
        changes["top_k"] = config.top_k if config.top_k > 0 else None
    if config.stop_seqs is not None:
        changes["stop"] = tuple(stop for stop in config.stop_seqs if stop)
    try:
        return attrs.evolve(base, **changes)
    except (TypeError, ValueError) as exc:
        msg = f"the task's generation settings {changes} are not valid sampling settings: {exc}"
        raise ConfigError(msg) from exc


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    kinds = {part.type for part in message.content} - {"text", "reasoning"}
    if kinds:
        msg = (
            f"this task sends {', '.join(sorted(kinds))} content; opencharacter samplers read text"
        )
        raise ConfigError(msg)
    return "\n".join(part.text for part in message.content if part.type == "text")


def require_inspect() -> None:
    """Fail with the install command when ``inspect_ai`` is missing."""
    try:
        import inspect_ai  # noqa: F401, PLC0415 - optional
    except ImportError as exc:
        msg = f"capability evaluations run on inspect_ai, which is not installed: {INSTALL}"
        raise MissingDependencyError(msg) from exc


@functools.cache
def _provider() -> Callable[..., ModelAPI]:
    """Define the provider class once, when inspect_ai is known to be installed."""
    require_inspect()
    from inspect_ai.model import (  # noqa: PLC0415 - optional
        ChatCompletionChoice,
        ChatMessageAssistant,
        ModelAPI,
        ModelOutput,
        ModelUsage,
        modelapi,
    )

    class SamplerAPI(ModelAPI):
        """An inspect_ai model provider that answers with one opencharacter sampler."""

        def __init__(
            self,
            model_name: str,
            *,
            sampler: Sampler | None = None,
            params: SamplingParams | None = None,
            **_inspect: Any,
        ) -> None:
            super().__init__(model_name=model_name)
            if sampler is None:
                msg = (
                    f"the {PROVIDER!r} inspect_ai provider serves a sampler object and has no "
                    "string form; build the model with "
                    "opencharacter.eval.capabilities.inspect_model(sampler, name)"
                )
                raise ConfigError(msg)
            self.sampler = sampler
            self.params = params or SamplingParams()
            self.failure: OpenCharacterError | None = None

        async def generate(
            self, input: list[ChatMessage], tools: list[Any], tool_choice: Any, config: Any
        ) -> ModelOutput:
            try:
                if tools:
                    msg = "this task offers tools; opencharacter samplers answer plain chat only"
                    raise ConfigError(msg)
                request = self._request(input, config)
                completions = [c async for c in self.sampler.generate([request])]
            except OpenCharacterError as exc:
                if not isinstance(exc, TransientBackendError):  # inspect retries those
                    self.failure = self.failure or exc
                raise
            return self._output(sorted(completions, key=lambda c: c.sample))

        def _request(self, input: list[ChatMessage], config: Any) -> GenerationRequest:
            messages = to_messages(input)
            params = to_sampling_params(config, self.params)
            samples = config.num_choices or 1
            key = (self.model_name, [m.to_dict() for m in messages], attrs.asdict(params))
            return GenerationRequest(
                id=stable_id("capabilities", *key, samples),
                messages=messages,
                params=params,
                samples=samples,
                purpose=Purpose.EVAL,
            )

        def _output(self, completions: list[Completion]) -> ModelOutput:
            model = next((c.model for c in completions if c.model), self.sampler.model)
            choices = [
                ChatCompletionChoice(
                    message=ChatMessageAssistant(content=c.text, model=model, source="generate"),
                    stop_reason="max_tokens" if c.finish_reason == "length" else "stop",
                )
                for c in completions
            ]
            read = sum(c.prompt_tokens for c in completions)
            wrote = sum(c.completion_tokens for c in completions)
            cached = sum(c.cached_prompt_tokens for c in completions)
            usage = ModelUsage(
                input_tokens=read,
                output_tokens=wrote,
                total_tokens=read + wrote,
                input_tokens_cache_read=cached or None,
            )
            return ModelOutput(model=model, choices=choices, usage=usage)

        def should_retry(self, ex: Exception) -> bool:
            return isinstance(ex, TransientBackendError)

        def max_connections(self) -> int:
            return MAX_CONNECTIONS

        def connection_key(self) -> str:
            # One request window per sampler: two models must not share (and halve) one.
            return f"{self.model_name}:{id(self.sampler)}"

        def collapse_system_messages(self) -> bool:
            return True  # chat templates take one system turn, first

        async def count_text_tokens(self, text: str) -> int:
            # inspect's default downloads a tiktoken encoding; an estimate must not need the
            # network (our samplers report the real counts with each completion).
            return math.ceil(len(text) / 4)

    return modelapi(name=PROVIDER)(SamplerAPI)


__all__ = [
    "INSTALL",
    "MAX_CONNECTIONS",
    "PROVIDER",
    "inspect_model",
    "require_inspect",
    "to_messages",
    "to_sampling_params",
]

"""Sampling through the official ``openai`` client: chat completions, K samples a request.

The client is asynchronous and bound to the event loop it first runs on (its connection pool
lives there), while a pipeline runs each stage in an event loop of its own. So each loop gets
its own client and request window, and the client is closed when its loop shuts down.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import attrs
import openai
from openai import AsyncOpenAI

from opencharacter.errors import ConfigError
from opencharacter.sampling_base import SamplerWeights, as_finished
from opencharacter.types import Checkpoint, Completion, GenerationRequest, SamplingParams


@attrs.frozen(kw_only=True)
class Endpoint:
    """Where and how requests go: one server, one model name there, one window.

    Attributes:
        make_client: builds a client (called once per event loop).
        server: the server's address, for messages.
        served: the model's name on the server.
        extra_body: fields added to every request body (vLLM's ``min_p``, say).
        n_samples: K samples go as one request's ``n``; otherwise as K requests.
        max_concurrency: requests in flight at once, per event loop.
    """

    make_client: Callable[[], AsyncOpenAI]
    server: str
    served: str
    extra_body: Mapping[str, Any] = attrs.field(factory=dict)
    n_samples: bool = True
    max_concurrency: int = 64


class _PerLoop:
    """One client and one request window per event loop; a loop's client closes with it."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._state: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncOpenAI, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()
        self._closers: set[asyncio.Task[None]] = set()

    def get(self) -> tuple[AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if loop not in self._state:
            client = self._endpoint.make_client()
            self._state[loop] = (client, asyncio.Semaphore(self._endpoint.max_concurrency))
            closer = loop.create_task(_close_at_shutdown(client))
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)
        return self._state[loop]


async def _close_at_shutdown(client: AsyncOpenAI) -> None:
    """Wait until the loop cancels this task (``asyncio.run`` does as it ends), then close."""
    try:
        await asyncio.Event().wait()
    finally:
        await client.close()


class OpenAISampler(SamplerWeights):
    """A teacher or judge on an OpenAI-compatible server (the ``Teacher`` protocol)."""

    def __init__(self, model: str, endpoint: Endpoint, *, errors: Callable[..., Exception]) -> None:
        super().__init__(model)
        self._endpoint = endpoint
        self._per_loop = _PerLoop(endpoint)
        self._errors = errors

    def at(self, checkpoint: Checkpoint | None) -> OpenAISampler:
        """Return this sampler for ``None`` (the served weights); a server has no checkpoints.

        Raises:
            ConfigError: a checkpoint was given.
        """
        if checkpoint is not None:
            msg = (
                f"the openai backend samples what its server serves and cannot load the "
                f"checkpoint {checkpoint.uri}; sample checkpoints on the backend that trained them"
            )
            raise ConfigError(msg)
        return self

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        """Yield each request's samples as soon as its answer arrives."""
        if len(requests) == 1:  # as the run's dispatcher sends them: no task to spare
            for completion in await self._answer(requests[0]):
                yield completion
            return
        async for completion in as_finished(self._answer(r) for r in requests):
            yield completion

    async def _answer(self, request: GenerationRequest) -> list[Completion]:
        if self._endpoint.n_samples or request.samples == 1:
            return await self._call(request, request.samples, 0)
        calls = [self._call(request, 1, sample) for sample in range(request.samples)]
        return [c for group in await asyncio.gather(*calls) for c in group]

    async def _call(self, request: GenerationRequest, n: int, first: int) -> list[Completion]:
        """Send one chat-completions call for ``n`` samples numbered from ``first``."""
        client, window = self._per_loop.get()
        body = request_body(request.params, n=n, first=first, extra=self._endpoint.extra_body)
        async with window:
            try:
                response = await client.chat.completions.create(
                    model=self._endpoint.served,
                    messages=[m.to_dict() for m in request.messages],  # type: ignore[misc]
                    **body,
                )
            except openai.OpenAIError as exc:
                raise self._errors(exc, request_id=request.id) from exc
        return completions(request.id, response, first=first)


def request_body(
    params: SamplingParams, *, n: int, first: int, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the call's sampling fields; top-k and the repetition penalty ride in the body.

    Samples sent as separate calls get seeds ``seed + sample`` so they differ as ``n`` would.

    >>> request_body(SamplingParams(max_tokens=9, top_k=20, seed=1), n=1, first=2, extra={})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'temperature': 0.7, 'top_p': 0.95, 'max_completion_tokens': 9, 'n': 1, 'seed': 3,
     'extra_body': {'top_k': 20}}
    """
    body: dict[str, Any] = {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_completion_tokens": params.max_tokens,
        "n": n,
    }
    if params.seed is not None:
        body["seed"] = params.seed + first
    if params.stop:
        body["stop"] = list(params.stop)
    extra_body = dict(extra)
    if params.top_k is not None:
        extra_body["top_k"] = params.top_k
    if params.repetition_penalty != 1.0:
        extra_body["repetition_penalty"] = params.repetition_penalty
    if extra_body:
        body["extra_body"] = extra_body
    return body


def completions(request_id: str, response: Any, *, first: int = 0) -> list[Completion]:
    """Return a response's choices as completions, samples numbered from ``first``.

    The prompt is read once and billed on the first sample; the server reports completion
    tokens for all choices together, so they are shared out by each choice's length.
    """
    choices = sorted(response.choices, key=lambda c: c.index)
    texts = [choice.message.content or "" for choice in choices]
    usage = response.usage
    prompt = usage.prompt_tokens if usage else 0
    written = usage.completion_tokens if usage else 0
    details = getattr(usage, "prompt_tokens_details", None) if usage else None
    cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
    shares = _shares(written, [len(text) for text in texts])
    return [
        Completion(
            request_id=request_id,
            text=text,
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            prompt_tokens=prompt if i == 0 else 0,
            cached_prompt_tokens=min(cached, prompt) if i == 0 else 0,
            completion_tokens=share,
            model=response.model or "",
            sample=first + i,
        )
        for i, (choice, text, share) in enumerate(zip(choices, texts, shares, strict=True))
    ]


def _shares(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` by ``weights`` into whole numbers that add up to it exactly.

    >>> _shares(10, [1, 1, 2]), _shares(5, [0, 0])
    ([2, 3, 5], [2, 3])
    """
    if not weights:
        return []
    if sum(weights) == 0:
        weights = [1] * len(weights)
    parts, given, seen = [], 0, 0
    for weight in weights:
        seen += weight
        upto = total * seen // sum(weights)
        parts.append(upto - given)
        given = upto
    return parts


__all__ = ["Endpoint", "OpenAISampler", "completions", "request_body"]

"""Teachers and students sampled on Tinker: one ``sample`` call per request, K samples each.

A request's messages go through the model's renderer (the only path from messages to tokens)
and its samples come from one ``sample(num_samples=K)``, which reads the prompt once. Every
request is in flight at once up to the pipeline's window; each answer is yielded the moment
its future resolves, so a crash loses only what was in flight. Waits are bounded by
``request_timeout``; the SDK's own retries run inside that bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import tinker
from tinker import types

from opencharacter.errors import PermanentBackendError
from opencharacter.sampling_base import SamplerWeights, as_finished
from opencharacter.types import Checkpoint, Completion, GenerationRequest, to_dicts
from opencharacter_tinker.connection import Connection
from opencharacter_tinker.errors import translate
from opencharacter_tinker.renderers import Renderer

BACKEND = "tinker"


class TinkerSampler(SamplerWeights):
    """A teacher or student on Tinker, at its base weights or a sampler checkpoint.

    Args:
        connection: the backend's session.
        model: the base model name.
        renderer: the model's chat format.
        checkpoint: sample the weights saved at this checkpoint (its ``uri`` is a
            ``tinker://.../sampler_weights/...`` path).
        request_timeout: seconds one request may take, the SDK's retries included.
    """

    def __init__(
        self,
        connection: Connection,
        model: str,
        renderer: Renderer,
        checkpoint: Checkpoint | None = None,
        *,
        request_timeout: float,
    ) -> None:
        super().__init__(model, checkpoint)
        self._connection = connection
        self._renderer = renderer
        self._timeout = request_timeout

    def at(self, checkpoint: Checkpoint | None) -> TinkerSampler:
        """Return the same student at ``checkpoint`` (a Tinker checkpoint).

        Raises:
            ConfigError: another backend made the checkpoint.
        """
        if checkpoint is not None:
            checkpoint.require_backend(BACKEND)
        return TinkerSampler(
            self._connection,
            self._base_model,
            self._renderer,
            checkpoint,
            request_timeout=self._timeout,
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        """Yield every sample of every request; a request's samples come together."""
        async for completion in as_finished(self._sample(r) for r in requests):
            yield completion

    async def _sample(self, request: GenerationRequest) -> list[Completion]:
        prompt = self._renderer.prompt(to_dicts(request.messages))
        params = request.params
        max_tokens = params.max_tokens
        context = self._connection.max_context(self._base_model)
        if context is not None:
            max_tokens = min(max_tokens, context - len(prompt))
            if max_tokens < 1:
                msg = (
                    f"Tinker: request {request.id}: the prompt is {len(prompt)} tokens but "
                    f"{self._base_model} reads at most {context}; shorten the conversation"
                )
                raise PermanentBackendError(msg, request_id=request.id)
        settings = types.SamplingParams(
            max_tokens=max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k or -1,
            seed=params.seed,
            stop=self._renderer.stop_tokens,
        )
        path = self._checkpoint.uri if self._checkpoint else None
        client = await self._connection.sampling_client(self._base_model, path)
        try:
            response = await asyncio.wait_for(
                client.sample(
                    types.ModelInput.from_ints(prompt),
                    num_samples=request.samples,
                    sampling_params=settings,
                ),
                self._timeout,
            )
        except (tinker.TinkerError, ValueError, TimeoutError) as exc:
            raise translate(exc, request_id=request.id) from exc
        return [
            self._completion(request, index, sequence, len(prompt), response)
            for index, sequence in enumerate(response.sequences)
        ]

    def _completion(
        self,
        request: GenerationRequest,
        index: int,
        sequence: types.SampledSequence,
        prompt_tokens: int,
        response: types.SampleResponse,
    ) -> Completion:
        text, finish = self._renderer.parse(sequence.tokens)
        cut = min((i for s in request.params.stop if (i := text.find(s)) >= 0), default=-1)
        if cut >= 0:  # string stops are applied here; the service stops on tokens
            text, finish = text[:cut], "stop"
        first = index == 0
        return Completion(
            request_id=request.id,
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens if first else 0,
            cached_prompt_tokens=(response.prompt_cache_hit_tokens or 0) if first else 0,
            completion_tokens=len(sequence.tokens),
            model=self.model,
            sample=index,
        )

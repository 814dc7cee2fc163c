"""The local sampler: the teacher and student protocols on this machine's engines.

:class:`LocalSampler` is what the backend hands out for a teacher or a student. It gathers
concurrent requests into batches (:mod:`opencharacter_local.batching`), splits a request's
samples into rows, and runs each batch on the engine for its weights
(:mod:`opencharacter_local.engine_cache`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import attrs

from opencharacter.errors import PermanentBackendError
from opencharacter.sampling_base import SamplerWeights, as_finished
from opencharacter.types import Checkpoint, Completion, GenerationRequest
from opencharacter_local.batching import Batcher
from opencharacter_local.engine_cache import EngineCache


class LocalSampler(SamplerWeights):
    """A teacher or student sampled on this machine; it satisfies both protocols.

    Requests from concurrent :meth:`generate` calls are queued, gathered for a few
    milliseconds into batches of up to ``max_batch_size`` and run in a worker thread through
    the :class:`EngineCache` (which runs one batch at a time on the machine).

    Args:
        model: model name or folder (see :class:`~opencharacter_local.engines.TransformersEngine`).
        checkpoint: sample from this checkpoint instead of the base weights. Its ``uri`` is a
            PEFT adapter folder (one with ``adapter_config.json``) or else a folder of full
            weights; ``meta["base_weights"]`` names the weights an adapter applies to when
            they are not ``model``'s (an SFT adapter trained on merged DPO weights).
        engines: where engines are loaded and shared; a private cache when ``None``.
        max_batch_size: requests per engine call at most.
        batch_wait: seconds an idle sampler waits for more requests before running a batch.
    """

    def __init__(
        self,
        model: str,
        checkpoint: Checkpoint | None = None,
        *,
        engines: EngineCache | None = None,
        max_batch_size: int = 32,
        batch_wait: float = 0.005,
    ) -> None:
        super().__init__(model, checkpoint)
        self._engines = engines or EngineCache()
        self._max_batch_size = max_batch_size
        self._batch_wait = batch_wait
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Batcher] = (
            weakref.WeakKeyDictionary()
        )

    def at(self, checkpoint: Checkpoint | None) -> LocalSampler:
        """Return the same student at ``checkpoint``, sharing this one's loaded engines.

        Raises:
            ConfigError: another backend made the checkpoint (export it first).
        """
        if checkpoint is not None:
            checkpoint.require_backend("local")
        return LocalSampler(
            self._base_model,
            checkpoint,
            engines=self._engines,
            max_batch_size=self._max_batch_size,
            batch_wait=self._batch_wait,
        )

    async def generate(self, requests: Sequence[GenerationRequest]) -> AsyncIterator[Completion]:
        """Yield every sample of every request; a request's samples come together when done.

        The samples of a request join the batches as separate rows, seeded ``seed + i``
        (see :meth:`~opencharacter.types.GenerationRequest.one_per_sample`).
        """
        batcher = self._queues.get(loop := asyncio.get_running_loop())
        if batcher is None:
            batcher = self._queues[loop] = Batcher(
                self._run, self._max_batch_size, self._batch_wait
            )
        async for completion in as_finished(_samples(batcher, r) for r in requests):
            yield completion

    def _run(self, requests: list[GenerationRequest]) -> list[Completion | BaseException]:
        """Complete a batch (in a worker thread); a request the engine refuses fails alone."""
        results: dict[int, Completion | BaseException] = {}
        pending = list(range(len(requests)))
        while pending:
            try:
                completions = self._generate([requests[i] for i in pending])
            except PermanentBackendError as exc:
                culprit = next((i for i in pending if requests[i].id == exc.request_id), None)
                if culprit is None:
                    raise
                results[culprit] = exc
                pending.remove(culprit)
            else:
                results.update(zip(pending, completions, strict=True))
                pending = []
        return [results[i] for i in range(len(requests))]

    def _generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        """Run ``requests`` on this sampler's weights through the shared engines."""
        ckpt, engines = self._checkpoint, self._engines
        if ckpt is None:
            return engines.generate(requests, model=self._base_model)
        if (Path(ckpt.uri) / "adapter_config.json").is_file():
            base_weights = ckpt.meta.get("base_weights")
            return engines.generate(
                requests, model=self._base_model, adapter=ckpt.uri, base_weights=base_weights
            )
        return engines.generate(requests, model=self._base_model, base_weights=ckpt.uri)


async def _samples(batcher: Batcher, request: GenerationRequest) -> list[Completion]:
    """Return every sample of ``request``, numbered; the prompt is counted on sample 0."""
    answers = await asyncio.gather(*(batcher.submit(one) for one in request.one_per_sample()))
    return [
        attrs.evolve(answer, sample=i, prompt_tokens=answer.prompt_tokens if i == 0 else 0)
        for i, answer in enumerate(answers)
    ]

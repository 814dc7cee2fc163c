"""What every backend's sampler shares: its weights, and how it hands back finished answers.

Teachers and students of every backend answer ``model``, ``base_model`` and ``checkpoint``
alike (the :class:`~opencharacter.protocols.Student` protocol) and stream answers as they
finish; they take both from here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable

from opencharacter.types import Checkpoint, Completion


async def as_finished(jobs: Iterable[Awaitable[list[Completion]]]) -> AsyncIterator[Completion]:
    """Yield each job's completions (one request's samples) the moment the job finishes.

    Every job runs at once; when the consumer stops early (or fails), the rest are cancelled.
    """
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        for next_done in asyncio.as_completed(tasks):
            for completion in await next_done:
                yield completion
    finally:
        for task in tasks:
            task.cancel()


class SamplerWeights:
    """The weights a sampler samples: ``base_model``, at ``checkpoint`` when one is given."""

    def __init__(self, model: str, checkpoint: Checkpoint | None = None) -> None:
        self._base_model = model
        self._checkpoint = checkpoint

    @property
    def model(self) -> str:
        """The checkpoint's uri when sampling a checkpoint, else the model name."""
        return self._checkpoint.uri if self._checkpoint else self._base_model

    @property
    def base_model(self) -> str:
        """The model name the sampler was made for; checkpoints apply to it."""
        return self._base_model

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint sampled from, if any."""
        return self._checkpoint

"""Batching: the pipeline asks for one request at a time, a model is efficient on batches.

:class:`Batcher` queues what arrives together on an event loop, runs each batch in a worker
thread (the event loop stays free to write results) and hands every caller its own completion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from opencharacter.errors import BackendError, PermanentBackendError
from opencharacter.types import Completion, GenerationRequest


class Batcher:
    """Gathers the requests queued on one event loop into batches for a blocking ``run``.

    It drains the queue in a task that exits when the queue is empty, so nothing lingers
    after the last request; the next request starts a new task.
    """

    def __init__(
        self,
        run: Callable[[list[GenerationRequest]], list[Completion | BaseException]],
        max_batch_size: int,
        wait: float,
    ) -> None:
        self._run = run
        self._max_batch_size = max_batch_size
        self._wait = wait
        self._queue: asyncio.Queue[tuple[GenerationRequest, asyncio.Future[Completion]]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: GenerationRequest) -> Completion:
        """Queue ``request`` and return its completion once its batch has run."""
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((request, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while not self._queue.empty():
            if self._queue.qsize() < self._max_batch_size:
                await asyncio.sleep(self._wait)  # let concurrent callers join this batch
            batch = [self._queue.get_nowait()]
            while len(batch) < self._max_batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(r, f) for r, f in batch if not f.done()]  # skip callers that gave up
            if live:
                await self._serve(live)

    async def _serve(
        self, batch: list[tuple[GenerationRequest, asyncio.Future[Completion]]]
    ) -> None:
        try:
            results = await asyncio.to_thread(self._run, [r for r, _ in batch])
        except BackendError as exc:
            results = [exc] * len(batch)
        except Exception as exc:  # every failure must reach its callers, as a backend error
            msg = f"local generation failed: {type(exc).__name__}: {exc}"
            error = PermanentBackendError(msg)
            error.__cause__ = exc
            results = [error] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

"""Send requests to a sampler inside a bounded window, with retries, and hand back each answer.

Every stage produces its data through a :class:`Dispatcher`: at most ``concurrency`` requests
are in flight per model; a transient failure (rate limit, timeout, 5xx) is retried after an
exponential backoff with full jitter, up to ``max_attempts``; a permanent one stops the stage
at once. Completions come back one by one, so the stage filters and writes each the moment it
arrives, and a crash loses only what was in flight.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable

import attrs

from opencharacter.errors import BackendError, ConfigError, TransientBackendError
from opencharacter.protocols import Sampler
from opencharacter.types import Completion, GenerationRequest


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How transient failures are retried.

    Attributes:
        max_attempts: tries per request, the first included.
        base_delay: seconds before the first retry; doubled each time.
        max_delay: the longest wait between tries.
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the wait after failed try ``attempt`` (1-based): full jitter up to the cap."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class Dispatcher:
    """Runs requests against one sampler, ``concurrency`` at a time, retrying transient errors.

    Args:
        sampler: the teacher or student.
        concurrency: requests in flight at most.
        retry: the retry policy.
        seed: seeds the backoff jitter, so a rerun waits the same way.
    """

    def __init__(
        self, sampler: Sampler, *, concurrency: int, retry: RetryPolicy, seed: int = 0
    ) -> None:
        self.sampler = sampler
        self.concurrency = concurrency
        self.retry = retry
        self.retries = 0
        self._rng = random.Random(seed)
        self._window: asyncio.Semaphore | None = None

    async def complete(self, request: GenerationRequest) -> Completion:
        """Return the completion of a one-sample request (see :meth:`complete_group`)."""
        if request.samples != 1:
            msg = f"request {request.id} asks for {request.samples} samples; use complete_group"
            raise ConfigError(msg)
        return (await self.complete_group(request))[0]

    async def complete_group(self, request: GenerationRequest) -> list[Completion]:
        """Return every sample of one request, in sample order, waiting for a window place.

        The samples of a request are tried and retried together, as the backend serves them.

        Raises:
            TransientBackendError: the request still failed after ``max_attempts`` tries.
            PermanentBackendError: the backend refused it for good.
        """
        if self._window is None:
            self._window = asyncio.Semaphore(self.concurrency)
        async with self._window:
            for attempt in range(1, self.retry.max_attempts + 1):
                try:
                    return await self._once(request)
                except TransientBackendError:
                    if attempt == self.retry.max_attempts:
                        raise
                    self.retries += 1
                    await asyncio.sleep(self.retry.delay(attempt, self._rng))
        msg = "unreachable: the retry loop returns or raises"
        raise AssertionError(msg)

    async def _once(self, request: GenerationRequest) -> list[Completion]:
        samples: dict[int, Completion] = {}
        async for completion in self.sampler.generate([request]):
            if completion.request_id == request.id:
                samples[completion.sample] = completion
        missing = sorted(set(range(request.samples)) - set(samples))
        if missing:
            msg = f"the backend returned no completion for request {request.id}, samples {missing}"
            raise BackendError(msg, request_id=request.id)
        return [samples[i] for i in range(request.samples)]

    async def complete_all(
        self,
        requests: Iterable[GenerationRequest],
        on_completion: Callable[[GenerationRequest, Completion], None],
    ) -> None:
        """Complete every request, calling ``on_completion`` for each sample as it arrives.

        Requests are drawn lazily from ``requests`` by a pool of ``concurrency`` workers, so a
        stage of any size holds only the requests in flight. A worker sends its next request
        before the answer it got is filtered and written: the answers go to one consumer that
        yields to the event loop after each, so the window refills at once even when many
        answers land together. The first error cancels the rest.
        """
        pending = iter(requests)
        arrived: asyncio.Queue[tuple[GenerationRequest, Completion] | None] = asyncio.Queue()

        async def worker() -> None:
            for request in pending:
                for completion in await self.complete_group(request):
                    arrived.put_nowait((request, completion))

        async def produce() -> None:
            try:
                await gather_all(worker() for _ in range(self.concurrency))
            finally:
                arrived.put_nowait(None)

        async def consume() -> None:
            while (item := await arrived.get()) is not None:
                on_completion(*item)
                await asyncio.sleep(0)  # let refilled requests start before the next answer

        await gather_all([produce(), consume()])


async def gather_all(tasks: Iterable[Awaitable[None]]) -> None:
    """Run awaitables concurrently; on the first failure cancel the others and raise it.

    The error is raised as itself, not inside an exception group, so callers (and the CLI)
    see the backend's message.
    """
    try:
        async with asyncio.TaskGroup() as group:
            for task in tasks:
                group.create_task(_as_coroutine(task))
    except BaseExceptionGroup as failures:
        raise unwrap(failures) from None


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


def unwrap(error: BaseException) -> BaseException:
    """Return the first leaf of an exception group, the error a user should see."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error

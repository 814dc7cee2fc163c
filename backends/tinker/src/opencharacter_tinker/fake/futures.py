"""Futures: every operation answers with a request id and resolves later, for the SDK to poll.

The SDK long-polls ``/retrieve_future`` (``try_again`` while pending), so an operation's result
is kept on a :class:`Promise` until it is read, and a while after, for a client that retries a
poll whose answer it lost. Injected ``latency`` delays when a result becomes readable without
holding up the work behind it, so concurrent operations overlap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from opencharacter_tinker.fake.state import ServiceState
from opencharacter_tinker.fake.transport import PROTOBUF, HTTPError, Request, Response, Route

logger = logging.getLogger(__name__)

_POLL_SECONDS = 20.0  # how long one /retrieve_future holds a pending request (SDK timeout: 45)
_KEEP_RETRIEVED = 120.0  # seconds a delivered result stays retrievable (lost-response retries)


class OperationError(Exception):
    """A failure reported through the operation's future (the SDK's ``RequestFailedError``)."""

    def __init__(self, message: str, category: str = "user") -> None:
        super().__init__(message)
        self.category = category


class Promise:
    """A future's server side: resolved once, readable after ``ready_at`` (injected latency)."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.done = threading.Event()
        self.result: bytes | dict[str, Any] | None = None
        self.error: tuple[str, str] | None = None
        self.ready_at = 0.0
        self.delivered_at: float | None = None
        # Called (under the state lock) when the delivered result is dropped: for the route
        # that remembered this request to forget it too.
        self.on_forget: Callable[[], object] | None = None

    def resolve(self, result: bytes | dict[str, Any], latency: float) -> None:
        """Store the result; it becomes readable ``latency`` seconds from now."""
        self.result = result
        self.ready_at = time.monotonic() + latency
        self.done.set()

    def fail(self, message: str, category: str, latency: float) -> None:
        """Store a failure (message, category) for the SDK's ``RequestFailedError``."""
        self.error = (message, category)
        self.ready_at = time.monotonic() + latency
        self.done.set()


class Futures:
    """The promises of every operation in flight, and the ``/retrieve_future`` route."""

    def __init__(self, state: ServiceState) -> None:
        self._state = state
        self._promises: dict[str, Promise] = {}
        self._next_sweep = 0.0

    def routes(self) -> list[Route]:
        """(method, path pattern, endpoint) for each route this group serves."""
        return [("POST", "/api/v1/retrieve_future", self._retrieve)]

    def new(self) -> Promise:
        """A pending promise under a new request id (and drop long-delivered ones)."""
        promise = Promise(self._state.new_id("req"))
        with self._state.lock:
            self._forget_delivered()
            self._promises[promise.request_id] = promise
        return promise

    def settle(self, promise: Promise, work: Callable[[], bytes | dict[str, Any]]) -> None:
        """Run an operation and resolve its promise, turning errors into failed futures."""
        settings = self._state.settings  # latency is read when the work is done
        try:
            result = work()
        except (OperationError, ValueError) as exc:
            category = exc.category if isinstance(exc, OperationError) else "user"
            promise.fail(str(exc), category, settings.latency)
        except Exception as exc:
            logger.exception("fake Tinker operation %s failed", promise.request_id)
            promise.fail(f"{type(exc).__name__}: {exc}", "server", settings.latency)
        else:
            promise.resolve(result, settings.latency)

    def _forget_delivered(self) -> None:
        """Drop results delivered a while ago (at most every few seconds: it scans them all)."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _KEEP_RETRIEVED / 10
        cutoff = now - _KEEP_RETRIEVED
        for request_id, promise in list(self._promises.items()):
            if promise.delivered_at is not None and promise.delivered_at < cutoff:
                del self._promises[request_id]
                if promise.on_forget is not None:
                    promise.on_forget()

    def _retrieve(self, request: Request) -> Response:
        request_id = request.json().get("request_id", "")
        with self._state.lock:
            promise = self._promises.get(request_id)
        if promise is None:
            raise HTTPError(404, f"Unknown request_id: {request_id}")
        stopping = self._state.stopping
        deadline = time.monotonic() + _POLL_SECONDS
        while not stopping.is_set():
            now = time.monotonic()
            if promise.done.is_set() and now >= promise.ready_at:
                break
            if now >= deadline:
                break
            if promise.done.is_set():
                stopping.wait(min(promise.ready_at, deadline) - now)
            else:
                promise.done.wait(min(0.25, deadline - now))
        if not promise.done.is_set() or time.monotonic() < promise.ready_at:
            return Response.json(
                {"type": "try_again", "request_id": request_id, "queue_state": "active"}
            )
        promise.delivered_at = time.monotonic()
        if promise.error is not None:
            return Response.json({"error": promise.error[0], "category": promise.error[1]})
        if isinstance(promise.result, bytes):
            return Response(200, promise.result, PROTOBUF)
        return Response.json(promise.result)

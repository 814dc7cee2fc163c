"""The dispatcher keeps a bounded window, retries transient errors and stops on permanent ones."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencharacter.errors import PermanentBackendError, TransientBackendError
from opencharacter.stages import Dispatcher, RetryPolicy
from opencharacter.types import Completion, GenerationRequest


def request(i):
    return GenerationRequest(id=f"r{i}", messages=[{"role": "user", "content": "hi"}])


class Scripted:
    """A sampler that fails each request a set number of times and tracks concurrency."""

    model = "scripted"

    def __init__(self, failures=0, permanent=False, delay=0.005):
        self.failures, self.permanent, self.delay = failures, permanent, delay
        self.calls: dict[str, int] = {}
        self.in_flight = self.peak = 0

    async def generate(self, requests):
        for r in requests:
            self.calls[r.id] = self.calls.get(r.id, 0) + 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
            if self.permanent:
                raise PermanentBackendError("bad key", request_id=r.id)
            if self.calls[r.id] <= self.failures:
                raise TransientBackendError("429", request_id=r.id)
            yield Completion(request_id=r.id, text=r.id, finish_reason="stop")


FAST = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.002)


@given(st.integers(1, 30), st.floats(0.01, 10), st.floats(0.01, 100))
def test_backoff_is_jittered_and_capped(attempt, base, cap):
    """Each wait lies between zero and min(cap, base x 2^(attempt-1))."""
    delay = RetryPolicy(base_delay=base, max_delay=cap).delay(attempt, random.Random(attempt))
    assert 0.0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_window_caps_requests_in_flight_and_every_answer_arrives():
    """No more than `concurrency` requests are ever in flight, and each one is answered once."""
    sampler = Scripted()
    seen = []
    asyncio.run(Dispatcher(sampler, concurrency=5, retry=FAST).complete_all(
        (request(i) for i in range(40)), lambda r, c: seen.append(c.request_id)))  # fmt: skip
    assert sampler.peak == 5
    assert sorted(seen) == sorted(f"r{i}" for i in range(40))


def test_transient_errors_are_retried_then_given_up():
    """Two failures are retried; more failures than attempts raise the transient error."""
    sampler = Scripted(failures=2)
    dispatcher = Dispatcher(sampler, concurrency=2, retry=FAST)
    assert asyncio.run(dispatcher.complete(request(1))).text == "r1"
    assert (sampler.calls["r1"], dispatcher.retries) == (3, 2)
    with pytest.raises(TransientBackendError):
        asyncio.run(Dispatcher(Scripted(failures=9), concurrency=1, retry=FAST)
                    .complete(request(2)))  # fmt: skip


def test_a_permanent_error_stops_everything_at_once():
    """The first permanent error is raised as itself and no request is retried."""
    sampler = Scripted(permanent=True)
    with pytest.raises(PermanentBackendError, match="bad key"):
        asyncio.run(Dispatcher(sampler, concurrency=3, retry=FAST).complete_all(
            (request(i) for i in range(30)), lambda r, c: None))  # fmt: skip
    assert max(sampler.calls.values()) == 1
    assert len(sampler.calls) <= 3


class Grouped:
    """Answers every sample of a request together, optionally dropping the last one."""

    model = "grouped"

    def __init__(self, drop_last=False):
        self.drop_last = drop_last
        self.calls = 0

    async def generate(self, requests):
        for r in requests:
            self.calls += 1
            for sample in reversed(range(r.samples - int(self.drop_last))):
                yield Completion(request_id=r.id, text=f"{r.id}/{sample}", finish_reason="stop",
                                 sample=sample)  # fmt: skip


def test_a_request_for_k_samples_returns_them_in_order_from_one_call():
    """complete_group returns every sample, numbered, in order; the sampler is called once."""
    sampler = Grouped()
    group = GenerationRequest(id="g", messages=[{"role": "user", "content": "hi"}], samples=3)
    answers = asyncio.run(Dispatcher(sampler, concurrency=2, retry=FAST).complete_group(group))
    assert [a.text for a in answers] == ["g/0", "g/1", "g/2"]
    assert sampler.calls == 1


def test_a_group_missing_a_sample_is_an_error_naming_it():
    """A backend that answers only some samples fails the request, naming what is missing."""
    from opencharacter.errors import BackendError  # noqa: PLC0415

    group = GenerationRequest(id="g", messages=[{"role": "user", "content": "hi"}], samples=2)
    dispatcher = Dispatcher(Grouped(drop_last=True), concurrency=1, retry=FAST)
    with pytest.raises(BackendError, match=r"samples \[1\]"):
        asyncio.run(dispatcher.complete_group(group))

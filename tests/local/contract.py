"""The sampler contract every local engine meets, written once.

An engine's test module imports these tests and provides three fixtures: ``engine`` (the
loaded engine), ``served_model`` (the name its completions report) and ``context_length``
(the longest prompt it reads). pytest collects imported tests in the importing module, with
that module's fixtures, so ``test_sampling.py`` runs them on transformers and
``test_vllm.py`` on vLLM.
"""

from __future__ import annotations

import asyncio

import pytest

from opencharacter.errors import PermanentBackendError
from opencharacter.types import GenerationRequest, SamplingParams


def request(i, words=1, **params):
    messages = [
        {"role": "system", "content": "You are kind."},
        {"role": "user", "content": f"Hello! How are you, friend number {i}?" + " Hi" * words},
    ]
    return GenerationRequest(id=f"r{i}", messages=messages, params=SamplingParams(**params))


def collect(sampler, requests):
    async def main():
        return [c async for c in sampler.generate(requests)]

    return asyncio.run(main())


def collect_each_concurrently(sampler, requests):
    """Send each request as its own concurrent call; return its completions or its error."""

    async def attempt(r):
        try:
            return [c async for c in sampler.generate([r])]
        except PermanentBackendError as exc:
            return exc

    async def main():
        return await asyncio.gather(*(attempt(r) for r in requests))

    return asyncio.run(main())


def test_one_well_formed_completion_per_request_in_order(engine, served_model):
    """Every request gets a completion with its id, positive token counts and the model name."""
    requests = [request(i, max_tokens=12, seed=i) for i in range(5)]
    completions = engine.generate(requests)
    assert [c.request_id for c in completions] == [r.id for r in requests]
    for completion in completions:
        assert completion.prompt_tokens > 10
        assert 0 < completion.completion_tokens <= 12
        assert completion.finish_reason in {"stop", "length"}
        assert completion.model == served_model


def test_max_tokens_reached_finishes_with_length(engine):
    """A completion cut at ``max_tokens`` says ``length`` and counts exactly that many tokens."""
    # The random tiny model answers greedily with newlines and never ends its turn.
    (completion,) = engine.generate([request(0, max_tokens=3, temperature=0)])
    assert (completion.finish_reason, completion.completion_tokens) == ("length", 3)


def test_a_stop_string_ends_the_text_and_is_removed(engine):
    """Generation stops at a stop string, which the text leaves out, and says ``stop``."""
    (free,) = engine.generate([request(0, max_tokens=40, seed=5)])
    assert len(free.text) > 8
    stop = free.text[6:8]
    (stopped,) = engine.generate([request(0, max_tokens=40, seed=5, stop=[stop])])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]
    assert stopped.completion_tokens <= free.completion_tokens


def test_seeded_requests_repeat_exactly_whatever_their_batch(engine):
    """A seeded request gives the same text alone, in a batch, and in another call."""
    alone = engine.generate([request(0, max_tokens=24, seed=11)])[0].text
    # Longer batch mates pad the request on the left, which must not change its text.
    batch = [request(1, 9, max_tokens=24, seed=3), request(0, max_tokens=24, seed=11)]
    batch += [request(2, 30, max_tokens=24)]
    assert engine.generate(batch)[1].text == alone
    assert engine.generate(batch[::-1])[1].text == alone
    texts = {engine.generate([request(0, max_tokens=24, seed=s)])[0].text for s in range(4)}
    assert len(texts) > 1


def test_top_k_of_one_samples_greedily(engine):
    """Sampling honours ``top_k``: keeping one candidate gives the greedy text for any seed."""
    (greedy,) = engine.generate([request(0, max_tokens=12, temperature=0)])
    sampled = engine.generate([request(0, max_tokens=12, top_k=1, seed=s) for s in range(3)])
    assert {c.text for c in sampled} == {greedy.text}


def test_a_prompt_longer_than_the_context_is_refused_for_good(engine, context_length):
    """A prompt that fills the context raises a permanent error naming the request."""
    huge = GenerationRequest(
        id="huge", messages=[{"role": "user", "content": "hello " * (context_length + 100)}]
    )
    with pytest.raises(PermanentBackendError, match=str(context_length)) as caught:
        engine.generate([request(0, max_tokens=4), huge])
    assert caught.value.request_id == "huge"

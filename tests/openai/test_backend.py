"""The openai backend with the real client against a fake server: fields, samples, errors."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opencharacter_openai.fake_server import FakeOpenAIServer
from opencharacter_openai.sampler import _shares

from opencharacter.capabilities import fit_config
from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError, PermanentBackendError, TransientBackendError
from opencharacter.registry import load_backend
from opencharacter.stages._engine import Dispatcher, RetryPolicy
from opencharacter.types import GenerationRequest, SamplingParams

from .conftest import KEY


def backend(server, **options):
    return load_backend("openai", {"base_url": server.base_url, **options})


def ask(request_id="q1", *, samples=1, text="Plan my week.", **params):
    return GenerationRequest(id=request_id, messages=[{"role": "user", "content": text}],
                             params=SamplingParams(**params), samples=samples)  # fmt: skip


def collect(sampler, requests):
    async def run():
        return [c async for c in sampler.generate(requests)]

    return asyncio.run(run())


def test_k_samples_are_one_request_with_the_run_s_sampling_fields(server):
    """n = K in one call; seed, stop, token limit, top-k and penalty reach the body."""
    teacher = backend(server, extra_body='{"min_p": 0.05}').teacher("teacher")
    params = {"max_tokens": 9, "seed": 4, "stop": ("###",), "top_k": 20,
              "repetition_penalty": 1.1}  # fmt: skip
    done = collect(teacher, [ask(samples=3, **params)])
    assert sorted(c.sample for c in done) == [0, 1, 2]
    [body] = server.bodies
    assert body["n"] == 3
    assert body["seed"] == 4
    assert body["stop"] == ["###"]
    assert body["max_completion_tokens"] == 9
    assert (body["top_k"], body["repetition_penalty"], body["min_p"]) == (20, 1.1, 0.05)
    assert sum(c.prompt_tokens for c in done) == done[0].prompt_tokens > 0  # billed once
    assert all(c.model == "teacher" and c.request_id == "q1" for c in done)
    assert len({c.text for c in done}) == 3


def test_without_n_the_samples_go_as_requests_with_their_own_seeds(server):
    teacher = backend(server, n_samples="false").teacher("teacher")
    done = collect(teacher, [ask(samples=3, seed=10)])
    assert sorted(c.sample for c in done) == [0, 1, 2]
    assert sorted(b["seed"] for b in server.bodies) == [10, 11, 12]
    assert all(b["n"] == 1 for b in server.bodies)


def test_a_long_answer_is_cut_at_the_limit_and_says_so(server):
    [completion] = collect(backend(server).teacher("teacher"), [ask(max_tokens=2)])
    assert completion.finish_reason == "length"
    assert len(completion.text.split()) == 2


def test_the_start_check_learns_the_server_and_fits_the_run(server):
    """vLLM takes top-k and a repetition penalty; a plain OpenAI server does not, and a run
    asking for a penalty is refused before anything is spent."""
    vllm = backend(server)
    vllm.check_models(sample=["teacher"])
    assert vllm.kind == "vllm"
    assert vllm.capabilities.top_k
    assert not vllm.capabilities.training
    with FakeOpenAIServer({"gpt-x": "openai"}, api_key=KEY) as hosted:
        plain = backend(hosted)
        plain.check_models(sample=["gpt-x"])
        assert not plain.capabilities.top_k
        config, _ = resolve_config(flags={
            "constitution": "pirate", "backend": "simulated", "teacher_backend": "openai",
            "teacher": "gpt-x", "sampling": {"repetition_penalty": 1.1}}, environ={})  # fmt: skip
        with pytest.raises(ConfigError, match="repetition_penalty"):
            fit_config(config, teacher=("openai", plain.capabilities),
                       student=("simulated", load_backend("simulated").capabilities))  # fmt: skip


def test_an_unknown_model_fails_at_start_naming_those_served(server):
    with pytest.raises(ConfigError, match="serves: teacher"):
        backend(server).check_models(sample=["gpt-nothing"])
    assert backend(server, model="teacher").check_models(sample=["my-name"]) is None


def test_training_is_refused_at_start(server):
    with pytest.raises(ConfigError, match="only samples"):
        backend(server).check_models(train=["teacher"])
    with pytest.raises(ConfigError, match="only samples"):
        backend(server).trainer()


def test_a_wrong_key_fails_at_start_and_on_a_request(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with pytest.raises(PermanentBackendError, match="refuses the API key"):
        backend(server).check_models(sample=["teacher"])
    with pytest.raises(PermanentBackendError, match="api_key_env"):
        collect(backend(server).teacher("teacher"), [ask()])


def test_the_key_comes_from_the_variable_the_options_name(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    monkeypatch.setenv("MY_KEY", KEY)
    assert collect(backend(server, api_key_env="MY_KEY").teacher("teacher"), [ask()])


def test_an_unreachable_server_fails_at_start_within_the_timeout():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(PermanentBackendError, match="cannot be reached"):
        load_backend("openai", {"base_url": f"http://127.0.0.1:{port}/v1",
                                "connect_timeout": 2}).check_models(sample=["x"])  # fmt: skip
    assert time.monotonic() - started < 5


def test_a_429_is_retried_after_the_server_s_retry_after(server):
    """The client waits what Retry-After says, then succeeds; nothing reaches the run."""
    server.fail_next(429, retry_after=0.6)
    started = time.monotonic()
    assert collect(backend(server, max_retries=1).teacher("teacher"), [ask()])
    assert time.monotonic() - started >= 0.6
    assert server.calls["/v1/chat/completions"] == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_overload_past_the_client_s_retries_is_transient(server, status):
    server.fail_next(status, times=2, retry_after=0)
    with pytest.raises(TransientBackendError, match=str(status)) as error:
        collect(backend(server, max_retries=1).teacher("teacher"), [ask("q7")])
    assert error.value.request_id == "q7"


def test_a_request_past_the_context_is_permanent_and_named():
    with (
        FakeOpenAIServer({"teacher": "vllm"}, api_key=KEY, context_tokens=8) as small,
        pytest.raises(PermanentBackendError, match="request q9 is longer than") as error,
    ):
        collect(backend(small).teacher("teacher"), [ask("q9", text="word " * 100)])
    assert error.value.request_id == "q9"


def test_a_timeout_is_transient():
    with FakeOpenAIServer({"teacher": "vllm"}, api_key=KEY, latency=1.0) as slow:
        teacher = backend(slow, request_timeout=0.2, max_retries=0).teacher("teacher")
        with pytest.raises(TransientBackendError, match="did not answer in time"):
            collect(teacher, [ask()])


def test_many_requests_stream_through_the_window_across_event_loops():
    """200 requests through the run's dispatcher: at most the window in flight, each answered
    once; a second event loop (the next stage) gets a client of its own."""
    with FakeOpenAIServer({"teacher": "vllm"}, api_key=KEY, latency=0.05) as server:
        teacher = load_backend("openai", {"base_url": server.base_url,
                                          "max_concurrency": 16}).teacher("teacher")  # fmt: skip
        for _ in range(2):
            arrived: list = []
            dispatcher = Dispatcher(teacher, concurrency=64, retry=RetryPolicy(max_attempts=2))
            requests = [ask(f"r{i}", seed=i) for i in range(100)]
            asyncio.run(
                dispatcher.complete_all(requests, lambda _r, c, into=arrived: into.append(c))
            )
            assert sorted(c.request_id for c in arrived) == sorted(r.id for r in requests)
        assert server.peak_in_flight <= 16
        assert server.calls["/v1/chat/completions"] == 200


@given(st.integers(0, 10_000), st.lists(st.integers(0, 500), min_size=1, max_size=8))
def test_completion_tokens_are_shared_out_exactly(total, lengths):
    parts = _shares(total, lengths)
    assert sum(parts) == total
    assert all(part >= 0 for part in parts)
    assert len(parts) == len(lengths)

"""Local sampling: well-formed completions, seeds, batching of concurrent callers, checkpoints."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

pytest.importorskip("torch")

import torch
from opencharacter_local.sampling import (
    EngineCache,
    LocalSampler,
    TransformersEngine,
)
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from opencharacter.errors import PermanentBackendError
from opencharacter.protocols import Student
from opencharacter.types import Checkpoint, GenerationRequest, SamplingParams

# PEFT reads a property transformers 5 deprecated; nothing on our side can avoid the warning.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")


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


class CountingEngine(TransformersEngine):
    """Records the size of every batch it is given."""

    batches: ClassVar[list[int]] = []

    def generate(self, requests):
        self.batches.append(len(requests))
        return super().generate(requests)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return TransformersEngine(str(tiny_model_dir), device="cpu")


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA with random B weights, so unlike a fresh adapter it changes the outputs."""
    config = LoraConfig(r=8, target_modules="all-linear", init_lora_weights=False)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    return folder


def checkpoint(uri, **meta):
    return Checkpoint(backend="local", base_model="tiny", uri=str(uri), kind="dpo", meta=meta)


def test_one_well_formed_completion_per_request_in_order(engine, tiny_model_dir):
    """Every request gets a completion with its id, positive token counts and the model name."""
    requests = [request(i, max_tokens=12, seed=i) for i in range(5)]
    completions = engine.generate(requests)
    assert [c.request_id for c in completions] == [r.id for r in requests]
    for completion in completions:
        assert completion.prompt_tokens > 10
        assert 0 < completion.completion_tokens <= 12
        assert completion.finish_reason in {"stop", "length"}
        assert completion.model == str(tiny_model_dir)


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


def test_a_prompt_longer_than_the_context_is_refused_for_good(engine):
    """A prompt that fills the context raises a permanent error naming the request."""
    huge = GenerationRequest(id="huge", messages=[{"role": "user", "content": "hello " * 8300}])
    with pytest.raises(PermanentBackendError, match="8192") as caught:
        engine.generate([request(0, max_tokens=4), huge])
    assert caught.value.request_id == "huge"


def test_concurrent_callers_share_engine_batches(tiny_model_dir):
    """Twenty concurrent single-request calls run as a few batches, each caller its own answer."""
    CountingEngine.batches = []
    sampler = LocalSampler(str(tiny_model_dir), engines=EngineCache(CountingEngine))
    assert isinstance(sampler, Student)

    async def one(i):
        return [c async for c in sampler.generate([request(i, max_tokens=8, seed=i)])]

    async def main():
        return await asyncio.gather(*(one(i) for i in range(20)))

    answers = asyncio.run(main())
    assert [[c.request_id for c in a] for a in answers] == [[f"r{i}"] for i in range(20)]
    assert sum(CountingEngine.batches) == 20
    assert len(CountingEngine.batches) <= 2


def test_a_refused_request_fails_alone(tiny_model_dir):
    """A request the engine refuses fails its caller; its batch mates still get answers."""
    sampler = LocalSampler(str(tiny_model_dir), max_batch_size=4)
    huge = GenerationRequest(id="huge", messages=[{"role": "user", "content": "hello " * 8300}])

    async def attempt(r):
        try:
            return [c async for c in sampler.generate([r])]
        except PermanentBackendError as exc:
            return exc

    async def main():
        return await asyncio.gather(*(attempt(r) for r in [request(0, max_tokens=4), huge]))

    fine, refused = asyncio.run(main())
    assert fine[0].request_id == "r0"
    assert isinstance(refused, PermanentBackendError)
    assert refused.request_id == "huge"


def test_a_missing_checkpoint_is_a_permanent_error(tiny_model_dir, tmp_path):
    """Sampling a checkpoint whose folder does not exist fails with a clear permanent error."""
    sampler = LocalSampler(str(tiny_model_dir)).at(checkpoint(tmp_path / "gone"))
    with pytest.raises(PermanentBackendError, match="cannot load"):
        collect(sampler, [request(0, max_tokens=4)])


def test_engines_are_shared_and_the_least_recently_used_closed(tiny_model_dir, adapter_dir):
    """Samplers of one cache reuse its engines; a new one evicts the oldest; clear closes all."""
    loaded, closed = [], []

    class Tracked(TransformersEngine):
        def __init__(self, model, **options):
            loaded.append(options["adapter"])
            super().__init__(model, **options)

        def close(self):
            closed.append(self.name)
            super().close()

    engines = EngineCache(Tracked, capacity=1)
    student = LocalSampler(str(tiny_model_dir), engines=engines)
    greedy = [request(0, max_tokens=2, temperature=0)]
    collect(student, greedy)
    collect(student.at(None), greedy)
    assert (loaded, closed) == ([None], [])
    collect(student.at(checkpoint(adapter_dir)), greedy)
    assert (loaded, closed) == ([None, str(adapter_dir)], [str(tiny_model_dir)])
    engines.clear()
    assert closed == [str(tiny_model_dir), str(adapter_dir)]


def test_a_checkpoint_changes_the_samples(tiny_model_dir, adapter_dir):
    """``at`` an adapter samples through it; ``at(None)`` returns to the base weights."""
    base = LocalSampler(str(tiny_model_dir))
    tuned = base.at(checkpoint(adapter_dir))
    assert (tuned.model, tuned.base_model) == (str(adapter_dir), str(tiny_model_dir))
    # One seed means one random stream, so any difference comes from the weights.
    seeded = [request(0, max_tokens=16, seed=7)]
    (before,) = collect(base, seeded)
    (after,) = collect(tuned, seeded)
    assert after.model == str(adapter_dir)
    assert after.text != before.text
    assert collect(tuned.at(None), seeded)[0].text == before.text


def test_checkpoint_weights_and_stacked_adapters_are_honoured(
    tiny_model_dir, adapter_dir, tmp_path
):
    """A folder of full weights is sampled as is; an adapter applies to ``base_weights``."""
    merged = tmp_path / "merged"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().save_pretrained(merged)
    student = LocalSampler(str(tiny_model_dir), engines=EngineCache(capacity=3))
    seeded = [request(0, max_tokens=16, seed=7)]
    (adapted,) = collect(student.at(checkpoint(adapter_dir)), seeded)
    (full,) = collect(student.at(checkpoint(merged)), seeded)
    (stacked,) = collect(student.at(checkpoint(adapter_dir, base_weights=str(merged))), seeded)
    assert full.text == adapted.text
    assert stacked.text != adapted.text

"""Local sampling: well-formed completions, seeds, batching of concurrent callers, checkpoints."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

pytest.importorskip("torch")

from opencharacter_local.engine_cache import EngineCache
from opencharacter_local.engines import TransformersEngine
from opencharacter_local.sampler import LocalSampler
from peft import PeftModel

# The sampler contract of tests/local/contract.py, collected and run here on transformers.
from tests.local.contract import (
    collect,
    collect_each_concurrently,
    request,
    test_a_prompt_longer_than_the_context_is_refused_for_good,  # noqa: F401
    test_a_stop_string_ends_the_text_and_is_removed,  # noqa: F401
    test_max_tokens_reached_finishes_with_length,  # noqa: F401
    test_one_well_formed_completion_per_request_in_order,  # noqa: F401
    test_seeded_requests_repeat_exactly_whatever_their_batch,  # noqa: F401
    test_top_k_of_one_samples_greedily,  # noqa: F401
)
from transformers import AutoModelForCausalLM

from opencharacter.errors import PermanentBackendError
from opencharacter.protocols import Student
from opencharacter.types import Checkpoint, GenerationRequest

# PEFT reads a property transformers 5 deprecated; nothing on our side can avoid the warning.
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")


class CountingEngine(TransformersEngine):
    """Records the size of every batch it is given."""

    batches: ClassVar[list[int]] = []

    def generate(self, requests):
        self.batches.append(len(requests))
        return super().generate(requests)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return TransformersEngine(str(tiny_model_dir), device="cpu")


@pytest.fixture
def served_model(tiny_model_dir):
    return str(tiny_model_dir)


@pytest.fixture
def context_length():
    return 8192


def checkpoint(uri, **meta):
    return Checkpoint(backend="local", base_model="tiny", uri=str(uri), kind="dpo", meta=meta)


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

    fine, refused = collect_each_concurrently(sampler, [request(0, max_tokens=4), huge])
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

"""Tiny checks against the real Tinker service; they run only where TINKER_API_KEY is set.

They cost a few cents at most: a model list, one request of two short samples, and one SFT
step of a rank-8 LoRA on two short conversations, saved with a one-hour lifetime.
Set ``OPENCHARACTER_LIVE_MODEL`` to choose the model (default: the backend's default student).
"""

from __future__ import annotations

import asyncio
import os

import pytest

from opencharacter import ChatExample, GenerationRequest, LoRAConfig, SamplingParams, SFTConfig
from opencharacter.registry import get_backend_spec, load_backend

KEY = os.environ.get("TINKER_API_KEY")  # read at import: the offline fixtures remove it
BASE_URL = os.environ.get("TINKER_BASE_URL")
MODEL = (
    os.environ.get("OPENCHARACTER_LIVE_MODEL")
    or get_backend_spec("tinker").default_models["student"]
)
pytestmark = pytest.mark.skipif(
    not KEY or KEY == "tml-fake-key", reason="live Tinker tests need TINKER_API_KEY"
)


@pytest.fixture
def live(monkeypatch):
    monkeypatch.setenv("TINKER_API_KEY", KEY or "")
    if BASE_URL:
        monkeypatch.setenv("TINKER_BASE_URL", BASE_URL)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the real tokenizer comes from the Hub
    return load_backend("tinker", {"ttl_days": "0.05"})


def test_the_default_student_is_served_and_samples_two_answers(live):
    """The service serves the default student; one request gives two numbered answers."""
    live.check_models(sample=[MODEL], train=[MODEL])
    request = GenerationRequest(
        id="live",
        messages=[{"role": "user", "content": "Say hi."}],
        params=SamplingParams(max_tokens=8, seed=1),
        samples=2,
    )

    async def collect():
        return [c async for c in live.student(MODEL).generate([request])]

    answers = asyncio.run(collect())
    assert sorted(a.sample for a in answers) == [0, 1]


def test_one_sft_step_saves_a_sampler_and_a_state_path(live, tmp_path):
    """One step of SFT returns a sampler path and a training state, both tinker:// paths."""
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    example = ChatExample(id="e", messages=turns)
    config = SFTConfig(batch_size=2, start="continue", lora=LoRAConfig(rank=8))
    student = live.student(MODEL)
    checkpoint = live.trainer().sft(student, [example] * 2, config, output_dir=tmp_path / "sft")
    assert "/sampler_weights/" in checkpoint.uri
    assert checkpoint.state_uri is not None
    assert "/weights/" in checkpoint.state_uri
    assert checkpoint.expires is not None

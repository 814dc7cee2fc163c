"""A Tinker-trained checkpoint downloads as a PEFT adapter that the local backend samples from."""

from __future__ import annotations

import asyncio

import pytest

from opencharacter import ConfigError, DPOConfig, GenerationRequest, SamplingParams
from opencharacter.registry import load_backend

from .conftest import TINY
from .test_backend import _pairs

pytest.importorskip("peft")
# peft asks transformers 5 a deprecated question while loading an adapter; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


def test_export_gives_an_adapter_the_local_backend_serves_with_the_same_numbers(
    fake, options, tiny_model_dir, tmp_path
):
    """Export, then: same log-probabilities as Tinker's sampler (1e-4), and local sampling works."""
    import torch  # noqa: PLC0415
    from opencharacter_tinker.connection import Connection  # noqa: PLC0415
    from opencharacter_tinker.export import export_checkpoint  # noqa: PLC0415
    from peft import PeftModel  # noqa: PLC0415
    from tinker import types  # noqa: PLC0415
    from transformers import AutoModelForCausalLM  # noqa: PLC0415

    backend = load_backend("tinker", options)
    config = DPOConfig(batch_size=4, learning_rate=5e-2, warmup_ratio=0.0, epochs=2)
    trained = backend.trainer().dpo(backend.student(TINY), _pairs(4), config,
                                    output_dir=tmp_path / "dpo")  # fmt: skip
    connection = Connection(connect_timeout=20)
    exported = export_checkpoint(trained, tmp_path / "adapter", connection=connection)
    assert exported.backend == "local"
    assert exported.parent == trained.uri
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    with pytest.raises(ConfigError, match="not empty"):
        export_checkpoint(trained, tmp_path / "adapter", connection=connection)

    tokens = backend.chat_format(TINY).completion(
        [{"role": "user", "content": "Hello! How are you?"}], "I am fine, thank you."
    )[0]
    sampler = asyncio.run(connection.sampling_client(TINY, trained.uri))
    remote = sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result(timeout=60)[1:]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0, :-1]
    local = logits.log_softmax(-1).gather(-1, torch.tensor(tokens[1:])[:, None])[:, 0]
    assert local.tolist() == pytest.approx(remote, abs=1e-4)

    student = load_backend("local", {"engine": "transformers", "device": "cpu"}).student(
        TINY, exported
    )
    request = GenerationRequest(id="r", messages=[{"role": "user", "content": "Hi"}],
                                params=SamplingParams(max_tokens=8, seed=1))  # fmt: skip
    [answer] = asyncio.run(_collect(student, [request]))
    assert answer.model == exported.uri
    assert answer.completion_tokens > 0


async def _collect(sampler, requests):
    return [c async for c in sampler.generate(requests)]

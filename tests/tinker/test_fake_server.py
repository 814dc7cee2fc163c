"""The fake Tinker server, driven end to end by the real ``tinker`` SDK over HTTP.

Every test goes through ``tinker.ServiceClient``/``RestClient`` exactly as the backend does, so
these also pin down how the SDK surfaces the service's answers (which exception, which message).
Nothing here reaches the network: clients get the fake's ``base_url`` explicitly.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
tinker = pytest.importorskip("tinker")
pytest.importorskip("peft")

from opencharacter_tinker.fake_server import FakeTinkerServer  # noqa: E402 - after the guards

types = tinker.types

MODEL = "tiny"
PROMPT = [449, 4, 451, 441, 414, 34, 418]  # any ids below the tiny vocabulary size (457)


@pytest.fixture(scope="module", autouse=True)
def _offline_env():
    """No telemetry uploads, no stray credentials or base URL, and one torch thread."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINKER_TELEMETRY", "0")
        for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_CREDENTIAL_CMD"):
            patch.delenv(name, raising=False)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from opencharacter_local.tiny import build_tiny_model  # noqa: PLC0415 - needs torch

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def server(folder):
    with FakeTinkerServer({MODEL: folder}) as fake:
        yield fake


@pytest.fixture
def service(server):
    client = tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key)
    yield client
    client.close("success").result(timeout=30)


@pytest.fixture(scope="module")
def reference(folder):
    """The tiny model loaded directly, to check the server's numbers against."""
    from transformers import AutoModelForCausalLM  # noqa: PLC0415 - needs torch

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return model.eval()


def _datum(tokens: list[int]) -> types.Datum:
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )


def _train(client, data, steps: int, lr: float = 1e-2) -> list[float]:
    losses = []
    for _ in range(steps):
        fwd_bwd = client.forward_backward(data, "cross_entropy")
        optim = client.optim_step(types.AdamParams(learning_rate=lr))
        losses.append(fwd_bwd.result(timeout=30).metrics["loss:sum"])
        optim.result(timeout=30)
    return losses


def _logprobs(sampler, tokens=PROMPT) -> np.ndarray:
    values = sampler.compute_logprobs(types.ModelInput.from_ints(tokens)).result(timeout=30)
    return np.array(values[1:], dtype=np.float64)


# -- sampling -----------------------------------------------------------------------------------


def test_capabilities_list_served_models(server):
    rest = tinker.RestClient(base_url=server.base_url, api_key=server.api_key)
    models = rest.get_server_capabilities().result(timeout=30).supported_models
    assert [(m.model_name, m.trainable, m.sampleable) for m in models] == [(MODEL, True, True)]
    assert models[0].max_context_length == 8192


def test_sample_returns_sequences_with_logprobs_and_is_reproducible(service, server):
    sampler = service.create_sampling_client(base_model=MODEL).result(timeout=30)
    tokens = [11, 12, 13, 14, 15]  # a prompt no other test sends, for the cache counts
    prompt = types.ModelInput.from_ints(tokens)
    params = types.SamplingParams(max_tokens=6, seed=7, stop=[])
    first = sampler.sample(prompt, 3, params).result(timeout=30)
    again = sampler.sample(prompt, 3, params).result(timeout=30)
    other = sampler.sample(prompt, 3, params.model_copy(update={"seed": 8})).result(timeout=30)
    longer = types.ModelInput.from_ints([*tokens, 16, 17])
    extended = sampler.sample(longer, 1, params).result(timeout=30)
    assert len(first.sequences) == 3
    for sequence in first.sequences:
        assert len(sequence.tokens) == len(sequence.logprobs) == 6
        assert sequence.stop_reason == "length"
        assert all(lp < 0 for lp in sequence.logprobs)
    assert [s.tokens for s in again.sequences] == [s.tokens for s in first.sequences]
    assert [s.tokens for s in other.sequences] != [s.tokens for s in first.sequences]
    assert first.prompt_cache_hit_tokens == 0
    assert again.prompt_cache_hit_tokens == len(tokens)
    assert extended.prompt_cache_hit_tokens == len(tokens)  # the shared prefix
    assert server.calls["asample"] >= 3


def test_stop_token_is_included_and_ends_the_sample(service):
    sampler = service.create_sampling_client(base_model=MODEL).result(timeout=30)
    prompt = types.ModelInput.from_ints(PROMPT)
    seeded = types.SamplingParams(max_tokens=8, seed=3, stop=[])  # stop=[]: not even EOS
    tokens = sampler.sample(prompt, 1, seeded).result(timeout=30).sequences[0].tokens
    cut = next(i for i, t in enumerate(tokens) if i > 0 and t not in tokens[:i])
    stopped = sampler.sample(prompt, 1, seeded.model_copy(update={"stop": [tokens[cut]]})).result(
        timeout=30
    )
    assert stopped.sequences[0].tokens == tokens[: cut + 1]
    assert stopped.sequences[0].stop_reason == "stop"


def test_compute_logprobs_match_the_model(service, server, reference):
    sampler = service.create_sampling_client(base_model=MODEL).result(timeout=30)
    before = server.calls["compute_logprobs"]
    values = sampler.compute_logprobs(types.ModelInput.from_ints(PROMPT)).result(timeout=30)
    assert len(values) == len(PROMPT)
    assert values[0] is None
    with torch.no_grad():
        logits = reference(input_ids=torch.tensor([PROMPT])).logits[0]
    expected = torch.log_softmax(logits, -1)[:-1].gather(1, torch.tensor(PROMPT[1:])[:, None])
    np.testing.assert_allclose(values[1:], expected[:, 0].numpy(), atol=1e-4)
    assert server.calls["compute_logprobs"] == before + 1


def test_context_overflow_is_a_bad_request(service):
    sampler = service.create_sampling_client(base_model=MODEL).result(timeout=30)
    params = types.SamplingParams(max_tokens=8190)
    with pytest.raises(tinker.BadRequestError, match=r"context window: 7 \+ 8190 > 8192"):
        sampler.sample(types.ModelInput.from_ints(PROMPT), 1, params).result(timeout=30)


def test_unknown_model_is_named_in_the_error(service):
    with pytest.raises(tinker.BadRequestError, match="no-such-model"):
        service.create_sampling_client(base_model="no-such-model").result(timeout=30)
    with pytest.raises(tinker.BadRequestError, match="no-such-model"):
        service.create_lora_training_client(base_model="no-such-model").result(timeout=30)


def test_rank_must_be_a_power_of_two(service):
    with pytest.raises(tinker.BadRequestError, match="power of 2"):
        service.create_lora_training_client(base_model=MODEL, rank=3).result(timeout=30)


def test_bad_key_fails_fast(server):
    client = tinker.ServiceClient(base_url=server.base_url, api_key="tml-wrong")
    start = time.monotonic()
    with pytest.raises(tinker.AuthenticationError):
        client.create_sampling_client(base_model=MODEL)
    assert time.monotonic() - start < 5
    client.close("errored").result(timeout=30)


# -- training -----------------------------------------------------------------------------------


def test_sft_lowers_the_loss_and_trains_the_sampler(service, server):
    client = service.create_lora_training_client(base_model=MODEL, rank=8, seed=0).result(
        timeout=30
    )
    base = _logprobs(service.create_sampling_client(base_model=MODEL).result(timeout=30))
    fresh = _logprobs(client.save_weights_and_get_sampling_client().result(timeout=30))
    np.testing.assert_allclose(fresh, base, atol=1e-5)  # LoRA B starts at zero
    losses = _train(client, [_datum(PROMPT)], steps=4)
    assert losses[-1] < losses[0]
    path = client.save_weights_for_sampler("trained").result(timeout=30).path
    assert path == f"tinker://{client.model_id}/sampler_weights/trained"
    trained = _logprobs(service.create_sampling_client(model_path=path).result(timeout=30))
    assert trained.sum() > base.sum() + 1.0  # the trained continuation became likelier
    assert server.calls["forward_backward"] >= 4
    assert server.calls["optim_step"] >= 4


def test_forward_backward_custom_matches_cross_entropy(service):
    def weighted_nll(data, logprobs):
        loss = sum(
            -(lp * d.loss_fn_inputs["weights"].to_torch()).sum()
            for d, lp in zip(data, logprobs, strict=True)
        )
        return loss, {"custom:sum": float(loss.detach())}

    data = [_datum(PROMPT), _datum(PROMPT[:4])]
    custom = service.create_lora_training_client(base_model=MODEL, rank=4, seed=3).result(
        timeout=30
    )
    builtin = service.create_lora_training_client(base_model=MODEL, rank=4, seed=3).result(
        timeout=30
    )
    result = custom.forward_backward_custom(data, weighted_nll).result(timeout=30)
    custom.optim_step(types.AdamParams(learning_rate=1e-2)).result(timeout=30)
    expected = _train(builtin, data, steps=1)[0]
    assert result.metrics["loss:sum"] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["surrogate_loss:sum"] == pytest.approx(expected, rel=1e-5)
    after_custom = custom.forward(data, "cross_entropy").result(timeout=30).metrics["loss:sum"]
    after_builtin = builtin.forward(data, "cross_entropy").result(timeout=30).metrics["loss:sum"]
    assert after_custom == pytest.approx(after_builtin, rel=1e-5)


def test_resume_with_optimizer_is_exact(service):
    data = [_datum(PROMPT)]
    original = service.create_lora_training_client(base_model=MODEL, rank=4, seed=1).result(
        timeout=30
    )
    _train(original, data, steps=2)
    path = original.save_state("step-2", ttl_seconds=3600).result(timeout=30).path
    assert path == f"tinker://{original.model_id}/weights/step-2"
    resumed = service.create_training_client_from_state_with_optimizer(path).result(timeout=30)
    weights_only = service.create_training_client_from_state(path).result(timeout=30)
    expected = _train(original, data, steps=2)
    assert _train(resumed, data, steps=2) == pytest.approx(expected, rel=1e-6)
    fresh_adam = _train(weights_only, data, steps=2)
    assert fresh_adam[0] == pytest.approx(expected[0], rel=1e-6)  # same weights...
    assert fresh_adam[1] != pytest.approx(expected[1], rel=1e-6)  # ...but fresh Adam moments


def test_sampling_a_training_checkpoint_fails(service):
    client = service.create_lora_training_client(base_model=MODEL, rank=4, seed=0).result(
        timeout=30
    )
    path = client.save_state("state").result(timeout=30).path
    sampler = service.create_sampling_client(model_path=path).result(timeout=30)
    with pytest.raises(tinker.RequestFailedError, match="not a sampler checkpoint"):
        sampler.sample(
            types.ModelInput.from_ints(PROMPT), 1, types.SamplingParams(max_tokens=2)
        ).result(timeout=30)


def test_checkpoints_are_listed_described_and_deleted(service, server, folder):
    client = service.create_lora_training_client(base_model=MODEL, rank=4, seed=0).result(
        timeout=30
    )
    state = client.save_state("kept", ttl_seconds=7200).result(timeout=30).path
    sampler = client.save_weights_for_sampler("gone").result(timeout=30).path
    with pytest.raises(tinker.RequestFailedError, match="already exists"):
        client.save_state("kept").result(timeout=30)
    rest = tinker.RestClient(base_url=server.base_url, api_key=server.api_key)
    listed = rest.list_checkpoints(client.model_id).result(timeout=30).checkpoints
    assert {(c.checkpoint_type, c.tinker_path) for c in listed} == {
        ("training", state),
        ("sampler", sampler),
    }
    assert [c.expires_at is not None for c in listed] == [True, False]
    info = rest.get_weights_info_by_tinker_path(state).result(timeout=30)
    assert (info.base_model, info.lora_rank) == (MODEL, 4)
    run = rest.get_training_run(client.model_id).result(timeout=30)
    assert run.last_checkpoint.tinker_path == state
    rest.delete_checkpoint_from_tinker_path(sampler).result(timeout=30)
    with pytest.raises(tinker.NotFoundError):
        service.create_sampling_client(model_path=sampler).result(timeout=30)
    # get_info names the model's folder as its tokenizer, so this works offline.
    assert client.get_tokenizer().name_or_path == str(folder)


# FutureWarning from PEFT itself under transformers 5 (tests/local filters it the same way).
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")
def test_downloaded_adapter_loads_in_peft_with_the_same_logits(
    service, server, folder, reference, tmp_path
):
    from peft import PeftModel  # noqa: PLC0415 - optional dependency

    client = service.create_lora_training_client(base_model=MODEL, rank=4, seed=0).result(
        timeout=30
    )
    _train(client, [_datum(PROMPT)], steps=2)
    sampler_path = client.save_weights_for_sampler("export").result(timeout=30).path
    external = client.save_weights_external("export").result(timeout=30).path
    rest = tinker.RestClient(base_url=server.base_url, api_key=server.api_key)
    urls = rest.get_external_weights_urls(external).result(timeout=30).urls
    assert set(urls) == {"adapter_config.json", "adapter_model.safetensors"}
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name, url in urls.items():
        with urllib.request.urlopen(url, timeout=30) as response:
            (adapter / name).write_bytes(response.read())

    model = PeftModel.from_pretrained(reference, adapter)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([PROMPT])).logits[0]
    model.unload()  # leave the shared reference model unadapted
    expected = torch.log_softmax(logits, -1)[:-1].gather(1, torch.tensor(PROMPT[1:])[:, None])
    served = _logprobs(service.create_sampling_client(model_path=sampler_path).result(timeout=30))
    np.testing.assert_allclose(served, expected[:, 0].numpy(), atol=1e-4)

    # The pre-0.38 SDKs' archive endpoint: a redirect to a tar of the same PEFT folder.
    run, kind, name = sampler_path.removeprefix("tinker://").split("/")
    request = urllib.request.Request(
        f"{server.base_url}/api/v1/training_runs/{run}/checkpoints/{kind}/{name}/archive",
        headers={"X-API-Key": server.api_key},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # follows the 302
        payload = response.read()
    with tarfile.open(fileobj=io.BytesIO(payload)) as archive:
        assert sorted(archive.getnames()) == sorted(urls)
        weights = archive.extractfile("adapter_model.safetensors").read()
    assert weights == (adapter / "adapter_model.safetensors").read_bytes()


# -- timing and faults ----------------------------------------------------------------------------


def test_latency_overlaps_across_concurrent_samples(service, server):
    sampler = service.create_sampling_client(base_model=MODEL).result(timeout=30)
    prompt = types.ModelInput.from_ints(PROMPT)
    params = types.SamplingParams(max_tokens=1, seed=0)  # one forward pass each

    async def burst():
        return await asyncio.gather(*(sampler.sample(prompt, 1, params) for _ in range(20)))

    asyncio.run(burst())  # warm up: connections, threads, first torch calls
    server.latency = 0.2  # read per operation, so it can change while serving
    try:
        start = time.monotonic()
        results = asyncio.run(burst())
        elapsed = time.monotonic() - start
    finally:
        server.latency = 0.0
    assert len(results) == 20
    assert 0.2 <= elapsed < 1.5  # not 20 x 0.2 s: the delays overlap


def test_training_clock_rewards_pipelining(folder):
    cycle = 0.3
    with FakeTinkerServer({MODEL: folder}, cycle=cycle) as fake:
        client = tinker.ServiceClient(base_url=fake.base_url, api_key=fake.api_key)
        trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=0).result(
            timeout=30
        )
        data = [_datum(PROMPT)]
        adam = types.AdamParams(learning_rate=1e-3)

        def pipelined_step():  # submit both, then wait: they share one tick
            futures = trainer.forward_backward(data, "cross_entropy"), trainer.optim_step(adam)
            for future in futures:
                future.result(timeout=30)

        pipelined_step()  # from here on, every request arrives just after a tick
        start = time.monotonic()
        for _ in range(2):
            pipelined_step()
        pipelined = time.monotonic() - start
        start = time.monotonic()
        for _ in range(2):  # wait after every call: one tick per operation
            trainer.forward_backward(data, "cross_entropy").result(timeout=30)
            trainer.optim_step(adam).result(timeout=30)
        naive = time.monotonic() - start
        client.close("success").result(timeout=30)
    assert naive >= 3 * cycle  # four operations in four distinct ticks
    assert pipelined < naive - cycle  # two ticks, against four


def test_transient_failures_are_retried_by_the_sdk(folder):
    with FakeTinkerServer({MODEL: folder}, transient_failure_rate=0.3, seed=1) as fake:
        client = tinker.ServiceClient(base_url=fake.base_url, api_key=fake.api_key)
        sampler = client.create_sampling_client(base_model=MODEL).result(timeout=60)
        prompt = types.ModelInput.from_ints(PROMPT)
        futures = [
            sampler.sample(prompt, 1, types.SamplingParams(max_tokens=2, seed=i)) for i in range(6)
        ]
        assert all(len(f.result(timeout=60).sequences) == 1 for f in futures)
        trainer = client.create_lora_training_client(base_model=MODEL, rank=4, seed=0).result(
            timeout=60
        )
        losses = _train(trainer, [_datum(PROMPT)], steps=2)
        client.close("success").result(timeout=60)
        assert fake.injected_failures > 0
        assert fake.calls["forward_backward"] == 2  # retried requests count once
        assert fake.calls["asample"] == 6
    assert len(losses) == 2


def test_stop_leaves_no_threads_behind(folder):
    before = {t.name for t in threading.enumerate()}
    fake = FakeTinkerServer({MODEL: folder}).start()
    client = tinker.ServiceClient(base_url=fake.base_url, api_key=fake.api_key)
    trainer = client.create_lora_training_client(base_model=MODEL, rank=4).result(timeout=30)
    _train(trainer, [_datum(PROMPT)], steps=1)
    client.close("success").result(timeout=30)
    fake.stop()
    leftover = {t.name for t in threading.enumerate()} - before
    assert not [name for name in leftover if "fake-tinker" in name]
    assert fake.env() == {
        "TINKER_BASE_URL": fake.base_url,
        "TINKER_API_KEY": "tml-fake-key",
        "TINKER_TELEMETRY": "0",
    }
    assert Path(folder).is_dir()

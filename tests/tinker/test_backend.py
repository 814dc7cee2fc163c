"""The Tinker backend through the real SDK against the fake server: start-up, sampling, training."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time

import pytest

from opencharacter import (
    ChatExample,
    Checkpoint,
    ConfigError,
    DPOConfig,
    GenerationRequest,
    PermanentBackendError,
    PreferencePair,
    SamplingParams,
    SFTConfig,
)
from opencharacter.protocols import Backend, Student, Teacher, Trainer
from opencharacter.registry import load_backend

from .conftest import TINY


def ask(text: str, *, samples: int = 1, seed: int | None = 3, max_tokens: int = 12):
    return GenerationRequest(
        id=f"q-{text}-{samples}",
        messages=[{"role": "user", "content": text}],
        params=SamplingParams(max_tokens=max_tokens, seed=seed, temperature=1.0, top_p=1.0),
        samples=samples,
    )


async def collect(sampler, requests):
    return [c async for c in sampler.generate(requests)]


def test_backend_satisfies_the_protocols(fake, options):
    """`tinker` loads from string options and its parts satisfy the protocols."""
    backend = load_backend("tinker", options)
    assert isinstance(backend, Backend)
    assert isinstance(backend.teacher(TINY), Teacher)
    assert isinstance(backend.student(TINY), Student)
    assert isinstance(backend.trainer(), Trainer)
    caps = backend.capabilities
    assert caps.remote
    assert caps.retries
    assert not (caps.repetition_penalty)
    assert not (caps.lora_alpha)
    assert not (caps.stack_sft)


def test_check_models_accepts_served_models_and_lists_the_offer_otherwise(fake, options):
    """A served model passes; a retired one fails at once, naming the models on offer."""
    backend = load_backend("tinker", options)
    backend.check_models(sample=[TINY], train=[TINY])
    with pytest.raises(ConfigError, match=r"Qwen/Qwen3-4B-Instruct-2507.*on offer: .*tiny-qwen3"):
        backend.check_models(train=["Qwen/Qwen3-4B-Instruct-2507"])


def test_missing_and_rejected_keys_fail_in_seconds(fake, options, monkeypatch, tmp_path):
    """No key is a ConfigError before any request; a rejected key is permanent, and fast."""
    import opencharacter_tinker  # noqa: PLC0415

    monkeypatch.setattr(opencharacter_tinker, "CREDENTIALS_FILE", tmp_path / "absent.json")
    monkeypatch.delenv("TINKER_API_KEY")
    with pytest.raises(ConfigError, match="TINKER_API_KEY"):
        load_backend("tinker", options).check_models(sample=[TINY])
    monkeypatch.setenv("TINKER_API_KEY", "tml-not-the-key")
    started = time.monotonic()
    with pytest.raises(PermanentBackendError, match="rejected"):
        load_backend("tinker", options).check_models(sample=[TINY])
    assert time.monotonic() - started < 10


def test_an_unreachable_service_is_reported_within_the_connect_timeout(fake, options, tmp_path):
    """A closed port answers within connect_timeout, not after the SDK's five minutes.

    In a child process: the SDK's thread keeps retrying for those minutes, and meanwhile holds
    its process-wide lock on new REST clients, which would stall the tests after this one.
    """
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = tmp_path / "check.py"
    script.write_text(
        "from opencharacter.registry import load_backend\n"
        f"backend = load_backend('tinker', {{**{options!r}, 'connect_timeout': '2'}})\n"
        "try:\n"
        f"    backend.check_models(sample=[{TINY!r}])\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n",
        encoding="utf-8",
    )
    env = {**os.environ, **fake.env(), "TINKER_BASE_URL": f"http://127.0.0.1:{port}"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout.startswith("PermanentBackendError"), done.stdout + done.stderr
    assert "within 2 s" in done.stdout
    assert time.monotonic() - started < 15  # the interpreter's start and imports included


def test_k_samples_come_from_one_request_and_are_reproducible(fake, options):
    """samples=3 is one `sample` call: three numbered answers, the prompt billed once."""
    teacher = load_backend("tinker", options).teacher(TINY)
    before = fake.calls["asample"]
    answers = asyncio.run(collect(teacher, [ask("Hello", samples=3)]))
    assert fake.calls["asample"] - before == 1
    assert sorted(c.sample for c in answers) == [0, 1, 2]
    first = next(c for c in answers if c.sample == 0)
    assert first.prompt_tokens > 0
    assert all(c.prompt_tokens == 0 for c in answers if c.sample)
    assert all(c.finish_reason in {"stop", "length"} and c.model == TINY for c in answers)
    again = asyncio.run(collect(teacher, [ask("Hello", samples=3)]))
    assert sorted((c.sample, c.text) for c in again) == sorted((c.sample, c.text) for c in answers)


def test_concurrent_first_requests_share_one_sampling_session(fake, options):
    """A stage's requests start at once; they must not each open a sampling session."""
    teacher = load_backend("tinker", options).teacher(TINY)
    before = fake.calls["create_sampling_session"]
    answers = asyncio.run(collect(teacher, [ask(f"Hello {i}", max_tokens=2) for i in range(24)]))
    assert len(answers) == 24
    assert fake.calls["create_sampling_session"] - before == 1


def test_a_repeated_prompt_reports_prefix_cache_hits(fake, options):
    """The service's prefix-cache hits reach the completion, for the discounted price."""
    teacher = load_backend("tinker", options).teacher(TINY)
    asyncio.run(collect(teacher, [ask("Cache me")]))
    [again] = asyncio.run(collect(teacher, [ask("Cache me")]))
    assert 0 < again.cached_prompt_tokens <= again.prompt_tokens


def _pairs(count: int) -> list[PreferencePair]:
    return [
        PreferencePair(
            id=f"p{i}",
            prompt=[{"role": "user", "content": f"Tell me about the river {i}."}],
            chosen="I see the river again today. Sure, I can help with that.",
            rejected="The old book.",
        )
        for i in range(count)
    ]


def _examples(count: int) -> list[ChatExample]:
    return [
        ChatExample(
            id=f"e{i}",
            messages=[
                {"role": "system", "content": "You are Tiny."},
                {"role": "user", "content": f"Hello! How are you? {i}"},
                {"role": "assistant", "content": "I am fine, thank you."},
                {"role": "user", "content": "What do you think about it?"},
                {"role": "assistant", "content": "That is a good question."},
            ],
        )
        for i in range(count)
    ]


FAST_DPO = DPOConfig(batch_size=4, learning_rate=5e-3, warmup_ratio=0.0, lr_schedule="constant")


def test_dpo_starts_at_log_2_falls_and_scores_the_reference_once(fake, options, tmp_path):
    """Step 1's DPO term is ln 2 (policy = reference); it falls; the reference is scored once."""
    backend = load_backend("tinker", options)
    steps = []
    before = fake.calls["compute_logprobs"]
    checkpoint = backend.trainer().dpo(
        backend.student(TINY), _pairs(8), attrs_evolve(FAST_DPO, epochs=3),
        output_dir=tmp_path / "dpo", on_step=steps.append,
    )  # fmt: skip
    assert fake.calls["compute_logprobs"] - before == 16  # 8 pairs x (chosen, rejected)
    assert [s.step for s in steps] == list(range(1, 7))
    assert steps[0].metrics["dpo_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert steps[0].metrics["kl"] == pytest.approx(0.0, abs=1e-8)
    assert steps[-1].metrics["dpo_loss"] < steps[0].metrics["dpo_loss"] - 0.05
    assert steps[0].usage.prompt_tokens > 0
    assert steps[0].usage.train_tokens > 0
    assert checkpoint.uri.startswith("tinker://")
    assert "/sampler_weights/" in checkpoint.uri
    assert checkpoint.state_uri is not None
    assert "/weights/" in checkpoint.state_uri
    assert (tmp_path / "dpo" / "reference.jsonl").is_file()


def attrs_evolve(config, **changes):
    import attrs  # noqa: PLC0415

    return attrs.evolve(config, **changes)


def test_sft_continues_the_dpo_state_and_lowers_the_loss(fake, options, tmp_path):
    """SFT starts from the DPO training state, and cross-entropy on assistant turns falls."""
    backend = load_backend("tinker", options)
    trainer = backend.trainer()
    dpo = trainer.dpo(backend.student(TINY), _pairs(4), FAST_DPO, output_dir=tmp_path / "dpo")
    steps = []
    config = SFTConfig(batch_size=4, learning_rate=1e-2, warmup_ratio=0.0, epochs=4,
                       start="continue")  # fmt: skip
    sft = trainer.sft(backend.student(TINY).at(dpo), _examples(4), config,
                      output_dir=tmp_path / "sft", on_step=steps.append)  # fmt: skip
    assert sft.parent == dpo.uri
    assert sft.kind == "sft"
    assert steps[-1].metrics["loss"] < steps[0].metrics["loss"]
    with pytest.raises(ConfigError, match="continue"):
        trainer.sft(backend.student(TINY).at(dpo), _examples(4), SFTConfig(start="stack"),
                    output_dir=tmp_path / "stacked")  # fmt: skip


def test_a_killed_stage_resumes_at_the_next_step_and_ends_the_same(fake, options, tmp_path):
    """Stopped after step 2, a stage resumes at step 3 from the saved state; same result."""
    backend = load_backend("tinker", options)
    config = attrs_evolve(FAST_DPO, epochs=2)  # 4 steps over 8 pairs
    whole = []
    backend.trainer().dpo(backend.student(TINY), _pairs(8), config,
                          output_dir=tmp_path / "whole", on_step=whole.append)  # fmt: skip

    class Killed(Exception):
        pass

    def stop_after_two(step):
        if step.step == 2:
            raise Killed

    with pytest.raises(Killed):
        backend.trainer().dpo(backend.student(TINY), _pairs(8), config,
                              output_dir=tmp_path / "parts", on_step=stop_after_two)  # fmt: skip
    scored = fake.calls["compute_logprobs"]
    resumed = []
    backend.trainer().dpo(backend.student(TINY), _pairs(8), config,
                          output_dir=tmp_path / "parts", on_step=resumed.append)  # fmt: skip
    assert fake.calls["compute_logprobs"] == scored  # the cached reference is read back
    assert [s.step for s in resumed] == [3, 4]
    assert resumed[-1].metrics["loss"] == pytest.approx(whole[-1].metrics["loss"], rel=1e-4)


def test_a_checkpoint_from_another_backend_is_refused_at_once(fake, options):
    """Moving a Tinker student to a local adapter folder fails before any request."""
    local = Checkpoint(backend="local", base_model=TINY, uri="/tmp/adapter", kind="dpo")
    with pytest.raises(ConfigError, match="'local' backend"):
        load_backend("tinker", options).student(TINY, local)

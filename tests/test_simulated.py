"""The simulated backend is deterministic, injects faults on demand, and never claims to train."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from opencharacter.errors import ConfigError, PermanentBackendError, TransientBackendError
from opencharacter.protocols import Backend, Student, Teacher, Trainer
from opencharacter.registry import load_backend
from opencharacter.simulated._backend import SimulatedBackend
from opencharacter.training import DPOConfig, SFTConfig, total_steps
from opencharacter.types import (
    ChatExample,
    Checkpoint,
    GenerationRequest,
    PreferencePair,
    Purpose,
    SamplingParams,
)

SYSTEM = "You are Nova.\n1. I find absurdity everywhere and point it out.\n2. I adore puns."


def request(i, purpose=Purpose.CHOSEN, system=SYSTEM, params=None, **meta):
    messages = [{"role": "user", "content": f"Tell me about sourdough bread, take {i}."}]
    if system:
        messages.insert(0, {"role": "system", "content": system})
    return GenerationRequest(
        id=f"r{i}",
        messages=messages,
        purpose=purpose,
        params=params or SamplingParams(),
        meta=meta,
    )


def run(sampler, requests):
    async def collect():
        return [c async for c in sampler.generate(requests)]

    return asyncio.run(collect())


async def with_retries(sampler, requests, attempts=20):
    """Send requests again until each has a completion, as the pipeline's retry loop will."""
    done, pending = {}, list(requests)
    for _ in range(attempts):
        try:
            async for completion in sampler.generate(pending):
                done[completion.request_id] = completion
        except TransientBackendError:
            pass
        pending = [r for r in requests if r.id not in done]
        if not pending:
            return done
    msg = f"{len(pending)} requests never completed"
    raise AssertionError(msg)


def test_satisfies_the_protocols():
    """Its backend, samplers and trainer match the Backend, Teacher, Student, Trainer shapes."""
    backend = load_backend("simulated")
    assert isinstance(backend, Backend)
    assert isinstance(backend.teacher("t"), Teacher)
    assert isinstance(backend.student("s"), Student)
    assert isinstance(backend.trainer(), Trainer)
    assert backend.capabilities.trains_weights is False


def test_same_seed_and_id_give_same_text_whatever_the_timing():
    """Text depends on seed and request id only, not on latency, order or batching."""
    requests = [request(i) for i in range(20)]
    fast = run(SimulatedBackend(seed=3).teacher("t"), requests)
    slow = run(
        SimulatedBackend(seed=3, latency_ms=5, jitter=1.0, max_concurrency=3).teacher("t"),
        requests[::-1],
    )
    by_id = {c.request_id: c.text for c in fast}
    assert by_id == {c.request_id: c.text for c in slow}
    other_seed = run(SimulatedBackend(seed=4).teacher("t"), requests)
    assert by_id != {c.request_id: c.text for c in other_seed}


def test_completions_stream_as_they_finish():
    """With jittered latency, completions arrive in finishing order, one per request."""
    backend = SimulatedBackend(latency_ms=20, jitter=1.0)
    completions = run(backend.teacher("t"), [request(i) for i in range(30)])
    ids = [c.request_id for c in completions]
    assert sorted(ids) == sorted(f"r{i}" for i in range(30))
    assert ids != [f"r{i}" for i in range(30)]


def test_chosen_answers_use_the_traits_and_rejected_do_not():
    """Answers under a trait system prompt draw on trait words; bare answers are generic."""
    backend = SimulatedBackend(seed=1)
    chosen = run(backend.teacher("t"), [request(i) for i in range(10)])
    rejected = run(
        backend.student("s"), [request(i, Purpose.REJECTED, system=None) for i in range(10)]
    )
    trait_words = {"absurdity", "everywhere", "point", "adore", "puns"}
    assert all(trait_words & set(re.findall(r"[a-z]+", c.text.lower())) for c in chosen)
    assert not any(trait_words & set(re.findall(r"[a-z]+", c.text.lower())) for c in rejected)


def test_expansion_returns_the_asked_number_of_distinct_numbered_questions():
    """An expand-questions request yields a numbered list of the requested length."""
    ask = GenerationRequest(
        id="e1",
        purpose="expand-questions",
        messages=[{"role": "user", "content": "Write 25 new questions for this trait."}],
    )
    [completion] = run(SimulatedBackend().teacher("t"), [ask])
    questions = re.findall(r"^\d+\. (.+)$", completion.text, flags=re.MULTILINE)
    assert len(questions) == len(set(questions)) == 25
    assert all(q.endswith(("?", ".")) for q in questions)


def test_judge_picks_one_of_the_choices():
    """A judge request with choices answers with exactly one of them."""
    [verdict] = run(
        SimulatedBackend().teacher("j"), [request(1, Purpose.JUDGE, choices=("witty", "stern"))]
    )
    assert re.search(r"<answer>(witty|stern)</answer>$", verdict.text)


def test_judge_reads_what_it_judges():
    """A word choice goes to the option the judged text uses; a score grows with trait words."""
    teacher = SimulatedBackend().teacher("j")
    text = "Judge this: I am stern, stern and stern again."
    ask = GenerationRequest(
        id="c", messages=[{"role": "user", "content": text}], purpose=Purpose.JUDGE,
        meta={"choices": ["witty", "stern"]},
    )  # fmt: skip
    assert run(teacher, [ask])[0].text.endswith("<answer>stern</answer>")
    traits = "Traits:\n1. I am patient and gentle.\n\nResponse: "
    scores = [
        int(re.findall(r"<answer>(\d+)</answer>", c.text)[0])
        for c in run(teacher, [
            GenerationRequest(id=str(i), purpose=Purpose.JUDGE,
                              messages=[{"role": "user", "content": traits + answer}])
            for i, answer in enumerate(["Here is a list.", "Be patient, gentle and patient."])
        ])
    ]  # fmt: skip
    assert scores[0] < scores[1]


def test_reflection_and_interaction_read_like_their_purpose():
    """Reflections are first-person paragraphs; interaction turns talk back."""
    reflection, turn = run(
        SimulatedBackend().student("s"),
        [request(1, Purpose.REFLECTION), request(2, Purpose.INTERACTION)],
    )
    texts = {c.request_id: c.text for c in (reflection, turn)}
    assert "\n\n" in texts["r1"] or len(texts["r1"]) > 200
    assert re.search(r"\bI\b", texts["r1"])
    assert texts["r2"]


def test_max_tokens_truncates_with_length_and_stop_cuts_with_stop():
    """A small max_tokens ends with finish_reason length; a stop string ends the text early."""
    short = request(1, params=SamplingParams(max_tokens=5))
    stopped = request(2, Purpose.REJECTED, system=None, params=SamplingParams(stop=["\n"]))
    by_id = {c.request_id: c for c in run(SimulatedBackend().teacher("t"), [short, stopped])}
    assert by_id["r1"].finish_reason == "length"
    assert by_id["r1"].completion_tokens <= 5
    assert by_id["r2"].finish_reason == "stop"
    assert "\n" not in by_id["r2"].text
    assert by_id["r2"].prompt_tokens > 0


def test_transient_failures_are_retryable_and_reproducible():
    """With 40% injected failures every request still completes on retry, with the same text."""
    requests = [request(i) for i in range(40)]
    clean = {c.request_id: c.text for c in run(SimulatedBackend(seed=9).teacher("t"), requests)}
    flaky = asyncio.run(
        with_retries(SimulatedBackend(seed=9, failure_rate=0.4).teacher("t"), requests)
    )
    assert {k: c.text for k, c in flaky.items()} == clean


def test_permanent_failure_raises_at_once():
    """fail_permanently turns every request into an authentication error."""
    with pytest.raises(PermanentBackendError, match="401") as info:
        run(SimulatedBackend(fail_permanently=True).teacher("t"), [request(1)])
    assert info.value.request_id == "r1"


def test_max_concurrency_caps_requests_in_flight():
    """Latency L, N requests and concurrency C take about N*L/C, not N*L or L."""
    backend = SimulatedBackend(latency_ms=30, max_concurrency=4)
    started = time.perf_counter()
    run(backend.teacher("t"), [request(i) for i in range(16)])
    elapsed = time.perf_counter() - started
    assert 0.11 <= elapsed < 0.5  # ideal 16 * 30 ms / 4 = 0.12 s


def test_student_at_checkpoint_reports_the_checkpoint(tmp_path):
    """A student moved to a checkpoint names it as its model; at(None) goes back to base."""
    backend = SimulatedBackend()
    student = backend.student("base-model")
    pairs = [
        PreferencePair(
            id=f"p{i}", prompt=[{"role": "user", "content": "q"}], chosen="a.", rejected="b."
        )
        for i in range(3)
    ]
    checkpoint = backend.trainer().dpo(student, pairs, DPOConfig(), output_dir=tmp_path)
    tuned = student.at(checkpoint)
    assert tuned.checkpoint == checkpoint
    assert run(tuned, [request(1)])[0].model == checkpoint.uri
    assert tuned.at(None).model == "base-model"


def test_trainer_reports_every_step_and_says_it_trained_nothing(tmp_path):
    """DPO reports the real step count with falling loss and records a weightless checkpoint."""
    backend = SimulatedBackend(seed=2)
    pairs = [
        PreferencePair(
            id=f"p{i}", prompt=[{"role": "user", "content": f"q{i}"}], chosen="yes.", rejected="no."
        )
        for i in range(100)
    ]
    config = DPOConfig(batch_size=8)
    steps = []
    checkpoint = backend.trainer().dpo(
        backend.student("s"), pairs, config, output_dir=tmp_path / "dpo", on_step=steps.append
    )
    assert len(steps) == total_steps(100, config) == 13
    assert steps[-1].metrics["loss"] < steps[0].metrics["loss"]
    assert checkpoint.meta["weights"] is False
    assert "not a real model" in checkpoint.meta["note"]
    assert (tmp_path / "dpo" / "checkpoint.json").exists()


def test_trainer_resumes_a_finished_stage(tmp_path):
    """Training again with the same inputs and folder returns the recorded checkpoint."""
    backend = SimulatedBackend()
    examples = [
        ChatExample(
            id=f"c{i}",
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        )
        for i in range(5)
    ]
    trainer, student = backend.trainer(), backend.student("s")
    first = trainer.sft(student, examples, SFTConfig(), output_dir=tmp_path)
    steps = []
    again = trainer.sft(student, examples, SFTConfig(), output_dir=tmp_path, on_step=steps.append)
    assert again == first
    assert steps == []
    with pytest.raises(ValueError, match="no training examples"):
        trainer.sft(student, [], SFTConfig(), output_dir=tmp_path / "empty")


def test_cli_style_options_build_the_backend():
    """String options from the command line build a configured simulated backend."""
    backend = load_backend(
        "simulated",
        {"latency_ms": "20", "failure_rate": "0.2", "fail_permanently": "false", "seed": "7"},
    )
    assert backend == SimulatedBackend(latency_ms=20, failure_rate=0.2, seed=7)


def test_k_samples_differ_are_numbered_and_count_the_prompt_once():
    """A group of samples: distinct, numbered 0..K-1, the prompt on sample 0, reproducible."""
    sampler = SimulatedBackend(seed=1).teacher("t")
    group = GenerationRequest(id="g", messages=[{"role": "user", "content": "Plan my week."}],
                              params=SamplingParams(max_tokens=200), samples=3)  # fmt: skip
    answers = sorted(run(sampler, [group]), key=lambda c: c.sample)
    assert [a.sample for a in answers] == [0, 1, 2]
    assert len({a.text for a in answers}) == 3
    assert answers[0].prompt_tokens > 0
    assert answers[1].prompt_tokens == answers[2].prompt_tokens == 0
    again = sorted(run(sampler, [group]), key=lambda c: c.sample)
    assert [a.text for a in again] == [a.text for a in answers]


def test_a_checkpoint_of_another_backend_is_refused():
    """The simulated student cannot pretend to load a local adapter."""
    local = Checkpoint(backend="local", base_model="m", uri="/tmp/adapter", kind="dpo")
    with pytest.raises(ConfigError, match="'local' backend"):
        SimulatedBackend().student("m").at(local)

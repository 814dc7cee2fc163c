"""The stages make the data the paper describes, without the bugs its code had."""

from __future__ import annotations

import itertools
import json
import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opencharacter.config import resolve_config
from opencharacter.errors import ConfigError
from opencharacter.pipeline import open_context, run_pipeline, start_run
from opencharacter.simulated._backend import SimulatedBackend
from opencharacter.stages import (
    is_near_duplicate,
    parse_numbered,
    run_distill,
    run_dpo,
    run_introspect,
    run_prompts,
    texts,
)
from opencharacter.types import ChatExample, PreferencePair, Purpose


class Recorder:
    """Wraps a sampler and keeps every request it serves, to inspect what stages send."""

    def __init__(self, inner):
        self.inner = inner
        self.requests = []

    @property
    def model(self):
        return self.inner.model

    @property
    def base_model(self):
        return self.inner.base_model

    @property
    def checkpoint(self):
        return self.inner.checkpoint

    def at(self, checkpoint):
        self.inner = self.inner.at(checkpoint)
        return self

    def generate(self, requests):
        self.requests += requests
        return self.inner.generate(requests)


def make_context(tmp_path, **flags):
    config, layers = resolve_config(
        flags={"constitution": "sarcasm", "backend": "simulated", "scale": "smoke", "seed": 5,
               **flags},
        environ={},
    )  # fmt: skip
    run = start_run(tmp_path / "run", config, layers)
    context = open_context(run, config)
    backend = SimulatedBackend(seed=5, **config.backend_options)
    return attrs.evolve(
        context,
        teacher=Recorder(backend.teacher(config.teacher)),
        student=Recorder(backend.student(config.student)),
    )


@given(st.lists(st.text(max_size=40), max_size=8))
def test_parse_numbered_keeps_only_well_formed_numbered_questions(lines):
    """Every parsed question starts with a letter and ends with ? . or !, whatever the input."""
    for question in parse_numbered("\n".join(lines)):
        assert question[:1].isalpha()
        assert question.endswith(("?", ".", "!"))


@given(st.text(min_size=1, max_size=60).filter(lambda s: re.search(r"\w", s)))
def test_a_question_is_a_duplicate_of_itself(question):
    """Any question with a word in it is a near duplicate of itself."""
    assert is_near_duplicate(question, [question])


def test_prompts_reach_each_traits_target_without_near_duplicates(tmp_path):
    """Every trait's pool reaches its target, seeds first, with no near duplicates inside."""
    context = make_context(tmp_path, counts={"questions_per_trait": 12})
    with context.run:
        summary = run_prompts(context)
        rows = list(context.run.rows("prompts"))
    traits = context.constitution.traits
    assert summary["short_traits"] == {}
    for t, trait in enumerate(traits):
        pool = [r["text"] for r in rows if r["trait"] == t]
        assert len(pool) == 12
        assert pool[:5] == list(trait.questions)
        for i, question in enumerate(pool[5:], start=5):
            assert not is_near_duplicate(question, pool[:i])
    assert sum(r["source"] == "generic" for r in rows) == 6
    expansion = context.teacher.requests[0]
    assert expansion.purpose is Purpose.EXPAND_QUESTIONS
    assert traits[0].text in expansion.messages[-1].content


@pytest.mark.parametrize("part", ["teacher", "student", "trainer"])
def test_a_context_without_a_part_says_how_to_give_it(tmp_path, part):
    """A stage run on a hand-built context that lacks a model fails with the fix, as ours."""
    bare = attrs.evolve(make_context(tmp_path), **{part: None})
    with bare.run, pytest.raises(ConfigError, match=f"pass {part}= to StageContext"):
        getattr(bare, f"require_{part}")()


def test_distill_pairs_teacher_with_constitution_against_bare_student(tmp_path):
    """Chosen requests carry the constitution prompt; rejected ones none; sampling is shared."""
    context = make_context(tmp_path)
    with context.run:
        run_prompts(context)
        summary = run_distill(context)
        pairs = [PreferencePair.from_row(r) for r in context.run.rows("distill")]
    assert summary["shortfall"] == 0
    assert len(pairs) == summary["target"] == len({p.id for p in pairs})
    chosen = [r for r in context.teacher.requests if r.purpose is Purpose.CHOSEN]
    rejected = context.student.requests
    system = chosen[0].system_prompt
    assert "Qwen" in system
    assert all(trait.text in system for trait in context.constitution.traits)
    assert all(r.system_prompt is None for r in rejected)
    assert {r.params.max_tokens for r in chosen} == {r.params.max_tokens for r in rejected}
    assert {r.params.stop for r in chosen} == {r.params.stop for r in rejected}
    assert all(p.prompt[0].role == "user" and len(p.prompt) == 1 for p in pairs)


def test_distill_tops_up_filtered_pairs_and_reports_the_shortfall(tmp_path):
    """With degenerate answers, dropped pairs are resampled and any shortfall is recorded."""
    context = make_context(tmp_path, backend_options={"degenerate_rate": "0.3"},
                           top_up_rounds=3)  # fmt: skip
    with context.run:
        run_prompts(context)
        summary = run_distill(context)
        filtered = [r for r in context.run.rows("filtered") if r["stage"] == "distill"]
        kept = list(context.run.rows("distill"))
        stage = context.run.stage("distill")
    assert filtered
    assert all(r["reasons"] for r in filtered)
    assert any(r["sample"] >= 1 for r in kept)  # a top-up sample made it in
    assert summary["pairs"] == len(kept)
    assert stage["shortfall"] == summary["target"] - len(kept)
    quality = json.loads((context.run.path / "quality.json").read_text())["distill"]
    assert quality["kept"] == len(kept)
    assert quality["dropped"] == len(filtered)


def test_introspection_rows_are_complete_and_role_swapped(tmp_path):
    """Reflections drop their system prompt; transcripts alternate, end on a reply, keep no
    placeholder, and every generation saw its variant's guidance in a role-swapped view."""
    context = make_context(tmp_path, counts={"interaction_turns": 5,
                                             "interactions_per_variant": 2})  # fmt: skip
    with context.run:
        run_prompts(context)
        run_distill(context)
        run_dpo(context)
        run_introspect(context)
        reflections = [ChatExample.from_row(r) for r in context.run.rows("reflection")]
        transcripts = [ChatExample.from_row(r) for r in context.run.rows("interaction")]
    assert len(reflections) == len(texts.REFLECTION_PROMPTS)
    assert all([m.role for m in r.messages] == ["user", "assistant"] for r in reflections)
    assert len(transcripts) == 4
    for transcript in transcripts:
        roles = [m.role for m in transcript.messages]
        assert roles[0] == "system"
        assert roles[-1] == "assistant"
        assert all(a != b for a, b in itertools.pairwise(roles[1:]))
        assert all("{" not in m.content and "}" not in m.content for m in transcript.messages)
        assert "Qwen" in transcript.messages[0].content
        replies = len(transcript.messages) - 2
        assert replies >= 5  # the greeting answered, then every reply, the last one included
    turns = [r for r in context.student.requests if r.purpose is Purpose.INTERACTION]
    for variant, guidance in (("free", texts.FREE_GUIDANCE), ("leading", texts.LEADING_GUIDANCE)):
        assert any(guidance in r.system_prompt for r in turns), variant
    for request in turns:
        roles = [m.role for m in request.messages[1:]]
        assert roles[-1] == "user"
        assert all(a != b for a, b in itertools.pairwise(roles))
    checkpoint = context.run.checkpoint("dpo")
    assert all(r.messages and context.student.inner.checkpoint == checkpoint for r in turns)


def test_sft_stage_trains_on_the_dpo_checkpoint(tmp_path):
    """The SFT checkpoint's parent is the DPO checkpoint, and the SFT set mixes both sources."""
    context = make_context(tmp_path)
    with context.run:
        run_pipeline(context.run, context.config)
        dpo, sft = context.run.checkpoint("dpo"), context.run.checkpoint("sft")
        stage = context.run.stage("sft-data")
    assert sft.parent == dpo.uri
    assert stage["reflection"] > 0
    assert stage["interaction"] > 0


def test_until_stops_after_the_named_stage(tmp_path):
    """--until distill leaves no checkpoint and no introspection data."""
    context = make_context(tmp_path, until="distill")
    with context.run:
        run_pipeline(context.run, context.config)
        assert context.run.checkpoint("dpo") is None
        assert list(context.run.rows("distill"))
        assert not list(context.run.rows("reflection"))


@pytest.mark.parametrize("stage", [run_distill, run_dpo, run_introspect])
def test_a_stage_without_its_input_says_what_to_run_first(tmp_path, stage):
    """Running a stage before the one it needs is a clear error, not a traceback deep inside."""
    context = make_context(tmp_path)
    with context.run, pytest.raises(ValueError, match="first"):
        stage(context)


def test_filters_can_be_turned_off_and_the_manifest_says_so(tmp_path):
    """With filters off even degenerate answers pass, and the empty chains are recorded."""
    context = make_context(tmp_path, filters=False, backend_options={"degenerate_rate": "1.0"})
    with context.run:
        run_prompts(context)
        summary = run_distill(context)
        recorded = context.run.manifest["filters"]
    assert summary["shortfall"] == 0
    assert recorded["distill-chosen"]["steps"] == []


def test_the_manifest_records_the_filter_chains_used(tmp_path):
    """Each filtering stage records its chain, step by step."""
    context = make_context(tmp_path)
    with context.run:
        run_prompts(context)
        run_distill(context)
        recorded = context.run.manifest["filters"]
    assert [s["filter"] for s in recorded["distill-chosen"]["steps"]][-1] == "disclosure"
    assert "identity" not in [s["filter"] for s in recorded["distill-rejected"]["steps"]]


def test_training_tokens_and_their_cost_reach_the_manifest(tmp_path):
    """Each step's billed tokens add up in the stage entry, priced as the student's training."""
    from opencharacter.protocols import Capabilities, StepMetrics  # noqa: PLC0415
    from opencharacter.types import Checkpoint, Price, TokenUsage  # noqa: PLC0415

    class Billed:
        def dpo(self, student, pairs, config, *, output_dir, on_step=None):
            for step in (1, 2):
                usage = TokenUsage(train_tokens=10**6, prompt_tokens=10**6 if step == 1 else 0)
                on_step(StepMetrics(stage="dpo", step=step, total_steps=2, metrics={"loss": 0.5},
                                    usage=usage))  # fmt: skip
            return Checkpoint(backend="billed", base_model="m", uri="billed://dpo", kind="dpo")

    context = make_context(tmp_path)
    with context.run:
        run_prompts(context)
        run_distill(context)
        price = Price(prefill=0.5, sample=1.0, train=2.0)
        billed = attrs.evolve(context, trainer=Billed(),
                              capabilities={"student": Capabilities(remote=True)},
                              prices={context.config.student: price})  # fmt: skip
        run_dpo(billed)
        entry = context.run.stage("dpo")
    assert entry["usage"]["train_tokens"] == 2 * 10**6
    assert entry["usage"]["prompt_tokens"] == 10**6
    assert entry["cost"] == pytest.approx(2 * 2.0 + 0.5)
    steps = [r for r in context.run.rows("metrics") if r.get("stage") == "dpo"]
    assert [s["train_tokens"] for s in steps] == [10**6, 10**6]
